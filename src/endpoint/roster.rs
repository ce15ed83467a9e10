//! Who holds which endpoint slot, and how the other side learns it changed.
//!
//! A segment has a table of endpoint slots, one per role (or mpsc shard,
//! or mpmc attachment), each a 64-bit word: zero when vacant, otherwise the
//! holder's pid (for messages and tools only). A slot is *held* while its
//! byte lock is held (see [`Locks`]): the kernel drops that lock when the
//! holding process dies or calls `exec`, so a non-zero word whose lock is
//! free was left by a dead endpoint. Holding the lock also makes its holder
//! the only one who may change the word: a joining endpoint, and a survivor
//! cleaning up after a dead one, both take the lock first.
//!
//! The [`Roster`] in the control block tells the other side that the table
//! changed without making it read the table: one version word per side,
//! bumped after every change of that side's slots, and one bit per side
//! that is set once an endpoint of that side has announced itself.
//!
//! # Notes about memory ordering
//!
//! - SYNC POINT `slot`: a slot word is written (swapped in on joining,
//!   cleared on leaving or reaping) with Release and read with Acquire, so a
//!   reader that sees a slot vacant also sees everything its last holder
//!   did before leaving (its last publish, in particular).
//! - SYNC POINT `roster`: a change of a side's slots is followed by a
//!   Release increment of that side's version; a watcher loads the version
//!   with Acquire before it reads the slots. A watcher that sees a new
//!   version therefore sees the slot change behind it, and one that saw the
//!   old version looks again when the increment lands.

use super::locks::Locks;
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use core::ops::Range;

/// The two sides of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Receiver = 0,
    Sender = 1,
}

impl Side {
    /// The other side.
    pub(crate) fn peer(self) -> Self {
        match self {
            Self::Receiver => Self::Sender,
            Self::Sender => Self::Receiver,
        }
    }

    /// The side's bit in [`Roster::ever`]: receivers 1, senders 2.
    fn bit(self) -> u32 {
        1 << self as u32
    }

    /// `"sender"` or `"receiver"`, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Receiver => "receiver",
            Self::Sender => "sender",
        }
    }
}

/// The words of the control block that describe the endpoints as a whole.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Roster {
    /// One bit per side ([`Side::bit`]), set the first time an endpoint of
    /// that side announces itself, never cleared: a receiver waits for a
    /// first sender, a sender fills the ring before a first receiver.
    ever: AtomicU32,
    /// Per side: bumped (wrapping) after every change of that side's slots.
    /// Only changes matter; a scribbled value costs a look at the table.
    versions: [AtomicU32; 2],
}

impl Roster {
    /// Whether an endpoint of `side` ever announced itself. Acquire: pairs
    /// with the Release `fetch_or` in [`announce`](Self::announce).
    #[inline]
    pub(crate) fn ever(&self, side: Side) -> bool {
        self.ever.load(Ordering::Acquire) & side.bit() != 0
    }

    /// `side`'s version. Acquire: SYNC POINT `roster`.
    #[cfg(test)]
    pub(crate) fn version(&self, side: Side) -> u32 {
        self.versions[side as usize].load(Ordering::Acquire)
    }

    /// `side`'s version word, for a watcher that keeps a pointer to it.
    pub(crate) fn version_word(&self, side: Side) -> &AtomicU32 {
        &self.versions[side as usize]
    }

    /// Says that `side`'s slots changed. Release: SYNC POINT `roster`.
    pub(crate) fn bump(&self, side: Side) {
        self.versions[side as usize].fetch_add(1, Ordering::Release);
    }

    /// Says that an endpoint of `side` joined and is ready: from now on the
    /// other side counts its departure as a disconnection.
    pub(crate) fn announce(&self, side: Side) {
        // Release: pairs with the Acquire in `ever`.
        self.ever.fetch_or(side.bit(), Ordering::Release);
        self.bump(side);
    }
}

/// One slot of the endpoint table.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct EndpointSlot {
    /// 0 when vacant, else the holder's word ([`holder_word`]).
    word: AtomicU64,
}

/// What a holder writes into its slot: its pid, as its own PID namespace
/// numbers it. Never 0.
pub(crate) fn holder_word(pid: u32) -> u64 {
    u64::from(pid.max(1))
}

impl EndpointSlot {
    /// The slot's word. Acquire: SYNC POINT `slot`.
    #[inline]
    pub(crate) fn word(&self) -> u64 {
        self.word.load(Ordering::Acquire)
    }

    /// The pid in the slot's word, if it is not vacant (0 if the word is
    /// not one a holder writes: scribbled).
    pub(crate) fn pid(&self) -> Option<u32> {
        match self.word() {
            0 => None,
            word if word >> 32 == 0 => Some(word as u32),
            _ => Some(0),
        }
    }
}

/// A slot taken by [`join`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Joined {
    pub(crate) slot: usize,
    /// The slot's word was not vacant: its last holder died, and what it
    /// left (claims, sleepers) is the new holder's to clean up.
    pub(crate) took_over: bool,
}

/// Takes the first slot in `slots` whose lock is free, writing `word` into
/// it. The slot's lock stays held by `locks` until [`leave`].
///
/// # Errors
///
/// `Err(Some(pid))` names a live holder when every slot is held;
/// `Err(None)` when `slots` is empty or a lock could not be taken for
/// another reason (the caller reports it).
pub(crate) fn join(
    table: &[EndpointSlot],
    slots: Range<usize>,
    locks: &Locks,
    word: u64,
) -> Result<Joined, Option<u32>> {
    let mut holder = None;
    for slot in slots {
        let Some(entry) = table.get(slot) else { break };
        match locks.try_take(slot) {
            Ok(true) => {
                // The lock makes the word ours to write: whatever is there
                // was left by a dead holder. AcqRel: SYNC POINT `slot`, in
                // both directions (we see what the dead one did; a watcher
                // that sees our word sees us).
                let previous = entry.word.swap(word, Ordering::AcqRel);
                return Ok(Joined {
                    slot,
                    took_over: previous != 0,
                });
            }
            Ok(false) => holder = holder.or(Some(entry.pid().unwrap_or(0))),
            Err(_) => return Err(None),
        }
    }
    Err(holder)
}

/// Gives up `slot`, which `locks` holds with `word` in it, and says so to
/// the other side: clears the word, bumps `side`'s version, then releases
/// the lock. (In that order: a word cleared before its lock is free is never
/// mistaken for a dead holder's.)
pub(crate) fn leave(
    roster: &Roster,
    table: &[EndpointSlot],
    side: Side,
    locks: &Locks,
    slot: usize,
    word: u64,
) {
    if let Some(entry) = table.get(slot) {
        // Release: SYNC POINT `slot`. If the word changed, someone hostile
        // wrote over ours; leave theirs alone.
        let _ = entry
            .word
            .compare_exchange(word, 0, Ordering::Release, Ordering::Relaxed);
    }
    roster.bump(side);
    locks.give(slot);
}

/// If `slot`'s holder is dead (its word set, its lock free), takes the lock,
/// lets `clean` tidy what the dead holder left, clears the word, bumps
/// `side`'s version and releases the lock. Returns whether it did. A live
/// holder, or another survivor reaping the same slot, holds the lock: then
/// nothing happens.
pub(crate) fn reap(
    roster: &Roster,
    table: &[EndpointSlot],
    side: Side,
    locks: &Locks,
    slot: usize,
    clean: impl FnOnce(usize),
) -> bool {
    let Some(entry) = table.get(slot) else {
        return false;
    };
    if entry.word() == 0 || !matches!(locks.try_take(slot), Ok(true)) {
        return false;
    }
    // Under the lock, the word is no longer anyone's to change but ours.
    let word = entry.word();
    let reaped = word != 0;
    if reaped {
        clean(slot);
        // AcqRel: SYNC POINT `slot` (the next holder sees the cleaning).
        let _ = entry
            .word
            .compare_exchange(word, 0, Ordering::AcqRel, Ordering::Relaxed);
        roster.bump(side);
    }
    locks.give(slot);
    reaped
}

/// Whether `slot` is held by a live endpoint of another open file
/// description than `locks`'s.
pub(crate) fn held(table: &[EndpointSlot], locks: &Locks, slot: usize) -> bool {
    table.get(slot).is_some_and(|entry| entry.word() != 0) && locks.held(slot)
}

/// Whether every slot in `slots` is vacant or left by a dead endpoint.
pub(crate) fn all_vacant(table: &[EndpointSlot], locks: &Locks, slots: Range<usize>) -> bool {
    slots.into_iter().all(|slot| !held(table, locks, slot))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn join_leave_reap() {
        let file = tempfile();
        let other = reopen(&file);
        let (mine, theirs) = (Locks::new(&file), Locks::new(&other));
        let roster = Roster::default();
        let table: Vec<EndpointSlot> = (0..3).map(|_| EndpointSlot::default()).collect();
        let joined = join(&table, 0..3, &mine, 7).unwrap();
        assert_eq!(
            joined,
            Joined {
                slot: 0,
                took_over: false
            }
        );
        // Another open file description finds slot 0 held, takes slot 1.
        assert!(held(&table, &theirs, 0));
        assert_eq!(join(&table, 0..1, &theirs, 8), Err(Some(7)));
        assert_eq!(join(&table, 0..3, &theirs, 8).unwrap().slot, 1);
        // A live holder is not reaped.
        assert!(!reap(&roster, &table, Side::Sender, &theirs, 0, |_| {}));
        // A dead one is: its lock is free, its word set.
        table[2].word.store(99, Ordering::Relaxed);
        let before = roster.version(Side::Sender);
        let mut cleaned = None;
        assert!(reap(&roster, &table, Side::Sender, &theirs, 2, |slot| {
            cleaned = Some(slot)
        }));
        assert_eq!(cleaned, Some(2));
        assert_eq!(table[2].word(), 0);
        assert_ne!(roster.version(Side::Sender), before);
        // Leaving frees the slot for the other description.
        leave(&roster, &table, Side::Sender, &mine, 0, 7);
        assert!(!held(&table, &theirs, 0));
        assert!(all_vacant(&table, &theirs, 0..1));
        assert!(!all_vacant(&table, &mine, 1..2));
    }

    #[test]
    fn a_slot_left_by_a_dead_holder_is_taken_over() {
        let file = tempfile();
        let locks = Locks::new(&file);
        let table: Vec<EndpointSlot> = (0..1).map(|_| EndpointSlot::default()).collect();
        table[0].word.store(1234, Ordering::Relaxed);
        let joined = join(&table, 0..1, &locks, 5).unwrap();
        assert!(joined.took_over);
        assert_eq!(table[0].pid(), Some(5));
        table[0].word.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(table[0].pid(), Some(0), "a scribbled word names nobody");
    }

    fn tempfile() -> std::fs::File {
        let path = std::env::temp_dir().join(format!(
            "shmchan-roster-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    fn reopen(file: &std::fs::File) -> std::fs::File {
        use std::os::fd::AsRawFd;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .unwrap()
    }
}
