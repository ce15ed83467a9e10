//! What the benchmarks share: the peer process (the benchmark binary run
//! again, its role in an environment variable), the placement of the bench
//! and its peers on CPUs, and the pipe plumbing of the peer's side.

mod cpus;

use cpus::{allowed_cpus, pin_to};
use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use shmchan::RecvTimeoutError;
use std::error::Error;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set (to anything) to turn pinning off.
const NO_PIN_VAR: &str = "SHMCHAN_BENCH_NO_PIN";

pub type Res<T> = Result<T, Box<dyn Error>>;

/// Pins the calling thread (a peer process's main thread, or a thread of
/// the bench) to `cpu`, if one is given.
pub fn pin_thread(cpu: Option<usize>) -> Res<()> {
    if let Some(cpu) = cpu {
        pin_to(&[cpu])?;
    }
    Ok(())
}

/// How one benchmark binary names its peers' environment variables, itself
/// and its channels.
pub struct Bench {
    /// The peer's role; set only in peer processes.
    pub role_var: &'static str,
    /// The peer's arguments, separated by spaces.
    pub args_var: &'static str,
    /// The CPU the peer pins itself to.
    pub cpu_var: &'static str,
    /// How the bench names itself on standard error.
    pub label: &'static str,
    /// How a failing peer names itself, before its role.
    pub peer_label: &'static str,
    /// The start of the bench's channel names.
    pub name_prefix: &'static str,
}

impl Bench {
    /// In a peer process (the role variable is set), runs `run_peer` with
    /// the role and returns true; if it fails, says so and exits with 1.
    /// In the bench itself returns false: checked before criterion sees the
    /// command line.
    pub fn peer_main(&self, run_peer: fn(&str) -> Res<()>) -> bool {
        let Ok(role) = std::env::var(self.role_var) else {
            return false;
        };
        if let Err(err) = run_peer(&role) {
            eprintln!("{} {role}: {err}", self.peer_label);
            std::process::exit(1);
        }
        true
    }

    /// The peer's start: pins it to its CPU, if the bench chose one, and
    /// returns its arguments, separated by spaces.
    pub fn peer_args(&self) -> Res<String> {
        pin_thread(
            std::env::var(self.cpu_var)
                .ok()
                .and_then(|v| v.parse().ok()),
        )?;
        Ok(std::env::var(self.args_var).unwrap_or_default())
    }

    /// Pins this process to one CPU and returns another for the peers, if
    /// there are two.
    pub fn place_processes(&self) -> Option<usize> {
        let cpus = self.pin_bench()?;
        eprintln!(
            "{}: pinned, bench on CPU {}, peers on CPU {}",
            self.label, cpus[0], cpus[1]
        );
        Some(cpus[1])
    }

    /// Pins this process (its calling thread, and so the threads it starts
    /// later) to the first of the CPUs it may run on, if there are two or
    /// more and pinning is not turned off, and returns them all, the
    /// bench's first, for the caller to share out among its peers.
    pub fn pin_bench(&self) -> Option<Vec<usize>> {
        let label = self.label;
        if std::env::var_os(NO_PIN_VAR).is_some() {
            eprintln!("{label}: not pinned ({NO_PIN_VAR} is set)");
            return None;
        }
        let cpus = allowed_cpus();
        if cpus.len() < 2 {
            eprintln!("{label}: not pinned ({} CPU available)", cpus.len());
            return None;
        }
        if let Err(err) = pin_to(&cpus[..1]) {
            eprintln!("{label}: not pinned (sched_setaffinity: {err})");
            return None;
        }
        Some(cpus)
    }

    /// A fresh channel name: the pid keeps concurrent runs apart.
    pub fn fresh_name(&self, tag: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}-{tag}-{n}", self.name_prefix, std::process::id())
    }

    /// Starts a peer in `role`, with `args` and, if given, its CPU.
    pub fn spawn(
        &self,
        role: &'static str,
        args: &[impl AsRef<str>],
        cpu: Option<usize>,
        stdin: Stdio,
        stdout: Stdio,
    ) -> Peer {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let mut command = Command::new(std::env::current_exe().expect("the bench binary's path"));
        command
            .env(self.role_var, role)
            .env(self.args_var, args.join(" "));
        match cpu {
            Some(cpu) => command.env(self.cpu_var, cpu.to_string()),
            None => command.env_remove(self.cpu_var),
        };
        command.stdin(stdin).stdout(stdout);
        let child = command.spawn().expect("start the peer process");
        // `command`, dropped here, held our copy of the peer's `stdout`.
        Peer { child, role }
    }
}

/// The bench's side of a peer process: `run(iters)` has the peer do
/// `iters` messages or round trips and times them.
pub trait Run {
    fn run(&mut self, iters: u64) -> Duration;
}

/// Benchmarks `id` against a peer started (by `spawn`) when the benchmark
/// first runs (not at all if a filter skips it) and stopped when it is done.
pub fn with_peer<R: Run>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    spawn: impl Fn() -> R,
) {
    let mut peer = None;
    group.bench_function(id, |b| {
        let peer = peer.get_or_insert_with(&spawn);
        b.iter_custom(|iters| peer.run(iters));
    });
    drop(peer);
}

/// A peer process; killed and reaped if it has not exited when dropped.
pub struct Peer {
    pub child: Child,
    pub role: &'static str,
}

impl Peer {
    /// The first message from a peer that may die before attaching (`recv`
    /// would then wait forever; once it has attached, `recv` sees it die):
    /// `recv_timeout` in slices, for up to 30 s.
    pub fn recv_first<T>(
        &mut self,
        mut recv_timeout: impl FnMut(Duration) -> Result<T, RecvTimeoutError>,
    ) -> T {
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            match recv_timeout(Duration::from_millis(20)) {
                Ok(value) => return value,
                Err(RecvTimeoutError::Timeout) if Instant::now() < give_up => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!("peer {} exited before attaching ({status})", self.role);
                    }
                }
                Err(err) => panic!("peer {}: {err}", self.role),
            }
        }
    }

    /// Panics: the peer has gone.
    #[cold]
    pub fn left(&mut self) -> ! {
        panic!("the channel disconnected: {}", self.status())
    }

    pub fn status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => format!("peer {} exited ({status})", self.role),
            _ => format!("peer {} is still running", self.role),
        }
    }

    /// Waits for the peer to exit; it does once its channels disconnect or
    /// its input ends.
    pub fn finish(&mut self) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while Instant::now() < give_up {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() && !std::thread::panicking() {
                        panic!("peer {} failed ({status})", self.role);
                    }
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            panic!("peer {} did not exit", self.role);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// The peer's pipes.

pub fn read_u64(from: &mut impl Read) -> std::io::Result<u64> {
    let mut record = [0u8; 8];
    from.read_exact(&mut record)?;
    Ok(u64::from_ne_bytes(record))
}

/// The next `u64`, or `None` at end-of-file.
pub fn read_or_eof(from: &mut File) -> std::io::Result<Option<u64>> {
    match read_u64(from) {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == ErrorKind::UnexpectedEof => Ok(None),
        Err(err) => Err(err),
    }
}

/// Standard input as an unbuffered `File`.
pub fn stdin_file() -> std::io::Result<File> {
    Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?))
}

/// Standard output as an unbuffered `File` (std's `Stdout` is line-buffered).
pub fn stdout_file() -> std::io::Result<File> {
    Ok(File::from(std::io::stdout().as_fd().try_clone_to_owned()?))
}
