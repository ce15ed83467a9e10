//! Many senders, many receivers: Vyukov's bounded queue in shared memory.
//!
//! [`Sender`] and [`Receiver`] are both `Clone` and `Sync`: share them
//! between threads, or open the channel by name in as many processes as
//! needed (up to 64 processes per side). Each message is received by
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
//! process's endpoint in the cell. If that process is killed between claim
//! and publish (or free), the cell would block everyone behind it. A
//! survivor blocked on it checks whether the named endpoint's process
//! still lives (at most every 100 ms) and, if it died, frees the cell: an
//! unpublished message is skipped (it was never sent), a message being read
//! is lost with its reader. A process that takes over the dead one's slot
//! in the endpoint table frees its leftover claims first. So the survivors
//! carry on within about 0.1–0.2 s; no window is left unrecoverable.

pub use crate::error::{
    Error, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

use crate::link::{probe_due, Link, PROBE_EVERY};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::ring::mpmc::{Cell, PopError, Positions, PushError, Queue, Stuck};
use crate::segment::{Claim, ElemType, Flavor, Segment, Spec};
use crate::stats::Stats;
use crate::wait::{block_on_tallied, Blocked, Doorbell, Phase, Wait};
use crate::{Options, ShmSafe};
use core::mem::{align_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::AtomicBool;
use core::time::Duration;
use crossbeam_utils::CachePadded;
use std::sync::Arc;
use std::time::Instant;

/// The flavor's control block at the start of its one ring.
#[repr(C)]
struct Control {
    positions: Positions,
    /// Receivers sleep here when the queue is empty.
    not_empty: CachePadded<Doorbell>,
    /// Senders sleep here when the queue is full.
    not_full: CachePadded<Doorbell>,
    counters: CachePadded<Counters>,
    /// Each endpoint's sleepers, by slot (see `wait::block_on_tallied`).
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
const SLOTS: usize = 128;
const SENDERS: Claim = Claim {
    slots: 0..SLOTS / 2,
    role: "sender",
    ever_bit: 2,
};
const RECEIVERS: Claim = Claim {
    slots: SLOTS / 2..SLOTS,
    role: "receiver",
    ever_bit: 1,
};

static_assertions::const_assert_eq!(size_of::<Control>(), 256 + 3 * 128 + 4 * SLOTS);
static_assertions::const_assert!(SLOTS <= crate::ring::mpmc::MAX_CLAIMERS);

fn spec<T: ShmSafe>() -> Spec {
    let mut spec = Spec::new(
        Flavor::Mpmc,
        ElemType::of::<T>(),
        SLOTS as u32,
        size_of::<Control>(),
    );
    spec.slot_size = size_of::<Cell<T>>();
    spec.slot_align = align_of::<Cell<T>>();
    spec.init_ring = Some(init_cells::<T>);
    spec
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

/// Creates a channel named `name` holding `capacity` messages (at least 2),
/// and returns a sender and a receiver.
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

/// One process's attachment as a sender or as a receiver, shared by its
/// clones.
struct Endpoint<T: ShmSafe> {
    queue: Queue<T>,
    control: NonNull<Control>,
    link: Link,
    /// Our slot in the endpoint table, which our claims name.
    who: u8,
    /// When a stuck cell's claimer was last checked for life.
    last_rescue: AtomicU64,
    /// Whether the last look found every peer gone (so the next looks
    /// come at once, not after `PROBE_EVERY` operations).
    peer_was_gone: AtomicBool,
}

// SAFETY: the endpoint's own state is atomics and an immutable mapping;
// the queue's memory is only reached through its atomics and claims, whose
// protocol admits any number of threads (in any number of processes).
unsafe impl<T: ShmSafe> Send for Endpoint<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: ShmSafe> Sync for Endpoint<T> {}

impl<T: ShmSafe> Endpoint<T> {
    fn attach(segment: Segment, options: &Options, peer: &Claim) -> Result<Self, Error> {
        let capacity = segment.header_capacity();
        if capacity < 2 {
            return Err(Error::Corrupt {
                name: segment.name().to_owned(),
                detail: format!("an mpmc queue of capacity {capacity}"),
            });
        }
        let (control, cells) = segment.ring(0);
        let control = control.cast::<Control>();
        // SAFETY: the validated layout holds the control block (with
        // `Positions` first) and `capacity` cells of `T`, a power of two of
        // at least 2 (checked above); the mapping moves into this endpoint
        // with the queue.
        let queue = unsafe { Queue::new(control.cast(), cells.cast(), capacity) };
        let who = segment.slot().expect("an attached endpoint holds a slot") as u8;
        let link = Link::new(segment, options, peer)?.on_reap(settle_tally);
        let endpoint = Self {
            queue,
            control,
            link,
            who,
            last_rescue: AtomicU64::new(0),
            peer_was_gone: AtomicBool::new(false),
        };
        // Whatever a predecessor in our slot left: its sleepers, its claims.
        settle_tally(&endpoint.link.segment, who as usize);
        if endpoint.queue.recover_all_of(who) > 0 {
            let control = endpoint.control();
            control.not_empty.ring();
            control.not_full.ring();
        }
        Ok(endpoint)
    }

    fn control(&self) -> &Control {
        // SAFETY: it lies in the mapping `self.link` owns.
        unsafe { self.control.as_ref() }
    }

    fn tally(&self) -> &AtomicU32 {
        &self.control().tallies[self.who as usize]
    }

    /// Whether every peer is gone (probing liveness, rate-limited), and
    /// remembers the answer for the next operation.
    #[cold]
    fn peer_gone_or_dead(&self) -> bool {
        let gone = self.link.peer_gone_or_dead();
        // Relaxed: a hint for this endpoint's own threads.
        self.peer_was_gone.store(gone, Ordering::Relaxed);
        gone
    }

    /// A cell has been claimed by `stuck.who` for a while: if that endpoint
    /// is gone or its process dead, frees the cell. Returns whether it did.
    #[cold]
    fn rescue(&self, stuck: Stuck) -> bool {
        let Some(slot) = self.link.segment.endpoints().get(stuck.who) else {
            return false;
        };
        // A free slot means the claim's owner detached, and an endpoint
        // detaches only between operations: it died, and its slot was freed
        // since. An owner must be probed, which costs syscalls: at most once
        // per liveness interval.
        if let Some(owner) = slot.owner() {
            if !probe_due(&self.last_rescue) || owner.alive() {
                return false;
            }
            if slot.reap(owner) {
                settle_tally(&self.link.segment, stuck.who);
            }
        }
        let freed = self.queue.recover(stuck);
        if freed {
            let control = self.control();
            control.not_empty.ring();
            control.not_full.ring();
        }
        freed
    }
}

impl<T: ShmSafe> Drop for Endpoint<T> {
    fn drop(&mut self) {
        self.link.segment.detach();
        // Wake everyone asleep, to see us gone.
        let control = self.control();
        control.not_empty.ring();
        control.not_full.ring();
    }
}

/// The doorbell the endpoint in `slot` sleeps on: receivers on `not_empty`,
/// senders on `not_full`.
fn bell_of(control: &Control, slot: usize) -> &Doorbell {
    if RECEIVERS.slots.contains(&slot) {
        &control.not_empty
    } else {
        &control.not_full
    }
}

/// After a dead endpoint's slot was freed: takes its sleepers off its
/// doorbell's count.
fn settle_tally(segment: &Segment, slot: usize) {
    // SAFETY: the ring's control block is a `Control` (validated layout)
    // inside the mapping `segment` owns; only its atomics are touched.
    let control = unsafe { segment.ring(0).0.cast::<Control>().as_ref() };
    if let Some(tally) = control.tallies.get(slot) {
        bell_of(control, slot).settle(tally);
    }
}

/// Whether this thread's sends have reached their next look at the
/// receivers (every [`PROBE_EVERY`] sends). A per-thread count: a shared
/// one would be a cache line every sending thread writes.
#[inline]
fn probe_now() -> bool {
    thread_local! {
        static COUNTDOWN: core::cell::Cell<u32> = const { core::cell::Cell::new(PROBE_EVERY) };
    }
    COUNTDOWN.with(|left| match left.get() {
        0 => {
            left.set(PROBE_EVERY);
            true
        }
        n => {
            left.set(n - 1);
            false
        }
    })
}

/// A sending end of an mpmc channel. `Clone` shares this process's
/// attachment; it can be used from any number of threads at once.
pub struct Sender<T: ShmSafe> {
    end: Arc<Endpoint<T>>,
}

/// A receiving end of an mpmc channel. `Clone` shares this process's
/// attachment; it can be used from any number of threads at once.
pub struct Receiver<T: ShmSafe> {
    end: Arc<Endpoint<T>>,
}

impl<T: ShmSafe> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            end: Arc::clone(&self.end),
        }
    }
}

impl<T: ShmSafe> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Self {
            end: Arc::clone(&self.end),
        }
    }
}

/// Creates the segment with the options' capacity (at least 2) and mode.
fn create_segment<T: ShmSafe>(
    name: &str,
    options: &Options,
    claim: &Claim,
) -> Result<Segment, Error> {
    let capacity = options.ring_capacity()?.max(2);
    Link::create_segment(name, &spec::<T>(), capacity, options, claim)
}

impl<T: ShmSafe> Sender<T> {
    /// Creates a channel named `name` holding `capacity` messages (rounded
    /// up to a power of two, at least 2), with only this end attached.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::InvalidCapacity`] (0, or too large),
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
        let segment = create_segment::<T>(name, options, &SENDERS)?;
        Self::attach(segment, options)
    }

    /// Attaches this process to the existing channel `name` as a sender.
    /// (Within a process, prefer `clone`: it shares one attachment.)
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Busy`] if 64
    /// live sending attachments exist, [`Error::Incompatible`] if the
    /// channel is not an mpmc channel of `T`, [`Error::Corrupt`],
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
        Self::attach(Segment::open(name, &spec::<T>(), &SENDERS)?, options)
    }

    fn attach(segment: Segment, options: &Options) -> Result<Self, Error> {
        let end = Endpoint::attach(segment, options, &RECEIVERS)?;
        Ok(Self { end: Arc::new(end) })
    }

    /// Sends `value` if there is room, without blocking.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the channel is full,
    /// [`TrySendError::Disconnected`] if every receiver is gone. Either way
    /// the message is handed back.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let stuck = match self.push(value) {
            Ok(()) => return Ok(()),
            Err(Attempt::Disconnected) => return Err(TrySendError::Disconnected(value)),
            Err(Attempt::Edge(stuck)) => stuck,
        };
        let end = &self.end;
        if end.peer_gone_or_dead() {
            return Err(TrySendError::Disconnected(value));
        }
        // A dead claimer's cell: free it, and try once more.
        if stuck.is_some_and(|stuck| end.rescue(stuck)) {
            match self.push(value) {
                Ok(()) => return Ok(()),
                Err(Attempt::Disconnected) => return Err(TrySendError::Disconnected(value)),
                Err(Attempt::Edge(_)) => {}
            }
        }
        // Relaxed: statistics (see `Counters`).
        let counters = &end.control().counters;
        counters.refusals.fetch_add(1, Ordering::Relaxed);
        counters
            .high_water
            .fetch_max(end.queue.capacity(), Ordering::Relaxed);
        Err(TrySendError::Full(value))
    }

    /// Sends `value`, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message if every receiver is gone (a dead
    /// receiver is noticed within a second).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
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
    /// [`SendTimeoutError::Disconnected`] if every receiver is gone.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        // Room now needs no clock.
        if self.push(value).is_ok() {
            return Ok(());
        }
        self.send_until(value, Instant::now().checked_add(timeout))
    }

    #[inline]
    fn send_until(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let end = &*self.end;
        let wait = Wait {
            spin: end.link.spin,
            deadline,
        };
        let stuck = core::cell::Cell::new(None);
        let poll = |_| match self.push(value) {
            Err(Attempt::Edge(found)) => {
                stuck.set(found);
                None
            }
            done => Some(done),
        };
        let check = || {
            if end.peer_gone_or_dead() {
                return Some(Err(Attempt::Disconnected));
            }
            if let Some(found) = stuck.take() {
                end.rescue(found);
            }
            None
        };
        match block_on_tallied(
            &end.control().not_full,
            end.tally(),
            end.link.barrier,
            wait,
            poll,
            check,
        ) {
            Blocked::Done(Ok(())) => Ok(()),
            Blocked::Done(Err(_)) => Err(SendTimeoutError::Disconnected(value)),
            Blocked::TimedOut => Err(SendTimeoutError::Timeout(value)),
        }
    }

    #[inline]
    fn push(&self, value: T) -> Result<(), Attempt> {
        let end = &*self.end;
        // Once the receivers were found gone, every send looks again (until
        // one attaches); otherwise one send in `PROBE_EVERY` does. Relaxed:
        // a hint among this endpoint's threads; statistics (`Counters`).
        if end.peer_was_gone.load(Ordering::Relaxed) || probe_now() {
            end.control()
                .counters
                .high_water
                .fetch_max(end.queue.len(), Ordering::Relaxed);
            if end.peer_gone_or_dead() {
                return Err(Attempt::Disconnected);
            }
        } else if end.link.is_poisoned() {
            return Err(Attempt::Disconnected);
        }
        match end.queue.push(value, end.who) {
            Ok(()) => {
                end.control().not_empty.notify(end.link.barrier);
                Ok(())
            }
            Err(PushError::Full(stuck)) => Err(Attempt::Edge(stuck)),
            Err(PushError::Corrupt) => {
                end.link.poison();
                Err(Attempt::Disconnected)
            }
        }
    }

    /// Sends as many of `values` as fit, in order, without blocking, waking
    /// sleeping receivers once. Returns how many were sent (at least 1).
    /// Other senders' messages may come between them.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if none fit, [`TrySendError::Disconnected`] if
    /// every receiver is gone.
    pub fn try_send_batch(&self, values: &[T]) -> Result<usize, TrySendError<()>> {
        let Some((&first, rest)) = values.split_first() else {
            return Ok(0);
        };
        self.try_send(first).map_err(|err| match err {
            TrySendError::Full(_) => TrySendError::Full(()),
            TrySendError::Disconnected(_) => TrySendError::Disconnected(()),
        })?;
        let end = &*self.end;
        let mut sent = 1;
        for &value in rest {
            if end.queue.push(value, end.who).is_err() {
                break;
            }
            sent += 1;
        }
        end.control().not_empty.notify(end.link.barrier);
        Ok(sent)
    }

    /// Sends all of `values`, in order, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] holding how many were sent if every receiver is gone
    /// before all were.
    pub fn send_batch(&self, values: &[T]) -> Result<(), SendError<usize>> {
        let mut sent = 0;
        while sent < values.len() {
            match self.try_send_batch(&values[sent..]) {
                Ok(count) => sent += count,
                Err(TrySendError::Disconnected(())) => return Err(SendError(sent)),
                Err(TrySendError::Full(())) => match self.send(values[sent]) {
                    Ok(()) => sent += 1,
                    Err(_) => return Err(SendError(sent)),
                },
            }
        }
        Ok(())
    }
}

/// Why a push or pop did not happen, inside the flavor.
enum Attempt {
    /// Full (a push) or empty (a pop); if a claimed cell is in the way, it.
    Edge(Option<Stuck>),
    Disconnected,
}

impl<T: ShmSafe> Receiver<T> {
    /// Creates a channel named `name` holding `capacity` messages (rounded
    /// up to a power of two, at least 2), with only this end attached.
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
        let segment = create_segment::<T>(name, options, &RECEIVERS)?;
        Self::attach(segment, options)
    }

    /// Attaches this process to the existing channel `name` as a receiver.
    /// (Within a process, prefer `clone`.)
    ///
    /// # Errors
    ///
    /// As for [`Sender::open`], with [`Error::Busy`] if 64 live receiving
    /// attachments exist.
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// [`open`](Self::open) with [`Options`] (only the spin time applies).
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    pub fn open_with(name: &str, options: &Options) -> Result<Self, Error> {
        Self::attach(Segment::open(name, &spec::<T>(), &RECEIVERS)?, options)
    }

    fn attach(segment: Segment, options: &Options) -> Result<Self, Error> {
        let end = Endpoint::attach(segment, options, &SENDERS)?;
        // Receivers can be anywhere; nobody forgets their sleepers (each
        // endpoint's are settled through its tally instead).
        Ok(Self { end: Arc::new(end) })
    }

    /// Receives a message if one is waiting, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is waiting,
    /// [`TryRecvError::Disconnected`] if none is waiting and every sender
    /// that attached is gone.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let stuck = match self.pop() {
            Ok(value) => return Ok(value),
            Err(Attempt::Disconnected) => return Err(TryRecvError::Disconnected),
            Err(Attempt::Edge(stuck)) => stuck,
        };
        let end = &self.end;
        if end.peer_gone_or_dead() {
            return self.pop_after_disconnect();
        }
        // A dead claimer's cell: free it, and look once more.
        if stuck.is_some_and(|stuck| end.rescue(stuck)) {
            if let Ok(value) = self.pop() {
                return Ok(value);
            }
        }
        Err(TryRecvError::Empty)
    }

    /// Receives a message, waiting until one arrives.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is empty and every sender that
    /// attached is gone: detached, or its process dead (noticed within a
    /// second). Before any sender has attached, it waits.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if nothing arrived in time,
    /// [`RecvTimeoutError::Disconnected`] as for [`recv`](Self::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        // A message ready now needs no clock.
        if let Ok(value) = self.pop() {
            return Ok(value);
        }
        self.recv_until(Instant::now().checked_add(timeout))
    }

    #[inline]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let end = &*self.end;
        let wait = Wait {
            spin: end.link.spin,
            deadline,
        };
        let stuck = core::cell::Cell::new(None);
        let poll = |phase| match self.pop() {
            // Every sender is gone: one last look, freeing what a dead one
            // left claimed. Asked only when about to sleep or just woken:
            // it reads the senders' half of the endpoint table, too much for
            // every spinning poll.
            Err(Attempt::Edge(_)) if phase == Phase::Announced && end.link.peer_gone() => {
                Some(self.pop_after_disconnect())
            }
            Err(Attempt::Edge(found)) => {
                stuck.set(found);
                None
            }
            Err(Attempt::Disconnected) => Some(Err(TryRecvError::Disconnected)),
            Ok(value) => Some(Ok(value)),
        };
        let check = || {
            if let Some(found) = stuck.take() {
                end.rescue(found);
            }
            end.peer_gone_or_dead().then(|| self.pop_after_disconnect())
        };
        match block_on_tallied(
            &end.control().not_empty,
            end.tally(),
            end.link.barrier,
            wait,
            poll,
            check,
        ) {
            Blocked::Done(Ok(value)) => Ok(value),
            Blocked::Done(Err(_)) => Err(RecvTimeoutError::Disconnected),
            Blocked::TimedOut => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Every sender is gone: what they published is still delivered, after
    /// freeing any cell a dead one left claimed in front of it.
    #[cold]
    fn pop_after_disconnect(&self) -> Result<T, TryRecvError> {
        // Each rescue frees one cell; a hostile segment could claim cells
        // forever, so the rescues are bounded by what the queue holds.
        for _ in 0..=self.end.queue.capacity() {
            match self.pop() {
                Ok(value) => return Ok(value),
                Err(Attempt::Edge(Some(stuck))) if self.end.rescue(stuck) => {}
                Err(_) => return Err(TryRecvError::Disconnected),
            }
        }
        Err(TryRecvError::Disconnected)
    }

    #[inline]
    fn pop(&self) -> Result<T, Attempt> {
        let end = &*self.end;
        // Now and then, look for senders that died (to free their slots and
        // take their sleepers off `not_full`, which would otherwise make
        // every receive ring), even if the queue never runs empty.
        if probe_now() {
            end.peer_gone_or_dead();
        }
        if end.link.is_poisoned() {
            return Err(Attempt::Disconnected);
        }
        match end.queue.pop(end.who) {
            Ok(value) => {
                end.control().not_full.notify(end.link.barrier);
                Ok(value)
            }
            Err(PopError::Empty(stuck)) => Err(Attempt::Edge(stuck)),
            Err(PopError::Corrupt) => {
                end.link.poison();
                Err(Attempt::Disconnected)
            }
        }
    }

    /// Receives as many waiting messages as fit in `out`, in order, without
    /// blocking, waking sleeping senders once. Returns how many (at least
    /// 1, or 0 if `out` is empty).
    ///
    /// # Errors
    ///
    /// As for [`try_recv`](Self::try_recv).
    pub fn try_recv_batch(&self, out: &mut [T]) -> Result<usize, TryRecvError> {
        let Some((first, rest)) = out.split_first_mut() else {
            return Ok(0);
        };
        *first = self.try_recv()?;
        Ok(1 + self.take_more(rest))
    }

    /// Receives as many waiting messages as fit in `out`, waiting until at
    /// least one is there. Returns how many (at least 1, or 0 if `out` is
    /// empty).
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv).
    pub fn recv_batch(&self, out: &mut [T]) -> Result<usize, RecvError> {
        let Some((first, rest)) = out.split_first_mut() else {
            return Ok(0);
        };
        *first = self.recv()?;
        Ok(1 + self.take_more(rest))
    }

    /// Takes what is ready into `out`, then wakes sleeping senders once.
    fn take_more(&self, out: &mut [T]) -> usize {
        let end = &*self.end;
        let mut taken = 0;
        for slot in out.iter_mut() {
            match end.queue.pop(end.who) {
                Ok(value) => *slot = value,
                Err(_) => break,
            }
            taken += 1;
        }
        if taken > 0 {
            end.control().not_full.notify(end.link.barrier);
        }
        taken
    }

    /// A blocking iterator: yields messages until the channel is empty and
    /// every sender is gone.
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
            /// Messages the channel holds (the requested capacity, rounded
            /// up to a power of two, at least 2).
            pub fn capacity(&self) -> usize {
                self.end.queue.capacity() as usize
            }

            /// Messages waiting now (a hint: other endpoints change it at
            /// any moment).
            pub fn len(&self) -> usize {
                self.end.queue.len() as usize
            }

            /// Whether no message is waiting now (a hint).
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether the channel is full now (a hint).
            pub fn is_full(&self) -> bool {
                self.len() == self.capacity()
            }

            /// The channel's name, as given when creating or opening it.
            pub fn name(&self) -> &str {
                self.end.link.segment.name()
            }

            /// The channel's counters, read from the segment. The high-water
            /// mark is sampled by senders every few hundred sends and on
            /// refusals, so it may miss a short peak.
            pub fn stats(&self) -> Stats {
                let end = &self.end;
                let (sent, received) = end.queue.counts();
                let counters = &end.control().counters;
                Stats {
                    sent,
                    received,
                    len: end.queue.len(),
                    capacity: end.queue.capacity(),
                    high_water: counters.high_water.load(Ordering::Relaxed),
                    full: counters.refusals.load(Ordering::Relaxed),
                    endpoints: end.link.endpoints(|i| {
                        if RECEIVERS.slots.contains(&i) {
                            "receiver"
                        } else {
                            "sender"
                        }
                    }),
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

crate::iter::receiver_iterators!();
