//! The peer watch: what an endpoint knows of its channel besides its rings.
//!
//! A [`Link`] answers one question cheaply, on every operation that finds
//! nothing to do: is the other side gone? "Gone" means that an endpoint of
//! the other side announced itself once, and every slot of that side is
//! vacant now. The answer "there" is cached against the other side's
//! version in the [`Roster`], so that it costs one load of a line nobody
//! writes unless the other side changed; the table is read again only then,
//! and on every look while the answer is "gone" (a peer joining again is
//! in the table before it bumps the version).
//!
//! A peer that died without leaving still holds its slot's word. Finding
//! that out costs a system call per slot (its lock), so it is done at most
//! once per [`LIVENESS_INTERVAL`] per endpoint
//! ([`peer_gone_or_dead`](Link::peer_gone_or_dead)), by the calls that
//! found nothing to do and are about to fail, sleep or give up; a dead
//! peer's slot is then reaped, which bumps the version, and every other
//! endpoint's cached answer is refreshed by its next cheap look.
//!
//! The link also says whether the endpoint may be used at all: not once
//! its rings were found corrupt, and not in a child process that inherited
//! it through `fork` (see [`fork`](super::fork)). Both are one comparison.
//!
//! # Notes about memory ordering
//!
//! The cached answer is shared by the threads of one endpoint (mpmc). It is
//! stored with Release after the table was read with Acquire, and loaded
//! with Acquire: a thread that acts on another thread's "gone" (by looking
//! at the rings once more, to deliver what the peer published before it
//! left) has seen what that thread saw, the peer's last publish included.

use super::fork;
use super::locks::Locks;
use super::roster::{self, EndpointSlot, Roster, Side};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::wait::Barrier;
#[cfg(not(loom))]
use crate::wait::LIVENESS_INTERVAL;
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64 as LocalU64, Ordering::Relaxed};
use core::time::Duration;

/// [`Link::watch`] before the first look.
const NEVER: u64 = u64::MAX;
/// [`Link::token`] once the rings were found corrupt; no process has it.
const POISONED: u64 = u64::MAX;

/// One endpoint's view of the channel it is attached to.
pub struct Link {
    roster: NonNull<Roster>,
    /// The other side's version word in the roster: read on every look.
    peer_version: NonNull<AtomicU32>,
    table: NonNull<EndpointSlot>,
    table_len: usize,
    /// Each side's slots, indexed by [`Side`].
    slots: [Range<usize>; 2],
    side: Side,
    /// Our slot, and the word we wrote into it.
    slot: usize,
    word: u64,
    /// The slot locks of our open file description.
    locks: Locks,
    pub(crate) barrier: Barrier,
    /// How long a blocked call spins before it sleeps.
    pub(crate) spin: Duration,
    /// This process's token word (see [`fork`]).
    page: &'static LocalU64,
    /// The token of the process that attached us, or [`POISONED`]. Relaxed:
    /// a flag of this endpoint's alone.
    token: LocalU64,
    /// The other side's version at our last look, shifted left by one, and
    /// in bit 0 whether that look found the other side gone; or [`NEVER`],
    /// which no version matches.
    watch: AtomicU64,
    /// When the other side's liveness was last probed (see
    /// [`probe_due`]): nanoseconds since a process-wide epoch, plus one.
    last_probe: LocalU64,
}

// SAFETY: the pointers lead into the segment's mapping (or a test's heap
// memory), which the owner of the link keeps alive and which is reached only
// through atomics; the rest is atomics and plain data.
unsafe impl Send for Link {}
// SAFETY: as for `Send`: every method takes `&self` and touches only atomics.
unsafe impl Sync for Link {}

/// How a [`Link`] is made: where the roster and the table are, whose slots
/// are whose, and which slot is ours.
pub(crate) struct Place<'a> {
    pub(crate) roster: &'a Roster,
    pub(crate) table: &'a [EndpointSlot],
    pub(crate) slots: [Range<usize>; 2],
    pub(crate) side: Side,
    pub(crate) slot: usize,
    /// The word we wrote into our slot.
    pub(crate) word: u64,
    pub(crate) locks: Locks,
}

impl Link {
    /// The link of the endpoint that holds `place.slot`.
    ///
    /// # Safety
    ///
    /// `place.roster` and `place.table` must stay valid for as long as the
    /// link exists (the owner keeps the mapping alive), and `place.locks`'s
    /// description must hold our slot's lock.
    pub(crate) unsafe fn new(place: Place<'_>, barrier: Barrier, spin: Duration) -> Self {
        let page = fork::page();
        Self {
            roster: NonNull::from(place.roster),
            peer_version: NonNull::from(place.roster.version_word(place.side.peer())),
            table: NonNull::from(place.table).cast(),
            table_len: place.table.len(),
            slots: place.slots,
            side: place.side,
            slot: place.slot,
            word: place.word,
            locks: place.locks,
            barrier,
            spin,
            page,
            token: LocalU64::new(fork::current(page)),
            watch: AtomicU64::new(NEVER),
            last_probe: LocalU64::new(0),
        }
    }

    fn roster(&self) -> &Roster {
        // SAFETY: `new`'s contract keeps it valid while `self` lives.
        unsafe { self.roster.as_ref() }
    }

    pub(crate) fn table(&self) -> &[EndpointSlot] {
        // SAFETY: `new`'s contract keeps `table_len` slots valid while `self` lives.
        unsafe { core::slice::from_raw_parts(self.table.as_ptr(), self.table_len) }
    }

    /// Whether this endpoint may be used: its rings were not found corrupt,
    /// and this is the process that attached it.
    #[inline(always)]
    pub(crate) fn usable(&self) -> bool {
        self.token.load(Relaxed) == self.page.load(Relaxed)
    }

    /// Whether this process is a forked child of the one that attached the
    /// endpoint (and so must leave the parent's role alone).
    pub(crate) fn forked(&self) -> bool {
        let token = self.token.load(Relaxed);
        token != POISONED && token != fork::current(self.page)
    }

    /// Records that the rings are corrupt: the endpoint reports
    /// disconnection from now on, even if the segment is repaired.
    #[cold]
    pub(crate) fn poison(&self) {
        self.token.store(POISONED, Relaxed);
    }

    /// Says that this endpoint is attached and ready (see
    /// [`Roster::announce`]).
    pub(crate) fn announce(&self) {
        self.roster().announce(self.side);
    }

    /// Gives up our slot and tells the other side (see [`roster::leave`]).
    pub(crate) fn leave(&self) {
        roster::leave(
            self.roster(),
            self.table(),
            self.side,
            &self.locks,
            self.slot,
            self.word,
        );
    }

    /// Whether the other side is gone: it announced itself once, and every
    /// one of its slots is vacant. One load and one comparison while the
    /// other side does not change (and is there); no system call ever.
    #[inline]
    pub(crate) fn peer_gone(&self) -> bool {
        // SAFETY: a word of the roster, which `new`'s contract keeps valid.
        // Acquire: SYNC POINT `roster` (see `roster`).
        let version = unsafe { self.peer_version.as_ref() }.load(Ordering::Acquire);
        // Acquire: see the module notes.
        let watch = self.watch.load(Ordering::Acquire);
        // The cached "there" for this version: the common case, in one
        // comparison (`look` stores the gone bit as 1).
        if watch == u64::from(version) << 1 {
            return false;
        }
        self.peer_gone_slow(version)
    }

    /// A fresh look. "Gone" is never answered from the cache: a joining
    /// peer writes its slot word before it bumps the version, so between
    /// the two it is attached (tools list it; it may already publish) while
    /// the version still says gone. Reading the table again costs a few
    /// loads, on a channel that is disconnected or changing anyway.
    #[cold]
    #[inline(never)]
    fn peer_gone_slow(&self, version: u32) -> bool {
        self.look(version)
    }

    /// Reads the other side's slots, as of `version` or later.
    fn look(&self, version: u32) -> bool {
        let peer = self.side.peer();
        let gone =
            self.roster().ever(peer) && self.slots_of(peer).iter().all(|entry| entry.word() == 0);
        // Release: see the module notes.
        self.watch
            .store(u64::from(version) << 1 | u64::from(gone), Ordering::Release);
        gone
    }

    /// Like [`peer_gone`](Self::peer_gone), but first, at most once per
    /// [`LIVENESS_INTERVAL`], reaps the other side's slots whose holders
    /// died, letting `clean` tidy after each (see [`roster::reap`]).
    #[cold]
    pub(crate) fn peer_gone_or_dead(&self, clean: impl Fn(usize)) -> bool {
        if probe_due(&self.last_probe) {
            let peer = self.side.peer();
            for slot in self.slots[peer as usize].clone() {
                self.reap(slot, &clean);
            }
        }
        self.peer_gone()
    }

    /// Reaps `slot` if its holder died (see [`roster::reap`]). Never our own
    /// slot, whose lock our own description holds.
    pub(crate) fn reap(&self, slot: usize, clean: impl FnOnce(usize)) -> bool {
        if slot == self.slot {
            return false;
        }
        let side = self.side_of(slot);
        roster::reap(self.roster(), self.table(), side, &self.locks, slot, clean)
    }

    /// Takes `slot`'s lock if nobody holds it (its holder is dead, or it is
    /// vacant), runs `f`, and gives the lock back. Returns whether `f` ran.
    /// Never our own slot.
    pub(crate) fn with_dead_slot(&self, slot: usize, f: impl FnOnce()) -> bool {
        if slot == self.slot || slot >= self.table_len {
            return false;
        }
        if !matches!(self.locks.try_take(slot), Ok(true)) {
            return false;
        }
        f();
        self.locks.give(slot);
        true
    }

    /// The side whose slots include `slot`.
    pub(crate) fn side_of(&self, slot: usize) -> Side {
        if self.slots[Side::Sender as usize].contains(&slot) {
            Side::Sender
        } else {
            Side::Receiver
        }
    }

    fn slots_of(&self, side: Side) -> &[EndpointSlot] {
        self.table()
            .get(self.slots[side as usize].clone())
            .unwrap_or_default()
    }
}

/// Whether a liveness probe last made at `last` is due again: at most one
/// per [`LIVENESS_INTERVAL`], since each costs system calls. If so, records
/// now as the last.
///
/// Asked every few hundred sends, so it reads the coarse monotonic clock
/// (the kernel's tick, from the vDSO: a few nanoseconds, no `rdtsc`), whose
/// milliseconds of resolution a 100 ms interval does not notice.
#[cfg(not(loom))]
pub(crate) fn probe_due(last: &LocalU64) -> bool {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one `timespec`, which `now` is. (Not
    // rustix's: its own vDSO lookup is at odds with valgrind.)
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    let now = (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
        .max(1);
    // Relaxed: a rate limit of this endpoint's own; a race between its
    // threads costs at most one extra probe.
    let then = last.load(Relaxed);
    let due = then == 0 || now.saturating_sub(then) >= LIVENESS_INTERVAL.as_nanos() as u64;
    if due {
        last.store(now, Relaxed);
    }
    due
}

/// Under loom there is no time: every probe is due.
#[cfg(loom)]
pub(crate) fn probe_due(_last: &LocalU64) -> bool {
    true
}
