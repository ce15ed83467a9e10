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
