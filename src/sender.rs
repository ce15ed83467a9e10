//! The sending end of one Lamport ring, shared by the spsc sender and each
//! mpsc sender (whose shard is an spsc ring of its own).
//!
//! What differs between the two is only where the doorbells are: an spsc
//! ring has both in its control block; an mpsc shard has its `not_full`
//! there and shares one `not_empty` with every other shard.

use crate::error::{SendError, SendTimeoutError, TrySendError};
use crate::link::{Link, PROBE_EVERY};
use crate::primitive::UnsafeCell;
use crate::ring::spsc::{PushError, Ring};
use crate::ring::Indices;
use crate::segment::Segment;
use crate::wait::{block_on, Blocked, Doorbell, Phase, Wait};
use crate::{Error, ShmSafe};
use core::ptr::NonNull;
use std::time::Instant;

pub(crate) use crate::ring::spsc::{Consumer, Producer};

/// Lays a ring of `T` over ring `index` of `segment`, whose control block
/// must start with the ring's [`Indices`], and attaches one end of it with
/// `attach`.
///
/// # Safety
///
/// The flavor's control block for that ring must be `#[repr(C)]` with
/// [`Indices`] first, the segment's slots must be of `T`, and the caller
/// must hold the role that makes this process the only one using this end
/// of the ring (the endpoint table's claim). The returned end must not
/// outlive `segment`'s mapping.
pub(crate) unsafe fn attach_ring<T: ShmSafe, E>(
    segment: &Segment,
    index: usize,
    attach: unsafe fn(Ring<T>) -> Result<E, crate::ring::Corrupt>,
) -> Result<E, Error> {
    let (control, slots) = segment.ring(index);
    // SAFETY: the segment's validated layout holds the control block at
    // `control` (with `Indices` first, by the caller's contract) and
    // `capacity` slots of `T` after it, aligned for `T`; the caller keeps
    // the mapping alive. `UnsafeCell<T>` is `repr(transparent)`.
    let ring = unsafe {
        Ring::new(
            control.cast::<Indices>(),
            slots.cast::<UnsafeCell<T>>(),
            segment.header_capacity(),
        )
    };
    // SAFETY: the caller holds the only claim on this end of the ring.
    unsafe { attach(ring) }.map_err(|_| Error::Corrupt {
        name: segment.name().to_owned(),
        detail: format!("ring {index}'s positions contradict each other"),
    })
}

/// The producing end of one ring, with its doorbells and its link.
pub(crate) struct RingSender<T: ShmSafe> {
    producer: Producer<T>,
    /// Rung after each publish; the receiver sleeps here.
    not_empty: NonNull<Doorbell>,
    /// Where this sender sleeps while its ring is full.
    not_full: NonNull<Doorbell>,
    pub(crate) link: Link,
}

impl<T: ShmSafe> RingSender<T> {
    /// # Safety
    ///
    /// `producer` must be made over `link`'s mapping, and both doorbells
    /// must lie in it; only this sender may sleep on `not_full`.
    pub(crate) unsafe fn new(
        producer: Producer<T>,
        not_empty: NonNull<Doorbell>,
        not_full: NonNull<Doorbell>,
        link: Link,
    ) -> Self {
        let sender = Self {
            producer,
            not_empty,
            not_full,
            link,
        };
        // Only this end sleeps on `not_full`; a predecessor killed in its
        // sleep may have left its count behind.
        sender.not_full().forget_sleepers();
        sender
    }

    #[inline]
    fn not_empty(&self) -> &Doorbell {
        // SAFETY: by `new`'s contract it lies in the mapping `self.link`
        // owns, which lives as long as `self`.
        unsafe { self.not_empty.as_ref() }
    }

    #[inline]
    fn not_full(&self) -> &Doorbell {
        // SAFETY: as for `not_empty`.
        unsafe { self.not_full.as_ref() }
    }

    pub(crate) fn producer(&self) -> &Producer<T> {
        &self.producer
    }

    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.push(value) {
            Err(TrySendError::Full(value)) => Err(self.refuse(value)),
            result => result,
        }
    }

    /// A full ring: counts the refusal, and probes whether the receiver
    /// died (rate-limited), so that a loop of `try_send` ends too.
    #[cold]
    fn refuse<V>(&self, value: V) -> TrySendError<V> {
        self.producer.count_refusal();
        if self.link.peer_gone_or_dead() {
            TrySendError::Disconnected(value)
        } else {
            TrySendError::Full(value)
        }
    }

    #[inline]
    pub(crate) fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.put(value) {
            return Ok(());
        }
        match self.send_until(value, None) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Disconnected(value) | SendTimeoutError::Timeout(value)) => {
                Err(SendError(value))
            }
        }
    }

    #[inline]
    pub(crate) fn send_timeout(
        &self,
        value: T,
        timeout: core::time::Duration,
    ) -> Result<(), SendTimeoutError<T>> {
        if self.put(value) {
            return Ok(());
        }
        self.send_until(value, Instant::now().checked_add(timeout))
    }

    /// Whether the receiver is gone, before a single message: probing its
    /// liveness at every [`PROBE_EVERY`]th position of the ring, which
    /// costs no counter of its own (a count kept in the link cost a store
    /// per message, measurably).
    #[inline(always)]
    fn receiver_gone(&self) -> bool {
        let probe = self.producer.position() % u64::from(PROBE_EVERY) == 0;
        self.link.peer_gone_cheaply(self.not_empty(), probe)
    }

    /// The fast path of the blocking sends: `true` if `value` went in.
    /// Everything else is left to the out-of-line slow path.
    #[inline(always)]
    fn put(&self, value: T) -> bool {
        if self.receiver_gone() || self.producer.push(value).is_err() {
            return false;
        }
        self.not_empty().notify(self.link.barrier);
        true
    }

    #[inline(never)]
    fn send_until(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let wait = Wait {
            spin: self.link.spin,
            deadline,
        };
        let poll = self.poll_with_hysteresis(|| self.push(value));
        let dead = || {
            self.link
                .peer_gone_or_dead()
                .then_some(Err(TrySendError::Disconnected(value)))
        };
        match block_on(self.not_full(), self.link.barrier, wait, poll, dead) {
            Blocked::Done(Ok(())) => Ok(()),
            Blocked::Done(Err(err)) => Err(SendTimeoutError::Disconnected(err.into_inner())),
            Blocked::TimedOut => Err(SendTimeoutError::Timeout(value)),
        }
    }

    /// The poll of a blocking send: `attempt` at once; once it found the
    /// ring full, a spinning poll tries again only when a chunk of the ring
    /// is free (see `Producer::has_room`), while an announced one (the last
    /// look before sleeping, or the first after waking) takes any room, so a
    /// single free slot is never slept through. A corrupt ring is left for
    /// `attempt` to report.
    #[inline]
    fn poll_with_hysteresis<'a, R, V>(
        &'a self,
        attempt: impl Fn() -> Result<R, TrySendError<V>> + 'a,
    ) -> impl FnMut(Phase) -> Option<Result<R, TrySendError<V>>> + 'a {
        let mut waited = false;
        move |phase| {
            if phase == Phase::Spinning
                && waited
                && self.producer.has_room(self.producer.refill()) == Ok(false)
                && !self.link.peer_gone()
            {
                return None;
            }
            match attempt() {
                Err(TrySendError::Full(_)) => {
                    waited = true;
                    None
                }
                done => Some(done),
            }
        }
    }

    #[inline]
    fn push(&self, value: T) -> Result<(), TrySendError<T>> {
        if self.receiver_gone() {
            return Err(TrySendError::Disconnected(value));
        }
        match self.producer.push(value) {
            Ok(()) => {
                self.not_empty().notify(self.link.barrier);
                Ok(())
            }
            // No liveness probe here, on the blocking path's poll: that path
            // probes after each sleep, and `try_send` in `refuse`.
            Err(PushError::Full) => Err(TrySendError::Full(value)),
            Err(PushError::Corrupt) => {
                self.link.poison();
                Err(TrySendError::Disconnected(value))
            }
        }
    }

    pub(crate) fn try_send_batch(&self, values: &[T]) -> Result<usize, TrySendError<()>> {
        match self.push_batch(values) {
            Err(TrySendError::Full(())) => Err(self.refuse(())),
            result => result,
        }
    }

    pub(crate) fn send_batch(&self, values: &[T]) -> Result<(), SendError<usize>> {
        let mut sent = 0;
        while sent < values.len() {
            let rest = &values[sent..];
            let wait = Wait {
                spin: self.link.spin,
                deadline: None,
            };
            let poll = self.poll_with_hysteresis(|| self.push_batch(rest));
            let dead = || {
                self.link
                    .peer_gone_or_dead()
                    .then_some(Err(TrySendError::Disconnected(())))
            };
            match block_on(self.not_full(), self.link.barrier, wait, poll, dead) {
                Blocked::Done(Ok(count)) => sent += count,
                Blocked::Done(Err(_)) | Blocked::TimedOut => return Err(SendError(sent)),
            }
        }
        Ok(())
    }

    fn push_batch(&self, values: &[T]) -> Result<usize, TrySendError<()>> {
        if self.link.peer_gone_now_and_then(self.not_empty()) {
            return Err(TrySendError::Disconnected(()));
        }
        match self.producer.push_slice(values) {
            Ok(0) if values.is_empty() => Ok(0),
            Ok(0) => Err(TrySendError::Full(())),
            Ok(sent) => {
                self.not_empty().notify(self.link.barrier);
                Ok(sent)
            }
            Err(_) => {
                self.link.poison();
                Err(TrySendError::Disconnected(()))
            }
        }
    }

    /// Messages this sender's ring holds.
    pub(crate) fn capacity(&self) -> usize {
        self.producer.ring().capacity() as usize
    }

    /// Messages waiting in this sender's ring now (a hint).
    pub(crate) fn len(&self) -> usize {
        self.producer.ring().len().unwrap_or(0) as usize
    }
}

impl<T: ShmSafe> Drop for RingSender<T> {
    fn drop(&mut self) {
        self.link.segment.detach();
        // Wake the receiver, asleep on `not_empty`, to see us gone (and our
        // own bell, in case a predecessor's sleeper count lingers).
        self.not_empty().ring();
        self.not_full().ring();
    }
}
