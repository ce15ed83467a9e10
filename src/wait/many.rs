//! Waiting on several channels at once: the protocol of [`block_on`] over
//! many doorbells, with one `futex_waitv` for the sleep.
//!
//! The waiter announces itself on every doorbell (its count raised there,
//! and in the endpoint's tally where one is kept), issues one heavy barrier
//! per barrier kind among them, then re-checks every operation before it
//! sleeps on all the futex words together, each with the value it read
//! before the barrier. A publish on any channel either happened before the
//! barrier, and the re-check sees it, or sees the raised count and rings,
//! which changes the word the waiter sleeps on: the wait returns at once or
//! is woken. Publishers are unchanged: they ring a doorbell as they would
//! for a single waiter.
//!
//! [`block_on`]: super::block_on

use super::futex;
use super::{decrement, Barrier, Doorbell, Wait, LIVENESS_INTERVAL, UNSURE_SLEEP};
use crate::primitive::{AtomicU32, Ordering};
use core::ops::Deref;
use core::time::Duration;
use std::time::Instant;

/// One operation a waiter on many may complete: a receive or a send on one
/// endpoint.
pub(crate) trait Watch {
    /// The doorbell this operation's side sleeps on.
    fn bell(&self) -> &Doorbell;
    /// The endpoint's own count of its sleepers on [`bell`](Self::bell),
    /// where others sleep there too (see [`super::block_on`]).
    fn tally(&self) -> Option<&AtomicU32>;
    /// The endpoint's half of the barrier pair.
    fn barrier(&self) -> Barrier;
    /// How long the endpoint spins before it sleeps.
    fn spin(&self) -> Duration;
    /// Whether the operation would complete now without waiting, or fail
    /// at once because the other side is gone. Cheap: no system call.
    fn ready(&self) -> bool;
    /// After a sleep: whether the other side died (probing liveness,
    /// rate-limited), which makes the operation ready.
    fn check(&self) -> bool;
}

/// Waits until one of `ops` is ready, and returns its index; `None` once
/// the deadline passes with none ready. `start` is where each look begins,
/// so that a caller rotating it serves every operation in turn.
///
/// Announces the waiter only on doorbells not already announced by an
/// earlier operation in `ops` (two operations can share one: an mpmc
/// channel's senders), so each count is raised once per waiter.
pub(crate) fn block_on_any<W>(ops: &[W], start: usize, wait: Wait) -> Option<usize>
where
    W: Deref<Target: Watch>,
{
    let look = || first_ready(ops, start);
    if let Some(i) = look() {
        return Some(i);
    }
    let expired = || wait.deadline.is_some_and(|d| d <= Instant::now());
    if expired() {
        return give_up(ops, start);
    }
    let spin_end = Instant::now() + wait.spin.min(LIVENESS_INTERVAL);
    let spin_end = wait.deadline.map_or(spin_end, |d| d.min(spin_end));
    let mut polls = 0u32;
    while Instant::now() < spin_end {
        for _ in 0..16 {
            crate::primitive::spin_hint();
            if let Some(i) = look() {
                return Some(i);
            }
        }
        polls = polls.wrapping_add(16);
        if polls % 128 == 0 {
            crate::primitive::yield_now();
        }
    }
    if expired() {
        return give_up(ops, start);
    }
    // Announced, on each doorbell once. Relaxed: ordered against the
    // re-check by the heavy barriers below, as in `block_on`.
    let bells: Vec<usize> = (0..ops.len())
        .filter(|&i| {
            let bell: *const Doorbell = ops[i].bell();
            !ops[..i].iter().any(|op| core::ptr::eq(op.bell(), bell))
        })
        .collect();
    for &i in &bells {
        if let Some(tally) = ops[i].tally() {
            // Relaxed: read only by a survivor after our death.
            tally.fetch_add(1, Ordering::Relaxed);
        }
        ops[i].bell().sleepers.fetch_add(1, Ordering::Relaxed);
    }
    let result = sleep(ops, &bells, start, wait.deadline);
    for &i in &bells {
        decrement(&ops[i].bell().sleepers);
        if let Some(tally) = ops[i].tally() {
            decrement(tally);
        }
    }
    result
}

/// The first ready operation, looking from `start` round.
fn first_ready<W: Deref<Target: Watch>>(ops: &[W], start: usize) -> Option<usize> {
    let n = ops.len();
    (0..n).map(|k| (start + k) % n).find(|&i| ops[i].ready())
}

/// The deadline has passed: one last look, the liveness checks, time out.
fn give_up<W: Deref<Target: Watch>>(ops: &[W], start: usize) -> Option<usize> {
    first_ready(ops, start).or_else(|| {
        let n = ops.len();
        (0..n).map(|k| (start + k) % n).find(|&i| ops[i].check())
    })
}

/// The announced waiter's loop, as `wait::sleep`, over the doorbells of
/// `ops` at the indices `bells`.
fn sleep<W: Deref<Target: Watch>>(
    ops: &[W],
    bells: &[usize],
    start: usize,
    deadline: Option<Instant>,
) -> Option<usize> {
    // Acquire: pairs with `ring`'s Release bump.
    let read = |i: &usize| (ops[*i].bell(), ops[*i].bell().seq.load(Ordering::Acquire));
    let mut words: Vec<(&Doorbell, u32)> = bells.iter().map(read).collect();
    // SYNC POINT with every publisher's `notify`: one heavy barrier per
    // kind among the endpoints (a membarrier covers every channel; a fence
    // pairs with fences).
    let mut exact = true;
    let mut issued: Vec<Barrier> = Vec::with_capacity(2);
    for &i in bells {
        let barrier = ops[i].barrier();
        if !issued.contains(&barrier) {
            exact &= barrier.heavy();
            issued.push(barrier);
        }
    }
    // Past the kernel's limit, or on a kernel without futex_waitv, the
    // wait below returns within `futex::POLL_INTERVAL`: polling, bounded.
    loop {
        for (bell, _) in &words {
            // AcqRel: SYNC POINT `signalled` (see the module notes of `wait`).
            bell.signalled.swap(0, Ordering::AcqRel);
        }
        if let Some(i) = first_ready(ops, start) {
            return Some(i);
        }
        let timeout = match deadline {
            None => LIVENESS_INTERVAL,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(LIVENESS_INTERVAL),
                _ => return give_up(ops, start),
            },
        };
        let timeout = if exact {
            timeout
        } else {
            timeout.min(UNSURE_SLEEP)
        };
        futex::wait_any(&words, timeout);
        // Awake. Acquire: as above; read before the next re-check.
        for (bell, seq) in &mut words {
            *seq = bell.seq.load(Ordering::Acquire);
        }
        let n = ops.len();
        if let Some(i) = (0..n).map(|k| (start + k) % n).find(|&i| ops[i].check()) {
            return Some(i);
        }
    }
}
