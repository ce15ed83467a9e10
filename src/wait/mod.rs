//! Blocking: spin for a while, then sleep on a futex word in the segment.
//!
//! A [`Doorbell`] is two words in shared memory: a futex word that every
//! ring bumps, and a count of the waiters that may be asleep. The publishing
//! side ([`Doorbell::notify`]) pays one load of the count per publish and a
//! syscall only when someone sleeps, so a busy channel makes no syscalls.
//!
//! # The waiter's states
//!
//! A waiter in [`block_on`] moves through:
//!
//! - **spinning**: polls its condition, pausing between polls and yielding
//!   the core now and then, until the spin time is over;
//! - **announced**: adds itself to `sleepers`, reads `seq`, and issues the
//!   heavy half of the [`Barrier`];
//! - **re-checking**: polls once more; a publish that happened before the
//!   barrier is seen here, and one that happens after it sees the announcement
//!   and rings;
//! - **asleep**: `FUTEX_WAIT` on `seq` with the value read when announcing,
//!   so a ring between the re-check and the sleep makes the wait return at
//!   once. The sleep is bounded by the deadline and by [`LIVENESS_INTERVAL`],
//!   after which the waiter checks that its peer is alive;
//! - **awake**: reads `seq` again, lets its caller probe the peer, and goes
//!   back to re-checking, still announced: the one barrier issued when it
//!   announced itself covers every later publish, so a long wait costs one
//!   membarrier, not one per liveness interval. It leaves `sleepers` only
//!   when the wait ends.
//!
//! This is the order DESIGN §9 asks for ("raise the flag, fence, re-check,
//! then sleep"); raising the flag after the check is the lost wake-up it
//! warns about.
//!
//! # Notes about memory ordering
//!
//! - `sleepers`: the waiter's increment and the publisher's load are both
//!   `Relaxed`; what orders them against the index store and the re-check is
//!   the barrier pair (publisher: `light`, waiter: `heavy`). SYNC POINT:
//!   publisher `index.store; light(); sleepers.load` against waiter
//!   `sleepers += 1; heavy(); index.load`.
//! - `seq`: bumped with `Release` and read with `Acquire`, so a waiter that
//!   sees a bump also sees what was published before it; the futex compares
//!   it in the kernel, which closes the gap between re-check and sleep.
//! - SYNC POINT `signalled`: a publisher that finds waiters swaps
//!   `signalled` to 1 and rings only if it was 0; every waiter swaps it to 0
//!   before each re-check. Both swaps are `AcqRel` read-modify-writes, so
//!   they are totally ordered. A publisher whose swap finds 1 comes after
//!   the ringing publisher's swap and before every waiter's next clear: that
//!   clear reads its value (a release sequence) and so sees its publish,
//!   and the ring makes sure each waiter gets to that clear, since it
//!   bumped `seq` after the waiter's clear that it read. Without the flag,
//!   every publish between a wake-up and the woken waiter running would
//!   ring again: thousands of wasted syscalls when the waiter shares a CPU.

mod barrier;
mod futex;
mod many;
#[cfg(all(feature = "async", not(loom)))]
mod waker;

#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use barrier::{Barrier, Mode};
pub(crate) use many::{block_on_any, Watch};
#[cfg(all(feature = "async", not(loom)))]
pub(crate) use waker::{poll_op, Bell, Registration};

use crate::primitive::{AtomicU32, Ordering};
use core::time::Duration;
use std::time::Instant;

/// How long a waiter sleeps at most before it checks that its peer lives.
#[cfg(not(loom))]
pub(crate) const LIVENESS_INTERVAL: Duration = Duration::from_millis(100);
/// Under loom there is no time: an untimed wait sleeps until woken, so that
/// a lost wake-up shows up as a deadlock in the model.
#[cfg(loom)]
pub(crate) const LIVENESS_INTERVAL: Duration = Duration::MAX;

/// Polls before a blocked call first reads the clock. None under loom, where each hint is a yield to the
/// model's scheduler and only adds interleavings that say nothing new.
const FIRST_POLLS: u32 = if cfg!(loom) { 0 } else { 64 };

/// The longest a waiter sleeps when its barrier could not be issued.
const UNSURE_SLEEP: Duration = Duration::from_millis(1);

/// A futex word and a sleeper count, for one direction of one ring.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Doorbell {
    /// The futex word. Bumped (wrapping) by every ring; only its changes matter.
    seq: AtomicU32,
    /// Waiters between announcing themselves and waking. Changed by waiters
    /// only (RMW), read by publishers. A scribbled value costs wake-ups or,
    /// at worst, one [`LIVENESS_INTERVAL`] of latency, never a hang.
    sleepers: AtomicU32,
    /// 1 once a publisher has rung for the waiters' current look, 0 once a
    /// waiter looks again: publishers that find it 1 do not ring again, so
    /// a waiter woken but not yet running costs one syscall, not one per
    /// publish. Waiters clear it before every look, so a scribbled value
    /// heals at the next wake-up.
    signalled: AtomicU32,
}

impl Doorbell {
    /// Called by a publisher after its index store: wakes the waiters, if any.
    #[inline]
    pub(crate) fn notify(&self, barrier: Barrier) {
        barrier.light();
        // SYNC POINT with the waiter's announcement (see the module notes).
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.signal();
        }
    }

    /// Rings, unless a publisher already has since the waiters last looked.
    #[cold]
    #[inline(never)]
    fn signal(&self) {
        // AcqRel: SYNC POINT `signalled` (see the module notes).
        if self.signalled.swap(1, Ordering::AcqRel) == 0 {
            self.ring();
        }
    }

    /// Wakes every waiter, whether or not one announced itself. Used when an
    /// endpoint detaches, so a peer asleep on anything notices at once.
    #[cold]
    #[inline(never)]
    pub(crate) fn ring(&self) {
        // Release: pairs with the waiter's Acquire load of `seq`.
        self.seq.fetch_add(1, Ordering::Release);
        futex::wake(self, i32::MAX as u32);
    }

    /// Forgets waiters that can no longer exist. An spsc doorbell has one
    /// possible waiter, the endpoint of one role; a process killed while it
    /// slept left its count behind, which would make every publish ring in
    /// vain. Called by whoever holds that role's slot lock after a death:
    /// the endpoint taking the role over, or the survivor reaping it.
    pub(crate) fn forget_sleepers(&self) {
        // Relaxed: nobody else may sleep here while the caller holds the
        // role's slot lock.
        self.sleepers.store(0, Ordering::Relaxed);
    }

    /// Takes a dead endpoint's sleepers, counted in its `tally`, off the
    /// count (see [`block_on`]). Called with the dead endpoint's slot lock
    /// held (by the survivor reaping it, or the endpoint taking its slot
    /// over), so that no new holder of the slot is counting in the tally
    /// meanwhile; the tally's swap makes a second call a no-op.
    pub(crate) fn settle(&self, tally: &AtomicU32) {
        // Relaxed: the dead process changes neither word any more.
        let dead = tally.swap(0, Ordering::Relaxed);
        if dead != 0 {
            let _ = self
                .sleepers
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(dead))
                });
        }
    }

    /// Waiters counted now (for the loom models' checks).
    #[cfg(loom)]
    pub(crate) fn sleepers(&self) -> u32 {
        self.sleepers.load(Ordering::Relaxed)
    }

    pub(crate) fn seq(&self) -> &AtomicU32 {
        &self.seq
    }
}

/// Where a blocking operation ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Blocked<R> {
    /// `poll` or `check_peer` produced a result.
    Done(R),
    /// The deadline passed first.
    TimedOut,
}

/// How long to spin before sleeping, and until when to wait at all.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wait {
    pub(crate) spin: Duration,
    pub(crate) deadline: Option<Instant>,
}

/// Where a poll comes from; see [`block_on`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The waiter is spinning: a poll may hold out for more than the least
    /// progress (a producer waiting for a chunk of room, say).
    Spinning,
    /// The waiter is announced, about to sleep or just woken: a poll must
    /// accept any progress, since no publish may come to wake it again.
    Announced,
}

/// Waits until `poll` returns `Some`, spinning first, then sleeping on `bell`.
///
/// `poll` tries the operation (and its cheap disconnection checks).
/// `check_peer` is called each time the waiter wakes from a sleep, and once
/// more before the wait times out; it may make system calls (it is where a
/// dead peer is noticed) and should rate-limit itself. Either returning
/// `Some` ends the wait. With a deadline, `poll` has one last look before
/// the wait times out. A deadline that has already passed costs no barrier
/// and no sleep: one more poll, the peer check, and the time-out.
///
/// `tally` is for a doorbell that waiters of many endpoints share (mpmc):
/// while announced, the waiter is also counted there, its endpoint's own
/// count. If the endpoint's process dies asleep, a survivor subtracts the
/// tally from the doorbell's count (see [`Doorbell::settle`]), which would
/// otherwise stay raised for good and make every publish ring.
///
/// The first poll is inlined into the caller: an operation that succeeds at
/// once costs no more than its non-blocking form.
#[inline(always)]
pub(crate) fn block_on<R>(
    bell: &Doorbell,
    tally: Option<&AtomicU32>,
    barrier: Barrier,
    wait: Wait,
    mut poll: impl FnMut(Phase) -> Option<R>,
    check_peer: impl FnMut() -> Option<R>,
) -> Blocked<R> {
    match poll(Phase::Spinning) {
        Some(r) => Blocked::Done(r),
        None => block_on_slow(bell, tally, barrier, wait, poll, check_peer),
    }
}

#[inline(never)]
fn block_on_slow<R>(
    bell: &Doorbell,
    tally: Option<&AtomicU32>,
    barrier: Barrier,
    wait: Wait,
    mut poll: impl FnMut(Phase) -> Option<R>,
    mut check_peer: impl FnMut() -> Option<R>,
) -> Blocked<R> {
    // A passed deadline is found before any spinning; without a deadline
    // the clock is read only after the first polls (a read costs about as
    // much as the wait a ping-pong usually has left by then).
    let checked = match wait.deadline {
        Some(deadline) => {
            let now = Instant::now();
            if deadline <= now {
                return give_up(&mut poll, &mut check_peer);
            }
            Some(now)
        }
        None => None,
    };
    // A burst of polls, one spin hint apart, before the first clock read: a
    // peer that is merely a little behind is caught here at the latency of
    // one hint. (The spsc sender, waiting for room, spaces its own polls
    // out; see `spsc::Producer::has_room`.) None when told not to spin:
    // zero spin sleeps at once, as `Options::spin` says.
    let first_polls = if wait.spin.is_zero() { 0 } else { FIRST_POLLS };
    for _ in 0..first_polls {
        crate::primitive::spin_hint();
        if let Some(r) = poll(Phase::Spinning) {
            return Blocked::Done(r);
        }
    }
    // Spinning longer than a liveness interval would delay noticing a dead
    // peer, which is only probed while asleep.
    let start = checked.unwrap_or_else(Instant::now);
    let spin_end = start + wait.spin.min(LIVENESS_INTERVAL);
    let spin_end = wait.deadline.map_or(spin_end, |d| d.min(spin_end));
    if let Some(r) = spin(spin_end, &mut poll) {
        return Blocked::Done(r);
    }
    if wait
        .deadline
        .is_some_and(|deadline| deadline <= Instant::now())
    {
        return give_up(&mut poll, &mut check_peer);
    }
    // Announced. Relaxed: ordered against the re-check by `heavy` below.
    // The tally first, so that it never counts less than we added to the
    // doorbell (a survivor settling it would then leave a count behind).
    if let Some(tally) = tally {
        // Relaxed: read only by a survivor after our death.
        tally.fetch_add(1, Ordering::Relaxed);
    }
    bell.sleepers.fetch_add(1, Ordering::Relaxed);
    let result = sleep(bell, barrier, wait.deadline, &mut poll, &mut check_peer);
    // Awake for good. Relaxed: a publisher that still sees us rings in vain.
    // Saturating: a survivor may have settled a count it took for a dead
    // endpoint's, or a scribble changed it; a wrapped count would make
    // every publish ring.
    decrement(&bell.sleepers);
    if let Some(tally) = tally {
        decrement(tally);
    }
    result
}

/// The deadline has passed: one last look, the peer check, then time out.
fn give_up<R>(
    poll: &mut impl FnMut(Phase) -> Option<R>,
    check_peer: &mut impl FnMut() -> Option<R>,
) -> Blocked<R> {
    match poll(Phase::Announced).or_else(check_peer) {
        Some(r) => Blocked::Done(r),
        None => Blocked::TimedOut,
    }
}

/// Takes one off `count`, putting it back if it was already 0: a count a
/// survivor settled, or a scribble zeroed, must not wrap round to four
/// billion sleepers (every publish would then ring). One read-modify-write
/// in the usual case, where a compare-and-swap loop would cost two
/// transfers of a line the publishers keep reading.
fn decrement(count: &AtomicU32) {
    // Relaxed: counts of waiters, ordered by the barrier pair, not by this.
    if count.fetch_sub(1, Ordering::Relaxed) == 0 {
        // Relaxed: as above. Meanwhile a publisher may have rung in vain.
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The spinning state: polls until `until`, pausing once between polls and
/// yielding the core now and then.
///
/// Unlike an exponential backoff, the gap between polls stays one `PAUSE`
/// long: a receiver that has caught up with its sender sees the next message
/// as soon as it lands, instead of microseconds later. Yielding every
/// `POLLS_PER_YIELD` polls (a few microseconds) lets a peer on the same core
/// run when the machine is oversubscribed: four mpsc senders sharing one
/// CPU ran at a third of one sender's speed when each yielded only after
/// 1024 polls, and at the same speed with 128. Where nothing else wants
/// the CPU, `sched_yield` returns at once.
fn spin<R>(until: Instant, poll: &mut impl FnMut(Phase) -> Option<R>) -> Option<R> {
    /// Reading the clock costs about as much as a few polls; do it rarely.
    const POLLS_PER_CLOCK_READ: u32 = 64;
    const POLLS_PER_YIELD: u32 = 128;
    let mut polls = 0u32;
    loop {
        if Instant::now() >= until {
            return None;
        }
        for _ in 0..POLLS_PER_CLOCK_READ {
            crate::primitive::spin_hint();
            if let Some(r) = poll(Phase::Spinning) {
                return Some(r);
            }
        }
        polls = polls.wrapping_add(POLLS_PER_CLOCK_READ);
        if polls % POLLS_PER_YIELD == 0 {
            crate::primitive::yield_now();
        }
    }
}

/// The announced waiter's loop: re-checking, asleep, awake, until `poll`
/// or `check_peer` has a result or the deadline passes.
///
/// One heavy barrier covers the whole loop: from it on, every publisher
/// sees the raised `sleepers` and rings, bumping `seq`; so after a wake-up
/// or a timeout it is enough to read `seq` again, look, and sleep on the
/// new value.
fn sleep<R>(
    bell: &Doorbell,
    barrier: Barrier,
    deadline: Option<Instant>,
    poll: &mut impl FnMut(Phase) -> Option<R>,
    check_peer: &mut impl FnMut() -> Option<R>,
) -> Blocked<R> {
    // Acquire: pairs with `ring`'s Release bump.
    let mut seq = bell.seq.load(Ordering::Acquire);
    // SYNC POINT with the publisher's `notify` (see the module notes).
    let exact = barrier.heavy();
    loop {
        // Re-checking, after saying so. AcqRel: SYNC POINT `signalled`.
        bell.signalled.swap(0, Ordering::AcqRel);
        if let Some(r) = poll(Phase::Announced) {
            return Blocked::Done(r);
        }
        let timeout = match deadline {
            None => LIVENESS_INTERVAL,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(LIVENESS_INTERVAL),
                // Even a call that keeps timing out notices a dead peer.
                _ => return check_peer().map_or(Blocked::TimedOut, Blocked::Done),
            },
        };
        // Asleep, unless `seq` moved since it was read.
        let timeout = if exact {
            timeout
        } else {
            timeout.min(UNSURE_SLEEP)
        };
        futex::wait(bell, seq, timeout);
        // Awake. Acquire: as above; read before the next re-check.
        seq = bell.seq.load(Ordering::Acquire);
        if let Some(r) = check_peer() {
            return Blocked::Done(r);
        }
    }
}
