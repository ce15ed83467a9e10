//! The byte ring: variable-length records in a ring of bytes.
//!
//! Positions are 64-bit byte counters that only grow, always multiples of
//! 8; a position's place in the ring is `position & mask`. Each record is an
//! 8-byte header word, `len` in the low half and `kind` in the high half,
//! then `len` bytes of payload padded to a multiple of 8:
//!
//! ```text
//!  position p          p + 8                  p + 8 + pad8(len)
//!  | len | kind=MSG |  payload ... padding   | next record ...
//! ```
//!
//! A record never crosses the end of the ring. When the next one would,
//! the producer writes a header of kind [`WRAP`] where it stands, which
//! covers the rest of the ring, and puts the record at offset 0; both are
//! published by one store of `tail`, so a consumer that sees a wrap marker
//! also sees the record after it. An empty message is a record of kind
//! [`MESSAGE`] and length 0: it is never mistaken for the marker (DESIGN
//! §9).
//!
//! A record of payload length at most `capacity / 2 - 8` always fits in an
//! empty ring: at offset `o`, either it fits before the end, or
//! `o + record > capacity >= 2 * record`, so `o > record`, and the wrap
//! marker plus the record take `capacity - o + record < capacity` bytes.
//! That is [`max_len`](Ring::max_len).
//!
//! Every header read from the ring is checked before it is used: a known
//! kind, a length of at most `max_len`, a record that lies within the
//! published bytes and does not cross the end, and after a wrap marker a
//! record published with it. Indices read from the other side must be
//! multiples of 8 and `tail - head` must lie in `0..=capacity`. Anything
//! else is [`Corrupt`]. (A wrap marker may stand where a short record would
//! have fitted: a claim that had to wrap and was committed short leaves it
//! there. Skipping it is always sound.)
//!
//! # Notes about memory ordering
//!
//! As in the spsc ring, with bytes for slots:
//!
//! - SYNC POINT `tail`: the producer writes payload, then the header(s),
//!   then stores `tail` with `Release`; the consumer loads `tail` with
//!   `Acquire` before reading a header or payload.
//! - SYNC POINT `head`: the consumer finishes with a record, then stores
//!   `head` with `Release`; the producer loads `head` with `Acquire` before
//!   reusing those bytes.

use super::{Corrupt, Indices};
use crate::primitive::{Ordering, UnsafeCell};
use core::cell::Cell;
use core::ptr::NonNull;

/// Bytes in a record header.
pub(crate) const HEADER: u64 = 8;
/// The header kind of a message.
pub(crate) const MESSAGE: u32 = 1;
/// The header kind of a wrap marker: the rest of the ring is padding.
pub(crate) const WRAP: u32 = 2;
/// The largest ring: its largest message, `capacity / 2 - 8` bytes, must
/// fit the header's 32-bit length.
pub(crate) const MAX_CAPACITY: u64 = 1 << 33;
/// The smallest ring: room for the largest record, twice.
pub(crate) const MIN_CAPACITY: u64 = 64;

/// The ring is made of 8-byte words; records start on one.
pub(crate) type Word = UnsafeCell<u64>;

fn header(kind: u32, len: u32) -> u64 {
    u64::from(kind) << 32 | u64::from(len)
}

/// `n` rounded up to a multiple of 8.
fn pad8(n: u64) -> u64 {
    (n + 7) & !7
}

/// A view of one byte ring's memory: control words and `capacity` bytes.
pub(crate) struct Ring {
    indices: NonNull<Indices>,
    words: NonNull<Word>,
    /// `capacity - 1`; capacity is a power of two of at least
    /// [`MIN_CAPACITY`], validated by the caller.
    mask: u64,
}

impl Ring {
    /// A view of the ring at `indices` with `capacity` bytes at `words`.
    ///
    /// # Safety
    ///
    /// `indices` and `capacity / 8` words at `words` must be valid for reads
    /// and writes (through the atomics and cells) for as long as the ring and
    /// the endpoints made from it exist. `capacity` must be a power of two
    /// from [`MIN_CAPACITY`] to [`MAX_CAPACITY`].
    pub(crate) unsafe fn new(
        indices: NonNull<Indices>,
        words: NonNull<Word>,
        capacity: u64,
    ) -> Self {
        debug_assert!(
            capacity.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity)
        );
        Self {
            indices,
            words,
            mask: capacity - 1,
        }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// The largest payload a record may carry: half the ring less a header
    /// (which fits the header's 32-bit length, the ring being at most
    /// [`MAX_CAPACITY`]).
    #[inline]
    pub(crate) fn max_len(&self) -> u64 {
        self.capacity() / 2 - HEADER
    }

    #[inline]
    pub(crate) fn indices(&self) -> &Indices {
        // SAFETY: `new`'s contract keeps the control block valid while `self` lives.
        unsafe { self.indices.as_ref() }
    }

    /// The word at `position`, which must be a multiple of 8.
    #[inline]
    fn word(&self, position: u64) -> &Word {
        debug_assert_eq!(position % 8, 0);
        // The mask keeps the offset below the capacity whatever `position` is.
        let index = ((position & self.mask) / 8) as usize;
        // SAFETY: `index < capacity / 8`, and `new`'s contract keeps that
        // many words valid while `self` lives.
        unsafe { self.words.add(index).as_ref() }
    }

    /// The address of the byte at `position`, for payload copies.
    ///
    /// Payload bytes are reached through this raw pointer rather than word
    /// by word; the caller must stay within a record that lies inside the
    /// ring (which [`Producer::reserve`] and [`Consumer::peek`] guarantee).
    #[cfg(not(loom))]
    pub(crate) fn byte_ptr(&self, position: u64) -> *mut u8 {
        let offset = (position & self.mask) as usize;
        // In bounds: `offset < capacity`, the size of the words' memory.
        self.words.as_ptr().cast::<u8>().wrapping_add(offset)
    }

    /// Checks that `tail - head` is a possible number of queued bytes.
    #[inline]
    fn queued(&self, head: u64, tail: u64) -> Result<u64, Corrupt> {
        let queued = tail.wrapping_sub(head);
        if queued <= self.capacity() && queued % 8 == 0 {
            Ok(queued)
        } else {
            Err(Corrupt)
        }
    }

    /// Checks the positions an endpoint starts from. Both must be multiples
    /// of 8, not only their difference: each end then keeps its own index
    /// aligned, and [`queued`](Self::queued) keeps the other's aligned too.
    fn attachable(&self, head: u64, tail: u64) -> Result<u64, Corrupt> {
        if head % 8 != 0 || tail % 8 != 0 {
            return Err(Corrupt);
        }
        self.queued(head, tail)
    }

    /// Bytes queued now, as far as a racy reading can tell.
    pub(crate) fn len(&self) -> Result<u64, Corrupt> {
        let (head, tail) = self.indices().positions();
        self.queued(head, tail)
    }
}

/// Where a record will go: found by [`Producer::reserve`], filled by the
/// caller, published by [`Producer::commit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// Position of the record's header.
    start: u64,
    /// Position of the wrap marker to write first, if the record wraps.
    wrap_at: Option<u64>,
    /// Payload bytes reserved.
    len: u64,
}

impl Reservation {
    /// Position of the first payload byte.
    pub(crate) fn payload(&self) -> u64 {
        self.start.wrapping_add(HEADER)
    }

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }
}

/// Why a reservation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReserveError {
    /// Not enough contiguous room now.
    Full,
    /// Longer than [`Ring::max_len`]: it could never fit.
    TooLarge,
    Corrupt,
}

/// The producing end: the only writer of `tail` and of unpublished bytes.
pub(crate) struct Producer {
    ring: Ring,
    /// Next position to write. Exact: nobody else writes `tail`.
    tail: Cell<u64>,
    /// `head` as last read: possibly stale, never ahead of the true head.
    cached_head: Cell<u64>,
}

impl Producer {
    /// Takes over the producing end of `ring`, continuing at its `tail`.
    ///
    /// # Safety
    ///
    /// No other `Producer` of this ring may exist, in any process, while
    /// this one does.
    pub(crate) unsafe fn attach(ring: Ring) -> Result<Self, Corrupt> {
        // Acquire: see `spsc::Producer::attach`.
        let tail = ring.indices().tail(Ordering::Acquire);
        let head = ring.indices().head(Ordering::Acquire);
        ring.attachable(head, tail)?;
        Ok(Self {
            ring,
            tail: Cell::new(tail),
            cached_head: Cell::new(head),
        })
    }

    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Free bytes, reading the consumer's `head` only if the cached one
    /// shows fewer than `wanted`.
    #[inline]
    fn free(&self, wanted: u64) -> Result<u64, Corrupt> {
        let tail = self.tail.get();
        let free = self.ring.capacity() - tail.wrapping_sub(self.cached_head.get());
        if free >= wanted {
            return Ok(free);
        }
        // SYNC POINT `head`: Acquire pairs with the consumer's Release store.
        let head = self.ring.indices().head(Ordering::Acquire);
        let queued = self.ring.queued(head, tail)?;
        self.cached_head.set(head);
        Ok(self.ring.capacity() - queued)
    }

    /// Finds contiguous room for a record of `len` payload bytes.
    pub(crate) fn reserve(&self, len: usize) -> Result<Reservation, ReserveError> {
        let len = len as u64;
        if len > self.ring.max_len() {
            return Err(ReserveError::TooLarge);
        }
        let record = HEADER + pad8(len);
        let tail = self.tail.get();
        let to_end = self.ring.capacity() - (tail & self.ring.mask);
        // Room counts contiguous bytes: a record that would cross the end
        // also needs the bytes it skips (DESIGN §9).
        let (start, needed, wrap_at) = if record <= to_end {
            (tail, record, None)
        } else {
            (tail.wrapping_add(to_end), to_end + record, Some(tail))
        };
        match self.free(needed) {
            Ok(free) if free >= needed => Ok(Reservation {
                start,
                wrap_at,
                len,
            }),
            Ok(_) => Err(ReserveError::Full),
            Err(Corrupt) => Err(ReserveError::Corrupt),
        }
    }

    /// The payload word at `position`, for the loom model's payloads.
    #[cfg(loom)]
    pub(crate) fn payload_word(&self, reservation: &Reservation) -> &Word {
        self.ring.word(reservation.payload())
    }

    /// Publishes the first `len` bytes of `reservation`'s payload (which the
    /// caller has written) as one message.
    pub(crate) fn commit(&self, reservation: Reservation, len: usize) {
        let len = (len as u64).min(reservation.len);
        if let Some(at) = reservation.wrap_at {
            let skipped = reservation.start.wrapping_sub(at);
            // SAFETY: the bytes from `at` to the end were reserved (free,
            // released by the consumer, not readable before `tail` moves).
            self.ring
                .word(at)
                .with_mut(|word| unsafe { word.write(header(WRAP, skipped as u32)) });
        }
        let start = reservation.start;
        // SAFETY: as above, for the record's header word.
        let write_header = |word: *mut u64| unsafe { word.write(header(MESSAGE, len as u32)) };
        self.ring.word(start).with_mut(write_header);
        let tail = start.wrapping_add(HEADER + pad8(len));
        self.tail.set(tail);
        // SYNC POINT `tail`: Release pairs with the consumer's Acquire load.
        self.ring.indices().set_tail(tail);
    }

    /// Counts a refused `try_send` in the shared statistics.
    #[cold]
    pub(crate) fn count_refusal(&self) {
        self.ring.indices().count_refusal();
    }
}

/// A published record, found by [`Consumer::peek`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// Position of the first payload byte.
    payload: u64,
    len: u64,
    /// The consumer's `head` once this record is released.
    end: u64,
}

impl Record {
    pub(crate) fn payload(&self) -> u64 {
        self.payload
    }

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }
}

/// Why no record was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PeekError {
    Empty,
    Corrupt,
}

impl From<Corrupt> for PeekError {
    fn from(_: Corrupt) -> Self {
        Self::Corrupt
    }
}

/// The consuming end: the only writer of `head`.
pub(crate) struct Consumer {
    ring: Ring,
    /// Next position to read. Exact: nobody else writes `head`.
    head: Cell<u64>,
    /// `tail` as last read: possibly stale, never ahead of the true tail.
    cached_tail: Cell<u64>,
    /// The most bytes seen queued, mirrored to the shared statistics.
    high_water: Cell<u64>,
}

impl Consumer {
    /// Takes over the consuming end of `ring`, continuing at its `head`.
    ///
    /// # Safety
    ///
    /// No other `Consumer` of this ring may exist, in any process, while
    /// this one does.
    pub(crate) unsafe fn attach(ring: Ring) -> Result<Self, Corrupt> {
        // Acquire: see `spsc::Producer::attach`.
        let head = ring.indices().head(Ordering::Acquire);
        let tail = ring.indices().tail(Ordering::Acquire);
        ring.attachable(head, tail)?;
        let high_water = ring.indices().snapshot().high_water;
        Ok(Self {
            ring,
            head: Cell::new(head),
            cached_tail: Cell::new(head),
            high_water: Cell::new(high_water),
        })
    }

    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Bytes published and not yet released, reading `tail` only if the
    /// cached one shows none.
    #[inline]
    fn ready(&self) -> Result<u64, Corrupt> {
        let head = self.head.get();
        let cached = self.cached_tail.get().wrapping_sub(head);
        if cached != 0 {
            return Ok(cached);
        }
        // SYNC POINT `tail`: Acquire pairs with the producer's Release store.
        let tail = self.ring.indices().tail(Ordering::Acquire);
        let queued = self.ring.queued(head, tail)?;
        self.cached_tail.set(tail);
        if queued > self.high_water.get() {
            self.high_water.set(queued);
            self.ring.indices().set_high_water(queued);
        }
        Ok(queued)
    }

    #[inline]
    fn read_header(&self, position: u64) -> (u32, u64) {
        // SAFETY: `position` is below the published `tail` (checked by the
        // caller), so the producer wrote this word and will not touch it
        // before `head` passes it. Any bit pattern is a valid `u64`.
        let word = self.ring.word(position).with(|word| unsafe { word.read() });
        ((word >> 32) as u32, word & 0xFFFF_FFFF)
    }

    /// The next published record, without releasing it. A wrap marker in
    /// front of it is skipped (and released with it).
    pub(crate) fn peek(&self) -> Result<Record, PeekError> {
        let mut head = self.head.get();
        let mut ready = self.ready()?;
        if ready == 0 {
            return Err(PeekError::Empty);
        }
        let (mut kind, mut len) = self.read_header(head);
        if kind == WRAP {
            // The marker covers the rest of the ring, and the record after
            // it was published with it.
            let skip = self.ring.capacity() - (head & self.ring.mask);
            if ready < skip + HEADER {
                return Err(PeekError::Corrupt);
            }
            head = head.wrapping_add(skip);
            ready -= skip;
            (kind, len) = self.read_header(head);
        }
        if kind != MESSAGE || len > self.ring.max_len() {
            return Err(PeekError::Corrupt);
        }
        let record = HEADER + pad8(len);
        let to_end = self.ring.capacity() - (head & self.ring.mask);
        if record > ready || record > to_end {
            return Err(PeekError::Corrupt);
        }
        Ok(Record {
            payload: head.wrapping_add(HEADER),
            len,
            end: head.wrapping_add(record),
        })
    }

    /// The payload word of `record`, for the loom model's payloads.
    #[cfg(loom)]
    pub(crate) fn payload_word(&self, record: &Record) -> &Word {
        self.ring.word(record.payload)
    }

    /// Gives `record`'s bytes (and any wrap marker before it) back to the
    /// producer.
    pub(crate) fn release(&self, record: Record) {
        self.head.set(record.end);
        // SYNC POINT `head`: Release pairs with the producer's Acquire load.
        self.ring.indices().set_head(record.end);
    }
}

/// A byte ring in heap memory, for tests (and loom).
#[cfg(any(test, loom))]
pub(crate) struct HeapRing {
    indices: Box<Indices>,
    words: Box<[Word]>,
}

#[cfg(any(test, loom))]
impl HeapRing {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two() && capacity as u64 >= MIN_CAPACITY);
        Self {
            indices: Box::default(),
            words: (0..capacity / 8).map(|_| UnsafeCell::new(0)).collect(),
        }
    }

    /// A view of this ring's memory.
    ///
    /// # Safety
    ///
    /// The view must not outlive `self`.
    pub(crate) unsafe fn view(&self) -> Ring {
        // From the whole slice, so the pointer may reach every word.
        let words = NonNull::from(&*self.words).cast::<Word>();
        // SAFETY: the boxes hold the control block and `len` words; the
        // caller keeps `self` alive for as long as the view.
        unsafe {
            Ring::new(
                NonNull::from(&*self.indices),
                words,
                self.words.len() as u64 * 8,
            )
        }
    }

    pub(crate) fn indices(&self) -> &Indices {
        &self.indices
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn pair(ring: &HeapRing) -> (Producer, Consumer) {
        // SAFETY: one producer and one consumer, both dropped before `ring`.
        unsafe {
            (
                Producer::attach(ring.view()).unwrap(),
                Consumer::attach(ring.view()).unwrap(),
            )
        }
    }

    fn send(tx: &Producer, payload: &[u8]) -> Result<(), ReserveError> {
        let r = tx.reserve(payload.len())?;
        // SAFETY: the reservation's payload bytes lie inside the ring and
        // are the producer's until committed.
        unsafe {
            core::ptr::copy_nonoverlapping(
                payload.as_ptr(),
                tx.ring().byte_ptr(r.payload()),
                payload.len(),
            )
        };
        tx.commit(r, payload.len());
        Ok(())
    }

    fn recv(rx: &Consumer) -> Result<Vec<u8>, PeekError> {
        let record = rx.peek()?;
        let mut out = vec![0; record.len()];
        // SAFETY: the record's payload lies inside the ring and is published.
        unsafe {
            core::ptr::copy_nonoverlapping(
                rx.ring().byte_ptr(record.payload()),
                out.as_mut_ptr(),
                out.len(),
            )
        };
        rx.release(record);
        Ok(out)
    }

    #[test]
    fn records_wrap_and_empty_messages_survive() {
        let ring = HeapRing::new(64);
        let (tx, rx) = pair(&ring);
        assert_eq!(tx.ring().max_len(), 24);
        for round in 0..200u8 {
            let len = usize::from(round) % 25;
            let payload: Vec<u8> = (0..len as u8).map(|b| b ^ round).collect();
            send(&tx, &payload).unwrap();
            send(&tx, &[]).unwrap();
            assert_eq!(recv(&rx).unwrap(), payload);
            assert_eq!(recv(&rx).unwrap(), Vec::<u8>::new());
        }
        assert_eq!(recv(&rx), Err(PeekError::Empty));
    }

    #[test]
    fn too_large_and_full_are_told_apart() {
        let ring = HeapRing::new(64);
        let (tx, rx) = pair(&ring);
        assert_eq!(tx.reserve(25), Err(ReserveError::TooLarge));
        send(&tx, &[1; 24]).unwrap(); // 32 bytes
        send(&tx, &[2; 24]).unwrap(); // 64 in all
        assert_eq!(tx.reserve(0), Err(ReserveError::Full));
        assert_eq!(recv(&rx).unwrap(), [1; 24]);
        send(&tx, &[3; 16]).unwrap();
        assert_eq!(recv(&rx).unwrap(), [2; 24]);
        assert_eq!(recv(&rx).unwrap(), [3; 16]);
    }

    #[test]
    fn room_is_contiguous_room() {
        let ring = HeapRing::new(64);
        let (tx, rx) = pair(&ring);
        send(&tx, &[1; 16]).unwrap(); // 0..24
        send(&tx, &[2; 16]).unwrap(); // 24..48
        recv(&rx).unwrap(); // frees 0..24: 40 bytes free, 16 of them at the end
                            // 24 bytes of payload need 32 contiguous: not at the end (16), and
                            // the wrap would need 16 + 32 = 48 > 40.
        assert_eq!(tx.reserve(24), Err(ReserveError::Full));
        // 8 bytes of payload need 16: they fit at the end.
        send(&tx, &[3; 8]).unwrap();
        assert_eq!(recv(&rx).unwrap(), [2; 16]);
        assert_eq!(recv(&rx).unwrap(), [3; 8]);
    }

    #[test]
    fn committing_short_publishes_only_the_prefix() {
        let ring = HeapRing::new(64);
        let (tx, rx) = pair(&ring);
        let r = tx.reserve(16).unwrap();
        // SAFETY: within the reservation.
        unsafe {
            core::ptr::copy_nonoverlapping([7u8; 16].as_ptr(), tx.ring().byte_ptr(r.payload()), 16)
        };
        tx.commit(r, 3);
        assert_eq!(recv(&rx).unwrap(), [7; 3]);
        assert_eq!(ring.indices().snapshot().tail, 16);
    }

    #[test]
    fn hostile_headers_are_corrupt() {
        let ring = HeapRing::new(64);
        let (tx, rx) = pair(&ring);
        let bad = [
            header(MESSAGE, 25),
            header(MESSAGE, u32::MAX),
            header(0, 0),
            header(WRAP, 0),
            header(MESSAGE, 16),
        ];
        for word in bad {
            send(&tx, &[0; 8]).unwrap(); // a 16-byte record at 0 or wherever
            let at = ((rx.head.get() & 63) / 8) as usize;
            // SAFETY: the test is both ends; nothing else touches the word.
            ring.words[at].with_mut(|w| unsafe { w.write(word) });
            // (A length of 16 claims more than the 16-byte record holds.)
            assert_eq!(recv(&rx), Err(PeekError::Corrupt), "{word:#x}");
            // Repair, so the next round starts clean.
            // SAFETY: as above.
            ring.words[at].with_mut(|w| unsafe { w.write(header(MESSAGE, 8)) });
            recv(&rx).unwrap();
        }
        // A misaligned tail.
        ring.indices().set_tail(rx.head.get() + 3);
        assert_eq!(recv(&rx), Err(PeekError::Corrupt));
    }
}
