//! Vyukov's bounded multi-producer, multi-consumer queue, with each claim
//! naming its claimer, so that survivors can clean up after a dead one.
//!
//! Every cell has a sequence word beside its value. For the cell's current
//! lap, at position `p` (a 64-bit counter; the cell is `p & mask`), the word
//! moves through:
//!
//! | word | meaning | next |
//! |---|---|---|
//! | `p` | free for the producer of `p` | a producer claims it |
//! | `busy(p, who)` | claimed by producer `who`, being written | it publishes |
//! | `p + 1` | published | a consumer claims it |
//! | `busy(p + 1, who)` | claimed by consumer `who`, being read | it frees it |
//! | `p + capacity` | free for the next lap | |
//!
//! `who` is the claimer's index in the endpoint table. Each step is one
//! compare-and-swap (claims) or store (publish, free) on the word, so the
//! word alone says who may touch the value. Capacity is at least 2, so
//! `p + 1` and `p + capacity` differ.
//!
//! # Claims, and the mistake we do not repeat
//!
//! Vyukov's queue claims a position by a compare-and-swap on `tail` and then
//! owns the cell: a process killed between the two leaves a cell nobody
//! owns and nothing names, and every consumer stalls on it forever. Here the
//! claim is the compare-and-swap on the cell's word itself, from "free for
//! `p`" to "claimed by `who` for `p`"; `head` and `tail` are only hints of
//! where to look, moved on by whoever finds them behind (the claimer, or
//! any helper). So a claimed cell always names its claimer, and a survivor
//! that finds the claimer dead can free the cell: see [`Queue::recover`].
//! Nothing is ever "unclaimed" by a decrement (DESIGN §9): a full queue is
//! seen by reading the cell, before claiming anything.
//!
//! # Positions and words
//!
//! `head` and `tail` are 64-bit counters. A word keeps the low
//! [`POSITION_BITS`] bits of a position and, in its top byte, the busy flag
//! and `who`. Words are compared with positions by their distance modulo
//! 2^56, which is exact unless a thread stalls for 2^55 messages (years).
//!
//! Every word read is untrusted (a hostile process may write anything): a
//! word that no legal state explains, after `head`/`tail` is re-read, makes
//! the operation fail with [`Corrupt`]. Cell indices are always masked.
//!
//! # Notes about memory ordering
//!
//! - SYNC POINT `publish`: the producer writes the value, then stores
//!   `p + 1` with `Release`; a consumer's `Acquire` load (and its claiming
//!   compare-and-swap) of that word sees the value complete.
//! - SYNC POINT `free`: the consumer reads the value, then stores
//!   `p + capacity` with `Release`; a producer's `Acquire` load (and its
//!   claiming compare-and-swap) of that word sees the read finished before
//!   it overwrites the value.
//! - SYNC POINT `hints`: `head` and `tail` carry no data, but they are
//!   moved on (compare-and-swap, `AcqRel`) only past a cell that the mover
//!   saw claimed, and read with `Acquire`. So a thread that reads position
//!   `p` from a hint then finds every cell before `p` at least claimed: the
//!   state it sees in the cell at `p` is one of the table's, a lap behind
//!   at worst, never older. That is what lets a word no state explains be
//!   called corrupt rather than stale. (On x86 these orderings cost
//!   nothing over `Relaxed`: the loads are plain loads and every
//!   compare-and-swap is a full barrier anyway.) Only statistics read the
//!   hints `Relaxed`.

use crate::primitive::{AtomicU64, Ordering, UnsafeCell};
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;

/// Bits of a position kept in a sequence word.
pub(crate) const POSITION_BITS: u32 = 56;
const POSITION_MASK: u64 = (1 << POSITION_BITS) - 1;
const BUSY: u64 = 1 << 63;
/// The most claimers a word can name.
pub(crate) const MAX_CLAIMERS: usize = 128;
/// Looks at cells one push or pop may take before it gives up. Legitimate
/// contention retries a handful of times; only a hostile writer, changing
/// words as fast as we read them, gets anywhere near this.
const MAX_ATTEMPTS: u32 = 1 << 20;

/// A word: free or published (`busy == None`) or claimed by `who`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Word {
    value: u64,
    busy: Option<u8>,
}

impl Word {
    fn decode(raw: u64) -> Self {
        Self {
            value: raw & POSITION_MASK,
            busy: (raw & BUSY != 0).then_some(((raw >> POSITION_BITS) & 0x7f) as u8),
        }
    }

    fn plain(value: u64) -> u64 {
        value & POSITION_MASK
    }

    fn busy(value: u64, who: u8) -> u64 {
        debug_assert!((who as usize) < MAX_CLAIMERS);
        (value & POSITION_MASK) | BUSY | u64::from(who & 0x7f) << POSITION_BITS
    }

    /// `self.value - position`, as a signed distance modulo 2^56.
    fn distance(self, position: u64) -> i64 {
        ((self.value.wrapping_sub(position) << (64 - POSITION_BITS)) as i64) >> (64 - POSITION_BITS)
    }
}

/// One cell: its sequence word, then its value.
#[repr(C)]
pub(crate) struct Cell<T> {
    seq: AtomicU64,
    value: UnsafeCell<T>,
}

#[cfg(any(test, loom))]
impl<T: crate::ShmSafe> Cell<T> {
    /// A cell of zeros, to be given its sequence word by [`Queue::init`].
    pub(crate) fn zeroed() -> Self {
        Self {
            seq: AtomicU64::new(0),
            value: UnsafeCell::new(crate::shm_safe::zeroed()),
        }
    }
}

/// Where a `#[repr(C)]` [`Cell`] of a value of `size` bytes aligned to
/// `align` (a power of two) keeps the value, its size and its alignment:
/// `(value_at, stride, align)`.
pub(crate) fn cell_layout(size: usize, align: usize) -> (usize, usize, usize) {
    debug_assert!(align.is_power_of_two());
    let align = align.max(align_of::<u64>());
    let value_at = size_of::<u64>().next_multiple_of(align);
    (value_at, (value_at + size).next_multiple_of(align), align)
}

/// Where producers and consumers look next: hints, each on its own line.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Positions {
    /// Next position to consume (or a little behind it).
    head: CachePadded<AtomicU64>,
    /// Next position to produce (or a little behind it).
    tail: CachePadded<AtomicU64>,
}

#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::size_of::<Positions>(), 256);

/// A cell whose claimer has held it longer than the caller could wait: if
/// the claimer is dead, [`Queue::recover`] frees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stuck {
    /// The position whose lap the cell is in.
    position: u64,
    /// The word as found.
    raw: u64,
    /// The claimer, as the word names it (below [`MAX_CLAIMERS`]).
    pub(crate) who: usize,
}

/// Why a push did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The cell at `tail` still holds the previous lap; if it is claimed,
    /// by whom.
    Full(Option<Stuck>),
    Corrupt,
}

/// Why a pop did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PopError {
    /// The cell at `head` is not published; if it is claimed, by whom.
    Empty(Option<Stuck>),
    Corrupt,
}

/// A view of one queue's memory.
pub(crate) struct Queue<T> {
    positions: NonNull<Positions>,
    cells: NonNull<Cell<T>>,
    /// `capacity - 1`; capacity is a power of two, at least 2.
    mask: u64,
    /// Bytes from one cell to the next, and from a cell's start to its
    /// value: `Cell<T>`'s, except in a queue reached without its message
    /// type (see [`with_shape`](Self::with_shape)).
    stride: usize,
    value_at: usize,
    /// Bytes of a value.
    size: usize,
}

impl<T: crate::ShmSafe> Queue<T> {
    /// A view of the queue at `positions` with `capacity` cells at `cells`.
    ///
    /// # Safety
    ///
    /// `positions` and `capacity` cells at `cells` must be valid for reads
    /// and writes (through the atomics and cells) for as long as the view
    /// exists; `capacity` must be a power of two, at least 2.
    pub(crate) unsafe fn new(
        positions: NonNull<Positions>,
        cells: NonNull<Cell<T>>,
        capacity: u64,
    ) -> Self {
        debug_assert!(capacity.is_power_of_two() && capacity >= 2);
        Self {
            positions,
            cells,
            mask: capacity - 1,
            stride: size_of::<Cell<T>>(),
            value_at: core::mem::offset_of!(Cell<T>, value),
            size: size_of::<T>(),
        }
    }

    /// The same queue, its cells laid out for values of `size` bytes
    /// aligned to `align` (as `#[repr(C)]` lays out a `Cell` of such a
    /// type): for an end that moves messages as bytes
    /// ([`push_bytes`](Self::push_bytes), [`pop_bytes`](Self::pop_bytes)),
    /// its `T` a stand-in.
    ///
    /// # Safety
    ///
    /// As for [`new`](Self::new), with `capacity` cells of that layout at
    /// `cells`; `align` a power of two.
    pub(crate) unsafe fn with_shape(self, size: usize, align: usize) -> Self {
        let (value_at, stride, _) = cell_layout(size, align);
        Self {
            stride,
            value_at,
            size,
            ..self
        }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    #[inline]
    fn positions(&self) -> &Positions {
        // SAFETY: `new`'s contract keeps the block valid while `self` lives.
        unsafe { self.positions.as_ref() }
    }

    #[inline]
    fn cell(&self, position: u64) -> &Cell<T> {
        // SAFETY: `cell_at` is within the cells, and a cell's sequence word
        // (all a stand-in `T`'s cell is read for) is at its start; a
        // `Cell<T>`, for a typed queue.
        unsafe { self.cell_at(position).cast::<Cell<T>>().as_ref() }
    }

    /// The start of the cell of `position`, by the queue's stride.
    #[inline]
    fn cell_at(&self, position: u64) -> NonNull<u8> {
        // In bounds: `new`'s (or `with_shape`'s) contract keeps `capacity`
        // cells of `stride` bytes valid.
        super::slot_at(self.cells.cast(), position, self.mask, self.stride)
    }

    /// The value bytes of the cell of `position`.
    #[inline]
    fn value_bytes(&self, position: u64) -> *mut u8 {
        self.cell_at(position).as_ptr().wrapping_add(self.value_at)
    }

    /// Sets the words of a fresh queue: cell `i` free for position `i`.
    ///
    /// # Safety
    ///
    /// Nobody else may use the queue yet.
    pub(crate) unsafe fn init(&self) {
        for i in 0..self.capacity() {
            // Relaxed: the segment is published to other processes later,
            // with Release (its `init` word).
            self.cell(i).seq.store(Word::plain(i), Ordering::Relaxed);
        }
    }

    /// Appends `value` as claimer `who`.
    #[inline]
    pub(crate) fn push(&self, value: T, who: u8) -> Result<(), PushError> {
        self.push_with(who, |_, cell| {
            // SAFETY: the cell is ours to write (`push_with`'s promise);
            // `value` is a local.
            cell.value
                .with_mut(|slot| unsafe { super::write_words(&value, slot) });
        })
    }

    /// Appends `message`, one value's bytes (the queue's value size), as
    /// claimer `who`.
    pub(crate) fn push_bytes(&self, message: &[u8], who: u8) -> Result<(), PushError> {
        let len = message.len().min(self.size);
        self.push_with(who, |position, _| {
            // SAFETY: the cell is ours to write (`push_with`'s promise), and
            // its value has room for `size` >= `len` bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(message.as_ptr(), self.value_bytes(position), len);
            }
        })
    }

    /// Claims the next free cell as `who`, has `write` fill it (given its
    /// position and the cell: the word names us as its claimer for this
    /// lap, so no other producer writes it and no consumer reads it before
    /// we publish), and publishes it.
    #[inline(always)]
    fn push_with(&self, who: u8, write: impl FnOnce(u64, &Cell<T>)) -> Result<(), PushError> {
        let (position, cell) = self.claim_free(who)?;
        write(position, cell);
        // Release: SYNC POINT `publish`.
        cell.seq
            .store(Word::plain(position.wrapping_add(1)), Ordering::Release);
        Ok(())
    }

    /// The first half of a push: claims the cell at the next free position
    /// for `who` and returns the position and the cell, which `who` must
    /// then write and publish. (A producer killed between the two halves
    /// leaves the claim that [`recover`](Self::recover) frees.)
    #[inline]
    pub(crate) fn claim_free(&self, who: u8) -> Result<(u64, &Cell<T>), PushError> {
        let tail = &self.positions().tail;
        let capacity = self.capacity() as i64;
        // Acquire: SYNC POINT `hints`.
        let mut position = tail.load(Ordering::Acquire);
        let mut stale = false;
        for _ in 0..MAX_ATTEMPTS {
            let cell = self.cell(position);
            // Acquire: SYNC POINT `free` (see the module notes).
            let raw = cell.seq.load(Ordering::Acquire);
            let word = Word::decode(raw);
            match (word.busy, word.distance(position)) {
                // Free for us: claim it.
                (None, 0) => {
                    let claimed = Word::busy(position, who);
                    // Acquire on success: as for the load (SYNC POINT `free`).
                    if cell
                        .seq
                        .compare_exchange(raw, claimed, Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                    {
                        // Another claimer won the cell; look again.
                        continue;
                    }
                    // Moves the hint on; someone else may have already.
                    let _ = tail.compare_exchange(
                        position,
                        position.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    return Ok((position, cell));
                }
                // Position taken (claimed, published, being read, read and
                // freed, or the next lap under way): the hint is behind.
                (Some(_), 0) | (_, 1) => position = Self::help(tail, position),
                (_, d) if d == capacity || d == capacity + 1 => {
                    position = Self::help(tail, position);
                }
                // The previous lap is still in the cell (published, being
                // read, or, claimed, being written): full.
                (busy, d) if d == 1 - capacity || (d == -capacity && busy.is_some()) => {
                    // Our position may be stale; full only if it is not.
                    // Acquire: SYNC POINT `hints`.
                    let now = tail.load(Ordering::Acquire);
                    if now != position {
                        position = now;
                        continue;
                    }
                    let stuck = busy.map(|who| Stuck {
                        position: position.wrapping_sub(self.capacity()),
                        raw,
                        who: who as usize,
                    });
                    return Err(PushError::Full(stuck));
                }
                // No legal state explains the word unless our position is
                // stale; once it is fresh, it is corrupt.
                _ => match Self::reread(tail, position, &mut stale) {
                    Some(now) => position = now,
                    None => return Err(PushError::Corrupt),
                },
            }
        }
        Err(PushError::Corrupt)
    }

    /// Takes the oldest value as claimer `who`.
    #[inline]
    pub(crate) fn pop(&self, who: u8) -> Result<T, PopError> {
        self.pop_with(who, |_, cell| {
            // SAFETY: the cell is ours to read (`pop_with`'s promise). Any
            // bit pattern is a `T` (`Pod`), so even a hostile write is no
            // UB.
            cell.value.with(|slot| unsafe { super::read_words(slot) })
        })
    }

    /// Takes the oldest value as claimer `who`, copying its bytes (the
    /// queue's value size) into the start of `out`.
    pub(crate) fn pop_bytes(&self, out: &mut [u8], who: u8) -> Result<(), PopError> {
        let len = out.len().min(self.size);
        self.pop_with(who, |position, _| {
            // SAFETY: the cell is ours to read (`pop_with`'s promise) and
            // its value holds `size` >= `len` bytes; a hostile writer can
            // only change which bytes are copied.
            unsafe {
                core::ptr::copy_nonoverlapping(self.value_bytes(position), out.as_mut_ptr(), len);
            }
        })
    }

    /// Claims the oldest published cell as `who`, has `read` read it (given
    /// its position and the cell: the word names us as the claimer of this
    /// published cell, so its producer is done with it and no producer
    /// writes it before we free it), and frees it.
    #[inline(always)]
    fn pop_with<R>(&self, who: u8, read: impl FnOnce(u64, &Cell<T>) -> R) -> Result<R, PopError> {
        let head = &self.positions().head;
        // Acquire: SYNC POINT `hints`.
        let mut position = head.load(Ordering::Acquire);
        let capacity = self.capacity() as i64;
        let mut stale = false;
        for _ in 0..MAX_ATTEMPTS {
            let cell = self.cell(position);
            // Acquire: SYNC POINT `publish`.
            let raw = cell.seq.load(Ordering::Acquire);
            let word = Word::decode(raw);
            match (word.busy, word.distance(position)) {
                // Published: claim it.
                (None, 1) => {
                    let claimed = Word::busy(position.wrapping_add(1), who);
                    // Acquire on success: as for the load (SYNC POINT `publish`).
                    if cell
                        .seq
                        .compare_exchange(raw, claimed, Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                    {
                        // Another claimer won the cell; look again.
                        continue;
                    }
                    let _ = head.compare_exchange(
                        position,
                        position.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    let value = read(position, cell);
                    // Release: SYNC POINT `free`.
                    cell.seq.store(
                        Word::plain(position.wrapping_add(self.capacity())),
                        Ordering::Release,
                    );
                    return Ok(value);
                }
                // Not yet published: empty (or waiting for its producer).
                (busy, 0) => {
                    let stuck = busy.map(|who| Stuck {
                        position,
                        raw,
                        who: who as usize,
                    });
                    return Err(PopError::Empty(stuck));
                }
                // The previous lap's value is still being read: its
                // consumer has moved `head` on, but not yet freed the cell.
                (Some(who), d) if d == 1 - capacity => {
                    let stuck = Stuck {
                        position: position.wrapping_sub(self.capacity()),
                        raw,
                        who: who as usize,
                    };
                    return Err(PopError::Empty(Some(stuck)));
                }
                // Position taken (being read, read and freed, or the next
                // lap under way): the hint is behind.
                (Some(_), 1) => position = Self::help(head, position),
                (_, d) if d == capacity || d == capacity + 1 => {
                    position = Self::help(head, position);
                }
                _ => match Self::reread(head, position, &mut stale) {
                    Some(now) => position = now,
                    None => return Err(PopError::Corrupt),
                },
            }
        }
        Err(PopError::Corrupt)
    }

    /// After a word at `position` that no legal state explains: where to
    /// look next, from the hint `at`; `None` (corrupt) once the hint has
    /// said `position` twice running, so that the position was not stale.
    #[inline]
    fn reread(at: &AtomicU64, position: u64, stale: &mut bool) -> Option<u64> {
        // Acquire: SYNC POINT `hints` (see the module notes).
        let now = at.load(Ordering::Acquire);
        if now == position && *stale {
            return None;
        }
        *stale = now == position;
        Some(now)
    }

    /// Moves the hint `at` past `position`, which is taken, and returns
    /// where to look next.
    #[inline]
    fn help(at: &AtomicU64, position: u64) -> u64 {
        let next = position.wrapping_add(1);
        // AcqRel: SYNC POINT `hints` (see the module notes).
        match at.compare_exchange(position, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => next,
            // Someone moved it already. Positions only grow, so the value
            // seen is at least `next`, unless a hostile write moved it
            // back; looking there again is then merely wasted.
            Err(now) => now,
        }
    }

    /// Frees a cell left claimed by a claimer that is dead (the caller has
    /// made sure). A value being written is dropped (it was never
    /// published); one being read is lost with its reader. Returns whether
    /// this call freed it (it may have moved on meanwhile).
    pub(crate) fn recover(&self, stuck: Stuck) -> bool {
        let cell = self.cell(stuck.position);
        let freed = Word::plain(stuck.position.wrapping_add(self.capacity()));
        // Release: as a consumer's free (SYNC POINT `free`): the next
        // producer of this cell overwrites it after this.
        let done = cell
            .seq
            .compare_exchange(stuck.raw, freed, Ordering::Release, Ordering::Relaxed)
            .is_ok();
        if done {
            // The cell now reads as consumed: move both hints past it if
            // they are stuck there (a dead producer never moved `tail`).
            let next = stuck.position.wrapping_add(1);
            let positions = self.positions();
            for at in [&positions.head, &positions.tail] {
                // AcqRel: SYNC POINT `hints`.
                let _ =
                    at.compare_exchange(stuck.position, next, Ordering::AcqRel, Ordering::Acquire);
            }
        }
        done
    }

    /// Frees every cell claimed by `who`: called by an endpoint that takes
    /// over `who`'s slot in the table, whose claims can only be its dead
    /// predecessor's. Returns how many were freed.
    pub(crate) fn recover_all_of(&self, who: u8) -> usize {
        let mut freed = 0;
        // Relaxed: only a reference point to rebuild each claim's full
        // position from its low bits; `recover` re-checks every cell word.
        let tail = self.positions().tail.load(Ordering::Relaxed);
        for i in 0..self.capacity() {
            // Acquire: as any look at a word before acting on it.
            let raw = self.cell(i).seq.load(Ordering::Acquire);
            let word = Word::decode(raw);
            if word.busy != Some(who) {
                continue;
            }
            // A producer's claim holds `p`, a consumer's `p + 1`, where `p`
            // is the position of the cell's lap, at index `i`.
            let low = if word.value & self.mask == i {
                word.value
            } else {
                word.value.wrapping_sub(1) & POSITION_MASK
            };
            if low & self.mask != i {
                continue; // Neither: a scribble, not a claim; leave it.
            }
            // The full position: the one with those low bits nearest `tail`.
            let lap = Word {
                value: low,
                busy: None,
            };
            let position = tail.wrapping_add(lap.distance(tail) as u64);
            if self.recover(Stuck {
                position,
                raw,
                who: who as usize,
            }) {
                freed += 1;
            }
        }
        freed
    }

    /// Values in the queue now, as far as a racy reading can tell.
    pub(crate) fn len(&self) -> u64 {
        self.positions().len(self.capacity())
    }

    /// Values produced and consumed since the queue was created.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.positions().counts()
    }
}

impl Positions {
    /// Values in a queue of `capacity` now, as far as a racy reading can
    /// tell.
    ///
    /// Both hints lag their claims, each by its own amount: `tail` may be
    /// behind `head` (a producer published, a consumer took it and moved
    /// `head`, before the producer moved `tail`). The distance is read as
    /// signed and clamped, so that this reads as empty, not as full; `head`
    /// is read first, and with Acquire (SYNC POINT `hints`), so that the
    /// `tail` read after it is at least as fresh.
    pub(crate) fn len(&self, capacity: u64) -> u64 {
        let head = self.head.load(Ordering::Acquire);
        // Acquire: as for `head`.
        let tail = self.tail.load(Ordering::Acquire);
        let queued = tail.wrapping_sub(head) as i64;
        queued.clamp(0, capacity as i64) as u64
    }

    /// Values produced and consumed since the queue was created (the
    /// hints, which may lag by a claim in flight). Relaxed: statistics.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let head = self.head.load(Ordering::Relaxed);
        (self.tail.load(Ordering::Relaxed), head)
    }
}

/// A queue in heap memory, for tests (and loom).
#[cfg(any(test, loom))]
pub(crate) struct HeapQueue<T> {
    positions: Box<Positions>,
    cells: Box<[Cell<T>]>,
}

#[cfg(any(test, loom))]
impl<T: crate::ShmSafe> HeapQueue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two() && capacity >= 2);
        let queue = Self {
            positions: Box::default(),
            cells: (0..capacity).map(|_| Cell::zeroed()).collect(),
        };
        // SAFETY: the view lives only for this statement; nobody else has
        // the queue yet.
        unsafe { queue.view().init() };
        queue
    }

    /// A view of this queue's memory.
    ///
    /// # Safety
    ///
    /// The view must not outlive `self`.
    pub(crate) unsafe fn view(&self) -> Queue<T> {
        let cells = NonNull::from(&*self.cells).cast::<Cell<T>>();
        // SAFETY: the boxes hold the positions and `len` cells; the caller
        // keeps `self` alive as long as the view.
        unsafe {
            Queue::new(
                NonNull::from(&*self.positions),
                cells,
                self.cells.len() as u64,
            )
        }
    }

    /// Writes `raw` into cell `index`'s word, as a hostile process could.
    #[cfg(test)]
    pub(crate) fn scribble(&self, index: usize, raw: u64) {
        self.cells[index].seq.store(raw, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn queue(capacity: usize) -> (HeapQueue<u64>, Queue<u64>) {
        let heap = HeapQueue::new(capacity);
        // SAFETY: the view is dropped with the heap queue, in the caller.
        let view = unsafe { heap.view() };
        (heap, view)
    }

    #[test]
    fn fifo_full_empty_and_wrap() {
        let (_heap, q) = queue(4);
        assert_eq!(q.pop(1), Err(PopError::Empty(None)));
        for lap in 0..10u64 {
            for i in 0..4 {
                q.push(lap * 4 + i, 0).unwrap();
            }
            assert_eq!(q.push(99, 0), Err(PushError::Full(None)));
            assert_eq!(q.len(), 4);
            for i in 0..4 {
                assert_eq!(q.pop(1), Ok(lap * 4 + i));
            }
            assert_eq!(q.pop(1), Err(PopError::Empty(None)));
        }
        assert_eq!(q.counts(), (40, 40));
    }

    #[test]
    fn a_dead_producers_claim_is_reported_and_recovered() {
        let (heap, q) = queue(4);
        q.push(1, 0).unwrap();
        // Producer 5 claimed position 1 and died before publishing.
        heap.scribble(1, Word::busy(1, 5));
        heap.positions.tail.store(2, Ordering::Relaxed);
        q.push(3, 0).unwrap();
        assert_eq!(q.pop(9), Ok(1));
        let Err(PopError::Empty(Some(stuck))) = q.pop(9) else {
            panic!("the consumer should wait on the claimed cell")
        };
        assert_eq!(stuck.who, 5);
        assert!(q.recover(stuck));
        assert!(!q.recover(stuck), "recovered twice");
        // The hole is skipped; what was published after it is delivered.
        assert_eq!(q.pop(9), Ok(3));
        assert_eq!(q.pop(9), Err(PopError::Empty(None)));
        // The recovered cell is free again for its next lap.
        for i in 0..4 {
            q.push(10 + i, 0).unwrap();
        }
        for i in 0..4 {
            assert_eq!(q.pop(9), Ok(10 + i));
        }
    }

    #[test]
    fn a_dead_consumers_claim_blocks_producers_until_recovered() {
        let (heap, q) = queue(2);
        q.push(1, 0).unwrap();
        q.push(2, 0).unwrap();
        // Consumer 70 claimed position 0, moved head, and died reading it.
        heap.scribble(0, Word::busy(1, 70));
        heap.positions.head.store(1, Ordering::Relaxed);
        let Err(PushError::Full(Some(stuck))) = q.push(3, 0) else {
            panic!("the producer should find the cell claimed")
        };
        assert_eq!(stuck.who, 70);
        assert!(q.recover(stuck));
        q.push(3, 0).unwrap();
        assert_eq!(q.pop(9), Ok(2));
        assert_eq!(q.pop(9), Ok(3));
    }

    #[test]
    fn recover_all_of_frees_only_that_claimers_cells() {
        let (heap, q) = queue(8);
        for i in 0..6 {
            q.push(i, 0).unwrap();
        }
        for i in 0..3 {
            assert_eq!(q.pop(64), Ok(i));
        }
        // Positions 6, 7 claimed by producers 3 and 4; position 3 being
        // read by consumer 3 (a shared index: roles use separate ranges in
        // the flavor, but the queue does not care).
        heap.scribble(6, Word::busy(6, 3));
        heap.scribble(7, Word::busy(7, 4));
        heap.scribble(3, Word::busy(4, 3));
        heap.positions.tail.store(8, Ordering::Relaxed);
        heap.positions.head.store(4, Ordering::Relaxed);
        assert_eq!(q.recover_all_of(3), 2);
        assert_eq!(q.pop(64), Ok(4));
        assert_eq!(q.pop(64), Ok(5));
        // Position 6 was recovered (skipped); 7 is still claimed by 4.
        let Err(PopError::Empty(Some(stuck))) = q.pop(64) else {
            panic!("position 7 is still claimed")
        };
        assert_eq!(stuck.who, 4);
    }

    #[test]
    fn scribbled_words_are_corrupt_not_ub() {
        let (heap, q) = queue(4);
        q.push(1, 0).unwrap();
        heap.scribble(1, 12345);
        heap.scribble(0, 999);
        assert_eq!(q.pop(9), Err(PopError::Corrupt));
        assert_eq!(q.push(2, 0), Err(PushError::Corrupt));
        // Hints pointing anywhere are masked, never out of bounds.
        heap.positions.head.store(u64::MAX, Ordering::Relaxed);
        heap.positions.tail.store(u64::MAX - 7, Ordering::Relaxed);
        let _ = q.pop(9);
        let _ = q.push(3, 0);
        let _ = q.len();
    }

    #[test]
    fn distances_wrap_at_56_bits() {
        let word = Word::decode(Word::plain(1));
        assert_eq!(word.distance(POSITION_MASK), 2);
        assert_eq!(word.distance(1 << POSITION_BITS), 1);
        assert_eq!(Word::decode(Word::plain(0)).distance(1), -1);
        let busy = Word::decode(Word::busy(5, 127));
        assert_eq!(busy.busy, Some(127));
        assert_eq!(busy.value, 5);
    }
}
