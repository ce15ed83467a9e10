//! What every endpoint holds besides its ring: its segment, its barrier,
//! its spin time, and its watch on the peer.

use crate::segment::{Claim, Owner, Segment, Spec};
use crate::wait::{block_on, Barrier, Blocked, Doorbell, Mode, Wait, LIVENESS_INTERVAL};
use crate::{Error, Options};
use crate::{RecvTimeoutError, TryRecvError};
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use core::time::Duration;
use std::sync::OnceLock;
use std::time::Instant;

/// How many sends pass between two liveness checks of a sender that never
/// blocks (and, for mpmc, receives between two looks for dead senders). The
/// check reads the clock; the probe itself is rate-limited to one per
/// [`LIVENESS_INTERVAL`].
pub(crate) const PROBE_EVERY: u32 = 256;

/// One endpoint's attachment to a channel.
///
/// Its own state is in process-local atomics, all `Relaxed`: each is a
/// cache or a flag of this endpoint alone, ordered with nothing else, so
/// that an endpoint shared between threads (mpmc) can use it too. (On the
/// machines we target these are plain loads and stores.)
pub(crate) struct Link {
    pub(crate) segment: Segment,
    pub(crate) barrier: Barrier,
    pub(crate) spin: Duration,
    /// The peers' slots in the endpoint table, and their role bit. The peer
    /// is gone when every one of these slots is free.
    peer_slots: Range<usize>,
    peer_bit: u32,
    /// Whether the peer's role was seen taken once (never cleared).
    peer_seen: AtomicBool,
    /// When the peer's liveness was last probed (it costs syscalls), as
    /// nanoseconds since a process-wide epoch plus one; 0 for never.
    last_probe: AtomicU64,
    /// Calls of [`peer_gone_now_and_then`](Self::peer_gone_now_and_then)
    /// left before it probes the peer's liveness.
    probe_countdown: AtomicU32,
    /// Set once the ring was found corrupt; the endpoint then reports
    /// disconnection for good.
    poisoned: AtomicBool,
    /// What the flavor does after a dead peer's slot was freed, given the
    /// slot: clean up what the dead process left half done.
    on_reap: fn(&Segment, usize),
}

/// Whether a liveness probe last made at `last` (see [`Link::last_probe`])
/// is due again: at most one per [`LIVENESS_INTERVAL`], since each costs
/// syscalls. If so, records now as the last.
pub(crate) fn probe_due(last: &AtomicU64) -> bool {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let now = (epoch.elapsed().as_nanos() as u64).saturating_add(1);
    let then = last.load(Relaxed);
    let due = then == 0 || now.saturating_sub(then) >= LIVENESS_INTERVAL.as_nanos() as u64;
    if due {
        last.store(now, Relaxed);
    }
    due
}

impl Link {
    /// Wraps a segment in which a role was taken; the peer is the role
    /// `peer` describes (for an mpsc receiver, every shard).
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
            peer_slots: peer.slots.clone(),
            peer_bit: peer.ever_bit,
            peer_seen: AtomicBool::new(false),
            last_probe: AtomicU64::new(0),
            probe_countdown: AtomicU32::new(PROBE_EVERY),
            poisoned: AtomicBool::new(false),
            on_reap: |_, _| {},
        })
    }

    /// Sets what is done after a dead peer's slot is freed.
    pub(crate) fn on_reap(mut self, on_reap: fn(&Segment, usize)) -> Self {
        self.on_reap = on_reap;
        self
    }

    /// Creates the segment `name` for `spec` with `capacity` messages (or
    /// bytes) per ring, in the options' mode, and takes the role `claim`:
    /// what every flavor's `create` does before attaching.
    pub(crate) fn create_segment(
        name: &str,
        spec: &Spec,
        capacity: u64,
        options: &Options,
        claim: &Claim,
    ) -> Result<Segment, Error> {
        Segment::create(
            name,
            spec,
            capacity,
            options.mode,
            Mode::for_new_segment(),
            claim,
        )
        .map_err(|err| options.as_requested(err))
    }

    /// The peer attached once and has detached (or was found dead). Loads
    /// of rarely written words, one per peer slot; no syscall.
    #[inline]
    pub(crate) fn peer_gone(&self) -> bool {
        // `attached_ever` first: see `Segment::ever_attached`.
        self.is_poisoned()
            || (self.peer_attached_ever()
                && self.peer_table().iter().all(|slot| slot.owner().is_none()))
    }

    /// The peers' slots of the endpoint table.
    #[inline]
    fn peer_table(&self) -> &[crate::segment::EndpointSlot] {
        // The range comes from the flavor's roles, checked against the
        // validated table size when the role was claimed; `get` anyway.
        self.segment
            .endpoints()
            .get(self.peer_slots.clone())
            .unwrap_or_default()
    }

    /// Whether the peer's role was ever taken. The bit is only ever set, so
    /// once seen it is remembered here instead of re-read from the segment.
    #[inline]
    fn peer_attached_ever(&self) -> bool {
        if self.peer_seen.load(Relaxed) {
            return true;
        }
        let seen = self.segment.ever_attached(self.peer_bit);
        self.peer_seen.store(seen, Relaxed);
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

    /// Whether the peer is gone, asked by a sender before each publish, and
    /// cheaply: in full ([`peer_gone_or_dead`](Self::peer_gone_or_dead):
    /// the endpoint table, and the peer's liveness at most once per
    /// [`LIVENESS_INTERVAL`]) only if `probe`, or if `peer_bell`, the
    /// doorbell the peer sleeps on, says it detached; otherwise only whether
    /// the ring was found corrupt. Reading the endpoint table on every send
    /// cost a quarter of spsc's throughput. The caller says `probe` once
    /// every [`PROBE_EVERY`] messages or so, so that a sender whose ring
    /// never fills still learns that its receiver died.
    #[inline(always)]
    pub(crate) fn peer_gone_cheaply(&self, peer_bell: &Doorbell, probe: bool) -> bool {
        if probe || peer_bell.peer_may_have_left() {
            return self.peer_gone_or_dead();
        }
        self.is_poisoned()
    }

    /// [`peer_gone_cheaply`](Self::peer_gone_cheaply), probing once every
    /// [`PROBE_EVERY`] calls. (For senders with one peer slot; mpmc, whose
    /// senders have 64, counts per thread instead: see `mpmc::probe_now`.)
    #[inline]
    pub(crate) fn peer_gone_now_and_then(&self, peer_bell: &Doorbell) -> bool {
        // Relaxed: a count of this endpoint's own calls; a race between
        // threads sharing it only moves the probe by a call or two.
        let countdown = self.probe_countdown.load(Relaxed);
        let probe = countdown == 0;
        let countdown = if probe { PROBE_EVERY } else { countdown - 1 };
        self.probe_countdown.store(countdown, Relaxed);
        self.peer_gone_cheaply(peer_bell, probe)
    }

    /// Like [`peer_gone`](Self::peer_gone), but also probes whether the peer
    /// process still lives, at most once per [`LIVENESS_INTERVAL`], and
    /// frees its role if it died.
    #[cold]
    pub(crate) fn peer_gone_or_dead(&self) -> bool {
        if probe_due(&self.last_probe) {
            self.reap_dead_peers();
        }
        self.peer_gone()
    }

    /// Frees the slots of peers whose processes died, telling the flavor
    /// (see [`on_reap`](Self::on_reap)) about each.
    fn reap_dead_peers(&self) {
        for (index, slot) in self.peer_slots.clone().zip(self.peer_table()) {
            if let Some(owner) = slot.owner().filter(|owner| !owner.alive()) {
                if slot.reap(owner) {
                    (self.on_reap)(&self.segment, index);
                }
            }
        }
    }

    /// Whether the ring was found corrupt; the endpoint then stays
    /// disconnected, even if the segment is repaired.
    #[inline]
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Relaxed)
    }

    /// Records that the ring is corrupt.
    #[cold]
    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Relaxed);
    }

    /// Every attached endpoint, for statistics; `role` names a slot's role.
    pub(crate) fn endpoints(
        &self,
        role: impl Fn(usize) -> &'static str,
    ) -> Vec<crate::stats::EndpointInfo> {
        let table = self.segment.endpoints();
        table
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                let owner: Owner = slot.owner()?;
                Some(crate::stats::EndpointInfo {
                    role: role(i),
                    pid: owner.pid(),
                    alive: owner.alive(),
                })
            })
            .collect()
    }
}
