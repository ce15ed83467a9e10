//! The rule every flavor's operations follow, written once over the flavor
//! interface ([`End`]).
//!
//! Receiving: try the ring; if nothing is there, ask whether every sender
//! is gone; if so, look once more (what they published before going is
//! still delivered) and only then report disconnection. Sending: if every
//! receiver is gone, fail at once and hand the message back; otherwise try
//! the ring. Blocking forms spin, then sleep on the end's doorbell
//! ([`block_on`]), and after every sleep, and before giving up on a
//! deadline, probe whether the other side died.
//!
//! The flavors supply single attempts ("take one message", "find room for a
//! record"); the rule turns them into `try_*`, blocking and timed calls.
//! The loom models run these same functions over heap memory.

use super::link::Link;
use crate::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use crate::primitive::AtomicU32;
use crate::wait::{block_on, Barrier, Blocked, Doorbell, Phase, Wait, Watch};
use core::cell::{Cell, RefCell};
use core::time::Duration;
use std::time::Instant;

/// Why one attempt at an operation did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss<H> {
    /// Nothing to receive, or no room to send. `H` may name a cell left
    /// claimed in the way, for [`End::rescue`].
    Edge(H),
    /// The ring contradicts itself: a peer wrote garbage into it.
    Corrupt,
}

/// A snapshot of a channel's counters, as one end reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) len: u64,
    pub(crate) capacity: u64,
    pub(crate) high_water: u64,
    pub(crate) full: u64,
}

/// What a flavor contributes to one end of a channel: its doorbells, its
/// clean-up after the dead, its queries. The operations themselves are
/// closures handed to the rule; typed flavors implement [`Push`]/[`Pop`].
pub trait End {
    /// What a miss tells about a cell left claimed in the way (mpmc); `()`
    /// for rings that have no claims.
    type Hint: Copy + Default;

    /// The doorbell this end sleeps on.
    fn bell(&self) -> &Doorbell;

    /// This end's own count of its sleepers on [`bell`](Self::bell), when
    /// other endpoints sleep there too (see `wait::block_on`).
    fn tally(&self) -> Option<&AtomicU32> {
        None
    }

    /// Frees the cell `hint` names if its claimer is dead. `now` skips the
    /// rate limit (the other side is gone: this is the last look).
    fn rescue(&self, _link: &Link, _hint: Self::Hint, _now: bool) -> bool {
        false
    }

    /// Tidies what the last holder of `slot` left behind, with `slot`'s
    /// lock held: its sleepers always (a count a scribble or a death left
    /// would make every publish ring), and if it `died`, its claims. Called
    /// by a survivor that reaps a dead holder, and by this end for its own
    /// slot when it attaches.
    fn take_over(&self, _slot: usize, _died: bool) {}

    /// Wakes everyone asleep on the channel's doorbells, to see this end gone.
    fn wake_all(&self);

    /// For a sending end: whether this send is due to probe the receivers'
    /// liveness (every few hundred), so that a sender whose ring never
    /// fills still learns that its receiver died.
    #[inline(always)]
    fn probe_tick(&self) -> bool {
        false
    }

    /// For a sending end spinning on a full ring: whether trying again is
    /// worth it yet (see `ring::spsc::Producer::has_room`).
    #[inline]
    fn worth_retrying(&self) -> bool {
        true
    }

    /// For a sending end: counts a refused `try_send`.
    fn count_refusal(&self) {}

    /// Messages (or bytes) this end's ring or rings hold.
    fn capacity(&self) -> usize;
    /// Messages waiting now, as far as a racy reading can tell.
    fn len(&self) -> usize;
    /// Whether a send would wait now (a hint).
    fn is_full(&self) -> bool;
    /// Whether this end's operation would not wait now: a message to take
    /// (a receiving end) or room (a sending end), or a corrupt ring, on
    /// which the operation fails at once. Reads the shared indices only.
    fn ready(&self) -> bool;
}

/// A typed sending end: one message, or as many as fit.
pub trait Push<T>: End {
    /// Writes `value` into the ring, publishes it and rings the receivers.
    fn push(&self, value: T) -> Result<(), Miss<Self::Hint>>;
    /// Writes as many of `values` (not empty) as fit, publishes them and
    /// rings once; a miss if none fit.
    fn push_slice(&self, values: &[T]) -> Result<usize, Miss<Self::Hint>>;
}

/// A typed receiving end: one message, or as many as are ready.
pub trait Pop<T>: End {
    /// Takes the next message and rings the senders.
    fn pop(&self) -> Result<T, Miss<Self::Hint>>;
    /// Takes as many messages as are ready and fit in `out` (not empty),
    /// rings once; a miss if none is ready.
    fn pop_into(&self, out: &mut [T]) -> Result<usize, Miss<Self::Hint>>;
}

/// One attachment: its link to the channel and its end of the rings.
pub(crate) struct Endpoint<E> {
    pub(crate) link: Link,
    pub(crate) end: E,
}

impl<E: End> Endpoint<E> {
    /// The endpoint that has just taken its slot: tidies what the slot's
    /// last holder left (everything, if it `died`), then announces itself.
    pub(crate) fn start(link: Link, end: E, slot: usize, died: bool) -> Self {
        end.take_over(slot, died);
        link.announce();
        Self { link, end }
    }

    /// Detaches: gives the slot up, then wakes everyone asleep on the
    /// channel's doorbells, who then see this end gone.
    pub(crate) fn leave(&self) {
        self.link.leave();
        self.end.wake_all();
    }

    /// Whether the other side is gone, reaping dead peers first (at most
    /// once per liveness interval).
    #[cold]
    pub(crate) fn peer_gone_or_dead(&self) -> bool {
        self.link
            .peer_gone_or_dead(|slot| self.end.take_over(slot, true))
    }

    fn wait(&self, deadline: Option<Instant>) -> Wait {
        Wait {
            spin: self.link.spin,
            deadline,
        }
    }

    /// The rings are corrupt: disconnected for good.
    #[cold]
    fn poisoned(&self) {
        self.link.poison();
    }

    // ---- Receiving ----

    /// The rule of `try_recv`: `attempt` once; on a miss, free a dead
    /// claimer's cell in the way and look again, then ask whether the
    /// senders are gone (probing their liveness, rate-limited).
    pub(crate) fn try_take<R>(
        &self,
        mut attempt: impl FnMut() -> Result<R, Miss<E::Hint>>,
    ) -> Result<R, TryRecvError> {
        if !self.link.usable() {
            return Err(TryRecvError::Disconnected);
        }
        match attempt() {
            Ok(r) => Ok(r),
            Err(Miss::Corrupt) => {
                self.poisoned();
                Err(TryRecvError::Disconnected)
            }
            Err(Miss::Edge(hint)) => {
                if self.end.rescue(&self.link, hint, false) {
                    if let Ok(r) = attempt() {
                        return Ok(r);
                    }
                }
                if self.peer_gone_or_dead() {
                    self.last_look(&mut attempt)
                } else {
                    Err(TryRecvError::Empty)
                }
            }
        }
    }

    /// The senders are gone: what they published before going is still
    /// delivered (their leaving came after their last publish, and we saw
    /// them leave, so a fresh look sees the publish). Cells that dead
    /// senders left claimed in front of it are freed first, as many as the
    /// ring holds at most.
    #[cold]
    fn last_look<R>(
        &self,
        attempt: &mut impl FnMut() -> Result<R, Miss<E::Hint>>,
    ) -> Result<R, TryRecvError> {
        for _ in 0..=self.end.capacity() {
            match attempt() {
                Ok(r) => return Ok(r),
                Err(Miss::Edge(hint)) if self.end.rescue(&self.link, hint, true) => {}
                Err(Miss::Edge(_)) => break,
                Err(Miss::Corrupt) => {
                    self.poisoned();
                    break;
                }
            }
        }
        Err(TryRecvError::Disconnected)
    }

    /// The rule of `recv` and `recv_timeout`: `attempt` until it succeeds,
    /// the senders are gone (and a last look found nothing), or the
    /// deadline passes.
    #[inline(never)]
    pub(crate) fn take_until<R>(
        &self,
        deadline: Option<Instant>,
        attempt: impl FnMut() -> Result<R, Miss<E::Hint>>,
    ) -> Result<R, RecvTimeoutError> {
        let attempt = RefCell::new(attempt);
        let hint = Cell::new(E::Hint::default());
        let last_look = || self.last_look(&mut *attempt.borrow_mut());
        let poll = |_| {
            if !self.link.usable() {
                return Some(Err(TryRecvError::Disconnected));
            }
            // The borrow ends here: `last_look` borrows again.
            let result = (attempt.borrow_mut())();
            match result {
                Ok(r) => Some(Ok(r)),
                Err(Miss::Corrupt) => {
                    self.poisoned();
                    Some(Err(TryRecvError::Disconnected))
                }
                Err(Miss::Edge(found)) => {
                    hint.set(found);
                    // One load while the senders do not change.
                    self.link.peer_gone().then(&last_look)
                }
            }
        };
        let check = || {
            if self.end.rescue(&self.link, hint.take(), false) {
                let result = (attempt.borrow_mut())();
                if let Ok(r) = result {
                    return Some(Ok(r));
                }
            }
            self.peer_gone_or_dead().then(&last_look)
        };
        let end = &self.end;
        match block_on(
            end.bell(),
            end.tally(),
            self.link.barrier,
            self.wait(deadline),
            poll,
            check,
        ) {
            Blocked::Done(Ok(r)) => Ok(r),
            Blocked::Done(Err(_)) => Err(RecvTimeoutError::Disconnected),
            Blocked::TimedOut => Err(RecvTimeoutError::Timeout),
        }
    }

    // ---- Sending ----

    /// Whether a send must fail before it tries the ring: the endpoint is
    /// unusable, or every receiver is gone (one load while they do not
    /// change; every few hundred sends, a liveness probe, rate-limited).
    #[inline(always)]
    pub(crate) fn receivers_gone(&self) -> bool {
        !self.link.usable()
            || self.link.peer_gone()
            || (self.end.probe_tick() && self.peer_gone_or_dead())
    }

    /// The rule of `try_send`: fail at once if the receivers are gone;
    /// `attempt` once; if there is no room, count the refusal, free a dead
    /// claimer's cell in the way and try again, then probe whether the
    /// receivers died (rate-limited).
    pub(crate) fn try_put<R>(
        &self,
        mut attempt: impl FnMut() -> Result<R, Miss<E::Hint>>,
    ) -> Result<R, TrySendError<()>> {
        if self.receivers_gone() {
            return Err(TrySendError::Disconnected(()));
        }
        match attempt() {
            Ok(r) => Ok(r),
            Err(Miss::Corrupt) => {
                self.poisoned();
                Err(TrySendError::Disconnected(()))
            }
            Err(Miss::Edge(hint)) => {
                if self.end.rescue(&self.link, hint, false) {
                    if let Ok(r) = attempt() {
                        return Ok(r);
                    }
                }
                self.end.count_refusal();
                if self.peer_gone_or_dead() {
                    Err(TrySendError::Disconnected(()))
                } else {
                    Err(TrySendError::Full(()))
                }
            }
        }
    }

    /// The rule of `send` and `send_timeout`: `attempt` until it succeeds,
    /// the receivers are gone, or the deadline passes.
    ///
    /// Once it found the ring full, a spinning poll tries again only when
    /// the end says it is worth it (a chunk of room, for a Lamport ring),
    /// while an announced one (the last look before sleeping, or the first
    /// after waking) tries whatever there is, so a single free slot is never
    /// slept through.
    #[inline(never)]
    pub(crate) fn put_until<R>(
        &self,
        deadline: Option<Instant>,
        attempt: impl FnMut() -> Result<R, Miss<E::Hint>>,
    ) -> Result<R, SendTimeoutError<()>> {
        let attempt = RefCell::new(attempt);
        let hint = Cell::new(E::Hint::default());
        let waited = Cell::new(false);
        let poll = |phase| {
            if !self.link.usable() || self.link.peer_gone() {
                return Some(Err(()));
            }
            if phase == Phase::Spinning && waited.get() && !self.end.worth_retrying() {
                return None;
            }
            match (attempt.borrow_mut())() {
                Ok(r) => Some(Ok(r)),
                Err(Miss::Corrupt) => {
                    self.poisoned();
                    Some(Err(()))
                }
                Err(Miss::Edge(found)) => {
                    hint.set(found);
                    waited.set(true);
                    None
                }
            }
        };
        let check = || {
            if self.end.rescue(&self.link, hint.take(), false) {
                if let Ok(r) = (attempt.borrow_mut())() {
                    return Some(Ok(r));
                }
            }
            self.peer_gone_or_dead().then_some(Err(()))
        };
        let end = &self.end;
        match block_on(
            end.bell(),
            end.tally(),
            self.link.barrier,
            self.wait(deadline),
            poll,
            check,
        ) {
            Blocked::Done(Ok(r)) => Ok(r),
            Blocked::Done(Err(())) => Err(SendTimeoutError::Disconnected(())),
            Blocked::TimedOut => Err(SendTimeoutError::Timeout(())),
        }
    }
}

/// The deadline `timeout` from now; `None` (wait for ever) if it is `None`
/// or too far away to represent.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|timeout| Instant::now().checked_add(timeout))
}

/// The typed operations, over [`Push`] and [`Pop`]: what the public
/// typed `Sender` and `Receiver` call. A timeout of `None` waits for ever.
impl<E: End> Endpoint<E> {
    /// `send` and `send_timeout`: the fast path inline (receivers there,
    /// room at once, no clock read), everything else out of line.
    ///
    /// The message reaches the slow path only through the fast path's
    /// `Err`, so the compiler stores it to the stack (to pass it on) only
    /// when the fast path failed: a message built in registers goes from
    /// there into its slot. A store the fast path does not need costs
    /// throughput: while the receiver holds the slot's cache line, the
    /// slot's stores wait in the store buffer, and every store behind them
    /// takes a place there (three such stores per 24-byte message made a
    /// stream of them half as fast).
    #[inline(always)]
    pub(crate) fn send<T: Copy>(
        &self,
        value: T,
        timeout: Option<Duration>,
    ) -> Result<(), SendTimeoutError<T>>
    where
        E: Push<T>,
    {
        match self.send_fast(value) {
            Ok(()) => Ok(()),
            Err(value) => self.send_slow(value, timeout),
        }
    }

    /// The fast path of `send`: the message back if it did not go.
    #[inline(always)]
    fn send_fast<T: Copy>(&self, value: T) -> Result<(), T>
    where
        E: Push<T>,
    {
        if !self.receivers_gone() && self.end.push(value).is_ok() {
            return Ok(());
        }
        Err(value)
    }

    #[cold]
    #[inline(never)]
    fn send_slow<T: Copy>(
        &self,
        value: T,
        timeout: Option<Duration>,
    ) -> Result<(), SendTimeoutError<T>>
    where
        E: Push<T>,
    {
        self.put_until(deadline(timeout), || self.end.push(value))
            .map_err(|err| match err {
                SendTimeoutError::Timeout(()) => SendTimeoutError::Timeout(value),
                SendTimeoutError::Disconnected(()) => SendTimeoutError::Disconnected(value),
            })
    }

    pub(crate) fn try_send<T: Copy>(&self, value: T) -> Result<(), TrySendError<T>>
    where
        E: Push<T>,
    {
        self.try_put(|| self.end.push(value))
            .map_err(|err| match err {
                TrySendError::Full(()) => TrySendError::Full(value),
                TrySendError::Disconnected(()) => TrySendError::Disconnected(value),
            })
    }

    /// As many of `values` as fit, without waiting.
    pub(crate) fn try_send_batch<T: Copy>(&self, values: &[T]) -> Result<usize, TrySendError<()>>
    where
        E: Push<T>,
    {
        if values.is_empty() {
            return Ok(0);
        }
        self.try_put(|| self.end.push_slice(values))
    }

    /// Whether a batch must fail before it tries the ring: as
    /// [`receivers_gone`](Self::receivers_gone), without the periodic
    /// liveness probe, which counts messages and would come round every few
    /// batches. A batch sender learns of a dead receiver when its ring
    /// fills, or from a probe of its single sends.
    #[inline(always)]
    fn receivers_left(&self) -> bool {
        !self.link.usable() || self.link.peer_gone()
    }

    /// All of `values`, waiting for room as it goes; on disconnection, how
    /// many were sent. While there is room, each chunk goes in without the
    /// blocking machinery.
    pub(crate) fn send_batch<T: Copy>(&self, values: &[T]) -> Result<(), usize>
    where
        E: Push<T>,
    {
        let mut sent = 0;
        while sent < values.len() {
            let rest = &values[sent..];
            if !self.receivers_left() {
                if let Ok(count) = self.end.push_slice(rest) {
                    sent += count;
                    continue;
                }
            }
            match self.put_until(None, || self.end.push_slice(rest)) {
                Ok(count) => sent += count,
                Err(_) => return Err(sent),
            }
        }
        Ok(())
    }

    /// `recv` and `recv_timeout`: the fast path inline (a message ready, no
    /// clock read), everything else out of line.
    #[inline(always)]
    pub(crate) fn recv<T>(&self, timeout: Option<Duration>) -> Result<T, RecvTimeoutError>
    where
        E: Pop<T>,
    {
        if self.link.usable() {
            if let Ok(value) = self.end.pop() {
                // Now and then, a receiver whose ring never runs empty
                // looks for dead senders too (mpmc: their sleepers would
                // make every receive ring).
                if self.end.probe_tick() {
                    self.peer_gone_or_dead();
                }
                return Ok(value);
            }
        }
        self.recv_slow(timeout)
    }

    #[inline(never)]
    fn recv_slow<T>(&self, timeout: Option<Duration>) -> Result<T, RecvTimeoutError>
    where
        E: Pop<T>,
    {
        self.take_until(deadline(timeout), || self.end.pop())
    }

    pub(crate) fn try_recv<T>(&self) -> Result<T, TryRecvError>
    where
        E: Pop<T>,
    {
        self.try_take(|| self.end.pop())
    }

    /// As many messages as are ready and fit in `out`, without waiting.
    pub(crate) fn try_recv_batch<T>(&self, out: &mut [T]) -> Result<usize, TryRecvError>
    where
        E: Pop<T>,
    {
        if out.is_empty() {
            return Ok(0);
        }
        self.try_take(|| self.end.pop_into(out))
    }

    /// As many messages as are ready and fit in `out`, waiting for one.
    pub(crate) fn recv_batch<T>(&self, out: &mut [T]) -> Result<usize, RecvTimeoutError>
    where
        E: Pop<T>,
    {
        if out.is_empty() {
            return Ok(0);
        }
        if self.link.usable() {
            if let Ok(count) = self.end.pop_into(out) {
                return Ok(count);
            }
        }
        self.take_until(None, || self.end.pop_into(out))
    }
}

/// The operation of an endpoint (a receive on a receiving end, a send on a
/// sending end) as one of those a waiter on many channels waits for
/// ([`Select`](crate::Select), async): ready when the end says it would
/// not wait, or when the operation would fail at once (the other side
/// gone, the endpoint unusable). The end knows which side it is, so one
/// type serves both.
pub(crate) struct OpWatch<'a, E>(pub(crate) &'a Endpoint<E>);

impl<E: End> Watch for OpWatch<'_, E> {
    fn bell(&self) -> &Doorbell {
        self.0.end.bell()
    }
    fn tally(&self) -> Option<&AtomicU32> {
        self.0.end.tally()
    }
    fn barrier(&self) -> Barrier {
        self.0.link.barrier
    }
    fn spin(&self) -> Duration {
        self.0.link.spin
    }
    fn ready(&self) -> bool {
        let link = &self.0.link;
        !link.usable() || self.0.end.ready() || link.peer_gone()
    }
    fn check(&self) -> bool {
        self.0.peer_gone_or_dead()
    }
}
