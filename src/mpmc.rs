//! Many senders, many receivers: Vyukov's bounded queue in shared memory.
//!
//! [`Sender`] and [`Receiver`] are both `Clone` and `Sync`: share them
//! between threads, or open the channel by name in as many processes as
//! needed (up to 64 attachments per side). Each message is received by
//! exactly one receiver; messages are received in the order their sends
//! claimed their places.
//!
//! ```
//! # let name = format!("doc-mpmc-{}", std::process::id());
//! let (tx, rx) = shmchan::mpmc::channel::<u64>(&name, 1024)?;
//! let workers: Vec<_> = (0..2)
//!     .map(|_| {
//!         let rx = rx.clone();
//!         std::thread::spawn(move || rx.iter().sum::<u64>())
//!     })
//!     .collect();
//! drop(rx);
//! for job in 1..=100 {
//!     tx.send(job).unwrap();
//! }
//! drop(tx); // the workers' iterators end once the queue is drained
//! let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
//! assert_eq!(total, 5050);
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! # When a process dies in the middle of a message
//!
//! A send claims a cell, writes it, and publishes it; a receive claims a
//! published cell, reads it, and frees it. Each claim names the claiming
//! endpoint's slot in the cell. If that process is killed between claim
//! and publish (or free), the cell would block everyone behind it. A
//! survivor blocked on it checks whether the named endpoint still holds its
//! slot's lock (at most every 100 ms) and, if not, takes the lock, frees
//! every cell the dead endpoint left claimed, and frees its slot: an
//! unpublished message is skipped (it was never sent), a message being read
//! is lost with its reader. An endpoint that takes over the dead one's slot
//! first does the same. So the survivors carry on within about 0.1–0.2 s;
//! no window is left unrecoverable.

pub use crate::error::{
    Error, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

use crate::endpoint::link::{probe_due, Link};
use crate::endpoint::roster::Side;
use crate::endpoint::rule::{End, Miss, Pop, Push};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::ring::mpmc::{PopError, Positions, PushError, Queue, Stuck};
use crate::wait::{Barrier, Doorbell};
use crate::ShmSafe;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU64 as LocalU64;
use crossbeam_utils::CachePadded;

#[cfg(not(loom))]
pub use self::api::*;

/// The mpmc flavor carrying messages of type `T`: what [`Sender`] and
/// [`Receiver`] are made of.
pub struct Mpmc<T>(PhantomData<fn() -> T>);

/// The flavor's control block at the start of its one ring.
#[repr(C)]
pub(crate) struct Control {
    positions: Positions,
    /// Receivers sleep here when the queue is empty.
    not_empty: CachePadded<Doorbell>,
    /// Senders sleep here when the queue is full.
    not_full: CachePadded<Doorbell>,
    counters: CachePadded<Counters>,
    /// Each endpoint's sleepers, by slot (see `wait::block_on`).
    tallies: [AtomicU32; SLOTS],
}

/// Statistics words every endpoint may write (rarely: on refusals, and
/// once per few hundred sends). All their accesses are `Relaxed`: they are
/// counts for people, ordered with nothing.
#[repr(C)]
#[derive(Debug, Default)]
struct Counters {
    refusals: AtomicU64,
    high_water: AtomicU64,
}

/// Endpoint slots: senders in the first half, receivers in the second.
pub(crate) const SLOTS: usize = 128;

#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::size_of::<Control>(), 256 + 3 * 128 + 4 * SLOTS);
#[cfg(not(loom))]
static_assertions::const_assert!(SLOTS <= crate::ring::mpmc::MAX_CLAIMERS);

/// Sends (or receives) of one thread between two looks at the other side's
/// liveness (see [`End::probe_tick`]).
const PROBE_EVERY: u32 = 256;

/// One attachment's end of the queue, as a sender or as a receiver; shared
/// by the attachment's clones and their threads.
pub struct QueueEnd<T> {
    queue: Queue<T>,
    control: NonNull<Control>,
    /// Our slot in the endpoint table, which our claims name.
    who: u8,
    side: Side,
    /// The first receiver's slot: slots below are senders' (64 in a
    /// segment; fewer in the loom models, whose tables are small).
    receivers_from: usize,
    barrier: Barrier,
    /// When a stuck cell's claimer was last checked for life.
    last_rescue: LocalU64,
}

// SAFETY: the end's own state is atomics and pointers into a mapping that
// the attachment keeps alive; the queue's memory is reached only through
// its atomics and claims, whose protocol admits any number of threads in
// any number of processes; messages cross threads as `T: Send` allows.
unsafe impl<T: Send> Send for QueueEnd<T> {}
// SAFETY: as for `Send`: every method takes `&self` and the protocol is
// multi-producer, multi-consumer.
unsafe impl<T: Send> Sync for QueueEnd<T> {}

impl<T: ShmSafe> QueueEnd<T> {
    /// # Safety
    ///
    /// `control` must be the queue's control block, valid (like the queue's
    /// cells) for as long as the end; `who` must be the slot we hold.
    pub(crate) unsafe fn new(
        queue: Queue<T>,
        control: NonNull<Control>,
        who: u8,
        side: Side,
        receivers_from: usize,
        barrier: Barrier,
    ) -> Self {
        Self {
            queue,
            control,
            who,
            side,
            receivers_from,
            barrier,
            last_rescue: LocalU64::new(0),
        }
    }

    fn control(&self) -> &Control {
        // SAFETY: by `new`'s contract it outlives `self`.
        unsafe { self.control.as_ref() }
    }

    /// The doorbell the endpoint in `slot` sleeps on: receivers on
    /// `not_empty`, senders on `not_full`.
    fn bell_of(&self, slot: usize) -> &Doorbell {
        if slot < self.receivers_from {
            &self.control().not_full
        } else {
            &self.control().not_empty
        }
    }

    /// Cells were freed: wake everyone, who may be waiting behind them.
    fn freed(&self) {
        self.control().not_empty.ring();
        self.control().not_full.ring();
    }

    /// Claims the next free cell and leaves it claimed, as a producer
    /// killed between claim and publish does: for the loom models.
    #[cfg(loom)]
    pub(crate) fn claim_only(&self) {
        self.queue.claim_free(self.who).expect("a free cell");
    }

    /// Samples the queue's length into the high-water mark (statistics).
    fn sample_high_water(&self) {
        // Relaxed: statistics (see `Counters`).
        self.control()
            .counters
            .high_water
            .fetch_max(self.queue.len(), Ordering::Relaxed);
    }
}

impl<T: ShmSafe> End for QueueEnd<T> {
    type Hint = Option<Stuck>;

    fn bell(&self) -> &Doorbell {
        self.bell_of(usize::from(self.who))
    }

    fn tally(&self) -> Option<&AtomicU32> {
        self.control().tallies.get(usize::from(self.who))
    }

    /// A cell claimed by `stuck.who` for a while: if that endpoint is dead,
    /// reap it (which frees all its claims). If its slot is vacant, nobody
    /// can finish the claim: free this cell, under the slot's lock so that
    /// no new holder is claiming meanwhile.
    fn rescue(&self, link: &Link, hint: Option<Stuck>, now: bool) -> bool {
        let Some(stuck) = hint else {
            return false;
        };
        if stuck.who == usize::from(self.who) || !(now || probe_due(&self.last_rescue)) {
            return false;
        }
        let vacant = link
            .table()
            .get(stuck.who)
            .is_some_and(|slot| slot.word() == 0);
        let freed = if vacant {
            let mut freed = false;
            link.with_dead_slot(stuck.who, || freed = self.queue.recover(stuck));
            freed
        } else {
            link.reap(stuck.who, |slot| self.take_over(slot, true))
        };
        if freed {
            self.freed();
        }
        freed
    }

    /// Takes the last holder's sleepers off its doorbell's count and, if
    /// it died, frees every cell it left claimed (a scan of the whole
    /// queue: only after a death).
    fn take_over(&self, slot: usize, died: bool) {
        if let Some(tally) = self.control().tallies.get(slot) {
            self.bell_of(slot).settle(tally);
        }
        if died && self.queue.recover_all_of(slot as u8) > 0 {
            self.freed();
        }
    }

    fn wake_all(&self) {
        self.freed();
    }

    /// Every [`PROBE_EVERY`] operations of this thread: a per-thread count,
    /// since a shared one would be a line every thread writes. A sender
    /// also samples the high-water mark then.
    #[inline]
    fn probe_tick(&self) -> bool {
        // Under loom, the model's own thread-locals, which start afresh in
        // every execution (std's would carry over and break determinism).
        #[cfg(not(loom))]
        std::thread_local! {
            static COUNTDOWN: core::cell::Cell<u32> = const { core::cell::Cell::new(PROBE_EVERY) };
        }
        #[cfg(loom)]
        loom::thread_local! {
            static COUNTDOWN: core::cell::Cell<u32> = core::cell::Cell::new(PROBE_EVERY);
        }
        let due = COUNTDOWN.with(|left| match left.get() {
            0 => {
                left.set(PROBE_EVERY);
                true
            }
            n => {
                left.set(n - 1);
                false
            }
        });
        if due && self.side == Side::Sender {
            self.sample_high_water();
        }
        due
    }

    fn count_refusal(&self) {
        // Relaxed: statistics (see `Counters`).
        let counters = &self.control().counters;
        counters.refusals.fetch_add(1, Ordering::Relaxed);
        counters
            .high_water
            .fetch_max(self.queue.capacity(), Ordering::Relaxed);
    }

    /// Messages the queue holds (the requested capacity, rounded up to a
    /// power of two, at least 2).
    fn capacity(&self) -> usize {
        self.queue.capacity() as usize
    }

    fn len(&self) -> usize {
        self.queue.len() as usize
    }

    fn is_full(&self) -> bool {
        self.queue.len() >= self.queue.capacity()
    }

    /// A cell to claim: a message for a receiver (perhaps still being
    /// written, or left claimed by a dead sender, which the receive then
    /// waits for or frees), room for a sender.
    fn ready(&self) -> bool {
        match self.side {
            Side::Receiver => self.queue.len() > 0,
            Side::Sender => self.queue.len() < self.queue.capacity(),
        }
    }
}

impl<T: ShmSafe> QueueEnd<T> {
    /// Rings the receivers after a push, or says why there was none.
    #[inline(always)]
    fn pushed(&self, result: Result<(), PushError>) -> Result<(), Miss<Option<Stuck>>> {
        match result {
            Ok(()) => {
                self.control().not_empty.notify(self.barrier);
                Ok(())
            }
            Err(PushError::Full(stuck)) => Err(Miss::Edge(stuck)),
            Err(PushError::Corrupt) => Err(Miss::Corrupt),
        }
    }

    /// Rings the senders after a pop, or says why there was none.
    #[inline(always)]
    fn popped<R>(&self, result: Result<R, PopError>) -> Result<R, Miss<Option<Stuck>>> {
        match result {
            Ok(value) => {
                self.control().not_full.notify(self.barrier);
                Ok(value)
            }
            Err(PopError::Empty(stuck)) => Err(Miss::Edge(stuck)),
            Err(PopError::Corrupt) => Err(Miss::Corrupt),
        }
    }

    /// As [`Push::push`], for a message given as its bytes (see
    /// [`Queue::push_bytes`]).
    pub(crate) fn push_bytes(&self, message: &[u8]) -> Result<(), Miss<Option<Stuck>>> {
        self.pushed(self.queue.push_bytes(message, self.who))
    }

    /// As [`Pop::pop`], into the bytes `out` (see [`Queue::pop_bytes`]).
    pub(crate) fn pop_bytes(&self, out: &mut [u8]) -> Result<(), Miss<Option<Stuck>>> {
        self.popped(self.queue.pop_bytes(out, self.who))
    }
}

impl<T: ShmSafe> Push<T> for QueueEnd<T> {
    #[inline]
    fn push(&self, value: T) -> Result<(), Miss<Option<Stuck>>> {
        self.pushed(self.queue.push(value, self.who))
    }

    /// One claim per message (other senders' may come between them), one
    /// wake-up for all.
    fn push_slice(&self, values: &[T]) -> Result<usize, Miss<Option<Stuck>>> {
        let mut sent = 0;
        for &value in values {
            match self.queue.push(value, self.who) {
                Ok(()) => sent += 1,
                Err(PushError::Full(stuck)) if sent == 0 => return Err(Miss::Edge(stuck)),
                Err(PushError::Corrupt) if sent == 0 => return Err(Miss::Corrupt),
                Err(_) => break,
            }
        }
        self.control().not_empty.notify(self.barrier);
        Ok(sent)
    }
}

impl<T: ShmSafe> Pop<T> for QueueEnd<T> {
    #[inline]
    fn pop(&self) -> Result<T, Miss<Option<Stuck>>> {
        self.popped(self.queue.pop(self.who))
    }

    fn pop_into(&self, out: &mut [T]) -> Result<usize, Miss<Option<Stuck>>> {
        let mut taken = 0;
        for slot in out.iter_mut() {
            match self.queue.pop(self.who) {
                Ok(value) => *slot = value,
                Err(PopError::Empty(stuck)) if taken == 0 => return Err(Miss::Edge(stuck)),
                Err(PopError::Corrupt) if taken == 0 => return Err(Miss::Corrupt),
                Err(_) => break,
            }
            taken += 1;
        }
        self.control().not_full.notify(self.barrier);
        Ok(taken)
    }
}

/// A queue in heap memory with the flavor's control block, for the loom
/// models: the same `QueueEnd`s as in a segment, over the same layout.
#[cfg(loom)]
pub(crate) struct HeapMpmc<T> {
    control: Box<Control>,
    cells: Box<[crate::ring::mpmc::Cell<T>]>,
}

#[cfg(loom)]
impl<T: ShmSafe> HeapMpmc<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        let heap = Self {
            control: Box::new(Control {
                positions: Positions::default(),
                not_empty: CachePadded::default(),
                not_full: CachePadded::default(),
                counters: CachePadded::default(),
                tallies: core::array::from_fn(|_| AtomicU32::new(0)),
            }),
            cells: (0..capacity)
                .map(|_| crate::ring::mpmc::Cell::zeroed())
                .collect(),
        };
        // SAFETY: the view lives for this statement; nobody else has it.
        unsafe { heap.queue().init() };
        heap
    }

    /// # Safety
    ///
    /// The view must not outlive `self`.
    unsafe fn queue(&self) -> Queue<T> {
        // SAFETY: the boxes hold the positions and the cells; the caller
        // keeps `self` alive.
        unsafe {
            Queue::new(
                NonNull::from(&self.control.positions),
                NonNull::from(&*self.cells).cast(),
                self.cells.len() as u64,
            )
        }
    }

    /// The end of the endpoint in slot `who`, on `side`.
    ///
    /// # Safety
    ///
    /// The end must not outlive `self`.
    /// The end of the endpoint in slot `who`, on `side`, in a table whose
    /// receivers' slots start at `receivers_from`.
    pub(crate) unsafe fn end(&self, who: u8, side: Side, receivers_from: usize) -> QueueEnd<T> {
        // SAFETY: the caller keeps `self`, and so the control block and the
        // cells, alive as long as the end.
        unsafe {
            QueueEnd::new(
                self.queue(),
                NonNull::from(&*self.control),
                who,
                side,
                receivers_from,
                Barrier::fence(),
            )
        }
    }

    /// The sleepers counted on either doorbell and in the tallies.
    pub(crate) fn sleepers(&self) -> u32 {
        let tallies: u32 = self
            .control
            .tallies
            .iter()
            .map(|tally| tally.load(Ordering::Relaxed))
            .sum();
        tallies + self.control.not_empty.sleepers() + self.control.not_full.sleepers()
    }
}

#[cfg(not(loom))]
mod api {
    use super::*;
    use crate::endpoint::rule::Counts;
    use crate::endpoint::{self, Attached};
    use crate::ring::mpmc::Cell;
    use crate::segment::{ElemType, Flavor as Kind, Segment, Spec};
    use crate::{Error, Options};
    use core::mem::{align_of, size_of};
    use std::sync::Arc;

    /// A sending end of an mpmc channel. `Clone` shares this process's
    /// attachment; it can be used from any number of threads at once.
    pub type Sender<T> = endpoint::Sender<Mpmc<T>>;
    /// A receiving end of an mpmc channel. `Clone` shares this process's
    /// attachment; it can be used from any number of threads at once.
    pub type Receiver<T> = endpoint::Receiver<Mpmc<T>>;
    /// A blocking iterator over a [`Receiver`]'s messages.
    pub type Iter<'a, T> = endpoint::Iter<'a, Mpmc<T>>;
    /// A non-blocking iterator over a [`Receiver`]'s messages.
    pub type TryIter<'a, T> = endpoint::TryIter<'a, Mpmc<T>>;
    /// An owning blocking iterator over a [`Receiver`]'s messages.
    pub type IntoIter<T> = endpoint::IntoIter<Mpmc<T>>;

    /// Creates a channel named `name` holding `capacity` messages (at
    /// least 2), and returns a sender and a receiver.
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

    impl<T: ShmSafe> Clone for Sender<T> {
        /// Another handle on this process's attachment (not another
        /// attachment: use [`Sender::open`] for that).
        fn clone(&self) -> Self {
            Self::from_hold(Arc::clone(self.hold()))
        }
    }

    impl<T: ShmSafe> Clone for Receiver<T> {
        /// Another handle on this process's attachment (not another
        /// attachment: use [`Receiver::open`] for that).
        fn clone(&self) -> Self {
            Self::from_hold(Arc::clone(self.hold()))
        }
    }

    impl<T> endpoint::Sealed for Mpmc<T> {}

    impl<T: ShmSafe> endpoint::Flavor for Mpmc<T> {
        type Tx = QueueEnd<T>;
        type Rx = QueueEnd<T>;
        type TxHold = Arc<Attached<QueueEnd<T>>>;
        type RxHold = Arc<Attached<QueueEnd<T>>>;
        const MODULE: &'static str = "shmchan::mpmc";

        fn type_name() -> &'static str {
            T::NAME
        }

        /// Slots 0 to 63 are senders', 64 to 127 receivers'. The capacity
        /// is at least 2 (see `ring::mpmc`).
        fn spec(options: &Options, create: bool) -> Result<(Spec, u64), Error> {
            let mut spec = shape(ElemType::of::<T>());
            debug_assert_eq!(
                (spec.slot_size, spec.slot_align),
                (size_of::<Cell<T>>(), align_of::<Cell<T>>())
            );
            spec.init_ring = Some(init_cells::<T>);
            let capacity = if create {
                options.ring_capacity()?.max(2)
            } else {
                0
            };
            Ok((spec, capacity))
        }

        fn attach_tx(segment: &Segment, barrier: Barrier) -> Result<QueueEnd<T>, Error> {
            attach(segment, Side::Sender, barrier)
        }

        fn attach_rx(segment: &Segment, barrier: Barrier) -> Result<QueueEnd<T>, Error> {
            attach(segment, Side::Receiver, barrier)
        }

        fn counts(segment: &Segment) -> Counts {
            channel_counts(segment)
        }
    }

    impl<T: ShmSafe> endpoint::TypedSend for Mpmc<T> {
        type Msg = T;
    }

    impl<T: ShmSafe> endpoint::Typed for Mpmc<T> {}

    /// The shape of an mpmc segment of messages `elem`: slots 0 to 63 are
    /// senders', 64 to 127 receivers'; each cell is a sequence word, then
    /// the message (`ring::mpmc::Cell`, `repr(C)`).
    pub(crate) fn shape(elem: ElemType) -> Spec {
        let mut spec = Spec::new(Kind::Mpmc, elem, size_of::<Control>());
        spec.endpoints = SLOTS as u32;
        let (size, align) = cell_shape(elem.size, elem.align);
        spec.slot_size = size;
        spec.slot_align = align;
        spec.slots = |_, _| [SLOTS / 2..SLOTS, 0..SLOTS / 2];
        spec
    }

    /// Size and alignment of a `Cell<T>` for a `T` of `size` and `align`
    /// (a power of two of at most a page, as every message type's is).
    pub(crate) fn cell_shape(size: usize, align: usize) -> (usize, usize) {
        debug_assert!(align.is_power_of_two() && align <= 4096);
        let (_, stride, align) = crate::ring::mpmc::cell_layout(size, align);
        (stride, align)
    }

    /// The counters of an mpmc segment, of any message type. The high-water
    /// mark is sampled by senders every few hundred sends and on refusals,
    /// so it may miss a short peak.
    pub(crate) fn channel_counts(segment: &Segment) -> Counts {
        let (control, _) = segment.ring(0);
        let capacity = segment.header_capacity();
        // SAFETY: the validated layout holds a `Control` there, in the
        // mapping `segment` owns; only atomics are read.
        let control = unsafe { control.cast::<Control>().as_ref() };
        let (sent, received) = control.positions.counts();
        Counts {
            sent,
            received,
            len: control.positions.len(capacity),
            capacity,
            // Relaxed: statistics (see `Counters`).
            high_water: control.counters.high_water.load(Ordering::Relaxed),
            full: control.counters.refusals.load(Ordering::Relaxed),
        }
    }

    fn attach<T: ShmSafe>(
        segment: &Segment,
        side: Side,
        barrier: Barrier,
    ) -> Result<QueueEnd<T>, Error> {
        let capacity = segment.header_capacity();
        if capacity < 2 {
            return Err(segment.corrupt(&format!("an mpmc queue of capacity {capacity}")));
        }
        let (control, cells) = segment.ring(0);
        let control = control.cast::<Control>();
        // SAFETY: the validated layout holds the control block (with
        // `Positions` first) and `capacity` cells of `T`, a power of two of
        // at least 2 (checked above); the mapping outlives the end, which
        // lives in the same attachment.
        let queue = unsafe {
            Queue::new(control.cast(), cells.cast(), capacity)
                .with_shape(segment.elem_size(), segment.elem_align())
        };
        // Below `SLOTS`, which fits a claim's 7 bits.
        let who = segment.slot() as u8;
        // SAFETY: as above; `who` is the slot we hold.
        Ok(unsafe { QueueEnd::new(queue, control, who, side, SLOTS / 2, barrier) })
    }

    /// Sets a new queue's sequence words.
    ///
    /// # Safety
    ///
    /// As for `Spec::init_ring`: `control` and `capacity` cells of `T` at
    /// `cells`, in a segment nobody else sees yet.
    unsafe fn init_cells<T: ShmSafe>(control: NonNull<u8>, cells: NonNull<u8>, capacity: u64) {
        // SAFETY: the caller's contract; `Control` starts with `Positions`.
        unsafe {
            Queue::<T>::new(control.cast(), cells.cast(), capacity).init();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::api::cell_shape;
    use crate::ring::mpmc::Cell;
    use core::mem::{align_of, size_of};

    #[test]
    fn cell_shapes_match_the_cells() {
        fn check<T>() {
            assert_eq!(
                cell_shape(size_of::<T>(), align_of::<T>()),
                (size_of::<Cell<T>>(), align_of::<Cell<T>>()),
                "{}",
                core::any::type_name::<T>()
            );
        }
        check::<u8>();
        check::<u16>();
        check::<[u8; 3]>();
        check::<u64>();
        check::<u128>();
        check::<[u64; 3]>();
        check::<[u8; 64]>();
        #[repr(C, align(64))]
        struct Wide([u8; 64]);
        check::<Wide>();
    }
}
