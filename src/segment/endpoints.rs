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
use std::sync::OnceLock;

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
    pub(crate) fn me() -> Self {
        static ME: OnceLock<Owner> = OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id();
            let started = start_time(pid).map_or(0, |s| s.started as u32);
            Self::pack(pid, started)
        })
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
        if self == Self::me() {
            return true;
        }
        match start_time(self.pid()) {
            Ok(info) => {
                !info.zombie && (self.started() == 0 || info.started as u32 == self.started())
            }
            Err(Probe::NoSuchProcess) => false,
            // No /proc: fall back to asking the kernel whether the pid exists.
            Err(Probe::Unreadable) => pid_exists(self.pid()),
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
    /// returns the live owner.
    pub(crate) fn claim(&self, me: Owner) -> Result<(), Owner> {
        let mut current = 0;
        loop {
            // AcqRel: see the module notes.
            match self
                .owner
                .compare_exchange(current, me.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(0) => current = 0,
                Err(word) if Owner(word).alive() => return Err(Owner(word)),
                Err(word) => current = word,
            }
        }
    }

    /// Gives the slot up, if `me` still holds it.
    pub(crate) fn release(&self, me: Owner) {
        // Release: see the module notes. If the word changed, someone wrote
        // over our claim; leave their word alone.
        let _ = self
            .owner
            .compare_exchange(me.0, 0, Ordering::Release, Ordering::Relaxed);
    }

    /// Frees the slot if its owner is `dead`; returns whether it is free now.
    pub(crate) fn reap(&self, dead: Owner) -> bool {
        match self
            .owner
            .compare_exchange(dead.0, 0, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(0) => true,
            Err(_) => false,
        }
    }

    /// Whether the slot is free or held by a dead process.
    pub(crate) fn vacant(&self) -> bool {
        self.owner().is_none_or(|owner| !owner.alive())
    }
}

struct ProcInfo {
    started: u64,
    zombie: bool,
}

enum Probe {
    NoSuchProcess,
    Unreadable,
}

/// Reads state and start time from `/proc/<pid>/stat`, without allocating:
/// a blocked endpoint probes its peer this way while it waits.
fn start_time(pid: u32) -> Result<ProcInfo, Probe> {
    use rustix::fs::{Mode, OFlags};
    let mut path = StackText::<32>::new();
    path.push(b"/proc/");
    path.push_u32(pid);
    path.push(b"/stat");
    let fd = match rustix::fs::open(
        path.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) if proc_mounted() => return Err(Probe::NoSuchProcess),
        Err(_) => return Err(Probe::Unreadable),
    };
    // The line is about 300 bytes; its command name is at most 64.
    let mut buf = [0u8; 1024];
    let len = rustix::io::read(&fd, &mut buf).map_err(|_| Probe::Unreadable)?;
    let text = core::str::from_utf8(&buf[..len]).map_err(|_| Probe::Unreadable)?;
    parse_stat(text).ok_or(Probe::Unreadable)
}

/// Parses the state and start time out of a `/proc/<pid>/stat` line.
fn parse_stat(text: &str) -> Option<ProcInfo> {
    // The command name is in parentheses and may hold anything, spaces and
    // parentheses included: the fields that follow start after the last ')'.
    let rest = text.rsplit_once(')')?.1;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    // `starttime` is field 22 of the line; field 3 (`state`) was the first here.
    let started = fields.nth(22 - 4)?.parse().ok()?;
    Some(ProcInfo {
        started,
        zombie: matches!(state, "Z" | "X" | "x"),
    })
}

/// A short ASCII text on the stack.
struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let end = (self.len + bytes.len()).min(N);
        self.buf[self.len..end].copy_from_slice(&bytes[..end - self.len]);
        self.len = end;
    }

    fn push_u32(&mut self, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[start..]);
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

fn proc_mounted() -> bool {
    static MOUNTED: OnceLock<bool> = OnceLock::new();
    *MOUNTED.get_or_init(|| std::path::Path::new("/proc/self/stat").exists())
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
        let line = "42 (a) b (c)) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20\n";
        let info = parse_stat(line).unwrap();
        assert_eq!(info.started, 777);
        assert!(info.zombie);
        assert!(parse_stat("42 (no closing paren").is_none());
        let mut path = StackText::<32>::new();
        path.push(b"/proc/");
        path.push_u32(4_294_967_295);
        assert_eq!(path.as_str(), "/proc/4294967295");
    }

    #[test]
    fn claim_release_reap() {
        let slot = EndpointSlot::default();
        let me = Owner::me();
        slot.claim(me).unwrap();
        assert_eq!(slot.owner(), Some(me));
        assert_eq!(slot.claim(me), Err(me));
        slot.release(me);
        assert_eq!(slot.owner(), None);
        let dead = Owner::pack(me.pid(), me.started().wrapping_add(1));
        slot.claim(dead).unwrap();
        assert!(slot.vacant());
        slot.claim(me).unwrap(); // takes over from the dead owner
        assert_eq!(slot.owner(), Some(me));
        assert!(!slot.reap(dead));
    }
}
