//! What every endpoint holds besides its ring: its segment, its barrier,
//! its spin time, and its watch on the peer.

use crate::segment::{Claim, Owner, Segment};
use crate::wait::{block_on, Barrier, Blocked, Doorbell, Mode, Wait, LIVENESS_INTERVAL};
use crate::{Error, Options};
use crate::{RecvTimeoutError, TryRecvError};
use core::cell::Cell;
use core::time::Duration;
use std::time::Instant;

/// How many sends pass between two liveness checks of a sender that never
/// blocks. The check reads the clock; the probe itself is rate-limited to
/// one per [`LIVENESS_INTERVAL`].
const PROBE_EVERY: u32 = 256;

/// One endpoint's attachment to a channel.
pub(crate) struct Link {
    pub(crate) segment: Segment,
    pub(crate) barrier: Barrier,
    pub(crate) spin: Duration,
    /// The peer's slot in the endpoint table, and its role bit.
    peer_slot: usize,
    peer_bit: u32,
    /// Whether the peer's role was seen taken once (never cleared).
    peer_seen: Cell<bool>,
    /// When the peer's liveness was last probed (it costs syscalls).
    last_probe: Cell<Option<Instant>>,
    /// Calls of [`peer_gone_now_and_then`](Self::peer_gone_now_and_then)
    /// left before it probes the peer's liveness.
    probe_countdown: Cell<u32>,
    /// Set once the ring was found corrupt; the endpoint then reports
    /// disconnection for good.
    poisoned: Cell<bool>,
}

impl Link {
    /// Wraps a segment in which `claim` was taken; the peer is the role in
    /// `peer_slot`.
    pub(crate) fn new(segment: Segment, options: &Options, peer: &Claim) -> Result<Self, Error> {
        let name = segment.name().to_owned();
        let mode = segment.barrier_mode().ok_or_else(|| Error::Corrupt {
            name: name.clone(),
            detail: "its barrier mode is unknown".into(),
        })?;
        // Validation already refused a mode this process cannot take part in.
        let barrier = Barrier::new(mode).ok_or_else(|| Error::Incompatible {
            name,
            detail: "it relies on membarrier(2), which this process may not call".into(),
        })?;
        Ok(Self {
            segment,
            barrier,
            spin: options.spin,
            peer_slot: peer.slots.start,
            peer_bit: peer.ever_bit,
            peer_seen: Cell::new(false),
            last_probe: Cell::new(None),
            probe_countdown: Cell::new(PROBE_EVERY),
            poisoned: Cell::new(false),
        })
    }

    /// The mode for a segment created now.
    pub(crate) fn new_segment_mode() -> Mode {
        Mode::for_new_segment()
    }

    /// The peer attached once and has detached (or was found dead). Two
    /// loads of rarely written words; no syscall.
    #[inline]
    pub(crate) fn peer_gone(&self) -> bool {
        // `attached_ever` first: see `Segment::ever_attached`.
        self.poisoned.get()
            || (self.peer_attached_ever()
                && self.segment.endpoints()[self.peer_slot].owner().is_none())
    }

    /// Whether the peer's role was ever taken. The bit is only ever set, so
    /// once seen it is remembered here instead of re-read from the segment.
    #[inline]
    fn peer_attached_ever(&self) -> bool {
        if self.peer_seen.get() {
            return true;
        }
        let seen = self.segment.ever_attached(self.peer_bit);
        self.peer_seen.set(seen);
        seen
    }

    /// The blocking receive of every flavor: waits on `bell` until `attempt`
    /// finds the ring other than empty. After each sleep the peer is probed;
    /// once it is gone, `attempt` (which then sees it gone) has one last
    /// look, so what the peer published before going is still delivered.
    pub(crate) fn recv_until<R>(
        &self,
        bell: &Doorbell,
        deadline: Option<Instant>,
        attempt: impl Fn() -> Result<R, TryRecvError>,
    ) -> Result<R, RecvTimeoutError> {
        let wait = Wait {
            spin: self.spin,
            deadline,
        };
        let poll = |_| match attempt() {
            Err(TryRecvError::Empty) => None,
            done => Some(done),
        };
        let dead = || self.peer_gone_or_dead().then(&attempt);
        match block_on(bell, self.barrier, wait, poll, dead) {
            Blocked::Done(Ok(value)) => Ok(value),
            Blocked::Done(Err(_)) => Err(RecvTimeoutError::Disconnected),
            Blocked::TimedOut => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Like [`peer_gone`](Self::peer_gone), and once every [`PROBE_EVERY`]
    /// calls like [`peer_gone_or_dead`](Self::peer_gone_or_dead): a sender
    /// whose ring never fills never blocks, and would otherwise never learn
    /// that its receiver died.
    #[inline]
    pub(crate) fn peer_gone_now_and_then(&self) -> bool {
        let left = self.probe_countdown.get();
        if left == 0 {
            self.probe_countdown.set(PROBE_EVERY);
            return self.peer_gone_or_dead();
        }
        self.probe_countdown.set(left - 1);
        self.peer_gone()
    }

    /// Like [`peer_gone`](Self::peer_gone), but also probes whether the peer
    /// process still lives, at most once per [`LIVENESS_INTERVAL`], and
    /// frees its role if it died.
    #[cold]
    pub(crate) fn peer_gone_or_dead(&self) -> bool {
        let now = Instant::now();
        let due = self
            .last_probe
            .get()
            .is_none_or(|last| now.duration_since(last) >= LIVENESS_INTERVAL);
        if due {
            self.last_probe.set(Some(now));
            let slot = &self.segment.endpoints()[self.peer_slot];
            if let Some(owner) = slot.owner().filter(|owner| !owner.alive()) {
                slot.reap(owner);
            }
        }
        self.peer_gone()
    }

    /// Whether the ring was found corrupt; the endpoint then stays
    /// disconnected, even if the segment is repaired.
    #[inline]
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.get()
    }

    /// Records that the ring is corrupt.
    #[cold]
    pub(crate) fn poison(&self) {
        self.poisoned.set(true);
    }

    /// Every attached endpoint, for statistics.
    pub(crate) fn endpoints(&self, roles: &[&'static str]) -> Vec<crate::stats::EndpointInfo> {
        let table = self.segment.endpoints();
        table
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                let owner: Owner = slot.owner()?;
                Some(crate::stats::EndpointInfo {
                    role: roles.get(i).copied().unwrap_or("endpoint"),
                    pid: owner.pid(),
                    alive: owner.alive(),
                })
            })
            .collect()
    }
}
