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
//! [`Options::shards`]: crate::Options::shards
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

use crate::endpoint::rule::{End, Miss, Pop};
use crate::ring::spsc::{Consumer, PopError};
use crate::ring::Indices;
use crate::spsc::RingTx;
use crate::wait::{Barrier, Doorbell};
use crate::ShmSafe;
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;

#[cfg(not(loom))]
pub use self::api::*;

/// The mpsc flavor carrying messages of type `T`: what [`Sender`] and
/// [`Receiver`] are made of.
pub struct Mpsc<T>(PhantomData<fn() -> T>);

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

#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::size_of::<Shard>(), 384);
#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::size_of::<Shared>(), 128);

/// Messages the receiver takes from one shard before it looks at the
/// others: large enough that looking costs little per message, small
/// enough that a message in another shard waits for at most this many.
const BURST: u32 = 64;

/// The receiving end: the consuming end of every shard.
pub struct ShardsRx<T> {
    /// One consumer per shard, in shard order.
    shards: Box<[Consumer<T>]>,
    /// Each shard's `not_full` doorbell, in shard order.
    not_full: Box<[NonNull<Doorbell>]>,
    /// Where the receiver sleeps; every sender rings it.
    not_empty: NonNull<Doorbell>,
    barrier: Barrier,
    /// The shard the current burst takes from, and what is left of it.
    current: Cell<usize>,
    burst_left: Cell<u32>,
}

// SAFETY: as for `spsc::RingRx`: the process-local state moves with the
// end; shared memory is reached through atomics and the ring protocol only;
// messages move across threads as `T: Send` allows. Not `Sync`: the
// `Cell`s are this one consumer's private copies.
unsafe impl<T: Send> Send for ShardsRx<T> {}

impl<T: ShmSafe> ShardsRx<T> {
    /// The receiving end over `shards` (one consumer each) and their
    /// `not_full` doorbells, sleeping on `not_empty`: for the loom models.
    ///
    /// # Safety
    ///
    /// The consumers' rings and the doorbells must outlive the end, and it
    /// must be the only consumer of each ring.
    #[cfg(loom)]
    pub(crate) unsafe fn over(
        shards: Vec<Consumer<T>>,
        not_full: &[Doorbell],
        not_empty: &Doorbell,
    ) -> Self {
        Self {
            shards: shards.into(),
            not_full: not_full.iter().map(NonNull::from).collect(),
            not_empty: NonNull::from(not_empty),
            barrier: Barrier::fence(),
            current: Cell::new(0),
            burst_left: Cell::new(0),
        }
    }

    fn not_empty(&self) -> &Doorbell {
        // SAFETY: it lies in the mapping the attachment keeps alive.
        unsafe { self.not_empty.as_ref() }
    }

    fn bell(&self, shard: usize) -> &Doorbell {
        // SAFETY: each points into the mapping the attachment keeps alive.
        unsafe { self.not_full[shard].as_ref() }
    }

    /// The next message in turn: from the current shard while its burst
    /// lasts, otherwise from the next shard after it that has one. `pop`
    /// takes it from a shard.
    #[inline]
    fn take<R>(
        &self,
        mut pop: impl FnMut(&Consumer<T>) -> Result<R, PopError>,
    ) -> Result<Option<R>, PopError> {
        let current = self.current.get();
        let left = self.burst_left.get();
        if left > 0 {
            if let Some(value) = self.take_from(current, &mut pop)? {
                self.burst_left.set(left - 1);
                return Ok(Some(value));
            }
        }
        self.take_next(current, pop)
    }

    /// Looks at every shard after `current`, in turn, ending with `current`.
    #[inline(never)]
    fn take_next<R>(
        &self,
        current: usize,
        mut pop: impl FnMut(&Consumer<T>) -> Result<R, PopError>,
    ) -> Result<Option<R>, PopError> {
        let count = self.shards.len();
        let mut shard = current;
        for _ in 0..count {
            shard += 1;
            if shard == count {
                shard = 0;
            }
            if let Some(value) = self.take_from(shard, &mut pop)? {
                self.current.set(shard);
                self.burst_left.set(BURST - 1);
                return Ok(Some(value));
            }
        }
        self.burst_left.set(0);
        Ok(None)
    }

    #[inline]
    fn take_from<R>(
        &self,
        shard: usize,
        pop: &mut impl FnMut(&Consumer<T>) -> Result<R, PopError>,
    ) -> Result<Option<R>, PopError> {
        // `shard` is below `shards.len()`, which is the length of both.
        match pop(&self.shards[shard]) {
            Ok(value) => {
                self.bell(shard).notify(self.barrier);
                Ok(Some(value))
            }
            Err(PopError::Empty) => Ok(None),
            Err(PopError::Corrupt) => Err(PopError::Corrupt),
        }
    }

    /// As [`Pop::pop`], into the bytes `out` (see [`Consumer::pop_bytes`]).
    pub(crate) fn pop_bytes(&self, out: &mut [u8]) -> Result<(), Miss<()>> {
        match self.take(|shard| shard.pop_bytes(out)) {
            Ok(Some(())) => Ok(()),
            Ok(None) => Err(Miss::Edge(())),
            Err(_) => Err(Miss::Corrupt),
        }
    }
}

impl<T: ShmSafe> End for ShardsRx<T> {
    type Hint = ();

    fn bell(&self) -> &Doorbell {
        self.not_empty()
    }

    /// Slot 0 is the receiver's; slot `1 + i` is shard `i`'s sender's.
    fn take_over(&self, slot: usize, _died: bool) {
        match slot.checked_sub(1) {
            None => self.not_empty().forget_sleepers(),
            Some(shard) if shard < self.shards.len() => self.bell(shard).forget_sleepers(),
            Some(_) => {}
        }
    }

    fn wake_all(&self) {
        for shard in 0..self.shards.len() {
            self.bell(shard).ring();
        }
        self.not_empty().ring();
    }

    /// Messages each sender's ring holds.
    fn capacity(&self) -> usize {
        self.shards[0].ring().capacity() as usize
    }

    /// Messages waiting in all shards.
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.ring().len().unwrap_or(0) as usize)
            .sum()
    }

    /// Whether some sender's ring is full, so that its sends wait.
    fn is_full(&self) -> bool {
        self.shards
            .iter()
            .any(|shard| shard.ring().len().unwrap_or(0) >= shard.ring().capacity())
    }

    fn ready(&self) -> bool {
        // A corrupt ring is ready: the receive fails at once.
        self.shards
            .iter()
            .any(|shard| shard.ring().len().map_or(true, |len| len > 0))
    }
}

impl<T: ShmSafe> Pop<T> for ShardsRx<T> {
    #[inline]
    fn pop(&self) -> Result<T, Miss<()>> {
        match self.take(Consumer::pop) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(Miss::Edge(())),
            Err(_) => Err(Miss::Corrupt),
        }
    }

    /// One pass over the shards, starting after the current one, taking
    /// from each as many as are ready and fit (one release per shard).
    fn pop_into(&self, out: &mut [T]) -> Result<usize, Miss<()>> {
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
                    self.bell(shard).notify(self.barrier);
                    filled += taken;
                    self.current.set(shard);
                    self.burst_left.set(0);
                    if filled == out.len() {
                        break;
                    }
                }
                Err(_) => return Err(Miss::Corrupt),
            }
        }
        if filled == 0 {
            Err(Miss::Edge(()))
        } else {
            Ok(filled)
        }
    }
}

#[cfg(not(loom))]
mod api {
    use super::*;
    use crate::endpoint::rule::Counts;
    use crate::endpoint::{self, Attached, Own};
    use crate::segment::{ElemType, Flavor as Kind, Segment, Spec};
    use crate::spsc::{ring_at, ring_counts};
    use crate::{Error, Options};

    /// A sending end of an mpsc channel, owning one shard.
    pub type Sender<T> = endpoint::Sender<Mpsc<T>>;
    /// The receiving end of an mpsc channel: one may be attached at a time.
    pub type Receiver<T> = endpoint::Receiver<Mpsc<T>>;
    /// A blocking iterator over a [`Receiver`]'s messages.
    pub type Iter<'a, T> = endpoint::Iter<'a, Mpsc<T>>;
    /// A non-blocking iterator over a [`Receiver`]'s messages.
    pub type TryIter<'a, T> = endpoint::TryIter<'a, Mpsc<T>>;
    /// An owning blocking iterator over a [`Receiver`]'s messages.
    pub type IntoIter<T> = endpoint::IntoIter<Mpsc<T>>;

    /// Creates a channel named `name` whose senders' rings hold `capacity`
    /// messages each, with the default number of shards, and returns the
    /// receiver and one sender.
    ///
    /// # Errors
    ///
    /// As for [`Receiver::create`] and [`Sender::open`].
    pub fn channel<T: ShmSafe>(
        name: &str,
        capacity: usize,
    ) -> Result<(Sender<T>, Receiver<T>), Error> {
        channel_with(name, &Options::new().capacity(capacity))
    }

    /// [`channel`] with [`Options`] (capacity per sender, number of shards,
    /// mode, spin time).
    ///
    /// # Errors
    ///
    /// As for [`Receiver::create`] and [`Sender::open`], and
    /// [`Error::InvalidCapacity`] for a shard count outside 1 to 1024.
    pub fn channel_with<T: ShmSafe>(
        name: &str,
        options: &Options,
    ) -> Result<(Sender<T>, Receiver<T>), Error> {
        endpoint::channel(name, options)
    }

    impl<T: ShmSafe> Sender<T> {
        /// Attaches another sender to the same channel, taking a free shard
        /// of its own (and a lock of its own: it is a separate holder). Not
        /// `Clone`: this can fail.
        ///
        /// # Errors
        ///
        /// [`Error::Busy`] if every shard is held, [`Error::Forked`] if this
        /// sender was inherited through `fork`, [`Error::Io`] if the system
        /// refuses another mapping.
        pub fn try_clone(&self) -> Result<Self, Error> {
            let attached = self
                .attached()
                .try_clone(<Mpsc<T> as endpoint::Flavor>::attach_tx)?;
            Ok(Self::from_attached(attached))
        }

        /// Shards in the channel: the most senders attached at once.
        pub fn shards(&self) -> usize {
            self.attached().segment().rings()
        }
    }

    impl<T: ShmSafe> Receiver<T> {
        /// Shards in the channel: the most senders attached at once.
        pub fn shards(&self) -> usize {
            self.attached().segment().rings()
        }
    }

    impl<T> endpoint::Sealed for Mpsc<T> {}

    impl<T: ShmSafe> endpoint::Flavor for Mpsc<T> {
        type Tx = RingTx<T>;
        type Rx = ShardsRx<T>;
        type TxHold = Own<Attached<RingTx<T>>>;
        type RxHold = Own<Attached<ShardsRx<T>>>;
        const MODULE: &'static str = "shmchan::mpsc";

        fn type_name() -> &'static str {
            T::NAME
        }

        /// An opener takes the shard count from the header.
        fn spec(options: &Options, create: bool) -> Result<(Spec, u64), Error> {
            if !create {
                return Ok((shape(ElemType::of::<T>(), 0), 0));
            }
            let shards = shard_count(options)?;
            Ok((shape(ElemType::of::<T>(), shards), options.ring_capacity()?))
        }

        fn attach_tx(segment: &Segment, barrier: Barrier) -> Result<RingTx<T>, Error> {
            let shard = segment
                .slot()
                .checked_sub(1)
                .filter(|&shard| shard < segment.rings())
                .expect("a sender's slot is one of the shards'");
            let (control, slots) = segment.ring(shard);
            // SAFETY: the validated layout holds a `Shard` (with `Indices`
            // first) and `capacity` slots of `T` there; the mapping
            // outlives the end, which lives in the same attachment.
            let (ring, control) = unsafe {
                (
                    ring_at::<T>(control, slots, segment.header_capacity())
                        .with_stride(segment.elem_size()),
                    control.cast::<Shard>().as_ref(),
                )
            };
            // SAFETY: we hold this shard's sender slot: no other producer.
            let producer = unsafe { crate::ring::spsc::Producer::attach(ring) }.map_err(|_| {
                segment.corrupt(&format!("ring {shard}'s positions contradict each other"))
            })?;
            // SAFETY: the shared block lies in the mapping.
            let shared = unsafe { segment.shared().cast::<Shared>().as_ref() };
            // SAFETY: both doorbells lie in the mapping, which outlives the
            // end; this shard's `not_full` is its sender's alone.
            Ok(unsafe {
                RingTx::new(
                    producer,
                    &shared.not_empty,
                    &control.not_full,
                    barrier,
                    segment.slot(),
                )
            })
        }

        fn counts(segment: &Segment) -> Counts {
            channel_counts(segment)
        }

        fn attach_rx(segment: &Segment, barrier: Barrier) -> Result<ShardsRx<T>, Error> {
            let count = segment.rings();
            let mut shards = Vec::with_capacity(count);
            let mut not_full = Vec::with_capacity(count);
            for shard in 0..count {
                let (control, slots) = segment.ring(shard);
                // SAFETY: as in `attach_tx`, for each shard.
                let ring = unsafe {
                    ring_at::<T>(control, slots, segment.header_capacity())
                        .with_stride(segment.elem_size())
                };
                // SAFETY: we hold the receiver's slot, the consuming end of
                // every shard.
                let consumer = unsafe { Consumer::attach(ring) }.map_err(|_| {
                    segment.corrupt(&format!("ring {shard}'s positions contradict each other"))
                })?;
                shards.push(consumer);
                // SAFETY: the control block lies in the mapping.
                not_full.push(NonNull::from(unsafe {
                    &*control.cast::<Shard>().as_ref().not_full
                }));
            }
            // SAFETY: the shared block lies in the mapping.
            let shared = unsafe { segment.shared().cast::<Shared>().as_ref() };
            Ok(ShardsRx {
                shards: shards.into(),
                not_full: not_full.into(),
                not_empty: NonNull::from(&*shared.not_empty),
                barrier,
                current: Cell::new(0),
                burst_left: Cell::new(0),
            })
        }
    }

    impl<T: ShmSafe> endpoint::TypedSend for Mpsc<T> {
        type Msg = T;
    }

    impl<T: ShmSafe> endpoint::Typed for Mpsc<T> {}

    /// The shape of an mpsc segment of messages `elem` with `shards` rings:
    /// slot 0 is the receiver's, slots 1 to the shard count the senders'.
    pub(crate) fn shape(elem: ElemType, shards: u32) -> Spec {
        let mut spec = Spec::new(Kind::Mpsc, elem, core::mem::size_of::<Shard>());
        spec.rings = shards;
        spec.endpoints = shards + 1;
        spec.sharded = true;
        spec.shared_control = core::mem::size_of::<Shared>();
        spec.slots = |rings, _| [0..1, 1..1 + rings];
        spec
    }

    /// Each shard's counters, summed (the high-water mark is the highest
    /// shard's), of any message type.
    pub(crate) fn channel_counts(segment: &Segment) -> Counts {
        let capacity = segment.header_capacity();
        let mut counts = Counts {
            capacity,
            ..Counts::default()
        };
        for shard in 0..segment.rings() {
            let (control, _) = segment.ring(shard);
            // SAFETY: each shard's control block lies in the mapping, with
            // `Indices` first; only atomics are read.
            let indices = unsafe { control.cast::<Indices>().as_ref() };
            let ring = ring_counts(indices, capacity);
            counts.sent = counts.sent.wrapping_add(ring.sent);
            counts.received = counts.received.wrapping_add(ring.received);
            counts.len += ring.len;
            counts.high_water = counts.high_water.max(ring.high_water);
            counts.full = counts.full.wrapping_add(ring.full);
        }
        counts
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
}
