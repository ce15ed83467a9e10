//! One producer, many consumers, each of which reads every message: a ring
//! of slots, each a sequence word and the message's words (a seqlock), and
//! one cursor per consumer.
//!
//! Message `m` (a 64-bit count from 0) lives in slot `m & mask`. The slot's
//! sequence word is `2m + 1` while the producer writes it and `2m + 2` once
//! it is complete, so a word says which message a slot holds and whether
//! it is whole. A consumer that wants message `c` reads the word, copies
//! the message's words, and reads the word again: the copy is good only if
//! both reads say `2c + 2`. A word that says message `c` is not written yet
//! (the slot still holds the message a ring before, or `c` is being
//! written) means "wait": a consumer that has caught up waits on the slot
//! it wants, not on `tail`, so the producer keeps `tail`'s line to itself
//! (FastForward's slot-based hand-off). Any other word sends the consumer
//! to `tail`: a word of a message a ring or more ahead, and not past
//! `tail`, means the producer has lapped the consumer (the message is
//! gone), and the consumer skips to the oldest message kept and reports
//! how many it missed; anything else no legal state explains (corrupt).
//!
//! `tail` counts the messages published. Each consumer's cursor is the next
//! message it will read; it starts at `tail` when it attaches (a first
//! consumer, in [`Overflow::Block`] mode, at the oldest message kept).
//!
//! In [`Overflow::Block`] mode the producer writes message `m` only once
//! every live consumer's cursor is past `m - capacity`, the message whose
//! slot it takes; it keeps the smallest cursor it saw and scans the cursors
//! again only when that one is too small. A consumer that joins while the
//! producer works from an older scan is safe by the attach protocol (see
//! [`Consumer::attach`]). In [`Overflow::Overwrite`] mode it never waits.
//!
//! Messages are copied as 64-bit words with atomic loads and stores, so a
//! copy racing the producer is a defined (if useless) read, which the
//! second look at the word then discards: never a torn message.
//!
//! # Notes about memory ordering
//!
//! - SYNC POINT `seqlock`: the producer stores the odd word (`Relaxed`),
//!   issues a `Release` fence, stores the message's words (`Relaxed`), and
//!   stores the even word with `Release`. A consumer loads the word with
//!   `Acquire`, loads the message's words (`Relaxed`), issues an `Acquire`
//!   fence and loads the word again (`Relaxed`). If the second load sees
//!   the first value, no store of a later lap's words was seen by the copy:
//!   a store the copy read would, through the fences, make the second load
//!   see the odd word that came before it.
//! - SYNC POINT `tail`: stored with `Release` after the even word, loaded
//!   with `Acquire`: a consumer that sees `tail > c` sees message `c`'s
//!   even word (or a later lap's).
//! - SYNC POINT `cursor`: a consumer stores its cursor with `Release` after
//!   its copy is checked; the producer's scan loads it with `Acquire` before
//!   it overwrites the slot, so the copy finished before the overwrite.
//! - SYNC POINT `attach`: a joining consumer stores its cursor and issues a
//!   `SeqCst` fence before it reads `tail` to start from; the producer
//!   issues a `SeqCst` fence before each scan. Either the scan sees the new
//!   cursor, or the consumer's `tail` read sees every message the producer
//!   published before the scan, and so starts past every slot that scan
//!   let the producer take (see [`Consumer::attach`]).

use super::Corrupt;
use crate::primitive::{fence, AtomicU64, Ordering};
use crate::ShmSafe;
use core::cell::Cell;
use core::marker::PhantomData;
use core::mem::{size_of, MaybeUninit};
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;

/// The most consumers a ring has cursors for.
pub(crate) const MAX_CONSUMERS: usize = 64;
/// Message numbers at or past this are corrupt: a ring would take
/// centuries to get there, and below it `2m + 2` cannot overflow.
const MAX_MESSAGE: u64 = 1 << 62;
/// Attempts one `pop` makes before it calls the ring corrupt: a legitimate
/// race retries once or twice; only a hostile writer changing words as
/// fast as we read them gets near this.
const MAX_ATTEMPTS: u32 = 1 << 16;

/// What a producer does when the slowest consumer is a whole ring behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Wait for the slowest live receiver (the default). A dead one stops
    /// holding the sender back within a second.
    #[default]
    Block,
    /// Never wait: overwrite the oldest message. A receiver that fell a
    /// whole ring behind is told how many messages it missed, and goes on
    /// from the oldest message still kept ("latest wins").
    Overwrite,
}

impl Overflow {
    pub(crate) fn to_u64(self) -> u64 {
        match self {
            Self::Block => 1,
            Self::Overwrite => 2,
        }
    }

    pub(crate) fn from_u64(raw: u64) -> Option<Self> {
        match raw {
            1 => Some(Self::Block),
            2 => Some(Self::Overwrite),
            _ => None,
        }
    }
}

/// The ring's control words, `#[repr(C)]` so they can live in a segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    /// Messages published: the next message's number. The producer's line.
    tail: CachePadded<AtomicU64>,
    /// The overflow policy ([`Overflow::to_u64`]), written at creation;
    /// `try_send` refusals, for the statistics; and whether a receiver has
    /// claimed the messages sent before anyone listened (see
    /// [`claim_backlog`](Self::claim_backlog)).
    policy: CachePadded<[AtomicU64; 3]>,
    /// Each consumer's next message, by its index; each on its own line.
    cursors: [CachePadded<AtomicU64>; MAX_CONSUMERS],
}

impl Default for Control {
    fn default() -> Self {
        Self {
            tail: CachePadded::default(),
            policy: CachePadded::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]),
            cursors: core::array::from_fn(|_| CachePadded::default()),
        }
    }
}

impl Control {
    /// Sets the policy of a ring nobody else sees yet.
    pub(crate) fn init(&self, overflow: Overflow) {
        // Relaxed: the segment is published to others by its init word.
        self.policy[0].store(overflow.to_u64(), Ordering::Relaxed);
    }

    /// The policy, if the word holds one.
    pub(crate) fn overflow(&self) -> Option<Overflow> {
        // Relaxed: written once, before the segment was published.
        Overflow::from_u64(self.policy[0].load(Ordering::Relaxed))
    }

    /// Messages published.
    pub(crate) fn tail(&self) -> u64 {
        // Acquire: SYNC POINT `tail`.
        self.tail.load(Ordering::Acquire)
    }

    /// Consumer `index`'s cursor (0 for an index past the table).
    pub(crate) fn cursor(&self, index: usize) -> u64 {
        // Acquire: SYNC POINT `cursor`.
        self.cursors
            .get(index)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// Whether the caller is the one receiver that starts at the oldest
    /// message kept (Block mode keeps what is sent before anyone listens
    /// for the first receiver): true once, for the first to ask.
    pub(crate) fn claim_backlog(&self) -> bool {
        // Relaxed: only the winner matters; what it reads next is ordered
        // by the attach protocol.
        self.policy[2]
            .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// `try_send` refusals so far.
    pub(crate) fn refusals(&self) -> u64 {
        // Relaxed: a statistic.
        self.policy[1].load(Ordering::Relaxed)
    }

    fn count_refusal(&self) {
        // Relaxed: a statistic; one writer, so no read-modify-write.
        let n = self.policy[1].load(Ordering::Relaxed);
        self.policy[1].store(n.wrapping_add(1), Ordering::Relaxed);
    }
}

/// Words of one slot for a message of `T`: the sequence word, then the
/// message rounded up to whole words.
pub(crate) const fn slot_words(size: usize) -> usize {
    1 + size.div_ceil(8)
}

/// A view of a ring: its control block and its slots' words.
pub(crate) struct Ring<T> {
    control: NonNull<Control>,
    words: NonNull<AtomicU64>,
    mask: u64,
    /// Bytes of one message: `size_of::<T>()`, except in a ring reached
    /// without its message type (see [`with_size`](Self::with_size)).
    size: usize,
    _messages: PhantomData<T>,
}

impl<T: ShmSafe> Ring<T> {
    /// # Safety
    ///
    /// `control` and `capacity` (a power of two) slots of
    /// [`slot_words`]`(size_of::<T>())` words from `words` must be valid for
    /// as long as the ring and every end made from it.
    pub(crate) unsafe fn new(
        control: NonNull<Control>,
        words: NonNull<AtomicU64>,
        capacity: u64,
    ) -> Self {
        debug_assert!(capacity.is_power_of_two());
        Self {
            control,
            words,
            mask: capacity - 1,
            size: size_of::<T>(),
            _messages: PhantomData,
        }
    }

    /// The same ring, its messages taken as `size` bytes each: for an end
    /// that moves messages as bytes ([`Producer::push_bytes`],
    /// [`Consumer::pop_bytes`]), its `T` a stand-in.
    ///
    /// # Safety
    ///
    /// As for [`new`](Self::new), with slots of [`slot_words`]`(size)`
    /// words.
    pub(crate) unsafe fn with_size(self, size: usize) -> Self {
        Self { size, ..self }
    }

    pub(crate) fn control(&self) -> &Control {
        // SAFETY: `new`'s contract.
        unsafe { self.control.as_ref() }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Word `k` of the slot of message `m` (0 is its sequence word).
    #[inline]
    fn word(&self, m: u64, k: usize) -> &AtomicU64 {
        let slot = (m & self.mask) as usize;
        let index = slot * slot_words(self.size) + k;
        // SAFETY: the slot index is masked and `k` is at most the slot's
        // last word, so the word lies in the slots `new`'s contract keeps
        // valid.
        unsafe { &*self.words.as_ptr().add(index) }
    }
}

/// Why a push did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// Block mode, and the slowest live consumer is a ring behind.
    Full,
}

/// The producing end: the only writer of `tail` and of the slots.
pub(crate) struct Producer<T> {
    ring: Ring<T>,
    overflow: Overflow,
    /// The next message's number. Exact: nobody else writes `tail`.
    tail: Cell<u64>,
    /// The smallest live cursor the last scan found: a bound, possibly
    /// stale, never above the true smallest (cursors only grow).
    floor: Cell<u64>,
}

impl<T: ShmSafe> Producer<T> {
    /// Takes over the producing end of `ring`, continuing after the last
    /// complete message. A producer that died inside a batch may have
    /// written whole messages it never published, which consumers (reading
    /// by sequence words) may already have read: those are adopted, at
    /// most a ring of them, so that no message number is used twice.
    ///
    /// # Errors
    ///
    /// [`Corrupt`] if `tail` is past any count a ring reaches.
    ///
    /// # Safety
    ///
    /// No other `Producer` of this ring may exist, in any process, while
    /// this one does.
    pub(crate) unsafe fn attach(ring: Ring<T>, overflow: Overflow) -> Result<Self, Corrupt> {
        let published = ring.control().tail();
        let mut tail = published;
        if tail >= MAX_MESSAGE {
            return Err(Corrupt);
        }
        for _ in 0..ring.capacity() {
            // Acquire: SYNC POINT `seqlock`, as a consumer reads it.
            if ring.word(tail, 0).load(Ordering::Acquire) != 2 * tail + 2 {
                break;
            }
            tail += 1;
        }
        let producer = Self {
            ring,
            overflow,
            tail: Cell::new(published),
            floor: Cell::new(0),
        };
        if tail != published {
            producer.publish(tail);
        }
        Ok(producer)
    }

    pub(crate) fn ring(&self) -> &Ring<T> {
        &self.ring
    }

    /// Whether message `m` may take its slot now, scanning the cursors
    /// with `scan` (the smallest live cursor) if the last scan's floor is
    /// too low.
    #[inline]
    fn room(&self, m: u64, scan: &impl Fn() -> u64) -> bool {
        if self.overflow == Overflow::Overwrite {
            return true;
        }
        let capacity = self.ring.capacity();
        if m < self.floor.get().saturating_add(capacity) {
            return true;
        }
        // SeqCst: SYNC POINT `attach`: a consumer joining now either shows
        // in this scan or starts past what it lets us write. The floor is
        // never above what we published: a consumer attaching after the
        // scan starts at the published `tail` at the earliest (and, with no
        // consumer attached, the scan says "no bound").
        fence(Ordering::SeqCst);
        let floor = scan().min(self.tail.get());
        self.floor.set(floor);
        m < floor.saturating_add(capacity)
    }

    /// Whether a push would not wait now (see [`room`](Self::room)).
    pub(crate) fn has_room(&self, scan: &impl Fn() -> u64) -> bool {
        self.room(self.tail.get(), scan)
    }

    /// Whether `wanted` pushes would not wait now. A producer waiting for
    /// the slowest consumer asks for a chunk of room rather than for one
    /// slot: scanning the cursors after every message a consumer reads
    /// would take each consumer's cursor line away from it on every message.
    pub(crate) fn has_room_for(&self, wanted: u64, scan: &impl Fn() -> u64) -> bool {
        let wanted = wanted.clamp(1, self.ring.capacity());
        self.room(self.tail.get() + (wanted - 1), scan)
    }

    /// How many free slots a waiting producer waits for (see
    /// [`has_room_for`](Self::has_room_for)): an eighth of the ring, at
    /// most 64.
    pub(crate) fn refill(&self) -> u64 {
        (self.ring.capacity() / 8).clamp(1, 64)
    }

    /// Writes `value` as the next message and publishes it.
    #[inline]
    pub(crate) fn push(&self, value: &T, scan: &impl Fn() -> u64) -> Result<(), PushError> {
        self.push_bytes(crate::shm_safe::bytes_of(value), scan)
    }

    /// Writes `message`, one message's bytes (the ring's size: the untyped
    /// ends check it; a longer one is cut), as the next message and
    /// publishes it.
    #[inline]
    pub(crate) fn push_bytes(
        &self,
        message: &[u8],
        scan: &impl Fn() -> u64,
    ) -> Result<(), PushError> {
        let m = self.tail.get();
        if !self.room(m, scan) {
            return Err(PushError::Full);
        }
        self.write(m, message);
        self.publish(m + 1);
        Ok(())
    }

    /// Writes as many of `values` as there is room for, publishes them at
    /// once, and returns how many.
    pub(crate) fn push_slice(&self, values: &[T], scan: &impl Fn() -> u64) -> usize {
        let start = self.tail.get();
        let mut m = start;
        // At most a ring per publish: a consumer reads ahead of `tail` by
        // sequence words, and more than a ring ahead is corrupt.
        for value in values.iter().take(self.ring.capacity() as usize) {
            if !self.room(m, scan) {
                break;
            }
            self.write(m, crate::shm_safe::bytes_of(value));
            m += 1;
        }
        if m > start {
            self.publish(m);
        }
        (m - start) as usize
    }

    /// Writes message `m`, `message`'s bytes (at most the ring's size),
    /// into its slot, bracketed by its sequence words.
    #[inline]
    fn write(&self, m: u64, message: &[u8]) {
        let message = &message[..message.len().min(self.ring.size)];
        let seq = self.ring.word(m, 0);
        // Relaxed, then the Release fence: SYNC POINT `seqlock`.
        seq.store(2 * m + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for_each_word(message, |k, word| {
            // Relaxed: ordered by the fence above and the store below.
            self.ring.word(m, 1 + k).store(word, Ordering::Relaxed);
        });
        // Release: SYNC POINT `seqlock`.
        seq.store(2 * m + 2, Ordering::Release);
    }

    fn publish(&self, tail: u64) {
        self.tail.set(tail);
        // Release: SYNC POINT `tail`.
        self.ring.control().tail.store(tail, Ordering::Release);
    }

    /// Counts a refused `try_send` in the shared statistics.
    pub(crate) fn count_refusal(&self) {
        self.ring.control().count_refusal();
    }
}

/// Calls `f(k, word)` for each 64-bit word `k` of `bytes`, the last one
/// padded with zeros.
#[inline]
fn for_each_word(bytes: &[u8], mut f: impl FnMut(usize, u64)) {
    let mut words = bytes.chunks_exact(8);
    let mut k = 0;
    for word in &mut words {
        f(k, u64::from_ne_bytes(word.try_into().expect("8 bytes")));
        k += 1;
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        f(k, u64::from_ne_bytes(last));
    }
}

/// What a pop found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PopError {
    /// No message past the cursor yet.
    Empty,
    /// The words contradict every legal state.
    Corrupt,
}

/// A consuming end: one of the ring's consumers, with its cursor.
pub(crate) struct Consumer<T> {
    ring: Ring<T>,
    /// Index of this consumer's cursor.
    index: usize,
    /// The next message to read. Exact: nobody else writes our cursor.
    next: Cell<u64>,
}

impl<T: ShmSafe> Consumer<T> {
    /// Takes cursor `index` (below [`MAX_CONSUMERS`]), starting at the
    /// next message published, or, if `from_oldest`, at the oldest message
    /// still kept.
    ///
    /// The cursor is stored before `tail` is read to start from, with a
    /// `SeqCst` fence between (SYNC POINT `attach`): a producer that does
    /// not see the cursor in its scan published, before that scan, only
    /// messages below the `tail` we read, so the floor it scanned was at
    /// most that, and it may write up to a ring past the floor only: slots
    /// of messages below our start.
    ///
    /// # Safety
    ///
    /// No other consumer may use cursor `index` while this one does.
    pub(crate) unsafe fn attach(ring: Ring<T>, index: usize, from_oldest: bool) -> Self {
        let cursor = &ring.control().cursors[index];
        let provisional = ring.control().tail();
        let provisional = if from_oldest {
            provisional.saturating_sub(ring.capacity())
        } else {
            provisional
        };
        // SeqCst, then the fence: SYNC POINT `attach`.
        cursor.store(provisional, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let start = if from_oldest {
            provisional
        } else {
            ring.control().tail()
        };
        // Release: SYNC POINT `cursor`; only ever moves forward.
        cursor.store(start, Ordering::Release);
        Self {
            ring,
            index,
            next: Cell::new(start),
        }
    }

    pub(crate) fn ring(&self) -> &Ring<T> {
        &self.ring
    }

    /// Messages published and not yet read by this consumer: at most a
    /// ring (more means it was lapped, or `tail` was scribbled).
    pub(crate) fn backlog(&self) -> u64 {
        let queued = self.ring.control().tail().saturating_sub(self.next.get());
        queued.min(self.ring.capacity())
    }

    /// Whether a pop would not wait: the next message is whole in its slot,
    /// or its slot holds something else than a message not yet written and
    /// `tail` is past it (a lap, or corruption, for `pop` to report).
    pub(crate) fn ready(&self) -> bool {
        let c = self.next.get();
        // Acquire: SYNC POINT `seqlock`, as in `pop`.
        let seq = self.ring.word(c, 0).load(Ordering::Acquire);
        seq == c.wrapping_mul(2).wrapping_add(2)
            || !self.unwritten(c, seq) && self.ring.control().tail() > c
    }

    /// Whether `seq`, in message `c`'s slot, says that message `c` is not
    /// written yet: the slot holds the message a ring before it (or
    /// nothing, on the first lap), or message `c` is being written.
    ///
    /// This is how a consumer that has caught up waits: on the slot it
    /// wants, which the producer writes anyway, and not on `tail`, whose
    /// line would otherwise move between the two on every message
    /// (FastForward's slot-based hand-off). `tail` is read only when the
    /// word says anything else: a lap, or corruption.
    #[inline]
    fn unwritten(&self, c: u64, seq: u64) -> bool {
        let capacity = self.ring.capacity();
        let before = if c >= capacity {
            2 * (c - capacity) + 2
        } else {
            0
        };
        seq == before || seq == c.wrapping_mul(2).wrapping_add(1)
    }

    /// Reads the next message: `Ok(Ok(value))`, or `Ok(Err(missed))` if the
    /// producer lapped this consumer, which then goes on from the oldest
    /// message still whole.
    pub(crate) fn pop(&self) -> Result<Result<T, u64>, PopError> {
        self.pop_with(|c| self.copy(c))
    }

    /// As [`pop`](Self::pop), copying the message's bytes (the ring's size)
    /// into the start of `out`.
    pub(crate) fn pop_bytes(&self, out: &mut [u8]) -> Result<Result<(), u64>, PopError> {
        let len = out.len().min(self.ring.size);
        self.pop_with(|c| {
            // SAFETY: `out` holds `len` bytes.
            unsafe { self.copy_to(c, out.as_mut_ptr(), len) }
        })
    }

    /// The seqlock read of the next message, `copy` taking its words out
    /// (possibly more than once: a copy the producer overwrote meanwhile is
    /// thrown away and made again).
    #[inline(always)]
    fn pop_with<R>(&self, mut copy: impl FnMut(u64) -> R) -> Result<Result<R, u64>, PopError> {
        let capacity = self.ring.capacity();
        for _ in 0..MAX_ATTEMPTS {
            let c = self.next.get();
            if c >= MAX_MESSAGE {
                // Started at, or skipped to, a scribbled count.
                return Err(PopError::Corrupt);
            }
            let want = 2 * c + 2;
            let seq = self.ring.word(c, 0);
            // Acquire: SYNC POINT `seqlock`.
            let first = seq.load(Ordering::Acquire);
            if first == want {
                let value = copy(c);
                // Acquire fence, then the second look: SYNC POINT `seqlock`.
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == want {
                    self.advance(c + 1);
                    return Ok(Ok(value));
                }
                // Overwritten while we copied: look again.
                continue;
            }
            if self.unwritten(c, first) {
                return Err(PopError::Empty);
            }
            let tail = self.ring.control().tail();
            if tail <= c {
                // Not published yet. (A consumer may be up to a batch ahead
                // of `tail`: it reads messages by their words, and a batch
                // publishes `tail` once, after its last message.)
                return if c - tail > capacity {
                    Err(PopError::Corrupt)
                } else {
                    Err(PopError::Empty)
                };
            }
            if tail - c > (1 << 62) {
                return Err(PopError::Corrupt);
            }
            // Message `c` was published: its word is at least `want` now
            // (SYNC POINT `tail`). Look again.
            let now = seq.load(Ordering::Acquire);
            if now == want {
                continue;
            }
            // The word's message (`2m + 1` or `2m + 2`): a lap is a message
            // a ring or more after `c`, and at most a ring past `tail` (a
            // batch publishes `tail` once, after its last message).
            let m = now.wrapping_sub(1) / 2;
            if now == 0 || m < c + capacity || m > tail + capacity {
                return Err(PopError::Corrupt);
            }
            // Lapped: skip to the oldest message kept. (If the producer is
            // overwriting it right now, the next pop finds that out and
            // reports one more lag.)
            let resume = tail.saturating_sub(capacity).max(c + 1);
            self.advance(resume);
            return Ok(Err(resume - c));
        }
        Err(PopError::Corrupt)
    }

    /// Copies message `c`'s words into a value (a racy copy, checked by the
    /// caller).
    #[inline]
    fn copy(&self, c: u64) -> T {
        let mut value = MaybeUninit::<T>::uninit();
        // SAFETY: `value` has room for `size_of::<T>()` bytes, the ring's
        // size for a typed ring.
        unsafe { self.copy_to(c, value.as_mut_ptr().cast::<u8>(), size_of::<T>()) };
        // SAFETY: every byte was written above, and any bytes make a valid
        // `T` (the `ShmSafe` contract).
        unsafe { value.assume_init() }
    }

    /// Copies the first `len` bytes of message `c`'s words to `dst` (a
    /// racy copy, checked by the caller).
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of `len` bytes, and `len` at most the
    /// ring's message size.
    #[inline]
    unsafe fn copy_to(&self, c: u64, dst: *mut u8, len: usize) {
        debug_assert!(len <= self.ring.size);
        for k in 0..len.div_ceil(8) {
            // Relaxed: SYNC POINT `seqlock`.
            let word = self
                .ring
                .word(c, 1 + k)
                .load(Ordering::Relaxed)
                .to_ne_bytes();
            let part = (len - 8 * k).min(8);
            // SAFETY: bytes `8k..8k + part` lie within the `len` the
            // caller's contract lets us write.
            unsafe { core::ptr::copy_nonoverlapping(word.as_ptr(), dst.add(8 * k), part) };
        }
    }

    fn advance(&self, next: u64) {
        self.next.set(next);
        // Release: SYNC POINT `cursor`.
        self.ring.control().cursors[self.index].store(next, Ordering::Release);
    }
}

/// A ring in heap memory, for the unit tests and the loom models.
#[cfg(any(test, loom))]
pub(crate) struct HeapRing<T> {
    control: Box<Control>,
    words: Box<[AtomicU64]>,
    capacity: u64,
    _messages: PhantomData<T>,
}

#[cfg(any(test, loom))]
impl<T: ShmSafe> HeapRing<T> {
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Self {
        assert!(capacity.is_power_of_two());
        let control = Box::<Control>::default();
        control.init(overflow);
        Self {
            control,
            words: (0..capacity * slot_words(size_of::<T>()))
                .map(|_| AtomicU64::new(0))
                .collect(),
            capacity: capacity as u64,
            _messages: PhantomData,
        }
    }

    /// A view of this ring's memory.
    ///
    /// # Safety
    ///
    /// The view must not outlive `self`.
    pub(crate) unsafe fn view(&self) -> Ring<T> {
        let words = NonNull::from(&*self.words).cast::<AtomicU64>();
        // SAFETY: the boxes hold the control block and every slot's words;
        // the caller keeps `self` alive for as long as the view.
        unsafe { Ring::new(NonNull::from(&*self.control), words, self.capacity) }
    }

    pub(crate) fn control(&self) -> &Control {
        &self.control
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The smallest cursor of consumers `0..n` of `ring`.
    fn scan(ring: &HeapRing<[u64; 3]>, n: usize) -> impl Fn() -> u64 + '_ {
        move || (0..n).map(|i| ring.control().cursor(i)).min().unwrap_or(0)
    }

    fn msg(i: u64) -> [u64; 3] {
        [i, !i, i.wrapping_mul(31)]
    }

    #[test]
    fn every_consumer_reads_every_message_in_block_mode() {
        let ring = HeapRing::<[u64; 3]>::new(4, Overflow::Block);
        // SAFETY: one producer, two consumers on distinct cursors, all
        // dropped before the ring.
        let (tx, a, b) = unsafe {
            (
                Producer::attach(ring.view(), Overflow::Block).unwrap(),
                Consumer::attach(ring.view(), 0, false),
                Consumer::attach(ring.view(), 1, false),
            )
        };
        let scan = scan(&ring, 2);
        let mut sent = 0;
        let (mut got_a, mut got_b) = (0, 0);
        while got_b < 100 {
            while sent < 100 && tx.push(&msg(sent), &scan).is_ok() {
                sent += 1;
            }
            // `a` keeps up; `b` lags, holding the producer back.
            while let Ok(Ok(v)) = a.pop() {
                assert_eq!(v, msg(got_a));
                got_a += 1;
            }
            if let Ok(Ok(v)) = b.pop() {
                assert_eq!(v, msg(got_b));
                got_b += 1;
            }
            assert!(
                sent - got_b <= 4,
                "the producer outran the slowest consumer"
            );
        }
        assert_eq!(got_a, 100);
    }

    #[test]
    fn a_lapped_consumer_learns_how_many_it_missed() {
        let ring = HeapRing::<[u64; 3]>::new(4, Overflow::Overwrite);
        // SAFETY: as above.
        let (tx, rx) = unsafe {
            (
                Producer::attach(ring.view(), Overflow::Overwrite).unwrap(),
                Consumer::attach(ring.view(), 0, false),
            )
        };
        let scan = scan(&ring, 1);
        for i in 0..10 {
            tx.push(&msg(i), &scan).unwrap();
        }
        // Messages 0..10 sent into 4 slots: 6..10 kept, and the consumer
        // goes on from 6.
        assert_eq!(rx.pop(), Ok(Err(6)));
        for i in 6..10 {
            assert_eq!(rx.pop(), Ok(Ok(msg(i))));
        }
        assert_eq!(rx.pop(), Err(PopError::Empty));
    }

    #[test]
    fn odd_sizes_are_copied_whole() {
        let ring = HeapRing::<[u8; 13]>::new(2, Overflow::Block);
        // SAFETY: as above.
        let (tx, rx) = unsafe {
            (
                Producer::attach(ring.view(), Overflow::Block).unwrap(),
                Consumer::attach(ring.view(), 0, false),
            )
        };
        let scan = || ring.control().cursor(0);
        let value: [u8; 13] = core::array::from_fn(|i| i as u8 + 1);
        tx.push(&value, &scan).unwrap();
        assert_eq!(rx.pop(), Ok(Ok(value)));
    }

    #[test]
    fn impossible_words_are_corrupt_not_a_hang() {
        let ring = HeapRing::<[u64; 3]>::new(4, Overflow::Block);
        // SAFETY: as above.
        let rx = unsafe { Consumer::<[u64; 3]>::attach(ring.view(), 0, false) };
        // A word that says the message is not written yet is believed:
        // the consumer waits (on the slot, not on `tail`).
        ring.control().tail.store(1, Ordering::Relaxed);
        assert_eq!(rx.pop(), Err(PopError::Empty));
        // `tail` says message 0 is there; its word names message 2, which
        // is neither a lap nor published.
        ring.control().tail.store(1, Ordering::Relaxed);
        ring.words[0].store(2 * 2 + 2, Ordering::Relaxed);
        assert_eq!(rx.pop(), Err(PopError::Corrupt));
        // A tail more than a ring behind the cursor.
        ring.control().tail.store(0, Ordering::Relaxed);
        rx.advance(9);
        assert_eq!(rx.pop(), Err(PopError::Corrupt));
    }
}
