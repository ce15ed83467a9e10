//! shmchan's spsc channel against a pipe, between two processes.
//!
//! ```text
//! cargo bench --bench spsc                  # about a minute and a half
//! cargo bench --bench spsc -- round_trip    # one group
//! cargo test --benches                      # each benchmark once, as a test
//! ```
//!
//! The benchmark binary re-runs itself as the peer process, the role chosen
//! by the `SHMCHAN_BENCH_PEER` environment variable, which `main` checks
//! before criterion sees the command line. Each peer is started when its
//! benchmark first runs and stopped when the benchmark is done.
//!
//! Groups, each comparing the transports side by side in the same run:
//!
//! - `throughput/8B`: `u64` messages one way, peer to bench: spsc with
//!   `send`/`recv`, spsc with `send_batch`/`recv_batch` (64), and a pipe (the
//!   peer writes 8-byte records through a `BufWriter`, the bench reads
//!   through a `BufReader`). For each sample the bench tells the peer how
//!   many messages to stream and stops the clock at the last one; every
//!   message is checked against its sequence number. Reported per message.
//! - `round_trip`: ping-pong of a `u64` that the peer increments, over two
//!   spsc channels (both sides spinning) and over two pipes.
//!
//! With two or more CPUs, the bench and its peers are pinned to different
//! CPUs (set `SHMCHAN_BENCH_NO_PIN` to turn that off).

use criterion::{Criterion, Throughput};
use shmchan::spsc::{Receiver, Sender};
use shmchan::{Options, RecvTimeoutError, ShmSafe};
use std::error::Error;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The peer's role; set only in peer processes.
const ROLE_VAR: &str = "SHMCHAN_BENCH_PEER";
/// The peer's channel names, separated by spaces.
const ARGS_VAR: &str = "SHMCHAN_BENCH_ARGS";
/// The CPU the peer pins itself to.
const CPU_VAR: &str = "SHMCHAN_BENCH_PEER_CPU";
/// Set (to anything) to turn pinning off.
const NO_PIN_VAR: &str = "SHMCHAN_BENCH_NO_PIN";

/// Messages per `send_batch` / `recv_batch`.
const BATCH: usize = 64;
/// Capacity of the throughput channel, in messages.
const CAPACITY: usize = 4096;
/// Buffer of the pipe's `BufWriter` and `BufReader`.
const PIPE_BUFFER: usize = 64 * 1024;
/// The message a streaming peer sends once it is attached.
const READY: u64 = u64::MAX;

type Res<T> = Result<T, Box<dyn Error>>;

fn main() {
    if let Ok(role) = std::env::var(ROLE_VAR) {
        if let Err(err) = run_peer(&role) {
            eprintln!("bench peer {role}: {err}");
            std::process::exit(1);
        }
        return;
    }
    let peer_cpu = place_processes();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    throughput(&mut c, peer_cpu);
    round_trip(&mut c, peer_cpu);
    c.final_summary();
}

fn throughput(c: &mut Criterion, cpu: Option<usize>) {
    let mut group = c.benchmark_group("throughput/8B");
    group.throughput(Throughput::Elements(1));

    let mut peer = None;
    group.bench_function("spsc", |b| {
        let stream = peer.get_or_insert_with(|| SpscStream::spawn(false, cpu));
        b.iter_custom(|iters| stream.run(iters));
    });
    drop(peer.take());

    let mut peer = None;
    group.bench_function("spsc_batch64", |b| {
        let stream = peer.get_or_insert_with(|| SpscStream::spawn(true, cpu));
        b.iter_custom(|iters| stream.run(iters));
    });
    drop(peer.take());

    let mut peer = None;
    group.bench_function("pipe", |b| {
        let stream = peer.get_or_insert_with(|| PipeStream::spawn(cpu));
        b.iter_custom(|iters| stream.run(iters));
    });
    drop(peer.take());

    group.finish();
}

fn round_trip(c: &mut Criterion, cpu: Option<usize>) {
    let mut group = c.benchmark_group("round_trip");

    let mut peer = None;
    group.bench_function("spsc", |b| {
        let echo = peer.get_or_insert_with(|| SpscEcho::spawn(cpu));
        b.iter_custom(|iters| echo.run(iters));
    });
    drop(peer.take());

    let mut peer = None;
    group.bench_function("pipe", |b| {
        let echo = peer.get_or_insert_with(|| PipeEcho::spawn(cpu));
        b.iter_custom(|iters| echo.run(iters));
    });
    drop(peer.take());

    group.finish();
}

// ---------------------------------------------------------------------------
// The bench's side of each peer.

/// The bench streams from an spsc channel; commands go over another.
struct SpscStream {
    /// How many messages to stream next; dropping it stops the peer.
    commands: Option<Sender<u64>>,
    data: Receiver<u64>,
    batched: bool,
    peer: Peer,
}

impl SpscStream {
    fn spawn(batched: bool, cpu: Option<usize>) -> Self {
        let (commands_name, data_name) = (fresh_name("ctl"), fresh_name("data"));
        let commands = Sender::create(&commands_name, 16).expect("create the command channel");
        let data = Receiver::create_with(&data_name, &Options::new().capacity(CAPACITY))
            .expect("create the data channel");
        let role = if batched {
            "spsc-batch-source"
        } else {
            "spsc-source"
        };
        let mut peer = Peer::spawn(role, &[&commands_name, &data_name], cpu, false);
        let ready = recv_first(&data, &mut peer);
        assert_eq!(ready, READY, "the peer's first message");
        Self {
            commands: Some(commands),
            data,
            batched,
            peer,
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        let commands = self.commands.as_ref().expect("running");
        commands.send(iters).unwrap_or_else(|_| self.peer.left());
        let mut next = 0;
        if self.batched {
            let mut buf = [0u64; BATCH];
            while next < iters {
                let want = BATCH.min((iters - next) as usize);
                let got = self
                    .data
                    .recv_batch(&mut buf[..want])
                    .unwrap_or_else(|_| self.peer.left());
                for &value in &buf[..got] {
                    verify(value, next);
                    next += 1;
                }
            }
        } else {
            while next < iters {
                verify(self.data.recv().unwrap_or_else(|_| self.peer.left()), next);
                next += 1;
            }
        }
        start.elapsed()
    }
}

impl Drop for SpscStream {
    fn drop(&mut self) {
        drop(self.commands.take()); // the peer's command loop ends
        self.peer.finish();
    }
}

/// The bench streams from a pipe; commands go over another.
struct PipeStream {
    commands: Option<ChildStdin>,
    data: BufReader<ChildStdout>,
    peer: Peer,
}

impl PipeStream {
    fn spawn(cpu: Option<usize>) -> Self {
        let mut peer = Peer::spawn("pipe-source", &[], cpu, true);
        let commands = peer.child.stdin.take().expect("pipe to the peer");
        let data = peer.child.stdout.take().expect("pipe from the peer");
        Self {
            commands: Some(commands),
            data: BufReader::with_capacity(PIPE_BUFFER, data),
            peer,
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        let commands = self.commands.as_mut().expect("running");
        commands
            .write_all(&iters.to_ne_bytes())
            .expect("send a command to the pipe peer");
        for next in 0..iters {
            let value = read_u64(&mut self.data)
                .unwrap_or_else(|err| panic!("the pipe peer left ({err}): {}", self.peer.status()));
            verify(value, next);
        }
        start.elapsed()
    }
}

impl Drop for PipeStream {
    fn drop(&mut self) {
        drop(self.commands.take()); // the peer reads end-of-file
        self.peer.finish();
    }
}

/// Ping-pong over two spsc channels: the peer sends back each value plus 1.
struct SpscEcho {
    ping: Option<Sender<u64>>,
    pong: Receiver<u64>,
    peer: Peer,
}

impl SpscEcho {
    fn spawn(cpu: Option<usize>) -> Self {
        let (ping_name, pong_name) = (fresh_name("ping"), fresh_name("pong"));
        let ping = Sender::create(&ping_name, 64).expect("create the ping channel");
        let pong = Receiver::create(&pong_name, 64).expect("create the pong channel");
        let mut peer = Peer::spawn("spsc-echo", &[&ping_name, &pong_name], cpu, false);
        ping.send(41).expect("first ping");
        assert_eq!(recv_first(&pong, &mut peer), 42, "the first pong");
        Self {
            ping: Some(ping),
            pong,
            peer,
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        let ping = self.ping.as_ref().expect("running");
        let start = Instant::now();
        for i in 0..iters {
            ping.send(i).unwrap_or_else(|_| self.peer.left());
            verify(self.pong.recv().unwrap_or_else(|_| self.peer.left()), i + 1);
        }
        start.elapsed()
    }
}

impl Drop for SpscEcho {
    fn drop(&mut self) {
        drop(self.ping.take()); // the peer's loop ends
        self.peer.finish();
    }
}

/// Ping-pong over two pipes, one `write(2)` and one `read(2)` each way.
struct PipeEcho {
    ping: Option<ChildStdin>,
    pong: ChildStdout,
    peer: Peer,
}

impl PipeEcho {
    fn spawn(cpu: Option<usize>) -> Self {
        let mut peer = Peer::spawn("pipe-echo", &[], cpu, true);
        let ping = peer.child.stdin.take().expect("pipe to the peer");
        let pong = peer.child.stdout.take().expect("pipe from the peer");
        Self {
            ping: Some(ping),
            pong,
            peer,
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        let ping = self.ping.as_mut().expect("running");
        let start = Instant::now();
        for i in 0..iters {
            ping.write_all(&i.to_ne_bytes())
                .and_then(|()| read_u64(&mut self.pong))
                .map(|value| verify(value, i + 1))
                .unwrap_or_else(|err| panic!("the pipe peer left ({err}): {}", self.peer.status()));
        }
        start.elapsed()
    }
}

impl Drop for PipeEcho {
    fn drop(&mut self) {
        drop(self.ping.take()); // the peer reads end-of-file
        self.peer.finish();
    }
}

#[inline(always)]
fn verify(got: u64, want: u64) {
    if got != want {
        panic!("message {want} arrived as {got}: the transport lost, duplicated or reordered one");
    }
}

fn read_u64(from: &mut impl Read) -> std::io::Result<u64> {
    let mut record = [0u8; 8];
    from.read_exact(&mut record)?;
    Ok(u64::from_ne_bytes(record))
}

/// The first message from a peer that may die before attaching (`recv`
/// would then wait forever; once it has attached, `recv` sees it die).
fn recv_first<T: ShmSafe>(rx: &Receiver<T>, peer: &mut Peer) -> T {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(value) => return value,
            Err(RecvTimeoutError::Timeout) if Instant::now() < give_up => {
                if let Ok(Some(status)) = peer.child.try_wait() {
                    panic!("peer {} exited before attaching ({status})", peer.role);
                }
            }
            Err(err) => panic!("peer {}: {err}", peer.role),
        }
    }
}

/// A fresh channel name: the pid keeps concurrent runs apart.
fn fresh_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("shmchan-bench-{}-{tag}-{n}", std::process::id())
}

/// A peer process; killed and reaped if it has not exited when dropped.
struct Peer {
    child: Child,
    role: &'static str,
}

impl Peer {
    fn spawn(role: &'static str, names: &[&str], cpu: Option<usize>, pipes: bool) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("the bench binary's path"));
        command.env(ROLE_VAR, role).env(ARGS_VAR, names.join(" "));
        match cpu {
            Some(cpu) => command.env(CPU_VAR, cpu.to_string()),
            None => command.env_remove(CPU_VAR),
        };
        let io = || if pipes { Stdio::piped() } else { Stdio::null() };
        command.stdin(io()).stdout(io());
        let child = command.spawn().expect("start the peer process");
        Self { child, role }
    }

    /// Panics: the peer has gone.
    #[cold]
    fn left(&mut self) -> ! {
        panic!("the channel disconnected: {}", self.status())
    }

    fn status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => format!("peer {} exited ({status})", self.role),
            _ => format!("peer {} is still running", self.role),
        }
    }

    /// Waits for the peer to exit; it does once its channels disconnect.
    fn finish(&mut self) {
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
// The peer process.

fn run_peer(role: &str) -> Res<()> {
    if let Some(cpu) = std::env::var(CPU_VAR).ok().and_then(|v| v.parse().ok()) {
        pin_to(cpu)?;
    }
    let args = std::env::var(ARGS_VAR).unwrap_or_default();
    let names: Vec<&str> = args.split_whitespace().collect();
    let name = |i: usize| names.get(i).copied().ok_or("missing channel name");
    let gone = "the bench stopped receiving";
    match role {
        "spsc-source" | "spsc-batch-source" => {
            let commands = Receiver::<u64>::open(name(0)?)?;
            let data = Sender::<u64>::open(name(1)?)?;
            data.send(READY).map_err(|_| gone)?;
            let mut buf = [0u64; BATCH];
            for iters in &commands {
                if role == "spsc-source" {
                    for i in 0..iters {
                        data.send(i).map_err(|_| gone)?;
                    }
                    continue;
                }
                let mut i = 0;
                while i < iters {
                    let len = BATCH.min((iters - i) as usize);
                    for (j, slot) in buf[..len].iter_mut().enumerate() {
                        *slot = i + j as u64;
                    }
                    let mut sent = 0;
                    while sent < len {
                        sent += data.send_batch(&buf[sent..len]).map_err(|_| gone)?;
                    }
                    i += len as u64;
                }
            }
        }
        "spsc-echo" => {
            let ping = Receiver::<u64>::open(name(0)?)?;
            let pong = Sender::<u64>::open(name(1)?)?;
            for value in &ping {
                pong.send(value.wrapping_add(1)).map_err(|_| gone)?;
            }
        }
        "pipe-source" => {
            let mut commands = stdin_file()?;
            let mut data = BufWriter::with_capacity(PIPE_BUFFER, stdout_file()?);
            while let Some(iters) = read_or_eof(&mut commands)? {
                for i in 0..iters {
                    data.write_all(&i.to_ne_bytes())?;
                }
                data.flush()?;
            }
        }
        "pipe-echo" => {
            let mut ping = stdin_file()?;
            let mut pong = stdout_file()?;
            while let Some(value) = read_or_eof(&mut ping)? {
                pong.write_all(&value.wrapping_add(1).to_ne_bytes())?;
            }
        }
        other => return Err(format!("unknown role {other:?}").into()),
    }
    Ok(())
}

/// The next `u64`, or `None` at end-of-file.
fn read_or_eof(from: &mut File) -> std::io::Result<Option<u64>> {
    match read_u64(from) {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == ErrorKind::UnexpectedEof => Ok(None),
        Err(err) => Err(err),
    }
}

/// Standard input as an unbuffered `File`.
fn stdin_file() -> std::io::Result<File> {
    Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?))
}

/// Standard output as an unbuffered `File` (std's `Stdout` is line-buffered).
fn stdout_file() -> std::io::Result<File> {
    Ok(File::from(std::io::stdout().as_fd().try_clone_to_owned()?))
}

// ---------------------------------------------------------------------------
// CPU pinning (Linux).

/// Pins this process to one CPU and returns another for the peers, if there
/// are two.
fn place_processes() -> Option<usize> {
    if std::env::var_os(NO_PIN_VAR).is_some() {
        eprintln!("shmchan bench: not pinned ({NO_PIN_VAR} is set)");
        return None;
    }
    let cpus = allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("shmchan bench: not pinned ({} CPU available)", cpus.len());
        return None;
    }
    if let Err(err) = pin_to(cpus[0]) {
        eprintln!("shmchan bench: not pinned (sched_setaffinity: {err})");
        return None;
    }
    eprintln!(
        "shmchan bench: pinned, bench on CPU {}, peers on CPU {}",
        cpus[0], cpus[1]
    );
    Some(cpus[1])
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size we pass.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below `CPU_SETSIZE`, the set's size in bits.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Restricts this process to `cpu`.
fn pin_to(cpu: usize) -> std::io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(ErrorKind::InvalidInput.into());
    }
    // SAFETY: as in `allowed_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below `CPU_SETSIZE`, checked above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid `cpu_set_t` of the size we pass.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
