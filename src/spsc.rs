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
use crate::primitive::UnsafeCell;
use crate::ring::spsc::{Consumer, PopError, Producer, PushError, Ring};
use crate::ring::Indices;
use crate::segment::{Claim, ElemType, Flavor, Segment, Spec};
use crate::stats::Stats;
use crate::wait::{block_on, Blocked, Doorbell, Phase, Wait};
use crate::{Options, ShmSafe};
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
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
    const {
        assert!(
            size_of::<T>() != 0,
            "a zero-sized message type carries nothing"
        )
    };
    // Slots are aligned relative to the mapping, which is only page-aligned.
    const {
        assert!(
            align_of::<T>() <= 4096,
            "message types aligned above a page are not supported"
        )
    };
    Spec {
        flavor: Flavor::Spsc,
        elem: ElemType::of::<T>(),
        endpoints: 2,
        rings: 1,
        ring_control: size_of::<Control>(),
    }
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

/// Maps the ring of `segment` and attaches the end made by `attach`.
fn attach<T: ShmSafe, E>(
    segment: Segment,
    options: &Options,
    peer: &Claim,
    attach: unsafe fn(Ring<T>) -> Result<E, crate::ring::Corrupt>,
) -> Result<(Link, E, NonNull<Control>), Error> {
    let (control, slots) = segment.ring(0);
    let control = control.cast::<Control>();
    // SAFETY: the segment's validated layout holds a `Control` block at
    // `control` and `capacity` slots of `T` after it, aligned for `T`; the
    // mapping outlives the ring because both end up in the same endpoint,
    // which drops the ring first. `UnsafeCell<T>` is `repr(transparent)`.
    let ring = unsafe {
        let indices = NonNull::from(&(*control.as_ptr()).indices);
        Ring::new(
            indices,
            slots.cast::<UnsafeCell<T>>(),
            segment.header_capacity(),
        )
    };
    let name = segment.name().to_owned();
    // SAFETY: the endpoint table gave this process the only claim on the role.
    let end = unsafe { attach(ring) }.map_err(|_| Error::Corrupt {
        name,
        detail: "its ring positions contradict each other".into(),
    })?;
    Ok((Link::new(segment, options, peer)?, end, control))
}

/// The sending end of an spsc channel.
///
/// One may be attached at a time. Dropping it (or its process dying)
/// disconnects the channel once the receiver has taken what was sent.
pub struct Sender<T: ShmSafe> {
    producer: Producer<T>,
    control: NonNull<Control>,
    link: Link,
    _marker: PhantomData<T>,
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
        let segment = Segment::create(
            name,
            &spec::<T>(),
            capacity,
            options.mode,
            Link::new_segment_mode(),
            &SENDER,
        )
        .map_err(|err| options.as_requested(err))?;
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
        let (link, producer, control) = attach(segment, options, &RECEIVER, Producer::attach)?;
        let sender = Self {
            producer,
            control,
            link,
            _marker: PhantomData,
        };
        // Only this end sleeps on `not_full`; a predecessor killed in its
        // sleep may have left its count behind.
        sender.control().not_full.forget_sleepers();
        Ok(sender)
    }

    fn control(&self) -> &Control {
        // SAFETY: see `attach`: valid while the mapping, owned by `self`, lives.
        unsafe { self.control.as_ref() }
    }

    /// Sends `value` if there is room, without blocking.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the channel is full,
    /// [`TrySendError::Disconnected`] if the receiver is gone. Either way the
    /// message is handed back.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.push(value) {
            Err(TrySendError::Full(value)) => Err(self.refuse(value)),
            result => result,
        }
    }

    /// A full ring: counts the refusal, and probes whether the receiver
    /// died (rate-limited), so that a loop of `try_send` ends too.
    #[cold]
    fn refuse<V>(&self, value: V) -> TrySendError<V> {
        self.producer.count_refusal();
        if self.link.peer_gone_or_dead() {
            TrySendError::Disconnected(value)
        } else {
            TrySendError::Full(value)
        }
    }

    /// Sends `value`, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message if the receiver is gone, detached or
    /// dead (a dead receiver is noticed within a second).
    #[inline]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.put(value) {
            return Ok(());
        }
        match self.send_until(value, None) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Disconnected(value) | SendTimeoutError::Timeout(value)) => {
                Err(SendError(value))
            }
        }
    }

    /// Sends `value`, waiting at most `timeout` while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] if there was no room in time,
    /// [`SendTimeoutError::Disconnected`] if the receiver is gone.
    #[inline]
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        if self.put(value) {
            return Ok(());
        }
        self.send_until(value, Instant::now().checked_add(timeout))
    }

    /// The fast path of the blocking sends: `true` if `value` went in.
    /// Everything else is left to the out-of-line slow path.
    #[inline(always)]
    fn put(&self, value: T) -> bool {
        if self.link.peer_gone_now_and_then() || self.producer.push(value).is_err() {
            return false;
        }
        self.control().not_empty.notify(self.link.barrier);
        true
    }

    #[inline(never)]
    fn send_until(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let wait = Wait {
            spin: self.link.spin,
            deadline,
        };
        let poll = self.poll_with_hysteresis(|| self.push(value));
        let dead = || {
            self.link
                .peer_gone_or_dead()
                .then_some(Err(TrySendError::Disconnected(value)))
        };
        match block_on(
            &self.control().not_full,
            self.link.barrier,
            wait,
            poll,
            dead,
        ) {
            Blocked::Done(Ok(())) => Ok(()),
            Blocked::Done(Err(err)) => Err(SendTimeoutError::Disconnected(err.into_inner())),
            Blocked::TimedOut => Err(SendTimeoutError::Timeout(value)),
        }
    }

    /// The poll of a blocking send: `attempt` at once; once it found the
    /// ring full, a spinning poll tries again only when a chunk of the ring
    /// is free (see `Producer::has_room`), while an announced one (the last
    /// look before sleeping, or the first after waking) takes any room, so a
    /// single free slot is never slept through. A corrupt ring is left for
    /// `attempt` to report.
    #[inline]
    fn poll_with_hysteresis<'a, R, V>(
        &'a self,
        attempt: impl Fn() -> Result<R, TrySendError<V>> + 'a,
    ) -> impl FnMut(Phase) -> Option<Result<R, TrySendError<V>>> + 'a {
        let mut waited = false;
        move |phase| {
            if phase == Phase::Spinning
                && waited
                && self.producer.has_room(self.producer.refill()) == Ok(false)
                && !self.link.peer_gone()
            {
                return None;
            }
            match attempt() {
                Err(TrySendError::Full(_)) => {
                    waited = true;
                    None
                }
                done => Some(done),
            }
        }
    }

    #[inline]
    fn push(&self, value: T) -> Result<(), TrySendError<T>> {
        if self.link.peer_gone_now_and_then() {
            return Err(TrySendError::Disconnected(value));
        }
        match self.producer.push(value) {
            Ok(()) => {
                self.control().not_empty.notify(self.link.barrier);
                Ok(())
            }
            // No liveness probe here, on the blocking path's poll: that path
            // probes after each sleep, and `try_send` in `refuse`.
            Err(PushError::Full) => Err(TrySendError::Full(value)),
            Err(PushError::Corrupt) => {
                self.link.poison();
                Err(TrySendError::Disconnected(value))
            }
        }
    }

    /// Sends as many of `values` as fit, in order, with one publish, without
    /// blocking. Returns how many were sent (at least 1).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if none fit, [`TrySendError::Disconnected`] if
    /// the receiver is gone.
    pub fn try_send_batch(&self, values: &[T]) -> Result<usize, TrySendError<()>> {
        match self.push_batch(values) {
            Err(TrySendError::Full(())) => Err(self.refuse(())),
            result => result,
        }
    }

    /// Sends all of `values`, in order, waiting while the channel is full;
    /// each time there is room, publishes as many as fit at once.
    ///
    /// # Errors
    ///
    /// [`SendError`] holding how many were sent (and will be received) if
    /// the receiver is gone before all were.
    pub fn send_batch(&self, values: &[T]) -> Result<(), SendError<usize>> {
        let mut sent = 0;
        while sent < values.len() {
            let rest = &values[sent..];
            let wait = Wait {
                spin: self.link.spin,
                deadline: None,
            };
            let poll = self.poll_with_hysteresis(|| self.push_batch(rest));
            let dead = || {
                self.link
                    .peer_gone_or_dead()
                    .then_some(Err(TrySendError::Disconnected(())))
            };
            match block_on(
                &self.control().not_full,
                self.link.barrier,
                wait,
                poll,
                dead,
            ) {
                Blocked::Done(Ok(count)) => sent += count,
                Blocked::Done(Err(_)) | Blocked::TimedOut => return Err(SendError(sent)),
            }
        }
        Ok(())
    }

    fn push_batch(&self, values: &[T]) -> Result<usize, TrySendError<()>> {
        if self.link.peer_gone_now_and_then() {
            return Err(TrySendError::Disconnected(()));
        }
        match self.producer.push_slice(values) {
            Ok(0) if values.is_empty() => Ok(0),
            Ok(0) => Err(TrySendError::Full(())),
            Ok(sent) => {
                self.control().not_empty.notify(self.link.barrier);
                Ok(sent)
            }
            Err(_) => {
                self.link.poison();
                Err(TrySendError::Disconnected(()))
            }
        }
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
        let segment = Segment::create(
            name,
            &spec::<T>(),
            capacity,
            options.mode,
            Link::new_segment_mode(),
            &RECEIVER,
        )
        .map_err(|err| options.as_requested(err))?;
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
        let (link, consumer, control) = attach(segment, options, &SENDER, Consumer::attach)?;
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
        // SAFETY: see `attach`: valid while the mapping, owned by `self`, lives.
        unsafe { self.control.as_ref() }
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
    ($end:ident, $ring:ident) => {
        impl<T: ShmSafe> $end<T> {
            /// Messages the channel holds (the requested capacity, rounded up
            /// to a power of two).
            pub fn capacity(&self) -> usize {
                self.$ring.ring().capacity() as usize
            }

            /// Messages waiting now. The other end may change it at any
            /// moment, so it is a hint, exact only when that end is idle.
            pub fn len(&self) -> usize {
                self.$ring.ring().len().unwrap_or(0) as usize
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
                self.link.segment.name()
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
                    endpoints: self.link.endpoints(&ROLES),
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

        impl<T: ShmSafe> Drop for $end<T> {
            fn drop(&mut self) {
                self.link.segment.detach();
                // Wake the peer, asleep on either doorbell, to see us gone.
                let control = self.control();
                control.not_empty.ring();
                control.not_full.ring();
            }
        }
    };
}

common_queries!(Sender, producer);
common_queries!(Receiver, consumer);

/// A blocking iterator over a [`Receiver`]'s messages; see [`Receiver::iter`].
pub struct Iter<'a, T: ShmSafe> {
    rx: &'a Receiver<T>,
}

/// A non-blocking iterator over a [`Receiver`]'s messages; see
/// [`Receiver::try_iter`].
pub struct TryIter<'a, T: ShmSafe> {
    rx: &'a Receiver<T>,
}

/// An owning blocking iterator over a [`Receiver`]'s messages.
pub struct IntoIter<T: ShmSafe> {
    rx: Receiver<T>,
}

// `Debug` without a `T: Debug` bound: the receiver's own `Debug` needs none.
impl<T: ShmSafe> core::fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Iter").field("rx", self.rx).finish()
    }
}

impl<T: ShmSafe> core::fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TryIter").field("rx", self.rx).finish()
    }
}

impl<T: ShmSafe> core::fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IntoIter").field("rx", &self.rx).finish()
    }
}

impl<T: ShmSafe> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T: ShmSafe> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T: ShmSafe> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T: ShmSafe> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T: ShmSafe> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
