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

use crate::endpoint::rule::{Counts, End, Miss, Pop, Push};
use crate::ring::spsc::{Consumer, PopError, Producer, PushError, Ring};
use crate::ring::Indices;
use crate::wait::{Barrier, Doorbell};
use crate::ShmSafe;
use core::marker::PhantomData;
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;

#[cfg(not(loom))]
pub use self::api::*;

/// The spsc flavor carrying messages of type `T`: what [`Sender`] and
/// [`Receiver`] are made of.
pub struct Spsc<T>(PhantomData<fn() -> T>);

/// The flavor's control block at the start of its ring.
#[repr(C)]
struct Control {
    indices: Indices,
    /// The receiver sleeps here when the ring is empty.
    not_empty: CachePadded<Doorbell>,
    /// The sender sleeps here when the ring is full.
    not_full: CachePadded<Doorbell>,
}

#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::size_of::<Control>(), 512);

/// How many sends pass between two liveness probes of a sender whose ring
/// never fills: a probe reads the clock, and is itself rate-limited to one
/// per liveness interval.
pub(crate) const PROBE_EVERY: u64 = 256;

/// The producing end of one Lamport ring with its doorbells: the spsc
/// sender, and each mpsc sender (whose shard is a ring of its own).
pub struct RingTx<T> {
    producer: Producer<T>,
    /// Rung after each publish; the receiver sleeps here.
    not_empty: NonNull<Doorbell>,
    /// Where this sender sleeps while its ring is full.
    not_full: NonNull<Doorbell>,
    barrier: Barrier,
    /// Our slot in the endpoint table: a dead predecessor's there is tidied
    /// on our own doorbell, any other (the receiver's) on the receiver's.
    slot: usize,
}

/// The consuming end of one Lamport ring with its doorbells (spsc).
pub struct RingRx<T> {
    consumer: Consumer<T>,
    /// Where this receiver sleeps while the ring is empty.
    not_empty: NonNull<Doorbell>,
    /// Rung after each release; the sender sleeps here.
    not_full: NonNull<Doorbell>,
    barrier: Barrier,
    slot: usize,
}

// SAFETY: the process-local state (the cursors' `Cell`s, the pointers into
// the mapping) moves with the end to another thread; the shared memory is
// reached only through atomics and the ring's protocol, which do not care
// which thread runs them, and messages of `T` move across threads as `T:
// Send` allows. Not `Sync`: the ring allows one producer and one consumer,
// and the `Cell`s are that one end's private copies.
unsafe impl<T: Send> Send for RingTx<T> {}
// SAFETY: as for `RingTx`.
unsafe impl<T: Send> Send for RingRx<T> {}

impl<T: ShmSafe> RingTx<T> {
    /// # Safety
    ///
    /// `producer` and both doorbells must lie in memory that outlives the
    /// end; only this end may sleep on `not_full`.
    pub(crate) unsafe fn new(
        producer: Producer<T>,
        not_empty: &Doorbell,
        not_full: &Doorbell,
        barrier: Barrier,
        slot: usize,
    ) -> Self {
        Self {
            producer,
            not_empty: NonNull::from(not_empty),
            not_full: NonNull::from(not_full),
            barrier,
            slot,
        }
    }

    #[inline]
    fn not_empty(&self) -> &Doorbell {
        // SAFETY: by `new`'s contract it outlives `self`.
        unsafe { self.not_empty.as_ref() }
    }

    #[inline]
    fn not_full(&self) -> &Doorbell {
        // SAFETY: as for `not_empty`.
        unsafe { self.not_full.as_ref() }
    }

    fn ring(&self) -> &Ring<T> {
        self.producer.ring()
    }
}

impl<T: ShmSafe> End for RingTx<T> {
    type Hint = ();

    fn bell(&self) -> &Doorbell {
        self.not_full()
    }

    fn take_over(&self, slot: usize, _died: bool) {
        if slot == self.slot {
            self.not_full().forget_sleepers();
        } else {
            self.not_empty().forget_sleepers();
        }
    }

    fn wake_all(&self) {
        self.not_empty().ring();
        self.not_full().ring();
    }

    /// Every [`PROBE_EVERY`]th position of the ring: a count that costs no
    /// store of its own (one kept per message cost measurably).
    #[inline(always)]
    fn probe_tick(&self) -> bool {
        self.producer.position() % PROBE_EVERY == 0
    }

    #[inline]
    fn worth_retrying(&self) -> bool {
        self.producer.has_room(self.producer.refill()) != Ok(false)
    }

    fn count_refusal(&self) {
        self.producer.count_refusal();
    }

    fn capacity(&self) -> usize {
        self.ring().capacity() as usize
    }

    fn len(&self) -> usize {
        self.ring().len().unwrap_or(0) as usize
    }

    fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    fn ready(&self) -> bool {
        // A corrupt ring is ready: the send fails at once.
        let ring = self.ring();
        ring.len().map_or(true, |len| len < ring.capacity())
    }
}

impl<T: ShmSafe> RingTx<T> {
    /// Rings the receiver after a push, or says why there was none.
    #[inline(always)]
    fn pushed(&self, result: Result<(), PushError>) -> Result<(), Miss<()>> {
        match result {
            Ok(()) => {
                self.not_empty().notify(self.barrier);
                Ok(())
            }
            Err(PushError::Full) => Err(Miss::Edge(())),
            Err(PushError::Corrupt) => Err(Miss::Corrupt),
        }
    }

    /// As [`Push::push`], for a message given as its bytes (see
    /// [`Producer::push_bytes`]).
    pub(crate) fn push_bytes(&self, message: &[u8]) -> Result<(), Miss<()>> {
        self.pushed(self.producer.push_bytes(message))
    }
}

impl<T: ShmSafe> Push<T> for RingTx<T> {
    #[inline(always)]
    fn push(&self, value: T) -> Result<(), Miss<()>> {
        self.pushed(self.producer.push(value))
    }

    fn push_slice(&self, values: &[T]) -> Result<usize, Miss<()>> {
        match self.producer.push_slice(values) {
            Ok(0) => Err(Miss::Edge(())),
            Ok(sent) => {
                self.not_empty().notify(self.barrier);
                Ok(sent)
            }
            Err(_) => Err(Miss::Corrupt),
        }
    }
}

impl<T: ShmSafe> RingRx<T> {
    /// # Safety
    ///
    /// `consumer` and both doorbells must lie in memory that outlives the
    /// end; only this end may sleep on `not_empty`.
    pub(crate) unsafe fn new(
        consumer: Consumer<T>,
        not_empty: &Doorbell,
        not_full: &Doorbell,
        barrier: Barrier,
        slot: usize,
    ) -> Self {
        Self {
            consumer,
            not_empty: NonNull::from(not_empty),
            not_full: NonNull::from(not_full),
            barrier,
            slot,
        }
    }

    #[inline]
    fn not_empty(&self) -> &Doorbell {
        // SAFETY: by `new`'s contract it outlives `self`.
        unsafe { self.not_empty.as_ref() }
    }

    #[inline]
    fn not_full(&self) -> &Doorbell {
        // SAFETY: as for `not_empty`.
        unsafe { self.not_full.as_ref() }
    }

    fn ring(&self) -> &Ring<T> {
        self.consumer.ring()
    }
}

impl<T: ShmSafe> End for RingRx<T> {
    type Hint = ();

    fn bell(&self) -> &Doorbell {
        self.not_empty()
    }

    fn take_over(&self, slot: usize, _died: bool) {
        if slot == self.slot {
            self.not_empty().forget_sleepers();
        } else {
            self.not_full().forget_sleepers();
        }
    }

    fn wake_all(&self) {
        self.not_empty().ring();
        self.not_full().ring();
    }

    fn capacity(&self) -> usize {
        self.ring().capacity() as usize
    }

    fn len(&self) -> usize {
        self.ring().len().unwrap_or(0) as usize
    }

    fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    fn ready(&self) -> bool {
        // A corrupt ring is ready: the receive fails at once.
        self.ring().len().map_or(true, |len| len > 0)
    }
}

impl<T: ShmSafe> RingRx<T> {
    /// Rings the sender after a pop, or says why there was none.
    #[inline(always)]
    fn popped<R>(&self, result: Result<R, PopError>) -> Result<R, Miss<()>> {
        match result {
            Ok(value) => {
                self.not_full().notify(self.barrier);
                Ok(value)
            }
            Err(PopError::Empty) => Err(Miss::Edge(())),
            Err(PopError::Corrupt) => Err(Miss::Corrupt),
        }
    }

    /// As [`Pop::pop`], into the bytes `out` (see [`Consumer::pop_bytes`]).
    pub(crate) fn pop_bytes(&self, out: &mut [u8]) -> Result<(), Miss<()>> {
        self.popped(self.consumer.pop_bytes(out))
    }
}

impl<T: ShmSafe> Pop<T> for RingRx<T> {
    #[inline(always)]
    fn pop(&self) -> Result<T, Miss<()>> {
        self.popped(self.consumer.pop())
    }

    fn pop_into(&self, out: &mut [T]) -> Result<usize, Miss<()>> {
        match self.consumer.pop_into(out) {
            Ok(0) => Err(Miss::Edge(())),
            Ok(received) => {
                self.not_full().notify(self.barrier);
                Ok(received)
            }
            Err(_) => Err(Miss::Corrupt),
        }
    }
}

/// A Lamport ring's counters, as `stats()` reports them, from its control
/// words and its capacity: no message type needed. A scribbled length
/// counts as nothing queued.
pub(crate) fn ring_counts(indices: &Indices, capacity: u64) -> Counts {
    let snapshot = indices.snapshot();
    let queued = snapshot.tail.wrapping_sub(snapshot.head);
    Counts {
        sent: snapshot.tail,
        received: snapshot.head,
        len: if queued <= capacity { queued } else { 0 },
        capacity,
        high_water: snapshot.high_water,
        full: snapshot.refusals,
    }
}

/// A ring of `T` over the ring `control` starts, `capacity` slots of `T`
/// after it: the view both ends attach to.
///
/// # Safety
///
/// `control` must be a block with [`Indices`] first, followed at `slots`
/// by `capacity` (a power of two) slots of `T`, all valid for as long as the
/// ring and the ends made from it.
pub(crate) unsafe fn ring_at<T: ShmSafe>(
    control: NonNull<u8>,
    slots: NonNull<u8>,
    capacity: u64,
) -> Ring<T> {
    // SAFETY: the caller's contract; `UnsafeCell<T>` is `repr(transparent)`.
    unsafe { Ring::new(control.cast(), slots.cast(), capacity) }
}

#[cfg(not(loom))]
mod api {
    use super::*;
    use crate::endpoint;
    use crate::segment::{ElemType, Flavor as Kind, Segment, Spec};
    use crate::{Error, Options};

    /// The sending end of an spsc channel: one may be attached at a time.
    pub type Sender<T> = endpoint::Sender<Spsc<T>>;
    /// The receiving end of an spsc channel: one may be attached at a time.
    pub type Receiver<T> = endpoint::Receiver<Spsc<T>>;
    /// A blocking iterator over a [`Receiver`]'s messages.
    pub type Iter<'a, T> = endpoint::Iter<'a, Spsc<T>>;
    /// A non-blocking iterator over a [`Receiver`]'s messages.
    pub type TryIter<'a, T> = endpoint::TryIter<'a, Spsc<T>>;
    /// An owning blocking iterator over a [`Receiver`]'s messages.
    pub type IntoIter<T> = endpoint::IntoIter<Spsc<T>>;

    /// Creates a channel named `name` holding `capacity` messages, and
    /// returns both ends.
    ///
    /// Either end can be sent to another thread; to use one in another
    /// process, create or open it there instead (see [`Sender::open`]).
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

    /// [`channel`] with [`Options`].
    ///
    /// # Errors
    ///
    /// As for [`Receiver::create`] and [`Sender::open`].
    pub fn channel_with<T: ShmSafe>(
        name: &str,
        options: &Options,
    ) -> Result<(Sender<T>, Receiver<T>), Error> {
        endpoint::channel(name, options)
    }

    impl<T> endpoint::Sealed for Spsc<T> {}

    impl<T: ShmSafe> endpoint::Flavor for Spsc<T> {
        type Tx = RingTx<T>;
        type Rx = RingRx<T>;
        type TxHold = endpoint::Own<endpoint::Attached<RingTx<T>>>;
        type RxHold = endpoint::Own<endpoint::Attached<RingRx<T>>>;
        const MODULE: &'static str = "shmchan::spsc";

        fn type_name() -> &'static str {
            T::NAME
        }

        fn spec(options: &Options, create: bool) -> Result<(Spec, u64), Error> {
            let capacity = if create { options.ring_capacity()? } else { 0 };
            Ok((shape(ElemType::of::<T>()), capacity))
        }

        fn attach_tx(segment: &Segment, barrier: Barrier) -> Result<RingTx<T>, Error> {
            let (ring, control) = parts::<T>(segment);
            // SAFETY: we hold the sender's slot: no other producer exists.
            let producer = unsafe { Producer::attach(ring) }
                .map_err(|_| segment.corrupt("ring 0's positions contradict each other"))?;
            // SAFETY: the doorbells lie in the mapping, which outlives the
            // end; `not_full` is the sender's alone.
            Ok(unsafe {
                RingTx::new(
                    producer,
                    &control.not_empty,
                    &control.not_full,
                    barrier,
                    segment.slot(),
                )
            })
        }

        fn counts(segment: &Segment) -> Counts {
            channel_counts(segment)
        }

        fn attach_rx(segment: &Segment, barrier: Barrier) -> Result<RingRx<T>, Error> {
            let (ring, control) = parts::<T>(segment);
            // SAFETY: we hold the receiver's slot: no other consumer exists.
            let consumer = unsafe { Consumer::attach(ring) }
                .map_err(|_| segment.corrupt("ring 0's positions contradict each other"))?;
            // SAFETY: as for the sender; `not_empty` is the receiver's alone.
            Ok(unsafe {
                RingRx::new(
                    consumer,
                    &control.not_empty,
                    &control.not_full,
                    barrier,
                    segment.slot(),
                )
            })
        }
    }

    impl<T: ShmSafe> endpoint::TypedSend for Spsc<T> {
        type Msg = T;
    }

    impl<T: ShmSafe> endpoint::Typed for Spsc<T> {}

    /// The shape of an spsc segment of messages `elem`.
    pub(crate) fn shape(elem: ElemType) -> Spec {
        Spec::new(Kind::Spsc, elem, core::mem::size_of::<Control>())
    }

    /// The counters of an spsc segment, of any message type.
    pub(crate) fn channel_counts(segment: &Segment) -> Counts {
        let (control, _) = segment.ring(0);
        // SAFETY: the validated layout holds a `Control`, `Indices` first,
        // there, in the mapping `segment` owns; only atomics are read.
        let indices = unsafe { control.cast::<Indices>().as_ref() };
        ring_counts(indices, segment.header_capacity())
    }

    /// The ring and the control block of `segment`'s only ring.
    fn parts<T: ShmSafe>(segment: &Segment) -> (Ring<T>, &Control) {
        let (control, slots) = segment.ring(0);
        // SAFETY: the validated layout holds a `Control` (with `Indices`
        // first) and `capacity` slots of `T` there; the mapping outlives
        // the end, which lives in the same attachment.
        unsafe {
            (
                ring_at(control, slots, segment.header_capacity()).with_stride(segment.elem_size()),
                control.cast::<Control>().as_ref(),
            )
        }
    }
}
