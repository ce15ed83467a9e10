//! The endpoint table: who holds which role, and whether they still live.
//!
//! Each role (or mpsc shard) has one [`EndpointSlot`], a single 64-bit word:
//! zero when free, otherwise the owner's pid in the low half and the low 32
//! bits of its start time (clock ticks since boot) in the high half. One word
//! means a claim is one compare-and-swap, and a reader never sees a pid
//! without its start time.
//!
//! A process that dies without detaching (SIGKILL, a crash) leaves its word
//! behind. Its peers notice with [`alive`]: a pid that no longer exists, is
//! a zombie, or now belongs to a process that started at another time (pid
//! reuse) is dead, and its slot may be taken over with a compare-and-swap
//! from the dead word, so two survivors cannot both take it.
//!
//! All endpoints of a channel must live in one PID namespace: pids are
//! compared as the kernel shows them to each process.
//!
//! # Notes about memory ordering
//!
//! SYNC POINT `owner`: a claim is a compare-and-swap with `AcqRel` and a
//! detach a compare-and-swap with `Release`, so everything the previous
//! owner wrote to its ring happened before the next owner's first access.

use crate::primitive::{AtomicU64, Ordering};
use crate::shm_safe::ConstStr;

/// One role's entry in the endpoint table.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct EndpointSlot {
    /// 0 when free, else an [`Owner`] word.
    owner: AtomicU64,
}

/// A packed owner word: pid and start time of the holding process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner(u64);

impl Owner {
    /// This process, as it will appear in the table.
    ///
    /// Cached, but per pid: a child forked after its parent attached is
    /// another process, with a pid and start time of its own.
    pub(crate) fn me() -> Self {
        static ME: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        // Relaxed: a cache of a value every thread computes alike.
        let cached = Self(ME.load(Ordering::Relaxed));
        if cached.pid() == pid {
            return cached;
        }
        let started = start_time(pid).map_or(0, |info| info.started as u32);
        let me = Self::pack(pid, started);
        ME.store(me.0, Ordering::Relaxed);
        me
    }

    fn pack(pid: u32, started: u32) -> Self {
        Self(u64::from(started) << 32 | u64::from(pid))
    }

    pub(crate) fn pid(self) -> u32 {
        self.0 as u32
    }

    fn started(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Whether the process this word names is still running.
    pub(crate) fn alive(self) -> bool {
        let pid = self.pid();
        // No process has a pid outside this range; a word that says so was
        // scribbled, and must not reach kill(2) as a process group.
        if pid == 0 || pid > i32::MAX as u32 {
            return false;
        }
        if self == Self::me() {
            return true;
        }
        match start_time(pid) {
            Some(info) => {
                !info.exited && (self.started() == 0 || info.started as u32 == self.started())
            }
            // No /proc, or an entry hidden from us (`hidepid`): only the
            // kernel can tell, and it cannot tell a zombie from the living.
            None => pid_exists(pid),
        }
    }
}

impl EndpointSlot {
    /// The current owner, if any. Acquire: see the module notes.
    #[inline]
    pub(crate) fn owner(&self) -> Option<Owner> {
        match self.owner.load(Ordering::Acquire) {
            0 => None,
            word => Some(Owner(word)),
        }
    }

    /// Takes the slot for `me` if it is free or its owner is dead; otherwise
    /// returns the live owner. On success, returns the dead owner it took
    /// the slot from, if any, so the caller can clean up after it.
    pub(crate) fn claim(&self, me: Owner) -> Result<Option<Owner>, Owner> {
        // Each failed exchange means the word changed under us; a hostile
        // writer could make that go on forever, so the attempts are bounded.
        const ATTEMPTS: u32 = 16;
        let mut current = 0;
        for _ in 0..ATTEMPTS {
            // AcqRel: see the module notes.
            match self
                .owner
                .compare_exchange(current, me.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(0) => return Ok(None),
                Ok(dead) => return Ok(Some(Owner(dead))),
                Err(0) => current = 0,
                Err(word) if Owner(word).alive() => return Err(Owner(word)),
                Err(word) => current = word,
            }
        }
        Err(Owner(current))
    }

    /// Gives the slot up, if `me` still holds it.
    pub(crate) fn release(&self, me: Owner) {
        // Release: see the module notes. If the word changed, someone wrote
        // over our claim; leave their word alone.
        let _ = self
            .owner
            .compare_exchange(me.0, 0, Ordering::Release, Ordering::Relaxed);
    }

    /// Frees the slot if its owner is `dead`; returns whether this call
    /// freed it (so that one survivor, not each, cleans up after the dead).
    pub(crate) fn reap(&self, dead: Owner) -> bool {
        // AcqRel: acquires what the dead owner published before it died (see
        // the module notes), and releases the free slot to the next claim.
        self.owner
            .compare_exchange(dead.0, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether the slot is free or held by a dead process.
    pub(crate) fn vacant(&self) -> bool {
        self.owner().is_none_or(|owner| !owner.alive())
    }
}

struct ProcInfo {
    started: u64,
    /// Every thread has exited: a zombie waiting to be reaped, or on its way
    /// out. (A zombie thread-group leader whose other threads still run is
    /// not exited: its process lives.)
    exited: bool,
}

/// Reads state, thread count and start time from `/proc/<pid>/stat`,
/// without allocating: a blocked endpoint probes its peer this way while it
/// waits. `None` if the entry cannot be read.
fn start_time(pid: u32) -> Option<ProcInfo> {
    use rustix::fs::{Mode, OFlags};
    let path = ConstStr::<32>::new()
        .push("/proc/")
        .push_usize(pid as usize)
        .push("/stat");
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path.as_str(), flags, Mode::empty()).ok()?;
    // The line is about 300 bytes; its command name at most 64.
    let mut buf = [0u8; 1024];
    let len = rustix::io::read(&fd, &mut buf).ok()?;
    parse_stat(&buf[..len])
}

/// Parses a `/proc/<pid>/stat` line, as bytes: the command name is the
/// executable's name cut to 15 bytes, which need not be UTF-8.
fn parse_stat(line: &[u8]) -> Option<ProcInfo> {
    // The command name is in parentheses and may hold anything, spaces and
    // parentheses included: the fields that follow start after the last ')'.
    let close = line.iter().rposition(|&b| b == b')')?;
    let mut fields = line[close + 1..]
        .split(u8::is_ascii_whitespace)
        .filter(|field| !field.is_empty());
    // Field 3 of the line is the state, 20 the thread count, 22 the start time.
    let state = fields.next()?;
    let threads: u64 = parse_number(fields.nth(20 - 4)?)?;
    let started = parse_number(fields.nth(22 - 21)?)?;
    let zombie = matches!(state, b"Z" | b"X" | b"x");
    Some(ProcInfo {
        started,
        exited: zombie && threads <= 1,
    })
}

fn parse_number(field: &[u8]) -> Option<u64> {
    core::str::from_utf8(field).ok()?.parse().ok()
}

fn pid_exists(pid: u32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
        return false;
    };
    // EPERM means it exists but belongs to someone else.
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_knows_its_start() {
        let me = Owner::me();
        assert_eq!(me.pid(), std::process::id());
        assert_ne!(me.started(), 0);
        assert!(me.alive());
    }

    #[test]
    fn reused_pid_is_dead() {
        // Our own pid with another start time: a later process reusing it.
        let me = Owner::me();
        let impostor = Owner::pack(me.pid(), me.started().wrapping_add(1));
        assert!(!impostor.alive());
    }

    #[test]
    fn exited_child_is_dead_even_as_zombie() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let started = start_time(pid).map_or(0, |s| s.started as u32);
        let owner = Owner::pack(pid, started);
        // Not yet reaped: a zombie until `wait`.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!owner.alive());
        child.wait().unwrap();
        assert!(!owner.alive());
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let mut line =
            b"42 (a) b (c)) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 1 18 777 19\n".to_vec();
        let info = parse_stat(&line).unwrap();
        assert_eq!(info.started, 777);
        assert!(info.exited);
        // A command name cut inside a UTF-8 character.
        line.splice(4..5, [b'm', 0xC3]);
        assert_eq!(parse_stat(&line).unwrap().started, 777);
        assert!(parse_stat(b"42 (no closing paren").is_none());
    }

    #[test]
    fn zombie_leader_with_live_threads_is_alive() {
        let line = b"42 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 2 18 777 19\n";
        assert!(!parse_stat(line).unwrap().exited);
    }

    #[test]
    fn scribbled_pids_are_dead_and_never_signalled() {
        for pid in [0, u32::MAX, i32::MAX as u32 + 1] {
            assert!(!Owner::pack(pid, 0).alive(), "{pid}");
        }
    }

    #[test]
    fn claim_release_reap() {
        let slot = EndpointSlot::default();
        let me = Owner::me();
        assert_eq!(slot.claim(me), Ok(None));
        assert_eq!(slot.owner(), Some(me));
        assert_eq!(slot.claim(me), Err(me));
        slot.release(me);
        assert_eq!(slot.owner(), None);
        let dead = Owner::pack(me.pid(), me.started().wrapping_add(1));
        slot.claim(dead).unwrap();
        assert!(slot.vacant());
        assert_eq!(slot.claim(me), Ok(Some(dead))); // takes over from the dead owner
        assert_eq!(slot.owner(), Some(me));
        assert!(!slot.reap(dead));
    }
}
