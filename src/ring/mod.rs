//! The ring algorithms, over raw memory, knowing nothing of files or names.
//!
//! A ring is handed pointers to its control words and its slots; it never
//! allocates or maps anything. The flavors lay a ring over a shared mapping;
//! the tests lay the same code over heap memory, under loom too.

// Under loom only the algorithms are built, not the flavors that use all of them.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod spsc;

#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod bytes;

#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod mpmc;

#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod broadcast;

use crate::primitive::{AtomicU64, Ordering};
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;

/// The control block of one ring, `#[repr(C)]` so it can live in a segment.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Indices {
    consumer: CachePadded<ConsumerLine>,
    producer: CachePadded<ProducerLine>,
}

/// The words only the consumer writes.
#[repr(C)]
#[derive(Debug, Default)]
struct ConsumerLine {
    /// Position of the next message (or byte, in the byte ring) to read.
    /// Written by the consumer only.
    head: AtomicU64,
    /// Most messages (or bytes) the consumer has seen queued at once.
    /// Statistics only.
    high_water: AtomicU64,
}

/// The words only the producer writes.
#[repr(C)]
#[derive(Debug, Default)]
struct ProducerLine {
    /// Position of the next message (or byte) to write. Written by the
    /// producer only.
    tail: AtomicU64,
    /// `try_send` calls refused because the ring was full. Statistics only.
    refusals: AtomicU64,
}

#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::size_of::<Indices>(), 256);
#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::offset_of!(Indices, producer), 128);

impl Indices {
    /// The consumer's position. `Acquire` where the caller then reuses the
    /// space before it (SYNC POINT `head` of the rings).
    #[inline]
    pub(crate) fn head(&self, order: Ordering) -> u64 {
        self.consumer.head.load(order)
    }

    /// The producer's position. `Acquire` where the caller then reads what
    /// was published before it (SYNC POINT `tail` of the rings).
    #[inline]
    pub(crate) fn tail(&self, order: Ordering) -> u64 {
        self.producer.tail.load(order)
    }

    /// Publishes the consumer's position. Release: pairs with the
    /// producer's Acquire load in `head`.
    #[inline]
    pub(crate) fn set_head(&self, head: u64) {
        self.consumer.head.store(head, Ordering::Release);
    }

    /// Publishes the producer's position. Release: pairs with the
    /// consumer's Acquire load in `tail`.
    #[inline]
    pub(crate) fn set_tail(&self, tail: u64) {
        self.producer.tail.store(tail, Ordering::Release);
    }

    /// `head` and `tail` for a racy count of what is queued. `head` is
    /// read first, with Acquire (pairing with the consumer's Release store
    /// in `set_head`): the consumer had seen a `tail` at least this far
    /// before it moved `head`, so the `tail` read after it cannot be older,
    /// and a concurrent receive cannot make `tail - head` look negative.
    /// `tail` itself is a hint: Relaxed.
    #[inline]
    pub(crate) fn positions(&self) -> (u64, u64) {
        let head = self.consumer.head.load(Ordering::Acquire);
        (head, self.producer.tail.load(Ordering::Relaxed))
    }

    /// Records a new high-water mark (statistics only, so Relaxed).
    #[cold]
    pub(crate) fn set_high_water(&self, queued: u64) {
        self.consumer.high_water.store(queued, Ordering::Relaxed);
    }

    /// Counts a refused `try_send`. Single writer, so a load and a store.
    #[cold]
    pub(crate) fn count_refusal(&self) {
        let n = self.producer.refusals.load(Ordering::Relaxed);
        self.producer
            .refusals
            .store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// Messages sent and received since the ring was created, and the
    /// statistics, as a racy snapshot (each word is read once, unchecked).
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            head: self.consumer.head.load(Ordering::Relaxed),
            tail: self.producer.tail.load(Ordering::Relaxed),
            high_water: self.consumer.high_water.load(Ordering::Relaxed),
            refusals: self.producer.refusals.load(Ordering::Relaxed),
        }
    }
}

/// A racy reading of a ring's control block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) head: u64,
    pub(crate) tail: u64,
    pub(crate) high_water: u64,
    pub(crate) refusals: u64,
}

/// A ring's control words or positions contradict each other: a peer wrote
/// garbage into the segment. The endpoint stops using the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// The first byte of the slot of `position` in a ring of `mask + 1` slots
/// of `stride` bytes at `base`: what the rings reached without their
/// message type (by the stride recorded in the header) address slots with.
///
/// The mask keeps the index below the capacity whatever `position` is, so
/// the result lies within the `(mask + 1) * stride` bytes at `base`, which
/// the caller's ring keeps valid.
#[inline]
pub(crate) fn slot_at(base: NonNull<u8>, position: u64, mask: u64, stride: usize) -> NonNull<u8> {
    let index = (position & mask) as usize;
    let at = base.as_ptr().wrapping_add(index * stride);
    // SAFETY: an offset within a valid allocation (above) is not null.
    unsafe { NonNull::new_unchecked(at) }
}

/// Whether a `T` moves as 8-byte words ([`write_words`], [`read_words`]):
/// 17 to 64 bytes of whole, aligned words. Smaller values fit in one or two
/// registers and move well as they are; larger ones are copied by `memcpy`.
const fn moves_as_words<T>() -> bool {
    let size = core::mem::size_of::<T>();
    core::mem::align_of::<T>() >= 8 && size % 8 == 0 && size >= 17 && size <= 64
}

/// Writes a copy of `*src` into the slot `dst`, in 8-byte words when `T`
/// [moves as words](moves_as_words); otherwise as one move.
///
/// Two things cost a message of 24 bytes its speed, and this avoids both.
/// A plain move loads the value back 16 bytes at a time; when the caller
/// has just built it with one store per field, the processor cannot
/// forward one load from two stores and waits for them to reach the cache.
/// And the value must then sit in memory at all: each store to the stack
/// takes a place in the store buffer behind the slot's stores, which wait
/// for a cache line the consumer holds. Reading the words plainly lets the
/// compiler keep a value built in registers there; storing them as
/// volatile 8-byte words keeps it from merging them again.
///
/// # Safety
///
/// `src` must be valid for reads and `dst` for writes of one `T`, both
/// aligned, not overlapping.
#[inline(always)]
pub(crate) unsafe fn write_words<T>(src: *const T, dst: *mut T) {
    if moves_as_words::<T>() {
        let (src, dst) = (src.cast::<u64>(), dst.cast::<u64>());
        for k in 0..size_of::<T>() / 8 {
            // SAFETY: word `k` lies within both `T`s, which are aligned to
            // 8 (the caller's contract and `moves_as_words`).
            unsafe { dst.add(k).write_volatile(src.add(k).read()) };
        }
    } else {
        // SAFETY: the caller's contract.
        unsafe { dst.write(src.read()) };
    }
}

/// Reads a copy of the slot `src`, in 8-byte words when `T` [moves as
/// words](moves_as_words); otherwise as one move.
///
/// The mirror of [`write_words`]: volatile 8-byte loads from the slot,
/// kept apart so that the value can live in registers rather than be
/// copied through the stack (a 16-byte move of it tends to be).
///
/// # Safety
///
/// `src` must be valid for reads of one `T`, aligned.
#[inline(always)]
pub(crate) unsafe fn read_words<T: crate::ShmSafe>(src: *const T) -> T {
    if moves_as_words::<T>() {
        let mut value = core::mem::MaybeUninit::<T>::uninit();
        let (src, dst) = (src.cast::<u64>(), value.as_mut_ptr().cast::<u64>());
        for k in 0..size_of::<T>() / 8 {
            // SAFETY: word `k` lies within the slot and the local, both
            // aligned to 8 (the caller's contract and `moves_as_words`).
            unsafe { dst.add(k).write(src.add(k).read_volatile()) };
        }
        // SAFETY: every byte of `value` was written above (the size is a
        // whole number of words), and any bytes are a valid `T`
        // (`ShmSafe`'s contract).
        unsafe { value.assume_init() }
    } else {
        // SAFETY: the caller's contract.
        unsafe { src.read() }
    }
}
