//! What the benchmarks and the `compare` example share: the workloads
//! (each a [`Run`]: the bench's side of one transport, and its peer
//! processes), the peer process (the benchmark binary run again, its role
//! in an environment variable), the placement of the bench and its peers on
//! CPUs, and the pipe plumbing of the peer's side.
//!
//! - [`stream`]: `u64`s one way through spsc, a hand-written ring, a pipe
//!   and a Unix socket;
//! - [`bytes`]: messages of a given size one way through a `bytes`
//!   channel, a socket and a pipe, and `memcpy`;
//! - [`multi`]: mpsc with N senders and mpmc 2x2 across processes, and
//!   crossbeam-channel and `std::sync::mpsc` across threads;
//! - [`echo`]: round trips over every transport, spinning and asleep.

pub mod bytes;
mod cpus;
pub mod echo;
pub mod multi;
mod raw;
pub mod stream;

use cpus::{allowed_cpus, pin_to};
use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use shmchan::{Options, RecvTimeoutError};
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

/// In a peer process (one of the workloads' role variables is set), runs
/// its role and returns true; if it fails, says so and exits with 1. In
/// the bench itself returns false: checked before criterion sees the
/// command line.
pub fn peer_main() -> bool {
    stream::BENCH.peer_main(stream::run_peer)
        || bytes::BENCH.peer_main(bytes::run_peer)
        || multi::BENCH.peer_main(multi::run_peer)
        || echo::BENCH.peer_main(echo::run_peer)
}

/// How both sides of a shmchan workload wait for the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The default options: spin for up to [`Options::DEFAULT_SPIN`], which
    /// a round trip at full speed never outlasts.
    Spin,
    /// No spinning: every blocked `send` or `recv` sleeps on the futex at
    /// once (so every round trip is two sleeps and two wake-ups).
    Sleep,
}

impl Wait {
    pub fn options(self) -> Options {
        match self {
            Wait::Spin => Options::new(),
            Wait::Sleep => Options::new().spin(Duration::ZERO),
        }
    }

    pub fn arg(self) -> &'static str {
        match self {
            Wait::Spin => "spin",
            Wait::Sleep => "sleep",
        }
    }

    pub fn parse(arg: &str) -> Res<Self> {
        match arg {
            "spin" => Ok(Wait::Spin),
            "sleep" => Ok(Wait::Sleep),
            other => Err(format!("unknown wait {other:?}").into()),
        }
    }
}

// ---------------------------------------------------------------------------
// The in-process baselines.

/// A channel of `u64` between threads of this process.
pub trait InProcessFlavor {
    type Tx: Clone + Send + 'static;
    type Rx: Send + 'static;
    /// How the benchmarks name it.
    const NAME: &'static str;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx);
    fn send(tx: &Self::Tx, value: u64) -> bool;
    fn recv(rx: &Self::Rx) -> Option<u64>;
}

/// crossbeam-channel's bounded channel.
pub struct Crossbeam;

impl InProcessFlavor for Crossbeam {
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    const NAME: &'static str = "crossbeam";
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(capacity)
    }
    fn send(tx: &Self::Tx, value: u64) -> bool {
        tx.send(value).is_ok()
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv().ok()
    }
}

/// `std::sync::mpsc::sync_channel`, std's bounded channel.
pub struct StdMpsc;

impl InProcessFlavor for StdMpsc {
    type Tx = std::sync::mpsc::SyncSender<u64>;
    type Rx = std::sync::mpsc::Receiver<u64>;
    const NAME: &'static str = "std_mpsc";
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        std::sync::mpsc::sync_channel(capacity)
    }
    fn send(tx: &Self::Tx, value: u64) -> bool {
        tx.send(value).is_ok()
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv().ok()
    }
}

/// Panics unless message `want` arrived as itself.
#[inline(always)]
pub fn verify(got: u64, want: u64) {
    if got != want {
        panic!("message {want} arrived as {got}: the transport lost, duplicated or reordered one");
    }
}

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
    /// returns its arguments.
    pub fn peer_args(&self) -> Res<PeerArgs> {
        pin_thread(
            std::env::var(self.cpu_var)
                .ok()
                .and_then(|v| v.parse().ok()),
        )?;
        let args = std::env::var(self.args_var).unwrap_or_default();
        Ok(PeerArgs(
            args.split_whitespace().map(str::to_owned).collect(),
        ))
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

/// A peer's arguments (the bench passes them separated by spaces).
pub struct PeerArgs(Vec<String>);

impl PeerArgs {
    /// The last argument.
    pub fn last(&self) -> Res<&str> {
        self.0
            .last()
            .map(String::as_str)
            .ok_or_else(|| "no arguments".into())
    }

    /// Argument `i`.
    pub fn get(&self, i: usize) -> Res<&str> {
        self.0
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing argument {i}").into())
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

    /// One turn of a busy-wait for the peer; every 2^16 turns, panics if
    /// the peer has exited.
    #[inline]
    pub fn wait_turn(&mut self, spins: &mut u32) {
        std::hint::spin_loop();
        *spins = spins.wrapping_add(1);
        if *spins % (1 << 16) == 0 {
            self.check();
        }
    }

    /// Panics if the peer has exited.
    pub fn check(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("peer {} exited ({status})", self.role);
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

/// A streaming peer and the spsc channel that tells it how many messages
/// to stream next. Dropping it ends the peer's command loop, then waits for
/// the peer to exit: declared first in a workload, it does so before the
/// workload's data channel closes under the peer.
pub struct Commanded {
    commands: Option<shmchan::spsc::Sender<u64>>,
    pub peer: Peer,
}

impl Commanded {
    pub fn new(commands: shmchan::spsc::Sender<u64>, peer: Peer) -> Self {
        Self {
            commands: Some(commands),
            peer,
        }
    }

    /// Has the peer stream `iters` messages; panics, naming it, if it left.
    pub fn start(&mut self, iters: u64) {
        let commands = self.commands.as_ref().expect("running");
        if commands.send(iters).is_err() {
            self.peer.left();
        }
    }
}

impl Drop for Commanded {
    fn drop(&mut self) {
        drop(self.commands.take()); // the peer's command loop ends
        self.peer.finish();
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
