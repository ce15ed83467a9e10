//! The asymmetric barrier between a publisher and a side going to sleep.
//!
//! A publisher stores its index and then loads the peer's sleeper count; a
//! waiter raises the sleeper count and then re-loads the index. Without a
//! full barrier on *both* sides, each can miss the other's store (the
//! store-buffering pattern) and the waiter sleeps through a publish. A
//! `SeqCst` fence on every publish would cost a store-buffer drain per
//! message, which is most of a ring's throughput.
//!
//! So the cost is moved to the rare side. A process that can, registers for
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`; its publishes then need
//! only a compiler fence, and a waiter about to sleep issues the membarrier,
//! which runs a full barrier on every CPU currently running a registered
//! process (a CPU not running one passes a context switch, also a full
//! barrier). Either the publisher's store happened before that barrier and
//! the waiter's re-check sees it, or the publisher's load comes after it and
//! sees the raised count.
//!
//! A segment records at creation whether its peers may rely on this
//! ([`Mode::Membarrier`]) or all use full fences ([`Mode::Fence`]). A process
//! that could not register still joins a membarrier segment correctly: its
//! own publishes use a real fence, and a membarrier is a full barrier for
//! its caller too. Under loom, only the fence mode exists.

use crate::primitive::{compiler_fence, fence, Ordering};

/// How the peers of one segment pair their barriers; stored in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Mode {
    /// Every peer issues a `SeqCst` fence on both sides.
    Fence = 1,
    /// Waiters issue `membarrier`; registered publishers a compiler fence.
    Membarrier = 2,
}

impl Mode {
    pub(crate) fn from_u32(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Fence),
            2 => Some(Self::Membarrier),
            _ => None,
        }
    }

    /// The mode for a segment this process creates now.
    pub(crate) fn for_new_segment() -> Self {
        if cfg!(not(loom)) && std::env::var_os("SHMCHAN_NO_MEMBARRIER").is_none() && registered() {
            Self::Membarrier
        } else {
            Self::Fence
        }
    }
}

/// One endpoint's half of the barrier pair, fixed when it attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Barrier {
    /// Publishes need a real fence: the segment is in fence mode, or this
    /// process is not registered and so is not covered by peers' membarriers.
    light_is_fence: bool,
    /// Going to sleep issues a membarrier rather than a fence.
    heavy_is_membarrier: bool,
}

impl Barrier {
    /// The barrier for an endpoint of a segment in `mode`, or `None` when
    /// this process cannot take part (membarrier mode, but the call is denied).
    pub(crate) fn new(mode: Mode) -> Option<Self> {
        match mode {
            Mode::Fence => Some(Self::fence()),
            Mode::Membarrier if available() => Some(Self {
                light_is_fence: !registered(),
                heavy_is_membarrier: true,
            }),
            Mode::Membarrier => None,
        }
    }

    /// Full fences on both sides; what loom checks.
    pub(crate) const fn fence() -> Self {
        Self {
            light_is_fence: true,
            heavy_is_membarrier: false,
        }
    }

    /// The publisher's half: between its index store and its sleeper load.
    #[inline(always)]
    pub(crate) fn light(self) {
        if self.light_is_fence {
            // Pairs with the waiter's `heavy`: a SeqCst fence, or a
            // membarrier, which is a full barrier for its caller too.
            fence(Ordering::SeqCst);
        } else {
            // Keeps the compiler from moving the sleeper load above the
            // index store; the processor is ordered by the waiter's membarrier.
            compiler_fence(Ordering::SeqCst);
        }
    }

    /// The waiter's half: between raising its sleeper count and re-checking.
    ///
    /// Returns `false` if the barrier could not be issued; the caller must
    /// then not sleep for long, since a publish may go unseen.
    pub(crate) fn heavy(self) -> bool {
        if self.heavy_is_membarrier {
            return membarrier();
        }
        // Pairs with the publishers' `light` SeqCst fences.
        fence(Ordering::SeqCst);
        true
    }
}

#[cfg(not(loom))]
fn membarrier() -> bool {
    use rustix::thread::{membarrier, MembarrierCommand};
    membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}

#[cfg(loom)]
fn membarrier() -> bool {
    false
}

/// Whether this process can issue a global expedited membarrier.
#[cfg(not(loom))]
fn available() -> bool {
    use rustix::thread::{membarrier_query, MembarrierCommand};
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE
        .get_or_init(|| membarrier_query().contains_command(MembarrierCommand::GlobalExpedited))
}

/// Whether this process is registered as a target of global expedited
/// membarriers (registration is per process and cannot be undone).
#[cfg(not(loom))]
fn registered() -> bool {
    use rustix::thread::{membarrier, MembarrierCommand};
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        available() && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
    })
}

#[cfg(loom)]
fn available() -> bool {
    false
}

#[cfg(loom)]
fn registered() -> bool {
    false
}
