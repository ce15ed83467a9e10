//! Lamport's single-producer, single-consumer ring, with cached indices.
//!
//! Positions are 64-bit counters that only grow (they would take centuries
//! to wrap); a position's slot is `position & mask`. The producer owns
//! `tail`, the consumer owns `head`, and each keeps a private, possibly stale
//! copy of the other's index so that it touches the other's cache line only
//! when its copy says the ring is full (producer) or empty (consumer).
//!
//! Every index read from the shared control block is checked against the
//! capacity before it is used: `tail - head` must lie in `0..=capacity`, or
//! the ring is [`Corrupt`]. Slots are addressed with the mask the endpoint
//! validated when it attached, never with anything read later.
//!
//! # Notes about memory ordering
//!
//! - SYNC POINT `tail`: the producer writes the slot, then stores `tail`
//!   with `Release`; the consumer loads `tail` with `Acquire` before reading
//!   the slot. So a message is complete before its position is visible.
//! - SYNC POINT `head`: the consumer reads the slot, then stores `head` with
//!   `Release`; the producer loads `head` with `Acquire` before overwriting
//!   the slot. So a slot is not reused while it is being read.
//! - Each index has a single writer, which reads its own index `Relaxed`
//!   (only when attaching; afterwards it uses its private copy).

use super::{Corrupt, Indices};
use crate::primitive::{Ordering, UnsafeCell};
use core::cell::Cell;
use core::ptr::NonNull;

/// A view of one ring's memory: control words and `capacity` slots.
pub(crate) struct Ring<T> {
    indices: NonNull<Indices>,
    slots: NonNull<UnsafeCell<T>>,
    /// `capacity - 1`; capacity is a power of two, validated by the caller.
    mask: u64,
    /// Bytes from one slot to the next: `size_of::<T>()`, except in a ring
    /// reached without its message type (see [`with_stride`](Self::with_stride)).
    stride: usize,
}

impl<T: crate::ShmSafe> Ring<T> {
    /// A view of the ring at `indices` with `capacity` slots at `slots`.
    ///
    /// # Safety
    ///
    /// `indices` and `capacity` slots at `slots` must be valid for reads and
    /// writes (through the atomics and cells) for as long as the ring and the
    /// endpoints made from it exist. `capacity` must be a power of two.
    pub(crate) unsafe fn new(
        indices: NonNull<Indices>,
        slots: NonNull<UnsafeCell<T>>,
        capacity: u64,
    ) -> Self {
        debug_assert!(capacity.is_power_of_two());
        Self {
            indices,
            slots,
            mask: capacity - 1,
            stride: size_of::<T>(),
        }
    }

    /// The same ring, its slots taken as `stride` bytes each: for an end
    /// that moves messages as bytes ([`Producer::push_bytes`],
    /// [`Consumer::pop_bytes`]), its `T` a stand-in.
    ///
    /// # Safety
    ///
    /// As for [`new`](Self::new), with `capacity` slots of `stride` bytes
    /// (not of `T`) at `slots`.
    pub(crate) unsafe fn with_stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    #[inline]
    pub(crate) fn indices(&self) -> &Indices {
        // SAFETY: `new`'s contract keeps the control block valid while `self` lives.
        unsafe { self.indices.as_ref() }
    }

    #[inline]
    fn slot(&self, position: u64) -> &UnsafeCell<T> {
        // The mask keeps the index below the capacity whatever `position` is.
        let index = (position & self.mask) as usize;
        // SAFETY: `index < capacity`, and `new`'s contract keeps `capacity`
        // slots valid while `self` lives.
        unsafe { self.slots.add(index).as_ref() }
    }

    /// The bytes of the slot of `position`, by the ring's stride.
    #[inline]
    fn slot_bytes(&self, position: u64) -> NonNull<u8> {
        // In bounds: `new`'s (or `with_stride`'s) contract keeps `capacity`
        // slots of `stride` bytes valid.
        super::slot_at(self.slots.cast(), position, self.mask, self.stride)
    }

    /// Checks that `tail - head` is a possible queue length.
    #[inline]
    fn queued(&self, head: u64, tail: u64) -> Result<u64, Corrupt> {
        let queued = tail.wrapping_sub(head);
        if queued <= self.capacity() {
            Ok(queued)
        } else {
            Err(Corrupt)
        }
    }

    /// Messages in the ring now, as far as a racy reading can tell.
    pub(crate) fn len(&self) -> Result<u64, Corrupt> {
        let (head, tail) = self.indices().positions();
        self.queued(head, tail)
    }
}

/// The producing end: the only writer of `tail` and of the slots it fills.
pub(crate) struct Producer<T> {
    ring: Ring<T>,
    /// Next position to write. Exact: nobody else writes `tail`.
    ///
    /// A private copy, though the shared word holds the same: reading that
    /// back would save this copy's store on every message, but the load
    /// misses whenever the consumer has just polled the line, adding a
    /// cache transfer to every round trip.
    tail: Cell<u64>,
    /// `head` as last read: possibly stale, never ahead of the true head,
    /// so the free space it implies is a lower bound.
    cached_head: Cell<u64>,
}

/// Why a push did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    Full,
    Corrupt,
}

/// Why a pop did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PopError {
    Empty,
    Corrupt,
}

impl<T: crate::ShmSafe> Producer<T> {
    /// Takes over the producing end of `ring`, continuing at its `tail`.
    ///
    /// # Safety
    ///
    /// No other `Producer` of this ring may exist, in any process, while
    /// this one does (the endpoint table guarantees it across processes).
    pub(crate) unsafe fn attach(ring: Ring<T>) -> Result<Self, Corrupt> {
        // Acquire: a previous producer's last `tail` store (and its slots)
        // happened before the endpoint table let us in; this makes sure.
        let tail = ring.indices().tail(Ordering::Acquire);
        // Acquire: pairs with the consumer's Release store of `head`.
        let head = ring.indices().head(Ordering::Acquire);
        ring.queued(head, tail)?;
        Ok(Self {
            ring,
            tail: Cell::new(tail),
            cached_head: Cell::new(head),
        })
    }

    pub(crate) fn ring(&self) -> &Ring<T> {
        &self.ring
    }

    /// Free slots, reading the consumer's `head` only if the cached one
    /// shows fewer than `wanted`.
    #[inline(always)]
    fn free(&self, wanted: u64) -> Result<u64, Corrupt> {
        let tail = self.tail.get();
        let free = self.ring.capacity() - tail.wrapping_sub(self.cached_head.get());
        if free >= wanted {
            return Ok(free);
        }
        // SYNC POINT `head`: Acquire pairs with the consumer's Release store,
        // so the slots it freed are no longer being read.
        let head = self.ring.indices().head(Ordering::Acquire);
        let queued = self.ring.queued(head, tail)?;
        self.cached_head.set(head);
        Ok(self.ring.capacity() - queued)
    }

    /// Whether at least `wanted` slots are free, reading `head` only if the
    /// cached copy shows fewer.
    ///
    /// A producer blocked on a full ring waits for a chunk of free slots
    /// rather than for one: polling `head` after every slot the consumer
    /// frees would take its cache line away from the consumer on every
    /// message, slowing it down and keeping the ring full.
    #[inline]
    pub(crate) fn has_room(&self, wanted: u64) -> Result<bool, Corrupt> {
        Ok(self.free(wanted)? >= wanted.min(self.ring.capacity()))
    }

    /// How many free slots a blocked producer waits for (see [`has_room`](Self::has_room)):
    /// an eighth of the ring, at most 64.
    pub(crate) fn refill(&self) -> u64 {
        (self.ring.capacity() / 8).clamp(1, 64)
    }

    /// The position the next message will take.
    #[inline(always)]
    pub(crate) fn position(&self) -> u64 {
        self.tail.get()
    }

    /// Writes `value` into the next slot and publishes it.
    #[inline(always)]
    pub(crate) fn push(&self, value: T) -> Result<(), PushError> {
        self.push_with(|tail| {
            // SAFETY: the slot at `tail` is free (`push_with`'s promise);
            // `value` is a local.
            self.ring
                .slot(tail)
                .with_mut(|slot| unsafe { super::write_words(&value, slot) });
        })
    }

    /// Writes `message`, one message's bytes (the ring's stride), into the
    /// next slot and publishes it.
    pub(crate) fn push_bytes(&self, message: &[u8]) -> Result<(), PushError> {
        let len = message.len().min(self.ring.stride);
        self.push_with(|tail| {
            // SAFETY: the slot at `tail` is free (`push_with`'s promise), and
            // `len` bytes fit in it; `message` is the caller's memory.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    message.as_ptr(),
                    self.ring.slot_bytes(tail).as_ptr(),
                    len,
                );
            }
        })
    }

    /// Has `write` fill the slot at the position it is given, which is
    /// free (the consumer has released it and will not read it before
    /// `tail` moves past it), then publishes it.
    #[inline(always)]
    fn push_with(&self, write: impl FnOnce(u64)) -> Result<(), PushError> {
        match self.free(1) {
            Ok(0) => return Err(PushError::Full),
            Ok(_) => {}
            Err(Corrupt) => return Err(PushError::Corrupt),
        }
        let tail = self.tail.get();
        write(tail);
        self.publish(tail.wrapping_add(1));
        Ok(())
    }

    /// Writes as many of `values` as fit, publishing them all at once.
    /// Returns how many were written (0 when the ring is full).
    pub(crate) fn push_slice(&self, values: &[T]) -> Result<usize, Corrupt> {
        let free = self.free(values.len() as u64)?;
        let count = values.len().min(free as usize);
        let tail = self.tail.get();
        for (i, value) in values[..count].iter().enumerate() {
            let position = tail.wrapping_add(i as u64);
            // SAFETY: positions `tail..tail + count` are free, as in `push`.
            self.ring
                .slot(position)
                .with_mut(|slot| unsafe { super::write_words(value, slot) });
        }
        if count > 0 {
            self.publish(tail.wrapping_add(count as u64));
        }
        Ok(count)
    }

    #[inline(always)]
    fn publish(&self, tail: u64) {
        self.tail.set(tail);
        // SYNC POINT `tail`: `set_tail` stores with Release, which pairs
        // with the consumer's Acquire load.
        self.ring.indices().set_tail(tail);
    }

    /// Counts a refused `try_send` in the shared statistics.
    #[cold]
    pub(crate) fn count_refusal(&self) {
        self.ring.indices().count_refusal();
    }
}

/// The consuming end: the only writer of `head`.
pub(crate) struct Consumer<T> {
    ring: Ring<T>,
    /// Next position to read. Exact: nobody else writes `head`.
    head: Cell<u64>,
    /// `tail` as last read: possibly stale, never ahead of the true tail.
    cached_tail: Cell<u64>,
    /// The largest queue length seen, mirrored to the shared statistics.
    high_water: Cell<u64>,
}

impl<T: crate::ShmSafe> Consumer<T> {
    /// Takes over the consuming end of `ring`, continuing at its `head`.
    ///
    /// # Safety
    ///
    /// No other `Consumer` of this ring may exist, in any process, while
    /// this one does.
    pub(crate) unsafe fn attach(ring: Ring<T>) -> Result<Self, Corrupt> {
        // Acquire: see `Producer::attach`.
        let head = ring.indices().head(Ordering::Acquire);
        let tail = ring.indices().tail(Ordering::Acquire);
        ring.queued(head, tail)?;
        let high_water = ring.indices().snapshot().high_water;
        Ok(Self {
            ring,
            head: Cell::new(head),
            cached_tail: Cell::new(head),
            high_water: Cell::new(high_water),
        })
    }

    pub(crate) fn ring(&self) -> &Ring<T> {
        &self.ring
    }

    /// Messages ready, reading the producer's `tail` only if the cached one
    /// shows fewer than `wanted`.
    #[inline(always)]
    fn ready(&self, wanted: u64) -> Result<u64, Corrupt> {
        let head = self.head.get();
        let cached = self.cached_tail.get().wrapping_sub(head);
        if cached >= wanted {
            return Ok(cached);
        }
        // SYNC POINT `tail`: Acquire pairs with the producer's Release store,
        // so the slots before `tail` are completely written.
        let tail = self.ring.indices().tail(Ordering::Acquire);
        let queued = self.ring.queued(head, tail)?;
        self.cached_tail.set(tail);
        if queued > self.high_water.get() {
            self.raise_high_water(queued);
        }
        Ok(queued)
    }

    #[cold]
    fn raise_high_water(&self, queued: u64) {
        self.high_water.set(queued);
        self.ring.indices().set_high_water(queued);
    }

    /// Reads the next message and releases its slot.
    #[inline(always)]
    pub(crate) fn pop(&self) -> Result<T, PopError> {
        self.pop_with(|head| {
            // SAFETY: the slot at `head` was published (`pop_with`'s
            // promise). A hostile process writing it anyway is outside what
            // the Rust memory model describes (it stops at the process
            // boundary); what it can do is leave arbitrary bytes, and any
            // bit pattern is a valid `T` (`Pod`).
            self.ring
                .slot(head)
                .with(|slot| unsafe { super::read_words(slot) })
        })
    }

    /// Copies the next message's bytes (the ring's stride) into the start
    /// of `out` and releases its slot.
    pub(crate) fn pop_bytes(&self, out: &mut [u8]) -> Result<(), PopError> {
        let len = out.len().min(self.ring.stride);
        self.pop_with(|head| {
            // SAFETY: the slot at `head` was published (`pop_with`'s
            // promise) and holds `stride` >= `len` bytes; `out` is the
            // caller's memory. A hostile writer can only change which
            // bytes are copied (see `pop`).
            unsafe {
                core::ptr::copy_nonoverlapping(
                    self.ring.slot_bytes(head).as_ptr(),
                    out.as_mut_ptr(),
                    len,
                );
            }
        })
    }

    /// Has `read` read the slot at the position it is given, which was
    /// published (and a well-behaved producer will not write it again
    /// before `head` moves past it), then releases it.
    #[inline(always)]
    fn pop_with<R>(&self, read: impl FnOnce(u64) -> R) -> Result<R, PopError> {
        match self.ready(1) {
            Ok(0) => return Err(PopError::Empty),
            Ok(_) => {}
            Err(Corrupt) => return Err(PopError::Corrupt),
        }
        let head = self.head.get();
        let value = read(head);
        self.release(head.wrapping_add(1));
        Ok(value)
    }

    /// Reads as many messages as are ready and fit in `out`, releasing them
    /// all at once. Returns how many were read (0 when the ring is empty).
    pub(crate) fn pop_into(&self, out: &mut [T]) -> Result<usize, Corrupt> {
        let count = out.len().min(self.ready(out.len() as u64)? as usize);
        let head = self.head.get();
        for (i, value) in out[..count].iter_mut().enumerate() {
            let position = head.wrapping_add(i as u64);
            // SAFETY: positions `head..head + count` are published, as in `pop`.
            *value = self
                .ring
                .slot(position)
                .with(|slot| unsafe { super::read_words(slot) });
        }
        if count > 0 {
            self.release(head.wrapping_add(count as u64));
        }
        Ok(count)
    }

    #[inline(always)]
    fn release(&self, head: u64) {
        self.head.set(head);
        // SYNC POINT `head`: `set_head` stores with Release, which pairs
        // with the producer's Acquire load.
        self.ring.indices().set_head(head);
    }
}

/// A ring in heap memory, for tests (and loom, which cannot map files).
#[cfg(any(test, loom))]
pub(crate) struct HeapRing<T> {
    indices: Box<Indices>,
    slots: Box<[UnsafeCell<T>]>,
}

#[cfg(any(test, loom))]
impl<T: crate::ShmSafe> HeapRing<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two());
        Self {
            indices: Box::default(),
            slots: (0..capacity)
                .map(|_| UnsafeCell::new(crate::shm_safe::zeroed()))
                .collect(),
        }
    }

    /// A view of this ring's memory.
    ///
    /// # Safety
    ///
    /// The view must not outlive `self`.
    pub(crate) unsafe fn view(&self) -> Ring<T> {
        // From the whole slice, so the pointer may reach every slot.
        let slots = NonNull::from(&*self.slots).cast::<UnsafeCell<T>>();
        // SAFETY: the boxes hold the control block and `len` slots; the
        // caller keeps `self` alive for as long as the view.
        unsafe {
            Ring::new(
                NonNull::from(&*self.indices),
                slots,
                self.slots.len() as u64,
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

    fn pair(ring: &HeapRing<u64>) -> (Producer<u64>, Consumer<u64>) {
        // SAFETY: one producer and one consumer, both dropped before `ring`.
        unsafe {
            (
                Producer::attach(ring.view()).unwrap(),
                Consumer::attach(ring.view()).unwrap(),
            )
        }
    }

    #[test]
    fn fifo_wraps_many_times() {
        let ring = HeapRing::new(4);
        let (tx, rx) = pair(&ring);
        for i in 0..1000u64 {
            tx.push(i).unwrap();
            if i % 3 == 2 {
                for j in i - 2..=i {
                    assert_eq!(rx.pop(), Ok(j));
                }
            }
        }
    }

    #[test]
    fn len_empty_full() {
        let ring = HeapRing::new(2);
        let (tx, rx) = pair(&ring);
        assert_eq!(rx.pop(), Err(PopError::Empty));
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        assert_eq!(tx.push(3), Err(PushError::Full));
        assert_eq!(tx.ring().len(), Ok(2));
        assert_eq!(rx.pop(), Ok(1));
        tx.push(3).unwrap();
        assert_eq!(ring.indices().snapshot().high_water, 2);
    }

    #[test]
    fn batches_cross_the_end() {
        let ring = HeapRing::new(8);
        let (tx, rx) = pair(&ring);
        assert_eq!(tx.push_slice(&[0, 1, 2, 3, 4, 5]), Ok(6));
        let mut out = [0u64; 4];
        assert_eq!(rx.pop_into(&mut out), Ok(4));
        assert_eq!(out, [0, 1, 2, 3]);
        assert_eq!(tx.push_slice(&[6, 7, 8, 9, 10, 11, 12]), Ok(6));
        let mut out = [0u64; 16];
        assert_eq!(rx.pop_into(&mut out), Ok(8));
        assert_eq!(out[..8], [4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(rx.pop_into(&mut out), Ok(0));
    }

    #[test]
    fn scribbled_indices_are_corrupt_not_ub() {
        let ring = HeapRing::new(4);
        let (tx, rx) = pair(&ring);
        tx.push(7).unwrap();
        tx.push(8).unwrap();
        assert_eq!(rx.pop(), Ok(7)); // caches tail = 2
        ring.indices()
            .producer
            .tail
            .store(1 << 40, Ordering::Relaxed);
        assert_eq!(rx.pop(), Ok(8)); // still within the cached tail
        assert_eq!(rx.pop(), Err(PopError::Corrupt));
        ring.indices()
            .consumer
            .head
            .store(u64::MAX, Ordering::Relaxed);
        for _ in 0..4 {
            let _ = tx.push(1);
        }
        assert_eq!(tx.push(1), Err(PushError::Corrupt));
        // A fresh endpoint refuses to attach to contradictory indices.
        // SAFETY: the old endpoints are not used again.
        assert!(unsafe { Consumer::attach(ring.view()) }.is_err());
    }
}
