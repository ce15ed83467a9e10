//! Cross-process test harness: a test binary re-runs itself as a peer.
//!
//! Each test file that uses peers declares
//!
//! ```ignore
//! #[test]
//! #[ignore = "run as a peer process by the other tests"]
//! fn peer() {
//!     common::peer_main(|role, args| match role { ... });
//! }
//! ```
//!
//! and starts peers with [`spawn_peer`]. A peer reports failure by
//! panicking: the test harness then exits non-zero, which the parent sees.

#![allow(dead_code)]

pub mod counting_alloc;
pub mod hostile;
pub mod shm;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const ROLE_VAR: &str = "SHMCHAN_TEST_ROLE";
const ARGS_VAR: &str = "SHMCHAN_TEST_ARGS";
const SEP: char = '\u{1f}';

/// A channel name no other test (or concurrent test run) uses.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("shmchan-test-{tag}-{}-{n}", std::process::id())
}

/// Starts this test binary again, running only its `peer` test, as `role`.
pub fn spawn_peer(role: &str, args: &[&str]) -> Child {
    spawn_peer_env(role, args, &[])
}

/// [`spawn_peer`] with extra environment variables for the peer.
pub fn spawn_peer_env(role: &str, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .envs(env.iter().copied())
        .args([
            "--ignored",
            "--exact",
            "peer",
            "--nocapture",
            "--test-threads",
            "1",
            "-q",
        ])
        .env(ROLE_VAR, role)
        .env(ARGS_VAR, args.join(&SEP.to_string()))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn peer process")
}

/// The body of a test binary's `peer` test: runs `dispatch(role, args)`.
pub fn peer_main(dispatch: impl FnOnce(&str, &[String])) {
    let role = std::env::var(ROLE_VAR).expect("the peer test runs only under spawn_peer");
    let args: Vec<String> = std::env::var(ARGS_VAR)
        .unwrap_or_default()
        .split(SEP)
        .filter(|arg| !arg.is_empty())
        .map(str::to_owned)
        .collect();
    dispatch(&role, &args);
}

/// Peer argument `i`, parsed.
pub fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T
where
    T::Err: std::fmt::Debug,
{
    args[i].parse().expect("a numeric peer argument")
}

/// The number of live endpoints in `stats` with `role`.
pub fn live(stats: &shmchan::Stats, role: &str) -> usize {
    stats
        .endpoints
        .iter()
        .filter(|e| e.role == role && e.alive)
        .count()
}

/// Sends `make(0..count)` in chunks of 1..=`max` (their sizes drawn from
/// `Rng::new(seed)`), alternating `send_batch` and `try_send_batch`
/// (retrying while full; a partial send must be 1..=the chunk).
pub fn send_in_chunks<T>(
    seed: u64,
    count: u64,
    max: u64,
    make: impl Fn(u64) -> T,
    mut send_batch: impl FnMut(&[T]),
    mut try_send_batch: impl FnMut(&[T]) -> Result<usize, shmchan::TrySendError<()>>,
) {
    let mut rng = Rng::new(seed);
    let mut next = 0u64;
    let mut round = 0u64;
    let mut chunk = Vec::with_capacity(max as usize);
    while next < count {
        let size = (1 + rng.below(max)).min(count - next);
        chunk.clear();
        chunk.extend((next..next + size).map(&make));
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let sent = if round % 2 == 0 {
                send_batch(rest);
                rest.len()
            } else {
                match try_send_batch(rest) {
                    Ok(sent) => {
                        assert!((1..=rest.len()).contains(&sent), "try_send_batch: {sent}");
                        sent
                    }
                    Err(shmchan::TrySendError::Full(())) => {
                        std::thread::yield_now();
                        0
                    }
                    Err(err) => panic!("try_send_batch: {err}"),
                }
            };
            rest = &rest[sent..];
        }
        next += size;
        round += 1;
    }
}

/// Waits for `child` to exit, killing it after `limit`.
pub fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let give_up = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for peer") {
            return status;
        }
        if Instant::now() >= give_up {
            let _ = child.kill();
            let _ = child.wait();
            panic!("peer process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for `child` to exit successfully.
pub fn expect_success(mut child: Child, limit: Duration) {
    let status = wait_for(&mut child, limit);
    assert!(status.success(), "peer process failed: {status}");
}

/// Polls `condition` until it holds, failing the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < give_up, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether a shared-memory object of this name exists.
pub fn segment_exists(name: &str) -> bool {
    std::path::Path::new("/dev/shm")
        .join(name.trim_start_matches('/'))
        .exists()
}

/// The permission bits of a channel's shared-memory object.
pub fn segment_mode(name: &str) -> u32 {
    let path = std::path::Path::new("/dev/shm").join(name.trim_start_matches('/'));
    std::fs::metadata(&path)
        .unwrap_or_else(|err| panic!("stat {path:?}: {err}"))
        .permissions()
        .mode()
        & 0o777
}

/// In a peer: sleeps in small steps until `done`, panicking after `limit`.
pub fn peer_wait(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < give_up,
            "peer gave up waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// In a peer: holds `_endpoint` until killed.
pub fn sleep_forever<T>(_endpoint: T) -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Runs `f` on a thread and fails the test if it has not returned within
/// `limit`: a hang must fail, not stall the run.
pub fn within<R: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let result = f();
        let _ = done_tx.send(());
        result
    });
    match done_rx.recv_timeout(limit) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not return within {limit:?}: a call hung")
        }
        _ => match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        },
    }
}

/// Removes the channel's name when the test ends, in case it failed before
/// the endpoints did.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = shmchan::unlink(&self.0);
    }
}

/// xorshift64*: a small seeded generator, the same in every process, so a
/// failure can be replayed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Like [`Rng::new`] but for `seed` mixed with `SHMCHAN_HOSTILE_SEED`
    /// (set it to change the seeds), and a different sequence from
    /// [`Rng::new`] for the same `seed`.
    pub fn with_env_seed(seed: u64) -> Self {
        let base = std::env::var("SHMCHAN_HOSTILE_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        Self((seed ^ base.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, out: &mut [u8]) {
        for byte in out {
            *byte = self.next() as u8;
        }
    }
}

/// A peer process that is killed and reaped when the test ends, whatever
/// happens, so none outlives a failing test.
pub struct Peer {
    child: Child,
}

impl Peer {
    /// Starts a peer as `role` (see [`spawn_peer`]).
    pub fn spawn(role: &str, args: &[&str]) -> Self {
        Self {
            child: spawn_peer(role, args),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the peer to exit (see [`wait_for`]).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        wait_for(&mut self.child, limit)
    }

    /// Waits for the peer to exit successfully.
    pub fn finish(mut self, limit: Duration) {
        let status = wait_for(&mut self.child, limit);
        assert!(status.success(), "peer process failed: {status}");
    }

    /// SIGKILLs the peer and reaps it, however it ended.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the peer");
        self.child.wait().expect("reap the peer");
    }

    /// SIGKILL (`Child::kill`), then reap; it must have died of the SIGKILL.
    pub fn kill_and_reap(&mut self) {
        self.child.kill().expect("SIGKILL the peer");
        assert_killed(self.child.wait().expect("reap the peer"));
    }

    /// SIGKILL without reaping: the peer stays a zombie until [`Peer::reap`].
    pub fn kill_unreaped(&self) {
        sigkill(self.pid());
    }

    /// Reaps a peer that must have died of SIGKILL.
    pub fn reap(&mut self) {
        assert_killed(self.child.wait().expect("reap the peer"));
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // After a reap, std neither signals nor waits for the pid again.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGKILLs `pid`, one of our unreaped children, without reaping it.
pub fn sigkill(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own
    // unreaped child, so it cannot name another process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, SIGKILL) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// The peer died of our SIGKILL, not of a panic or an early exit.
pub fn assert_killed(status: ExitStatus) {
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the peer was expected to die of SIGKILL, but it ended with {status}"
    );
}
