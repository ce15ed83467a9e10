//! One sender, one receiver: a Lamport ring in shared memory.
//!
//! The fastest flavor. One [`Sender`] and one [`Receiver`] may be attached
//! at a time, each in any process; messages arrive in the order sent.
//!
//! ```
//! # let name = format!("doc-spsc-{}", std::process::id());
//! let (tx, rx) = shmchan::spsc::channel::<u64>(&name, 1024)?;
//! tx.send(7).unwrap();
//! assert_eq!(rx.recv(), Ok(7));
//! drop(tx);
//! assert!(rx.recv().is_err()); // every sender is gone
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! Across processes, one side creates and the other opens by name:
//!
//! ```no_run
//! // Process A
//! let rx = shmchan::spsc::Receiver::<u64>::create("ticks", 1024)?;
//! for tick in &rx {
//!     println!("{tick}");
//! }
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! ```no_run
//! // Process B
//! let tx = shmchan::spsc::Sender::<u64>::open("ticks")?;
//! tx.send(1).unwrap();
//! # Ok::<(), shmchan::Error>(())
//! ```

pub use crate::error::{
    Error, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

use crate::link::Link;
use crate::ring::spsc::{PopError, Ring};
use crate::ring::Indices;
use crate::segment::{Claim, ElemType, Flavor, Segment, Spec};
use crate::sender::{attach_ring, Consumer, Producer, RingSender};
use crate::stats::Stats;
use crate::wait::Doorbell;
use crate::{Options, ShmSafe};
use core::marker::PhantomData;
use core::mem::size_of;
use core::ptr::NonNull;
use core::time::Duration;
use crossbeam_utils::CachePadded;
use std::time::Instant;

/// The flavor's control block at the start of its ring.
#[repr(C)]
struct Control {
    indices: Indices,
    /// The receiver sleeps here when the ring is empty.
    not_empty: CachePadded<Doorbell>,
    /// The sender sleeps here when the ring is full.
    not_full: CachePadded<Doorbell>,
}

static_assertions::const_assert_eq!(size_of::<Control>(), 512);

const RECEIVER: Claim = Claim {
    slots: 0..1,
    role: "receiver",
    ever_bit: 1,
};
const SENDER: Claim = Claim {
    slots: 1..2,
    role: "sender",
    ever_bit: 2,
};
const ROLES: [&str; 2] = ["receiver", "sender"];

fn spec<T: ShmSafe>() -> Spec {
    Spec::new(Flavor::Spsc, ElemType::of::<T>(), 2, size_of::<Control>())
}

/// Creates a channel named `name` holding `capacity` messages, and returns
/// both ends.
///
/// Either end can be sent to another thread; to use one in another process,
/// create or open it there instead (see [`Sender::open`]).
///
/// # Errors
///
/// As for [`Receiver::create`] and [`Sender::open`].
pub fn channel<T: ShmSafe>(name: &str, capacity: usize) -> Result<(Sender<T>, Receiver<T>), Error> {
    channel_with(name, &Options::new().capacity(capacity))
}

/// [`channel`] with [`Options`].
///
/// # Errors
///
/// As for [`Receiver::create`] and [`Sender::open`].
pub fn channel_with<T: ShmSafe>(
    name: &str,
    options: &Options,
) -> Result<(Sender<T>, Receiver<T>), Error> {
    let rx = Receiver::create_with(name, options)?;
    let tx = Sender::open_with(name, options)?;
    Ok((tx, rx))
}

/// The sending end of an spsc channel.
///
/// One may be attached at a time. Dropping it (or its process dying)
/// disconnects the channel once the receiver has taken what was sent.
pub struct Sender<T: ShmSafe> {
    inner: RingSender<T>,
    control: NonNull<Control>,
}

/// The receiving end of an spsc channel.
///
/// One may be attached at a time. Dropping it (or its process dying)
/// disconnects the channel: sends fail from then on.
pub struct Receiver<T: ShmSafe> {
    consumer: Consumer<T>,
    control: NonNull<Control>,
    link: Link,
    _marker: PhantomData<T>,
}

// SAFETY: an endpoint's process-local state (its `Cell`s, its mapping) moves
// with it to another thread; the shared memory is accessed only through
// atomics and the ring's protocol, which do not care which thread runs them.
// It is not `Sync`: the ring allows one producer and one consumer, and the
// `Cell`s are that one end's private copies.
unsafe impl<T: ShmSafe> Send for Sender<T> {}
// SAFETY: as for `Sender`.
unsafe impl<T: ShmSafe> Send for Receiver<T> {}

impl<T: ShmSafe> Sender<T> {
    /// Creates a channel named `name` holding `capacity` messages, with only
    /// this end attached. Messages sent before a receiver attaches wait in
    /// the channel; once it is full, [`send`](Self::send) waits.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::InvalidCapacity`] (0, or too large),
    /// [`Error::AlreadyExists`] if a live channel has that name (a stale one,
    /// whose endpoints all died, is replaced), [`Error::Io`].
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, &Options::new().capacity(capacity))
    }

    /// [`create`](Self::create) with [`Options`].
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create).
    pub fn create_with(name: &str, options: &Options) -> Result<Self, Error> {
        let capacity = options.ring_capacity()?;
        let segment = Link::create_segment(name, &spec::<T>(), capacity, options, &SENDER)?;
        Self::from_segment(segment, options)
    }

    /// Attaches to the existing channel `name` as its sender.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Busy`] if a live
    /// sender is attached, [`Error::Incompatible`] if the channel is not an
    /// spsc channel of `T`, [`Error::Corrupt`], [`Error::Io`].
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// [`open`](Self::open) with [`Options`] (only the spin time applies).
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    pub fn open_with(name: &str, options: &Options) -> Result<Self, Error> {
        Self::from_segment(Segment::open(name, &spec::<T>(), &SENDER)?, options)
    }

    fn from_segment(segment: Segment, options: &Options) -> Result<Self, Error> {
        // SAFETY: `Control` is `repr(C)` with `Indices` first; the segment
        // is of `T`; we hold the sender's role; the producer moves into the
        // same endpoint as the mapping, inside `RingSender`.
        let producer = unsafe { attach_ring(&segment, 0, Producer::attach)? };
        let control = segment.ring(0).0.cast::<Control>();
        let link = Link::new(segment, options, &RECEIVER)?;
        // SAFETY: the producer and both doorbells lie in `link`'s mapping;
        // `not_full` is the sender's alone.
        let inner = unsafe {
            let control = control.as_ref();
            RingSender::new(
                producer,
                NonNull::from(&*control.not_empty),
                NonNull::from(&*control.not_full),
                link,
            )
        };
        Ok(Self { inner, control })
    }

    fn control(&self) -> &Control {
        // SAFETY: it lies in the mapping that `self.inner` owns.
        unsafe { self.control.as_ref() }
    }

    fn link(&self) -> &Link {
        &self.inner.link
    }

    fn ring(&self) -> &Ring<T> {
        self.inner.producer().ring()
    }

    /// Sends `value` if there is room, without blocking.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the channel is full,
    /// [`TrySendError::Disconnected`] if the receiver is gone. Either way the
    /// message is handed back.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.inner.try_send(value)
    }

    /// Sends `value`, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message if the receiver is gone, detached or
    /// dead (a dead receiver is noticed within a second).
    #[inline]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.inner.send(value)
    }

    /// Sends `value`, waiting at most `timeout` while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] if there was no room in time,
    /// [`SendTimeoutError::Disconnected`] if the receiver is gone.
    #[inline]
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.inner.send_timeout(value, timeout)
    }

    /// Sends as many of `values` as fit, in order, with one publish, without
    /// blocking. Returns how many were sent (at least 1).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if none fit, [`TrySendError::Disconnected`] if
    /// the receiver is gone.
    pub fn try_send_batch(&self, values: &[T]) -> Result<usize, TrySendError<()>> {
        self.inner.try_send_batch(values)
    }

    /// Sends all of `values`, in order, waiting while the channel is full;
    /// each time there is room, publishes as many as fit at once.
    ///
    /// # Errors
    ///
    /// [`SendError`] holding how many were sent (and will be received) if
    /// the receiver is gone before all were.
    pub fn send_batch(&self, values: &[T]) -> Result<(), SendError<usize>> {
        self.inner.send_batch(values)
    }
}

impl<T: ShmSafe> Receiver<T> {
    /// Creates a channel named `name` holding `capacity` messages, with only
    /// this end attached. [`recv`](Self::recv) waits until a sender attaches
    /// and sends.
    ///
    /// # Errors
    ///
    /// As for [`Sender::create`].
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, &Options::new().capacity(capacity))
    }

    /// [`create`](Self::create) with [`Options`].
    ///
    /// # Errors
    ///
    /// As for [`Sender::create`].
    pub fn create_with(name: &str, options: &Options) -> Result<Self, Error> {
        let capacity = options.ring_capacity()?;
        let segment = Link::create_segment(name, &spec::<T>(), capacity, options, &RECEIVER)?;
        Self::from_segment(segment, options)
    }

    /// Attaches to the existing channel `name` as its receiver.
    ///
    /// # Errors
    ///
    /// As for [`Sender::open`], with [`Error::Busy`] if a live receiver is
    /// attached.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// [`open`](Self::open) with [`Options`] (only the spin time applies).
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    pub fn open_with(name: &str, options: &Options) -> Result<Self, Error> {
        Self::from_segment(Segment::open(name, &spec::<T>(), &RECEIVER)?, options)
    }

    fn from_segment(segment: Segment, options: &Options) -> Result<Self, Error> {
        // SAFETY: as in `Sender::from_segment`, for the receiver's role.
        let consumer = unsafe { attach_ring(&segment, 0, Consumer::attach)? };
        let control = segment.ring(0).0.cast::<Control>();
        let link = Link::new(segment, options, &SENDER)?;
        let receiver = Self {
            consumer,
            control,
            link,
            _marker: PhantomData,
        };
        // Only this end sleeps on `not_empty`; see `Sender::from_segment`.
        receiver.control().not_empty.forget_sleepers();
        Ok(receiver)
    }

    fn control(&self) -> &Control {
        // SAFETY: it lies in the mapping that `self.link` owns.
        unsafe { self.control.as_ref() }
    }

    fn link(&self) -> &Link {
        &self.link
    }

    fn ring(&self) -> &Ring<T> {
        self.consumer.ring()
    }

    /// Receives a message if one is waiting, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is waiting,
    /// [`TryRecvError::Disconnected`] if none is waiting and the sender is
    /// gone (detached, or its process dead).
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        if self.link.is_poisoned() {
            return Err(TryRecvError::Disconnected);
        }
        match self.consumer.pop() {
            Ok(value) => {
                self.control().not_full.notify(self.link.barrier);
                Ok(value)
            }
            Err(PopError::Empty) if self.link.peer_gone_or_dead() => self.pop_after_disconnect(),
            Err(PopError::Empty) => Err(TryRecvError::Empty),
            Err(PopError::Corrupt) => self.poisoned(),
        }
    }

    /// Receives a message, waiting until one arrives.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is empty and the sender that attached
    /// is gone: detached, or its process dead (noticed within a second).
    /// Before any sender has attached, it waits.
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        match self.take() {
            Some(value) => Ok(value),
            None => self.recv_until(None).map_err(|_| RecvError),
        }
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if nothing arrived in time,
    /// [`RecvTimeoutError::Disconnected`] as for [`recv`](Self::recv).
    #[inline]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match self.take() {
            Some(value) => Ok(value),
            None => self.recv_until(Instant::now().checked_add(timeout)),
        }
    }

    /// The fast path of the blocking receives: a message, if one is ready.
    /// Everything else (waiting, disconnection, corruption) is left to the
    /// out-of-line slow path, so this stays a few instructions.
    #[inline(always)]
    fn take(&self) -> Option<T> {
        if self.link.is_poisoned() {
            return None;
        }
        let value = self.consumer.pop().ok()?;
        self.control().not_full.notify(self.link.barrier);
        Some(value)
    }

    #[inline(never)]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.link
            .recv_until(&self.control().not_empty, deadline, || self.pop())
    }

    /// `try_recv` without the liveness probe, for polling loops.
    #[inline]
    fn pop(&self) -> Result<T, TryRecvError> {
        if self.link.is_poisoned() {
            return Err(TryRecvError::Disconnected);
        }
        match self.consumer.pop() {
            Ok(value) => {
                self.control().not_full.notify(self.link.barrier);
                Ok(value)
            }
            Err(PopError::Empty) if self.link.peer_gone() => self.pop_after_disconnect(),
            Err(PopError::Empty) => Err(TryRecvError::Empty),
            Err(PopError::Corrupt) => self.poisoned(),
        }
    }

    /// The sender is gone: anything it published before going is still
    /// delivered (its detach happened after its last publish, and we saw the
    /// detach, so a fresh look at the ring sees the publish).
    #[cold]
    fn pop_after_disconnect(&self) -> Result<T, TryRecvError> {
        match self.consumer.pop() {
            Ok(value) => Ok(value),
            Err(PopError::Empty) => Err(TryRecvError::Disconnected),
            Err(PopError::Corrupt) => self.poisoned(),
        }
    }

    #[cold]
    fn poisoned(&self) -> Result<T, TryRecvError> {
        self.link.poison();
        Err(TryRecvError::Disconnected)
    }

    /// Receives as many waiting messages as fit in `out`, in order, with one
    /// release, without blocking. Returns how many (at least 1, or 0 if
    /// `out` is empty).
    ///
    /// # Errors
    ///
    /// As for [`try_recv`](Self::try_recv).
    pub fn try_recv_batch(&self, out: &mut [T]) -> Result<usize, TryRecvError> {
        match self.pop_batch(out) {
            Err(TryRecvError::Empty) if self.link.peer_gone_or_dead() => self.pop_batch(out),
            result => result,
        }
    }

    /// Receives as many waiting messages as fit in `out`, in order, with one
    /// release, waiting until at least one is there. Returns how many (at
    /// least 1, or 0 if `out` is empty).
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv).
    pub fn recv_batch(&self, out: &mut [T]) -> Result<usize, RecvError> {
        if out.is_empty() {
            return Ok(0);
        }
        let out = core::cell::RefCell::new(out);
        let attempt = || self.pop_batch(&mut out.borrow_mut());
        self.link
            .recv_until(&self.control().not_empty, None, attempt)
            .map_err(|_| RecvError)
    }

    fn pop_batch(&self, out: &mut [T]) -> Result<usize, TryRecvError> {
        match self.take_batch(out) {
            // The sender is gone: one more look, as in `pop_after_disconnect`.
            Ok(0) if !out.is_empty() && self.link.peer_gone() => match self.take_batch(out) {
                Ok(0) => Err(TryRecvError::Disconnected),
                result => result,
            },
            Ok(0) if !out.is_empty() => Err(TryRecvError::Empty),
            result => result,
        }
    }

    fn take_batch(&self, out: &mut [T]) -> Result<usize, TryRecvError> {
        if self.link.is_poisoned() {
            return Err(TryRecvError::Disconnected);
        }
        match self.consumer.pop_into(out) {
            Ok(0) => Ok(0),
            Ok(received) => {
                self.control().not_full.notify(self.link.barrier);
                Ok(received)
            }
            Err(_) => self.poisoned().map(|_| 0),
        }
    }

    /// A blocking iterator: yields messages until the channel is empty and
    /// the sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator: yields the messages waiting now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

/// Queries both ends answer alike.
macro_rules! common_queries {
    ($end:ident) => {
        impl<T: ShmSafe> $end<T> {
            /// Messages the channel holds (the requested capacity, rounded up
            /// to a power of two).
            pub fn capacity(&self) -> usize {
                self.ring().capacity() as usize
            }

            /// Messages waiting now. The other end may change it at any
            /// moment, so it is a hint, exact only when that end is idle.
            pub fn len(&self) -> usize {
                self.ring().len().unwrap_or(0) as usize
            }

            /// Whether no message is waiting now (a hint, as for [`len`](Self::len)).
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether the channel is full now (a hint, as for [`len`](Self::len)).
            pub fn is_full(&self) -> bool {
                self.len() == self.capacity()
            }

            /// The channel's name, as given when creating or opening it.
            pub fn name(&self) -> &str {
                self.link().segment.name()
            }

            /// The channel's counters, read from the segment.
            pub fn stats(&self) -> Stats {
                let snapshot = self.control().indices.snapshot();
                Stats {
                    sent: snapshot.tail,
                    received: snapshot.head,
                    len: self.len() as u64,
                    capacity: self.capacity() as u64,
                    high_water: snapshot.high_water,
                    full: snapshot.refusals,
                    endpoints: self
                        .link()
                        .endpoints(|i| ROLES.get(i).copied().unwrap_or("endpoint")),
                }
            }
        }

        impl<T: ShmSafe> core::fmt::Debug for $end<T> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("name", &self.name())
                    .field("type", &T::NAME)
                    .field("capacity", &self.capacity())
                    .finish_non_exhaustive()
            }
        }
    };
}

common_queries!(Sender);
common_queries!(Receiver);

impl<T: ShmSafe> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.link.segment.detach();
        // Wake the sender, asleep on `not_full`, to see us gone (and our own
        // bell, in case a predecessor's sleeper count lingers).
        let control = self.control();
        control.not_empty.mark_left();
        control.not_empty.ring();
        control.not_full.ring();
    }
}

crate::iter::receiver_iterators!();
