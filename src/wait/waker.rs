//! Async waiting: one thread per process sleeps on the doorbells of every
//! pending future, with one `futex_waitv`, and wakes each future whose
//! doorbell rang.
//!
//! A future that finds its operation would wait does what a blocked call
//! does before it sleeps: it announces itself on the doorbell (its count
//! raised there, and in its endpoint's tally where one is kept), reads the
//! futex word, issues the heavy barrier, and looks again ([`poll_op`]).
//! Then, instead of sleeping, it hands the word and the value it read to
//! the waiter thread with its `Waker`, and returns `Pending`. From the
//! barrier on, a publisher sees the raised count and rings, which changes
//! the word: the waiter thread, sleeping on it, wakes and wakes the
//! future; or, if the word changed before the thread looked, the thread
//! finds it changed and wakes the future at once. Each later poll reads the
//! word again before it looks (as a woken sleeper does), so the one
//! barrier covers the whole wait. The count is dropped when the future
//! completes or is dropped, never left behind.
//!
//! The thread also wakes every future at least once per
//! [`LIVENESS_INTERVAL`]: its poll then probes the peer's liveness, so a
//! dead peer ends a pending future within a second, as it ends a blocked
//! call. Past the 127 words one `futex_waitv` takes besides the thread's
//! own, the rest are polled every millisecond.

use super::futex::{self, WAITV_MAX};
use super::{decrement, Barrier, Doorbell, LIVENESS_INTERVAL, UNSURE_SLEEP};
use crate::primitive::{AtomicU32, Ordering};
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

/// What a pending future waits on: its endpoint's doorbell, tally and
/// barrier.
#[derive(Clone, Copy)]
pub(crate) struct Bell<'a> {
    pub(crate) bell: &'a Doorbell,
    pub(crate) tally: Option<&'a AtomicU32>,
    pub(crate) barrier: Barrier,
}

/// A future's registration: announced on its doorbell since its first
/// `Pending`, and handed to the waiter thread after each.
///
/// It must be dropped before the endpoint whose doorbell it names (the
/// futures hold a borrow of the endpoint, or own it and drop this first).
pub(crate) struct Registration {
    bell: NonNull<Doorbell>,
    tally: Option<NonNull<AtomicU32>>,
    /// The futex word's value when the future last looked.
    seq: u32,
    /// This registration's key in the waiter thread's table.
    id: u64,
    /// The heavy barrier was issued; if not, a publish may go unseen, and
    /// the thread polls this word.
    exact: bool,
}

// SAFETY: the pointers are to atomics in a shared mapping, which any
// thread may use; the future holding the registration keeps the mapping
// alive (see the type's documentation).
unsafe impl Send for Registration {}
// SAFETY: as for `Send`: `&Registration` allows nothing but reads of ids.
unsafe impl Sync for Registration {}

impl Registration {
    fn bell(&self) -> &Doorbell {
        // SAFETY: the endpoint, and so the mapping, outlives the
        // registration (see the type's documentation).
        unsafe { self.bell.as_ref() }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        waiter().forget(self.id);
        decrement(&self.bell().sleepers);
        if let Some(tally) = self.tally {
            // SAFETY: as in `bell`.
            decrement(unsafe { tally.as_ref() });
        }
    }
}

/// One step of a future's operation: `attempt` it; if it would wait,
/// announce the future on `bell` (the first time), look again, and hand
/// the doorbell to the waiter thread with `cx`'s waker.
///
/// `attempt` returns `None` when the operation would wait. It runs the
/// endpoint layer's non-blocking rule, which probes the peer's liveness
/// (rate-limited) when it finds nothing to do.
pub(crate) fn poll_op<R>(
    bell: Bell<'_>,
    registration: &mut Option<Registration>,
    cx: &mut Context<'_>,
    mut attempt: impl FnMut() -> Option<R>,
) -> Poll<R> {
    if let Some(reg) = registration.as_mut() {
        // Woken, or polled again: as a woken sleeper, read the word, then
        // look. Acquire: pairs with `ring`'s Release bump. AcqRel: SYNC
        // POINT `signalled` (see the module notes of `wait`).
        reg.seq = reg.bell().seq.load(Ordering::Acquire);
        reg.bell().signalled.swap(0, Ordering::AcqRel);
    }
    if let Some(r) = attempt() {
        *registration = None;
        return Poll::Ready(r);
    }
    let reg = match registration {
        Some(reg) => reg,
        None => {
            // Announced. Relaxed: ordered against the re-check by the
            // heavy barrier, as in `block_on`. The tally first (see there).
            if let Some(tally) = bell.tally {
                tally.fetch_add(1, Ordering::Relaxed);
            }
            bell.bell.sleepers.fetch_add(1, Ordering::Relaxed);
            let reg = registration.insert(Registration {
                bell: NonNull::from(bell.bell),
                tally: bell.tally.map(NonNull::from),
                // Acquire: as above.
                seq: bell.bell.seq.load(Ordering::Acquire),
                id: waiter().next_id(),
                exact: true,
            });
            // SYNC POINT with the publishers' `notify`. A barrier that
            // could not be issued leaves the waiter thread to poll this
            // word every `UNSURE_SLEEP`.
            reg.exact = bell.barrier.heavy();
            reg.bell().signalled.swap(0, Ordering::AcqRel);
            if let Some(r) = attempt() {
                *registration = None;
                return Poll::Ready(r);
            }
            registration.as_mut().expect("just inserted")
        }
    };
    waiter().queue(reg, cx.waker());
    Poll::Pending
}

/// The waiter thread's table: the futures waiting, and its own futex word.
struct Waiter {
    state: Mutex<State>,
    /// Bumped whenever a future is queued, so that the thread, which
    /// sleeps on it too, wakes to take the new word into its wait.
    queued: AtomicU32,
}

struct State {
    /// Pending futures by registration id.
    entries: HashMap<u64, Entry>,
    next_id: u64,
    /// The process the thread runs in: after `fork`, the child has no
    /// waiter thread (threads do not survive fork), and starts its own.
    pid: u32,
}

/// A pending future: the word to watch, the value it had, whom to wake.
struct Entry {
    word: NonNull<AtomicU32>,
    seq: u32,
    waker: Waker,
    /// When the future was queued: it is woken for a liveness look one
    /// [`LIVENESS_INTERVAL`] later, if its word has not changed by then.
    since: Instant,
    /// Whether its barrier was issued (see [`Registration`]).
    exact: bool,
}

// SAFETY: the word is an atomic in a mapping the future keeps alive while
// the entry exists (a registration removes its entry before it is dropped,
// and the thread reads words only while it holds the table's lock).
unsafe impl Send for Entry {}

fn waiter() -> &'static Waiter {
    static WAITER: OnceLock<Waiter> = OnceLock::new();
    WAITER.get_or_init(|| Waiter {
        state: Mutex::new(State {
            entries: HashMap::new(),
            next_id: 0,
            pid: 0,
        }),
        queued: AtomicU32::new(0),
    })
}

impl Waiter {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The table stays consistent across a panic in a waker's `clone`.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self) -> u64 {
        let mut state = self.lock();
        state.next_id += 1;
        state.next_id
    }

    /// Hands `reg`'s word to the thread, to wake `waker` when it changes.
    fn queue(&'static self, reg: &Registration, waker: &Waker) {
        let mut state = self.lock();
        let pid = std::process::id();
        if state.pid != pid {
            // First use in this process (or in a forked child, which
            // inherited the table but not the thread): start the thread.
            state.pid = pid;
            state.entries.clear();
            std::thread::Builder::new()
                .name("shmchan-waiter".into())
                .spawn(move || self.run())
                .expect("start shmchan's async waiter thread");
        }
        let entry = Entry {
            word: NonNull::from(&reg.bell().seq),
            seq: reg.seq,
            waker: waker.clone(),
            since: Instant::now(),
            exact: reg.exact,
        };
        state.entries.insert(reg.id, entry);
        drop(state);
        // Release: the thread's Acquire load of `queued`, before it takes
        // the lock again, pairs with this.
        self.queued.fetch_add(1, Ordering::Release);
        futex::wake_word(&self.queued);
    }

    /// Forgets registration `id`'s entry, if the thread has not already.
    fn forget(&self, id: u64) {
        self.lock().entries.remove(&id);
    }

    /// The thread: wake the futures whose words changed or whose liveness
    /// look is due; sleep on the rest and on `queued`.
    fn run(&'static self) {
        let mut due: Vec<Waker> = Vec::new();
        let mut words: Vec<(*const AtomicU32, u32)> = Vec::with_capacity(WAITV_MAX);
        loop {
            // Acquire: pairs with `queue`'s Release bump. Read before the
            // table, so a future queued after this look changes the word.
            let queued = self.queued.load(Ordering::Acquire);
            let mut state = self.lock();
            if state.pid != std::process::id() {
                return; // a stale thread cannot exist, but never serve two
            }
            let now = Instant::now();
            let mut next = LIVENESS_INTERVAL;
            let mut poll = state.entries.len() >= WAITV_MAX;
            state.entries.retain(|_, entry| {
                // SAFETY: see `Entry`: the lock is held.
                let seq = unsafe { entry.word.as_ref() }.load(Ordering::Acquire);
                let age = now.saturating_duration_since(entry.since);
                if seq != entry.seq || age >= LIVENESS_INTERVAL {
                    due.push(entry.waker.clone());
                    false
                } else {
                    next = next.min(LIVENESS_INTERVAL - age);
                    poll |= !entry.exact;
                    true
                }
            });
            words.clear();
            words.push((&self.queued as *const AtomicU32, queued));
            words.extend(
                state
                    .entries
                    .values()
                    .take(WAITV_MAX - 1)
                    .map(|e| (e.word.as_ptr() as *const AtomicU32, e.seq)),
            );
            if poll {
                // Past futex_waitv's limit some words are polled; a missing
                // barrier needs polling too, until its future completes.
                next = next.min(futex::POLL_INTERVAL.max(UNSURE_SLEEP));
            }
            drop(state);
            for waker in due.drain(..) {
                waker.wake();
            }
            // SAFETY: each word was mapped when read under the lock above;
            // one unmapped since makes the call return (see `wait_words`).
            unsafe { futex::wait_words(&words, next) };
        }
    }
}
