//! Many senders, one receiver: one Lamport ring per sender.
//!
//! Each attached [`Sender`] owns a shard: an spsc ring of its own, so
//! senders never contend with each other. The [`Receiver`] takes from the
//! shards in turn, a bounded burst from each, so that no sender can starve
//! another, however fast it sends. Messages from one sender arrive in the
//! order sent; messages from different senders have no order between them.
//!
//! The number of shards (default 16, see [`Options::shards`]) is fixed when
//! the channel is created, and bounds how many senders may be attached at
//! once: one more is [`Error::Busy`]. A shard is given back when its sender
//! is dropped or its process dies; what that sender had sent is still
//! delivered, before anything its successor sends.
//!
//! ```
//! # let name = format!("doc-mpsc-{}", std::process::id());
//! let (tx, rx) = shmchan::mpsc::channel::<u64>(&name, 1024)?;
//! let tx2 = tx.try_clone()?; // a second shard
//! std::thread::spawn(move || tx2.send(2).unwrap());
//! tx.send(1).unwrap();
//! drop(tx);
//! let mut got: Vec<u64> = rx.iter().collect(); // ends when both are gone
//! got.sort();
//! assert_eq!(got, [1, 2]);
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! Across processes, each sender opens the channel by name:
//!
//! ```no_run
//! // The receiving process
//! let rx = shmchan::mpsc::Receiver::<u64>::create("log", 4096)?;
//! for line in &rx {
//!     println!("{line}");
//! }
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! ```no_run
//! // Each sending process
//! let tx = shmchan::mpsc::Sender::<u64>::open("log")?;
//! tx.send(42).unwrap();
//! # Ok::<(), shmchan::Error>(())
//! ```

pub use crate::error::{
    Error, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

use crate::link::Link;
use crate::ring::spsc::PopError;
use crate::ring::Indices;
use crate::segment::{Claim, ElemType, Flavor, Segment, Spec};
use crate::sender::{attach_ring, Consumer, Producer, RingSender};
use crate::stats::Stats;
use crate::wait::Doorbell;
use crate::{Options, ShmSafe};
use core::cell::Cell;
use core::mem::size_of;
use core::ptr::NonNull;
use core::time::Duration;
use crossbeam_utils::CachePadded;
use std::time::Instant;

/// Each shard's control block, at the start of its ring.
#[repr(C)]
struct Shard {
    indices: Indices,
    /// The shard's sender sleeps here when its ring is full.
    not_full: CachePadded<Doorbell>,
}

/// The block all shards share, after the endpoint table.
#[repr(C)]
struct Shared {
    /// The receiver sleeps here when every shard is empty; every sender
    /// rings it.
    not_empty: CachePadded<Doorbell>,
}

static_assertions::const_assert_eq!(size_of::<Shard>(), 384);
static_assertions::const_assert_eq!(size_of::<Shared>(), 128);

/// The receiver's role: slot 0. The senders' are the rest, one per shard.
const RECEIVER: Claim = Claim {
    slots: 0..1,
    role: "receiver",
    ever_bit: 1,
};
/// Any shard; the table's size ends the search.
const ANY_SHARD: Claim = Claim {
    slots: 1..usize::MAX,
    role: "sender",
    ever_bit: 2,
};

/// Messages the receiver takes from one shard before it looks at the
/// others: large enough that looking costs little per message, small
/// enough that a message in another shard waits for at most this many.
const BURST: u32 = 64;

fn spec<T: ShmSafe>(shards: u32) -> Spec {
    let mut spec = Spec::new(
        Flavor::Mpsc,
        ElemType::of::<T>(),
        shards + 1,
        size_of::<Shard>(),
    );
    spec.rings = shards;
    spec.sharded = true;
    spec.shared_control = size_of::<Shared>();
    spec
}

/// The shard count to create with.
fn shard_count(options: &Options) -> Result<u32, Error> {
    if (1..=Options::MAX_SHARDS).contains(&options.shards) {
        Ok(options.shards as u32)
    } else {
        Err(Error::InvalidCapacity {
            requested: options.shards,
            reason: "an mpsc channel has 1 to 1024 shards (Options::shards)",
        })
    }
}

/// Creates a channel named `name` whose senders' rings hold `capacity`
/// messages each, with the default number of shards, and returns the
/// receiver and one sender.
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

/// A sending end of an mpsc channel, owning one shard.
///
/// Dropping it (or its process dying) gives the shard back; the receiver
/// still gets what was sent. The channel is disconnected once every sender
/// that attached is gone and everything sent was received.
pub struct Sender<T: ShmSafe> {
    inner: RingSender<T>,
}

/// The receiving end of an mpsc channel.
///
/// One may be attached at a time. Dropping it (or its process dying)
/// disconnects the channel: sends fail from then on.
pub struct Receiver<T: ShmSafe> {
    /// One consumer per shard, in shard order.
    shards: Box<[Consumer<T>]>,
    /// Each shard's `not_full` doorbell, in shard order.
    not_full: Box<[NonNull<Doorbell>]>,
    shared: NonNull<Shared>,
    link: Link,
    /// The shard the current burst takes from, and what is left of it.
    current: Cell<usize>,
    burst_left: Cell<u32>,
}

// SAFETY: as for the spsc endpoints: the process-local state (`Cell`s, the
// mapping) moves with the endpoint; shared memory is accessed through
// atomics and the ring protocol only. Not `Sync`: each is one end of its
// rings, and the `Cell`s are that end's private copies.
unsafe impl<T: ShmSafe> Send for Sender<T> {}
// SAFETY: as for `Sender`.
unsafe impl<T: ShmSafe> Send for Receiver<T> {}

impl<T: ShmSafe> Sender<T> {
    /// Creates a channel named `name` whose senders' rings hold `capacity`
    /// messages each, with only this sender attached.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::InvalidCapacity`] (a capacity of 0
    /// or too large, or a shard count outside 1 to 1024),
    /// [`Error::AlreadyExists`] if a live channel has that name (a stale one
    /// is replaced), [`Error::Io`].
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, &Options::new().capacity(capacity))
    }

    /// [`create`](Self::create) with [`Options`].
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create).
    pub fn create_with(name: &str, options: &Options) -> Result<Self, Error> {
        let segment = create_segment::<T>(name, options, &ANY_SHARD)?;
        Self::from_segment(segment, options)
    }

    /// Attaches to the existing channel `name` as a new sender, taking a
    /// free shard.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Busy`] if every
    /// shard is held by a live sender, [`Error::Incompatible`] if the
    /// channel is not an mpsc channel of `T`, [`Error::Corrupt`],
    /// [`Error::Io`].
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// [`open`](Self::open) with [`Options`] (only the spin time applies).
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    pub fn open_with(name: &str, options: &Options) -> Result<Self, Error> {
        Self::from_segment(Segment::open(name, &spec::<T>(0), &ANY_SHARD)?, options)
    }

    /// Attaches another sender to the same channel, taking a free shard of
    /// its own. (Not `Clone`: this can fail.)
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] if every shard is held, [`Error::Io`] if the system
    /// refuses another mapping.
    pub fn try_clone(&self) -> Result<Self, Error> {
        let segment = self.inner.link.segment.try_clone(&ANY_SHARD)?;
        Self::from_segment(segment, &Options::new().spin(self.inner.link.spin))
    }

    fn from_segment(segment: Segment, options: &Options) -> Result<Self, Error> {
        let shard = segment
            .slot()
            .and_then(|slot| slot.checked_sub(1))
            .filter(|&shard| shard < segment.rings())
            .expect("a sender's slot is one of the shards'");
        // SAFETY: `Shard` is `repr(C)` with `Indices` first; the segment is
        // of `T`; we hold this shard's sender role; the producer moves into
        // the same endpoint as the mapping, inside `RingSender`.
        let producer = unsafe { attach_ring(&segment, shard, Producer::attach)? };
        let control = segment.ring(shard).0.cast::<Shard>();
        let shared = segment.shared().cast::<Shared>();
        let link = Link::new(segment, options, &RECEIVER)?;
        // SAFETY: the producer and both doorbells lie in `link`'s mapping;
        // this shard's `not_full` is its sender's alone.
        let inner = unsafe {
            RingSender::new(
                producer,
                NonNull::from(&*shared.as_ref().not_empty),
                NonNull::from(&*control.as_ref().not_full),
                link,
            )
        };
        Ok(Self { inner })
    }

    /// Sends `value` if there is room in this sender's ring, without
    /// blocking.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the ring is full,
    /// [`TrySendError::Disconnected`] if the receiver is gone. Either way the
    /// message is handed back.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.inner.try_send(value)
    }

    /// Sends `value`, waiting while this sender's ring is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message if the receiver is gone, detached or
    /// dead (a dead receiver is noticed within a second).
    #[inline]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.inner.send(value)
    }

    /// Sends `value`, waiting at most `timeout` while the ring is full.
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

    /// Sends all of `values`, in order, waiting while the ring is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] holding how many were sent (and will be received) if
    /// the receiver is gone before all were.
    pub fn send_batch(&self, values: &[T]) -> Result<(), SendError<usize>> {
        self.inner.send_batch(values)
    }

    /// Messages this sender's ring holds (the requested capacity, rounded
    /// up to a power of two).
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Messages of this sender waiting now (a hint: the receiver may take
    /// some at any moment).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether none of this sender's messages is waiting now (a hint).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this sender's ring is full now (a hint).
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Shards in the channel: the most senders attached at once.
    pub fn shards(&self) -> usize {
        self.inner.link.segment.rings()
    }

    /// The channel's name, as given when creating or opening it.
    pub fn name(&self) -> &str {
        self.inner.link.segment.name()
    }

    /// The whole channel's counters, summed over the shards.
    pub fn stats(&self) -> Stats {
        stats(&self.inner.link, self.capacity())
    }
}

impl<T: ShmSafe> Receiver<T> {
    /// Creates a channel named `name` whose senders' rings hold `capacity`
    /// messages each, with only the receiver attached.
    /// [`recv`](Self::recv) waits until a sender attaches and sends.
    ///
    /// # Errors
    ///
    /// As for [`Sender::create`].
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, &Options::new().capacity(capacity))
    }

    /// [`create`](Self::create) with [`Options`] (capacity per sender,
    /// number of shards, mode, spin time).
    ///
    /// # Errors
    ///
    /// As for [`Sender::create`].
    pub fn create_with(name: &str, options: &Options) -> Result<Self, Error> {
        let segment = create_segment::<T>(name, options, &RECEIVER)?;
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
        Self::from_segment(Segment::open(name, &spec::<T>(0), &RECEIVER)?, options)
    }

    fn from_segment(segment: Segment, options: &Options) -> Result<Self, Error> {
        let count = segment.rings();
        let mut shards = Vec::with_capacity(count);
        let mut not_full = Vec::with_capacity(count);
        for shard in 0..count {
            // SAFETY: as in `Sender::from_segment`, for the receiver's role,
            // which is the consuming end of every shard.
            shards.push(unsafe { attach_ring(&segment, shard, Consumer::attach)? });
            let control = segment.ring(shard).0.cast::<Shard>();
            // SAFETY: the control block lies in the mapping, which lives in
            // the receiver as long as these pointers.
            not_full.push(NonNull::from(unsafe { &*control.as_ref().not_full }));
        }
        let shared = segment.shared().cast::<Shared>();
        let senders = Claim {
            slots: 1..1 + count,
            ..ANY_SHARD
        };
        let link = Link::new(segment, options, &senders)?;
        let receiver = Self {
            shards: shards.into(),
            not_full: not_full.into(),
            shared,
            link,
            current: Cell::new(0),
            burst_left: Cell::new(0),
        };
        // Only the receiver sleeps on `not_empty`; a predecessor killed in
        // its sleep may have left its count behind.
        receiver.not_empty().forget_sleepers();
        Ok(receiver)
    }

    fn not_empty(&self) -> &Doorbell {
        // SAFETY: the shared block lies in the mapping `self.link` owns.
        unsafe { &self.shared.as_ref().not_empty }
    }

    /// Receives a message if one is waiting, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is waiting,
    /// [`TryRecvError::Disconnected`] if none is waiting and every sender
    /// that attached is gone (detached, or its process dead).
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.pop() {
            Err(TryRecvError::Empty) if self.link.peer_gone_or_dead() => self.pop(),
            result => result,
        }
    }

    /// Receives a message, waiting until one arrives.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once every shard is empty and every sender that
    /// attached is gone: detached, or its process dead (noticed within a
    /// second). Before any sender has attached, it waits.
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        match self.take() {
            Ok(Some(value)) => Ok(value),
            _ => self.recv_until(None).map_err(|_| RecvError),
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
            Ok(Some(value)) => Ok(value),
            _ => self.recv_until(Instant::now().checked_add(timeout)),
        }
    }

    #[inline(never)]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.link
            .recv_until(self.not_empty(), deadline, || self.pop())
    }

    /// A message if one is waiting, or what to report: `try_recv` without
    /// the liveness probe, for polling loops.
    fn pop(&self) -> Result<T, TryRecvError> {
        match self.take() {
            Ok(Some(value)) => Ok(value),
            Ok(None) if self.link.peer_gone() => {
                // Every sender is gone: one more look, as in spsc, so that
                // what they published before going is still delivered.
                match self.take() {
                    Ok(Some(value)) => Ok(value),
                    Ok(None) => Err(TryRecvError::Disconnected),
                    Err(PopError::Corrupt | PopError::Empty) => Err(self.poisoned()),
                }
            }
            Ok(None) => Err(TryRecvError::Empty),
            Err(_) => Err(self.poisoned()),
        }
    }

    /// The next message in turn: from the current shard while its burst
    /// lasts, otherwise from the next shard after it that has one.
    #[inline]
    fn take(&self) -> Result<Option<T>, PopError> {
        if self.link.is_poisoned() {
            return Err(PopError::Corrupt);
        }
        let current = self.current.get();
        let left = self.burst_left.get();
        if left > 0 {
            if let Some(value) = self.take_from(current)? {
                self.burst_left.set(left - 1);
                return Ok(Some(value));
            }
        }
        self.take_next(current)
    }

    /// Looks at every shard after `current`, in turn, ending with `current`.
    #[inline(never)]
    fn take_next(&self, current: usize) -> Result<Option<T>, PopError> {
        let count = self.shards.len();
        let mut shard = current;
        for _ in 0..count {
            shard += 1;
            if shard == count {
                shard = 0;
            }
            if let Some(value) = self.take_from(shard)? {
                self.current.set(shard);
                self.burst_left.set(BURST - 1);
                return Ok(Some(value));
            }
        }
        self.burst_left.set(0);
        Ok(None)
    }

    #[inline]
    fn take_from(&self, shard: usize) -> Result<Option<T>, PopError> {
        // `shard` is below `shards.len()`, which is the length of both.
        match self.shards[shard].pop() {
            Ok(value) => {
                self.bell(shard).notify(self.link.barrier);
                Ok(Some(value))
            }
            Err(PopError::Empty) => Ok(None),
            Err(PopError::Corrupt) => Err(PopError::Corrupt),
        }
    }

    fn bell(&self, shard: usize) -> &Doorbell {
        // SAFETY: each points into the mapping `self.link` owns.
        unsafe { self.not_full[shard].as_ref() }
    }

    /// A shard's ring was found corrupt: the receiver stops for good.
    #[cold]
    fn poisoned(&self) -> TryRecvError {
        self.link.poison();
        TryRecvError::Disconnected
    }

    /// Receives as many waiting messages as fit in `out`, taking from the
    /// shards in turn (each shard's in order, one release per shard),
    /// without blocking. Returns how many (at least 1, or 0 if `out` is
    /// empty).
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

    /// Receives as many waiting messages as fit in `out`, taking from the
    /// shards in turn, waiting until at least one is there. Returns how
    /// many (at least 1, or 0 if `out` is empty).
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
            .recv_until(self.not_empty(), None, attempt)
            .map_err(|_| RecvError)
    }

    fn pop_batch(&self, out: &mut [T]) -> Result<usize, TryRecvError> {
        if out.is_empty() {
            return Ok(0);
        }
        match self.take_batch(out) {
            Ok(0) if self.link.peer_gone() => match self.take_batch(out) {
                Ok(0) => Err(TryRecvError::Disconnected),
                result => result,
            },
            Ok(0) => Err(TryRecvError::Empty),
            result => result,
        }
    }

    /// One pass over the shards, starting after the current one, taking
    /// from each as many as are ready and fit.
    fn take_batch(&self, out: &mut [T]) -> Result<usize, TryRecvError> {
        if self.link.is_poisoned() {
            return Err(TryRecvError::Disconnected);
        }
        let count = self.shards.len();
        let mut shard = self.current.get();
        let mut filled = 0;
        for _ in 0..count {
            shard += 1;
            if shard == count {
                shard = 0;
            }
            match self.shards[shard].pop_into(&mut out[filled..]) {
                Ok(0) => {}
                Ok(taken) => {
                    self.bell(shard).notify(self.link.barrier);
                    filled += taken;
                    self.current.set(shard);
                    self.burst_left.set(0);
                    if filled == out.len() {
                        break;
                    }
                }
                Err(_) => return Err(self.poisoned()),
            }
        }
        Ok(filled)
    }

    /// A blocking iterator: yields messages until every shard is empty and
    /// every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator: yields the messages waiting now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Messages each sender's ring holds.
    pub fn capacity(&self) -> usize {
        self.shards[0].ring().capacity() as usize
    }

    /// Messages waiting now, in all shards (a hint).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.ring().len().unwrap_or(0) as usize)
            .sum()
    }

    /// Whether no message is waiting now (a hint).
    pub fn is_empty(&self) -> bool {
        self.shards
            .iter()
            .all(|shard| shard.ring().len().unwrap_or(0) == 0)
    }

    /// Whether some sender's ring is full now, so that its sends wait (a
    /// hint).
    pub fn is_full(&self) -> bool {
        self.shards
            .iter()
            .any(|shard| shard.ring().len().unwrap_or(0) == shard.ring().capacity())
    }

    /// Shards in the channel: the most senders attached at once.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The channel's name, as given when creating or opening it.
    pub fn name(&self) -> &str {
        self.link.segment.name()
    }

    /// The channel's counters, summed over the shards.
    pub fn stats(&self) -> Stats {
        stats(&self.link, self.capacity())
    }
}

/// Creates the segment with the options' capacity, shards and mode.
fn create_segment<T: ShmSafe>(
    name: &str,
    options: &Options,
    claim: &Claim,
) -> Result<Segment, Error> {
    let capacity = options.ring_capacity()?;
    let shards = shard_count(options)?;
    Link::create_segment(name, &spec::<T>(shards), capacity, options, claim)
}

/// The channel's counters: each shard's, summed (the high-water mark is the
/// highest shard's).
fn stats(link: &Link, capacity: usize) -> Stats {
    let segment = &link.segment;
    let mut stats = Stats {
        sent: 0,
        received: 0,
        len: 0,
        capacity: capacity as u64,
        high_water: 0,
        full: 0,
        endpoints: link.endpoints(|i| if i == 0 { "receiver" } else { "sender" }),
    };
    for shard in 0..segment.rings() {
        // SAFETY: each shard's control block lies in the mapping, with
        // `Indices` first; only atomics are read.
        let indices = unsafe { segment.ring(shard).0.cast::<Indices>().as_ref() };
        let snapshot = indices.snapshot();
        stats.sent = stats.sent.wrapping_add(snapshot.tail);
        stats.received = stats.received.wrapping_add(snapshot.head);
        // A racy reading; a scribbled one counts as nothing queued.
        let queued = snapshot.tail.wrapping_sub(snapshot.head);
        if queued <= capacity as u64 {
            stats.len += queued;
        }
        stats.high_water = stats.high_water.max(snapshot.high_water);
        stats.full = stats.full.wrapping_add(snapshot.refusals);
    }
    stats
}

impl<T: ShmSafe> core::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sender")
            .field("name", &self.name())
            .field("type", &T::NAME)
            .field("capacity", &self.capacity())
            .field("shards", &self.shards())
            .finish_non_exhaustive()
    }
}

impl<T: ShmSafe> core::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name())
            .field("type", &T::NAME)
            .field("capacity", &self.capacity())
            .field("shards", &self.shards())
            .finish_non_exhaustive()
    }
}

impl<T: ShmSafe> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.link.segment.detach();
        // Wake every sender asleep on a full ring to see us gone.
        for shard in 0..self.shards.len() {
            self.bell(shard).ring();
        }
        self.not_empty().mark_left();
        self.not_empty().ring();
    }
}

crate::iter::receiver_iterators!();
