//! One sender, many receivers, and every receiver sees every message sent
//! after it attached, in order: publish-subscribe.
//!
//! ```
//! use shmchan::broadcast;
//! # let name = format!("doc-broadcast-{}", std::process::id());
//! let tx = broadcast::Sender::<u64>::create(&name, 64)?;
//! let (a, b) = (
//!     broadcast::Receiver::<u64>::open(&name)?,
//!     broadcast::Receiver::<u64>::open(&name)?,
//! );
//! tx.send(7).unwrap();
//! assert_eq!(a.recv(), Ok(7));
//! assert_eq!(b.recv(), Ok(7)); // each receiver gets every message
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! - Up to [`Options::receivers`](crate::Options::receivers) receivers (default 16), each in any
//!   process, attach and detach at any time; a receiver starts at the next
//!   message sent (the first receiver ever, in `Block` mode, at the oldest
//!   message kept, so that nothing sent before anyone listened is lost).
//!   A dead receiver's place is reclaimed.
//! - [`Overflow::Block`] (the default): the sender waits for the slowest
//!   live receiver; a dead one stops holding it back within a second.
//!   [`Overflow::Overwrite`] (set with [`Options::overflow`](crate::Options::overflow)): the sender
//!   never waits; a receiver that fell a whole ring behind gets
//!   [`RecvError::Lagged`] with the number of messages it missed, and goes
//!   on from the oldest message still kept.
//! - A receiver never returns a torn message, even while the sender
//!   overwrites the slot it reads: it checks the slot's sequence word
//!   before and after its copy, and looks again.
//! - The sender has the typed flavors' API (`send`, `try_send`,
//!   `send_timeout`, batches); receivers have `recv`, `try_recv`,
//!   `recv_timeout`, batches and iterators (which skip over a lag), with
//!   errors that add `Lagged`. [`Select`](crate::Select) and async (with
//!   the feature) take them as they take any flavor's.
//! - Disconnection as in `std::sync::mpsc`: once the sender is gone,
//!   receivers drain what it sent and then fail; once every receiver that
//!   attached is gone, sends fail. Before any receiver has attached, the
//!   sender fills the ring (in `Block` mode) and waits.

pub use crate::error::{Error, SendError, SendTimeoutError, TrySendError};
pub use crate::ring::broadcast::Overflow;

use crate::endpoint::roster::{EndpointSlot, Roster, Side};
use crate::endpoint::rule::{Counts, End, Miss, Push};
use crate::primitive::AtomicU32;
use crate::ring::broadcast::{
    Consumer, Control as RingControl, PopError, Producer, PushError, Ring, MAX_CONSUMERS,
};
use crate::wait::{Barrier, Doorbell};
use crate::ShmSafe;
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;

#[cfg(not(loom))]
pub use self::api::*;

/// The broadcast flavor carrying messages of type `T`: what [`Sender`] and
/// [`Receiver`] are made of.
pub struct Broadcast<T>(PhantomData<fn() -> T>);

/// The flavor's control block, at the start of its ring.
#[repr(C)]
pub(crate) struct Control {
    ring: RingControl,
    /// Receivers sleep here while they have nothing to read.
    not_empty: CachePadded<Doorbell>,
    /// The sender sleeps here while the slowest receiver is a ring behind.
    not_full: CachePadded<Doorbell>,
    /// Each receiver's own count of its sleepers on `not_empty`, by slot.
    tallies: CachePadded<[AtomicU32; MAX_CONSUMERS]>,
}

#[cfg(any(test, loom))]
impl Default for Control {
    fn default() -> Self {
        Self {
            ring: RingControl::default(),
            not_empty: CachePadded::default(),
            not_full: CachePadded::default(),
            tallies: CachePadded::new(core::array::from_fn(|_| AtomicU32::new(0))),
        }
    }
}

impl Control {
    pub(crate) fn ring(&self) -> &RingControl {
        &self.ring
    }
}

/// How many sends pass between two liveness probes of a sender that never
/// waits (see [`End::probe_tick`]).
const PROBE_EVERY: u32 = 256;

/// The sending end: the ring's producer, and what it needs to know which
/// receivers are there.
pub struct BroadcastTx<T> {
    producer: Producer<T>,
    control: NonNull<Control>,
    /// The endpoint table's receiver slots (the first `receivers`).
    table: NonNull<EndpointSlot>,
    receivers: usize,
    roster: NonNull<Roster>,
    barrier: Barrier,
    countdown: Cell<u32>,
}

/// A receiving end: one of the ring's consumers.
pub struct BroadcastRx<T> {
    consumer: Consumer<T>,
    control: NonNull<Control>,
    /// Receiver slots in the table (ours is one of them).
    receivers: usize,
    overflow: Overflow,
    barrier: Barrier,
    /// Our slot: our cursor's and our tally's index.
    slot: usize,
    /// A lag a batch ran into after its first message, which the next
    /// receive reports.
    lag: Cell<u64>,
}

// SAFETY: the process-local state (the `Cell`s, the pointers into the
// mapping) moves with the end to another thread; shared memory is reached
// only through atomics and the ring's protocol; messages of `T` move
// across threads as `T: Send` allows. Not `Sync`: one producer, and each
// consumer's cursor is its own.
unsafe impl<T: Send> Send for BroadcastTx<T> {}
// SAFETY: as for `BroadcastTx`.
unsafe impl<T: Send> Send for BroadcastRx<T> {}

impl<T: ShmSafe> BroadcastTx<T> {
    /// # Safety
    ///
    /// `control`, the `receivers` slots of `table` and `roster` must lie in
    /// memory that outlives the end; no other producer may exist.
    pub(crate) unsafe fn new(
        producer: Producer<T>,
        control: &Control,
        table: &[EndpointSlot],
        roster: &Roster,
        barrier: Barrier,
    ) -> Self {
        Self {
            producer,
            control: NonNull::from(control),
            table: NonNull::from(table).cast(),
            receivers: table.len().min(MAX_CONSUMERS),
            roster: NonNull::from(roster),
            barrier,
            countdown: Cell::new(PROBE_EVERY),
        }
    }

    fn control(&self) -> &Control {
        // SAFETY: by `new`'s contract it outlives `self`.
        unsafe { self.control.as_ref() }
    }

    /// The smallest cursor of the receivers attached now; with none, 0 if
    /// none ever attached (the ring keeps what is sent for the first), or
    /// no bound.
    fn floor(&self) -> u64 {
        // SAFETY: `new`'s contract: `receivers` slots there outlive us.
        let table = unsafe { core::slice::from_raw_parts(self.table.as_ptr(), self.receivers) };
        let ring = self.control().ring();
        let floor = (0..table.len())
            .filter(|&slot| table[slot].word() != 0)
            .map(|slot| ring.cursor(slot))
            .min();
        // SAFETY: as for the table.
        let roster = unsafe { self.roster.as_ref() };
        match floor {
            Some(floor) => floor,
            None if !roster.ever(Side::Receiver) => 0,
            None => u64::MAX,
        }
    }

    fn scan(&self) -> impl Fn() -> u64 + '_ {
        move || self.floor()
    }
}

impl<T: ShmSafe> BroadcastRx<T> {
    /// # Safety
    ///
    /// `control` must lie in memory that outlives the end; `consumer`'s
    /// cursor is `slot`'s, ours alone.
    pub(crate) unsafe fn new(
        consumer: Consumer<T>,
        control: &Control,
        receivers: usize,
        overflow: Overflow,
        barrier: Barrier,
        slot: usize,
    ) -> Self {
        if overflow == Overflow::Block {
            // Taking a dead receiver's slot may have raised the floor the
            // sender waits on (it cannot reap a slot we now hold).
            control.not_full.notify(barrier);
        }
        Self {
            consumer,
            control: NonNull::from(control),
            receivers,
            overflow,
            barrier,
            slot,
            lag: Cell::new(0),
        }
    }

    fn control(&self) -> &Control {
        // SAFETY: by `new`'s contract it outlives `self`.
        unsafe { self.control.as_ref() }
    }

    /// Takes the next message: `Ok(Ok(value))`, or `Ok(Err(missed))` if the
    /// sender lapped us.
    pub(crate) fn pop(&self) -> Result<Result<T, u64>, Miss<()>> {
        self.pop_with(|consumer| consumer.pop())
    }

    /// As [`pop`](Self::pop), into the bytes `out` (see
    /// [`Consumer::pop_bytes`]).
    pub(crate) fn pop_bytes(&self, out: &mut [u8]) -> Result<Result<(), u64>, Miss<()>> {
        self.pop_with(|consumer| consumer.pop_bytes(out))
    }

    #[inline(always)]
    fn pop_with<R>(
        &self,
        pop: impl FnOnce(&Consumer<T>) -> Result<Result<R, u64>, PopError>,
    ) -> Result<Result<R, u64>, Miss<()>> {
        let lag = self.lag.take();
        if lag > 0 {
            return Ok(Err(lag));
        }
        match pop(&self.consumer) {
            Ok(read) => {
                if self.overflow == Overflow::Block {
                    // Our cursor moved: the sender may be waiting for it.
                    self.control().not_full.notify(self.barrier);
                }
                Ok(read)
            }
            Err(PopError::Empty) => Err(Miss::Edge(())),
            Err(PopError::Corrupt) => Err(Miss::Corrupt),
        }
    }
}

/// What both ends tidy and ring alike.
fn take_over(control: &Control, receivers: usize, slot: usize) {
    if slot < receivers.min(MAX_CONSUMERS) {
        control.not_empty.settle(&control.tallies[slot]);
    } else {
        // The sender's slot: only it sleeps on `not_full`.
        control.not_full.forget_sleepers();
    }
}

fn wake_all(control: &Control) {
    control.not_empty.ring();
    control.not_full.ring();
}

impl<T: ShmSafe> End for BroadcastTx<T> {
    type Hint = ();

    fn bell(&self) -> &Doorbell {
        &self.control().not_full
    }

    fn take_over(&self, slot: usize, _died: bool) {
        take_over(self.control(), self.receivers, slot);
    }

    fn wake_all(&self) {
        wake_all(self.control());
    }

    #[inline]
    fn probe_tick(&self) -> bool {
        let left = self.countdown.get();
        let due = left == 0;
        self.countdown.set(if due { PROBE_EVERY } else { left - 1 });
        due
    }

    #[inline]
    fn worth_retrying(&self) -> bool {
        self.producer
            .has_room_for(self.producer.refill(), &self.scan())
    }

    fn count_refusal(&self) {
        self.producer.count_refusal();
    }

    fn capacity(&self) -> usize {
        self.producer.ring().capacity() as usize
    }

    /// Messages the slowest receiver has yet to read.
    fn len(&self) -> usize {
        let tail = self.control().ring().tail();
        tail.saturating_sub(self.floor())
            .min(self.producer.ring().capacity()) as usize
    }

    fn is_full(&self) -> bool {
        !self.producer.has_room(&self.scan())
    }

    fn ready(&self) -> bool {
        self.producer.has_room(&self.scan())
    }
}

impl<T: ShmSafe> BroadcastTx<T> {
    /// Rings the receivers after a push, or says why there was none.
    #[inline(always)]
    fn pushed(&self, result: Result<(), PushError>) -> Result<(), Miss<()>> {
        match result {
            Ok(()) => {
                self.control().not_empty.notify(self.barrier);
                Ok(())
            }
            Err(PushError::Full) => Err(Miss::Edge(())),
        }
    }

    /// As [`Push::push`], for a message given as its bytes (see
    /// [`Producer::push_bytes`]).
    pub(crate) fn push_bytes(&self, message: &[u8]) -> Result<(), Miss<()>> {
        self.pushed(self.producer.push_bytes(message, &self.scan()))
    }
}

impl<T: ShmSafe> Push<T> for BroadcastTx<T> {
    #[inline]
    fn push(&self, value: T) -> Result<(), Miss<()>> {
        self.pushed(self.producer.push(&value, &self.scan()))
    }

    fn push_slice(&self, values: &[T]) -> Result<usize, Miss<()>> {
        match self.producer.push_slice(values, &self.scan()) {
            0 => Err(Miss::Edge(())),
            sent => {
                self.control().not_empty.notify(self.barrier);
                Ok(sent)
            }
        }
    }
}

impl<T: ShmSafe> End for BroadcastRx<T> {
    type Hint = ();

    fn bell(&self) -> &Doorbell {
        &self.control().not_empty
    }

    fn tally(&self) -> Option<&AtomicU32> {
        self.control().tallies.get(self.slot)
    }

    fn take_over(&self, slot: usize, _died: bool) {
        take_over(self.control(), self.receivers, slot);
    }

    fn wake_all(&self) {
        wake_all(self.control());
    }

    fn capacity(&self) -> usize {
        self.consumer.ring().capacity() as usize
    }

    /// Messages this receiver has yet to read (at most a ring).
    fn len(&self) -> usize {
        self.consumer.backlog() as usize
    }

    fn is_full(&self) -> bool {
        self.consumer.backlog() >= self.consumer.ring().capacity()
    }

    fn ready(&self) -> bool {
        self.lag.get() > 0 || self.consumer.ready()
    }
}

/// A ring of `T` over the control block at `control`, `capacity` slots of
/// words at `slots`.
///
/// # Safety
///
/// As for [`Ring::new`].
pub(crate) unsafe fn ring_at<T: ShmSafe>(
    control: NonNull<u8>,
    slots: NonNull<u8>,
    capacity: u64,
) -> Ring<T> {
    // SAFETY: the caller's contract; the ring's control block comes first.
    unsafe { Ring::new(control.cast(), slots.cast(), capacity) }
}

#[cfg(not(loom))]
mod api {
    use super::*;
    use crate::endpoint;
    use crate::endpoint::rule::Endpoint;
    use crate::ring::broadcast::slot_words;
    use crate::segment::{ElemType, Flavor as Kind, Segment, Spec};
    use crate::{
        Options, RecvTimeoutError as StdRecvTimeoutError, TryRecvError as StdTryRecvError,
    };
    use core::fmt;
    use core::time::Duration;
    use std::time::Instant;

    /// The sending end of a broadcast channel: one may be attached at a
    /// time. Its API is the typed flavors' (see
    /// [`endpoint::Sender`](crate::endpoint::Sender)).
    pub type Sender<T> = endpoint::Sender<Broadcast<T>>;
    /// A receiving end of a broadcast channel: up to
    /// [`Options::receivers`] may be attached at once, each reading every
    /// message.
    pub type Receiver<T> = endpoint::Receiver<Broadcast<T>>;

    /// Creates a broadcast channel named `name` of `capacity` messages, with
    /// its sender and one receiver.
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

    /// [`channel`] with [`Options`] (see [`Options::receivers`] and
    /// [`Options::overflow`]).
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

    impl<T> endpoint::Sealed for Broadcast<T> {}

    impl<T: ShmSafe> endpoint::Flavor for Broadcast<T> {
        type Tx = BroadcastTx<T>;
        type Rx = BroadcastRx<T>;
        type TxHold = endpoint::Own<endpoint::Attached<BroadcastTx<T>>>;
        type RxHold = endpoint::Own<endpoint::Attached<BroadcastRx<T>>>;
        const MODULE: &'static str = "shmchan::broadcast";

        fn type_name() -> &'static str {
            T::NAME
        }

        fn spec(options: &Options, create: bool) -> Result<(Spec, u64), Error> {
            if !create {
                return Ok((shape(ElemType::of::<T>(), 1, Overflow::Block), 0));
            }
            if !(1..=Options::MAX_RECEIVERS).contains(&options.receivers) {
                return Err(Error::InvalidCapacity {
                    requested: options.receivers,
                    reason: "a broadcast channel has 1 to 64 receivers (Options::receivers)",
                });
            }
            let spec = shape(
                ElemType::of::<T>(),
                options.receivers as u32,
                options.overflow,
            );
            Ok((spec, options.ring_capacity()?))
        }

        fn attach_tx(segment: &Segment, barrier: Barrier) -> Result<BroadcastTx<T>, Error> {
            let (ring, control) = parts::<T>(segment);
            let overflow = overflow_of(segment, control)?;
            let receivers = segment.endpoints().len() - 1;
            // SAFETY: we hold the sender's slot: no other producer exists.
            let producer = unsafe { Producer::attach(ring, overflow) }
                .map_err(|_| segment.corrupt("its message count is past any a ring reaches"))?;
            // SAFETY: the control block, the table and the roster lie in
            // the mapping, which outlives the end.
            Ok(unsafe {
                BroadcastTx::new(
                    producer,
                    control,
                    &segment.endpoints()[..receivers],
                    segment.roster(),
                    barrier,
                )
            })
        }

        fn attach_rx(segment: &Segment, barrier: Barrier) -> Result<BroadcastRx<T>, Error> {
            let (ring, control) = parts::<T>(segment);
            let overflow = overflow_of(segment, control)?;
            let slot = segment.slot();
            if slot >= MAX_CONSUMERS {
                return Err(segment.corrupt("a receiver's slot past the cursors"));
            }
            // The first receiver ever, in block mode, gets what the sender
            // kept for it (one receiver: two attaching at once race for it).
            let first = overflow == Overflow::Block && control.ring().claim_backlog();
            // SAFETY: we hold receiver slot `slot`, whose cursor is ours.
            let consumer = unsafe { Consumer::attach(ring, slot, first) };
            let receivers = segment.endpoints().len() - 1;
            // SAFETY: the control block lies in the mapping.
            Ok(unsafe { BroadcastRx::new(consumer, control, receivers, overflow, barrier, slot) })
        }

        fn counts(segment: &Segment) -> Counts {
            channel_counts(segment)
        }
    }

    impl<T: ShmSafe> endpoint::TypedSend for Broadcast<T> {
        type Msg = T;
    }

    /// The ring and the control block of a broadcast segment.
    fn parts<T: ShmSafe>(segment: &Segment) -> (Ring<T>, &Control) {
        let (control, slots) = segment.ring(0);
        // SAFETY: the validated layout holds a `Control` and `capacity`
        // slots of `slot_words` words there, in the mapping `segment`
        // owns, which outlives the ends made from it.
        unsafe {
            (
                ring_at(control, slots, segment.header_capacity()).with_size(segment.elem_size()),
                control.cast::<Control>().as_ref(),
            )
        }
    }

    fn overflow_of(segment: &Segment, control: &Control) -> Result<Overflow, Error> {
        control
            .ring()
            .overflow()
            .ok_or_else(|| segment.corrupt("its overflow policy word is not one we write"))
    }

    /// The shape of a broadcast segment: a ring of `T` with a sequence word
    /// per slot, `receivers` receiver slots and one sender slot.
    pub(crate) fn shape(elem: ElemType, receivers: u32, overflow: Overflow) -> Spec {
        let mut spec = Spec::new(Kind::Broadcast, elem, core::mem::size_of::<Control>());
        spec.slot_size = 8 * slot_words(elem.size);
        spec.slot_align = 8;
        spec.endpoints = receivers + 1;
        spec.endpoints_from_header = true;
        spec.slots = |_, endpoints| [0..endpoints - 1, endpoints - 1..endpoints];
        spec.init_ring = Some(match overflow {
            Overflow::Block => init::<1>,
            Overflow::Overwrite => init::<2>,
        });
        spec
    }

    /// Writes a new ring's policy ([`Overflow::to_u64`]).
    ///
    /// # Safety
    ///
    /// `control` must hold a zeroed `Control` nobody else sees yet.
    unsafe fn init<const POLICY: u64>(control: NonNull<u8>, _slots: NonNull<u8>, _capacity: u64) {
        // SAFETY: the caller's contract.
        let control = unsafe { control.cast::<Control>().as_ref() };
        control
            .ring()
            .init(Overflow::from_u64(POLICY).expect("a policy"));
    }

    /// The counters of a broadcast segment, of any message type: sent, and
    /// what the slowest receiver attached now has received (with none
    /// attached, the furthest any receiver got: 0 before the first, whose
    /// messages the ring keeps).
    pub(crate) fn channel_counts(segment: &Segment) -> Counts {
        let (control, _) = segment.ring(0);
        // SAFETY: the validated layout holds a `Control` there; only
        // atomics are read.
        let control = unsafe { control.cast::<Control>().as_ref() };
        let ring = control.ring();
        let capacity = segment.header_capacity();
        let sent = ring.tail();
        let table = segment.endpoints();
        let receivers = table.len().saturating_sub(1).min(MAX_CONSUMERS);
        let slowest = (0..receivers)
            .filter(|&slot| table[slot].word() != 0)
            .map(|slot| ring.cursor(slot))
            .min()
            .unwrap_or_else(|| {
                (0..receivers)
                    .map(|slot| ring.cursor(slot))
                    .max()
                    .unwrap_or(0)
            })
            .min(sent);
        Counts {
            sent,
            received: slowest,
            len: (sent - slowest).min(capacity),
            capacity,
            high_water: 0,
            full: ring.refusals(),
        }
    }

    // ---- Receiving ----

    impl<T: ShmSafe> Receiver<T> {
        fn rx(&self) -> &Endpoint<BroadcastRx<T>> {
            &self.attached().endpoint
        }

        /// Receives the next message if one is waiting, without blocking.
        ///
        /// # Errors
        ///
        /// [`TryRecvError::Empty`] if none is waiting,
        /// [`TryRecvError::Disconnected`] if none is and the sender is
        /// gone, [`TryRecvError::Lagged`] if the sender overwrote messages
        /// this receiver had not read (overwrite mode): the next call
        /// returns the oldest message still kept.
        pub fn try_recv(&self) -> Result<T, TryRecvError> {
            let rx = self.rx();
            match rx.try_take(|| rx.end.pop()) {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(missed)) => Err(TryRecvError::Lagged(missed)),
                Err(StdTryRecvError::Empty) => Err(TryRecvError::Empty),
                Err(StdTryRecvError::Disconnected) => Err(TryRecvError::Disconnected),
            }
        }

        /// Receives the next message, waiting until one arrives.
        ///
        /// # Errors
        ///
        /// [`RecvError::Disconnected`] once this receiver has read
        /// everything and the sender is gone (a dead one is noticed within a
        /// second), [`RecvError::Lagged`] as for
        /// [`try_recv`](Self::try_recv).
        pub fn recv(&self) -> Result<T, RecvError> {
            self.recv_until(None).map_err(|err| match err {
                RecvTimeoutError::Lagged(missed) => RecvError::Lagged(missed),
                _ => RecvError::Disconnected,
            })
        }

        /// Receives the next message, waiting at most `timeout`.
        ///
        /// # Errors
        ///
        /// [`RecvTimeoutError::Timeout`] if none arrived in time, and as for
        /// [`recv`](Self::recv).
        pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
            // A timeout too long for `Instant` is no timeout.
            self.recv_until(Instant::now().checked_add(timeout))
        }

        fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
            let rx = self.rx();
            let read = match rx.link.usable().then(|| rx.end.pop()) {
                Some(Ok(read)) => read,
                _ => rx
                    .take_until(deadline, || rx.end.pop())
                    .map_err(|err| match err {
                        StdRecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
                        StdRecvTimeoutError::Disconnected => RecvTimeoutError::Disconnected,
                    })?,
            };
            read.map_err(RecvTimeoutError::Lagged)
        }

        /// Receives as many waiting messages as fit in `out`, without
        /// blocking, and returns how many (at least 1).
        ///
        /// # Errors
        ///
        /// As for [`try_recv`](Self::try_recv), for the first message; a
        /// lag after the first ends the batch early, and the next call
        /// reports it.
        pub fn try_recv_batch(&self, out: &mut [T]) -> Result<usize, TryRecvError> {
            let Some((first, rest)) = out.split_first_mut() else {
                return Ok(0);
            };
            *first = self.try_recv()?;
            Ok(1 + self.fill(rest))
        }

        /// Receives at least one message into `out`, waiting for the first,
        /// then as many more as are waiting, and returns how many.
        ///
        /// # Errors
        ///
        /// As for [`recv`](Self::recv), for the first message.
        pub fn recv_batch(&self, out: &mut [T]) -> Result<usize, RecvError> {
            let Some((first, rest)) = out.split_first_mut() else {
                return Ok(0);
            };
            *first = self.recv()?;
            Ok(1 + self.fill(rest))
        }

        /// Fills `out` with waiting messages, stopping at the first miss or
        /// lag (which the next receive then finds).
        fn fill(&self, out: &mut [T]) -> usize {
            let end = &self.rx().end;
            let mut filled = 0;
            for slot in out {
                match end.consumer.pop() {
                    Ok(Ok(value)) => {
                        *slot = value;
                        filled += 1;
                    }
                    // The cursor has moved past what was missed: the
                    // next receive reports it.
                    Ok(Err(missed)) => {
                        end.lag.set(missed);
                        break;
                    }
                    Err(_) => break,
                }
            }
            if (filled > 0 || end.lag.get() > 0) && end.overflow == Overflow::Block {
                end.control().not_full.notify(end.barrier);
            }
            filled
        }

        /// A blocking iterator over the messages, ending when the sender is
        /// gone and everything it sent was read. Lags are skipped (the
        /// iterator goes on from the oldest message still kept); use
        /// [`recv`](Self::recv) to see them.
        pub fn iter(&self) -> Iter<'_, T> {
            Iter { rx: self }
        }

        /// A non-blocking iterator over the messages waiting now (lags
        /// skipped).
        pub fn try_iter(&self) -> TryIter<'_, T> {
            TryIter { rx: self }
        }
    }

    /// A blocking iterator over a [`Receiver`]'s messages.
    pub struct Iter<'a, T: ShmSafe> {
        rx: &'a Receiver<T>,
    }

    /// A non-blocking iterator over a [`Receiver`]'s messages.
    pub struct TryIter<'a, T: ShmSafe> {
        rx: &'a Receiver<T>,
    }

    /// An owning blocking iterator over a [`Receiver`]'s messages.
    pub struct IntoIter<T: ShmSafe> {
        rx: Receiver<T>,
    }

    impl<T: ShmSafe> Iterator for Iter<'_, T> {
        type Item = T;
        fn next(&mut self) -> Option<T> {
            loop {
                match self.rx.recv() {
                    Ok(value) => return Some(value),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Disconnected) => return None,
                }
            }
        }
    }

    impl<T: ShmSafe> Iterator for TryIter<'_, T> {
        type Item = T;
        fn next(&mut self) -> Option<T> {
            loop {
                match self.rx.try_recv() {
                    Ok(value) => return Some(value),
                    Err(TryRecvError::Lagged(_)) => {}
                    Err(_) => return None,
                }
            }
        }
    }

    impl<T: ShmSafe> Iterator for IntoIter<T> {
        type Item = T;
        fn next(&mut self) -> Option<T> {
            self.rx.iter().next()
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

    impl<T: ShmSafe> fmt::Debug for Iter<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Iter").field("rx", self.rx).finish()
        }
    }

    impl<T: ShmSafe> fmt::Debug for TryIter<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TryIter").field("rx", self.rx).finish()
        }
    }

    impl<T: ShmSafe> fmt::Debug for IntoIter<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("IntoIter").field("rx", &self.rx).finish()
        }
    }

    /// async for broadcast receivers: a lag is an error of `recv_async`,
    /// and skipped by streams.
    #[cfg(feature = "async")]
    impl<T: ShmSafe> endpoint::AsyncFlavor for Broadcast<T> {
        type Item = T;
        type RecvError = RecvError;
        type SendItem = T;
        type SendError = SendError<T>;

        fn try_recv_item(rx: &Receiver<T>) -> Option<Result<T, RecvError>> {
            match rx.try_recv() {
                Ok(value) => Some(Ok(value)),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => Some(Err(RecvError::Disconnected)),
                Err(TryRecvError::Lagged(missed)) => Some(Err(RecvError::Lagged(missed))),
            }
        }

        fn try_send_item(tx: &Sender<T>, item: T) -> Result<(), endpoint::Refused<Self>> {
            use endpoint::Refused;
            tx.try_send(item).map_err(|err| match err {
                TrySendError::Full(item) => Refused::Full(item),
                TrySendError::Disconnected(item) => Refused::Failed(SendError(item)),
            })
        }

        fn ends_stream(err: &RecvError) -> bool {
            matches!(err, RecvError::Disconnected)
        }
    }

    // ---- Errors ----

    /// An error returned from [`Receiver::recv`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum RecvError {
        /// This receiver has read everything and the sender is gone.
        Disconnected,
        /// The sender overwrote this many messages before this receiver
        /// read them (overwrite mode); the next receive returns the oldest
        /// message still kept.
        Lagged(u64),
    }

    /// An error returned from [`Receiver::try_recv`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum TryRecvError {
        /// No message is waiting now.
        Empty,
        /// This receiver has read everything and the sender is gone.
        Disconnected,
        /// As [`RecvError::Lagged`].
        Lagged(u64),
    }

    /// An error returned from [`Receiver::recv_timeout`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum RecvTimeoutError {
        /// No message arrived before the timeout.
        Timeout,
        /// This receiver has read everything and the sender is gone.
        Disconnected,
        /// As [`RecvError::Lagged`].
        Lagged(u64),
    }

    fn lagged(f: &mut fmt::Formatter<'_>, missed: u64) -> fmt::Result {
        write!(
            f,
            "this receiver fell behind and missed {missed} messages, which the sender \
             overwrote; it goes on from the oldest message kept (a larger capacity, or \
             Overflow::Block, keeps up)"
        )
    }

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Self::Disconnected => f.write_str("receiving on a closed channel"),
                Self::Lagged(missed) => lagged(f, *missed),
            }
        }
    }

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Self::Empty => f.write_str("receiving on an empty channel"),
                Self::Disconnected => f.write_str("receiving on an empty and closed channel"),
                Self::Lagged(missed) => lagged(f, *missed),
            }
        }
    }

    impl fmt::Display for RecvTimeoutError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Self::Timeout => f.write_str("timed out waiting on receive operation"),
                Self::Disconnected => f.write_str("channel is empty and sending half is closed"),
                Self::Lagged(missed) => lagged(f, *missed),
            }
        }
    }

    impl From<RecvError> for TryRecvError {
        fn from(err: RecvError) -> Self {
            match err {
                RecvError::Disconnected => Self::Disconnected,
                RecvError::Lagged(missed) => Self::Lagged(missed),
            }
        }
    }

    impl From<RecvError> for RecvTimeoutError {
        fn from(err: RecvError) -> Self {
            match err {
                RecvError::Disconnected => Self::Disconnected,
                RecvError::Lagged(missed) => Self::Lagged(missed),
            }
        }
    }

    impl std::error::Error for RecvError {}
    impl std::error::Error for TryRecvError {}
    impl std::error::Error for RecvTimeoutError {}
}
