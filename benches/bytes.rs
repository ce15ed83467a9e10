//! shmchan's byte stream against a Unix stream socket, a pipe and `memcpy`,
//! between two processes.
//!
//! ```text
//! cargo bench --bench bytes                 # about 90 s
//! cargo bench --bench bytes -- 'bytes/4KiB' # one group
//! cargo test --benches                      # each benchmark once, as a test
//! ```
//!
//! The benchmark binary re-runs itself as the peer process, the role chosen
//! by the `SHMCHAN_BYTES_BENCH_PEER` environment variable, which `main`
//! checks before criterion sees the command line. Each peer is started when
//! its benchmark first runs and stopped when the benchmark is done.
//!
//! One group per message size, `bytes/64B`, `bytes/1KiB`, `bytes/4KiB` and
//! `bytes/64KiB`, reported in bytes per second (payload bytes; framing is
//! not counted). For each sample the bench tells the peer how many messages
//! to stream (over an spsc channel of `u64`, or the peer's standard input)
//! and stops the clock at the last one. Each message carries its sequence
//! number in its first and last 8 bytes, and the bench checks both and the
//! length of every message, so a transport that lost, duplicated, reordered
//! or truncated one fails the run.
//!
//! - `memcpy`: the baseline of DESIGN §7, one `copy_from_slice` of the
//!   message size between two buffers in this process, on one thread.
//! - `shmchan`: a `bytes` channel with a 1 MiB ring. The peer copies the
//!   message into the ring with `send(&[u8])`; the bench reads it in place
//!   through the guard `recv()` returns (zero copy: only the checked bytes
//!   are touched).
//! - `shmchan_recv_into`: the same, but the bench copies every message out
//!   with `recv_into(&mut Vec<u8>)`, so each byte crosses between the
//!   processes, as it must through a socket.
//! - `unix_socket`: a socketpair (the peer's standard output), each message
//!   framed by a 4-byte length and written with one `write_all` (one
//!   `write(2)`); the bench reads through a 64 KiB `BufReader` with
//!   `read_exact` into a buffer.
//! - `unix_socket_buffered`: the same with a 64 KiB `BufWriter` on the
//!   sending side, so small messages share a `write(2)`.
//! - `pipe`: as `unix_socket`, over a pipe.
//!
//! With two or more CPUs, the bench and its peers are pinned to different
//! CPUs (set `SHMCHAN_BENCH_NO_PIN` to turn that off). The host may move
//! the virtual CPUs between cores that share a cache and cores that do not,
//! which changes the figures: compare the benchmarks of one run, and repeat
//! runs before believing a ratio.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use shmchan::{bytes, spsc, RecvTimeoutError};
use std::error::Error;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The peer's role; set only in peer processes.
const ROLE_VAR: &str = "SHMCHAN_BYTES_BENCH_PEER";
/// The peer's arguments, separated by spaces.
const ARGS_VAR: &str = "SHMCHAN_BYTES_BENCH_ARGS";
/// The CPU the peer pins itself to.
const CPU_VAR: &str = "SHMCHAN_BYTES_BENCH_PEER_CPU";
/// Set (to anything) to turn pinning off.
const NO_PIN_VAR: &str = "SHMCHAN_BENCH_NO_PIN";

/// Message sizes, one group each.
const SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (1024, "1KiB"),
    (4096, "4KiB"),
    (64 * 1024, "64KiB"),
];
/// Bytes in the shmchan ring: the largest message is half of it, less 8.
const RING_BYTES: usize = 1 << 20;
/// Buffer of the `BufReader`s and `BufWriter`s.
const STREAM_BUFFER: usize = 64 * 1024;
/// Bytes of the length prefix on a socket or pipe.
const FRAME_HEADER: usize = 4;

type Res<T> = Result<T, Box<dyn Error>>;

fn main() {
    if let Ok(role) = std::env::var(ROLE_VAR) {
        if let Err(err) = run_peer(&role) {
            eprintln!("bytes bench peer {role}: {err}");
            std::process::exit(1);
        }
        return;
    }
    let peer_cpu = place_processes();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for (size, label) in SIZES {
        let mut group = c.benchmark_group(format!("bytes/{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        memcpy(&mut group, size);
        with_peer(&mut group, "shmchan", || {
            ShmStream::spawn(size, false, peer_cpu)
        });
        with_peer(&mut group, "shmchan_recv_into", || {
            ShmStream::spawn(size, true, peer_cpu)
        });
        with_peer(&mut group, "unix_socket", || {
            Stream::socket(size, false, peer_cpu)
        });
        with_peer(&mut group, "unix_socket_buffered", || {
            Stream::socket(size, true, peer_cpu)
        });
        with_peer(&mut group, "pipe", || Stream::pipe(size, peer_cpu));
        group.finish();
    }
    c.final_summary();
}

/// Single-thread `memcpy` of `size` bytes, in this process.
fn memcpy(group: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    let src: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut dst = vec![0u8; size];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        });
    });
}

/// The bench's side of a peer process: `run(iters)` has the peer stream
/// `iters` messages and times them.
trait Run {
    fn run(&mut self, iters: u64) -> Duration;
}

/// Benchmarks `id` against a peer started (by `spawn`) when the benchmark
/// first runs (not at all if a filter skips it) and stopped when it is done.
fn with_peer<R: Run>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, spawn: impl Fn() -> R) {
    let mut peer = None;
    group.bench_function(id, |b| {
        let peer = peer.get_or_insert_with(&spawn);
        b.iter_custom(|iters| peer.run(iters));
    });
    drop(peer);
}

/// Checks message `seq` of `size` bytes: its length, and the sequence
/// number in its first and last 8 bytes.
#[inline(always)]
fn verify(message: &[u8], seq: u64, size: usize) {
    let ok = message.len() == size
        && message[..8] == seq.to_ne_bytes()
        && message[size - 8..] == seq.to_ne_bytes();
    if !ok {
        mismatch(message, seq, size);
    }
}

#[cold]
#[inline(never)]
fn mismatch(message: &[u8], seq: u64, size: usize) -> ! {
    let word = |bytes: Option<&[u8]>| {
        bytes
            .and_then(|b| b.try_into().ok())
            .map(u64::from_ne_bytes)
    };
    panic!(
        "message {seq} of {size} bytes arrived as {} bytes, numbered {:?} and {:?}: \
         the transport lost, duplicated, reordered or truncated one",
        message.len(),
        word(message.get(..8)),
        word(message.get(message.len().saturating_sub(8)..)),
    );
}

/// Writes `seq` into the first and last 8 bytes of `message`.
#[inline(always)]
fn stamp(message: &mut [u8], seq: u64) {
    let size = message.len();
    message[..8].copy_from_slice(&seq.to_ne_bytes());
    message[size - 8..].copy_from_slice(&seq.to_ne_bytes());
}

/// A message of `size` bytes whose middle is not all one value.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

// ---------------------------------------------------------------------------
// The bench's side of each peer.

/// The bench receives from a `bytes` channel; commands go over an spsc
/// channel.
struct ShmStream {
    /// How many messages to stream next; dropping it stops the peer.
    commands: Option<spsc::Sender<u64>>,
    data: bytes::Receiver,
    size: usize,
    /// Copy each message out with `recv_into` (else read it in place).
    copy_out: bool,
    buf: Vec<u8>,
    peer: Peer,
}

impl ShmStream {
    fn spawn(size: usize, copy_out: bool, cpu: Option<usize>) -> Self {
        let (commands_name, data_name) = (fresh_name("ctl"), fresh_name("data"));
        let commands =
            spsc::Sender::<u64>::create(&commands_name, 16).expect("create the command channel");
        let mut data =
            bytes::Receiver::create(&data_name, RING_BYTES).expect("create the data channel");
        assert!(size <= data.capacity() / 2 - 8, "the ring is too small");
        let args = [commands_name.as_str(), &data_name, &size.to_string()];
        let mut peer = Peer::spawn("shm-source", &args, cpu, Stdio::null());
        // The peer's first message, empty, says it has attached.
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            match data.recv_timeout(Duration::from_millis(20)) {
                Ok(ready) => {
                    assert!(ready.is_empty(), "the peer's first message");
                    break;
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() < give_up => {
                    if let Ok(Some(status)) = peer.child.try_wait() {
                        panic!("peer {} exited before attaching ({status})", peer.role);
                    }
                }
                Err(err) => panic!("peer {}: {err}", peer.role),
            }
        }
        Self {
            commands: Some(commands),
            data,
            size,
            copy_out,
            buf: Vec::with_capacity(size),
            peer,
        }
    }
}

impl Run for ShmStream {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        let commands = self.commands.as_ref().expect("running");
        if commands.send(iters).is_err() {
            self.peer.left();
        }
        for seq in 0..iters {
            if self.copy_out {
                if self.data.recv_into(&mut self.buf).is_err() {
                    self.peer.left();
                }
                verify(&self.buf, seq, self.size);
            } else {
                match self.data.recv() {
                    Ok(message) => verify(&message, seq, self.size),
                    Err(_) => self.peer.left(),
                }
            }
        }
        start.elapsed()
    }
}

impl Drop for ShmStream {
    fn drop(&mut self) {
        drop(self.commands.take()); // the peer's command loop ends
        self.peer.finish();
    }
}

/// The bench reads length-prefixed messages from the peer's standard output
/// (a socket or a pipe); commands go to its standard input.
struct Stream<R> {
    commands: Option<ChildStdin>,
    data: BufReader<R>,
    size: usize,
    buf: Vec<u8>,
    peer: Peer,
}

impl Stream<UnixStream> {
    /// Over a socketpair; the peer writes each message with one `write_all`,
    /// or through a `BufWriter` if `buffered`.
    fn socket(size: usize, buffered: bool, cpu: Option<usize>) -> Self {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let mode = if buffered { "buffered" } else { "write" };
        let args = [size.to_string(), mode.to_string()];
        let stdout = Stdio::from(OwnedFd::from(theirs));
        let peer = Peer::spawn("stream-source", &args, cpu, stdout);
        Self::new(ours, size, peer)
    }
}

impl Stream<std::process::ChildStdout> {
    /// Over a pipe; the peer writes each message with one `write_all`.
    fn pipe(size: usize, cpu: Option<usize>) -> Self {
        let args = [size.to_string(), "write".to_string()];
        let mut peer = Peer::spawn("stream-source", &args, cpu, Stdio::piped());
        let data = peer.child.stdout.take().expect("pipe from the peer");
        Self::new(data, size, peer)
    }
}

impl<R: Read> Stream<R> {
    fn new(data: R, size: usize, mut peer: Peer) -> Self {
        let commands = peer.child.stdin.take().expect("pipe to the peer");
        Self {
            commands: Some(commands),
            data: BufReader::with_capacity(STREAM_BUFFER, data),
            size,
            buf: vec![0; size],
            peer,
        }
    }

    fn read_message(&mut self) -> std::io::Result<()> {
        let mut header = [0u8; FRAME_HEADER];
        self.data.read_exact(&mut header)?;
        let len = u32::from_ne_bytes(header) as usize;
        if len != self.size {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("a frame of {len} bytes, expected {}", self.size),
            ));
        }
        self.data.read_exact(&mut self.buf)
    }
}

impl<R: Read> Run for Stream<R> {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        let commands = self.commands.as_mut().expect("running");
        commands
            .write_all(&iters.to_ne_bytes())
            .expect("send a command to the peer");
        for seq in 0..iters {
            if let Err(err) = self.read_message() {
                panic!("message {seq}: {err}: {}", self.peer.status());
            }
            verify(&self.buf, seq, self.size);
        }
        start.elapsed()
    }
}

impl<R> Drop for Stream<R> {
    fn drop(&mut self) {
        drop(self.commands.take()); // the peer reads end-of-file
        self.peer.finish();
    }
}

/// A fresh channel name: the pid keeps concurrent runs apart.
fn fresh_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("shmchan-bytes-bench-{}-{tag}-{n}", std::process::id())
}

/// A peer process; killed and reaped if it has not exited when dropped.
struct Peer {
    child: Child,
    role: &'static str,
}

impl Peer {
    /// Starts the peer with its standard input a pipe (for commands) and
    /// its standard output `stdout`.
    fn spawn(
        role: &'static str,
        args: &[impl AsRef<str>],
        cpu: Option<usize>,
        stdout: Stdio,
    ) -> Self {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let mut command = Command::new(std::env::current_exe().expect("the bench binary's path"));
        command.env(ROLE_VAR, role).env(ARGS_VAR, args.join(" "));
        match cpu {
            Some(cpu) => command.env(CPU_VAR, cpu.to_string()),
            None => command.env_remove(CPU_VAR),
        };
        command.stdin(Stdio::piped()).stdout(stdout);
        let child = command.spawn().expect("start the peer process");
        // `command`, dropped here, held our copy of the peer's `stdout`.
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

    /// Waits for the peer to exit; it does once its input ends.
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
    let args: Vec<&str> = args.split_whitespace().collect();
    let arg = |i: usize| args.get(i).copied().ok_or("missing argument");
    let gone = "the bench stopped receiving";
    match role {
        "shm-source" => {
            let commands = spsc::Receiver::<u64>::open(arg(0)?)?;
            let data = bytes::Sender::open(arg(1)?)?;
            let mut message = payload(arg(2)?.parse()?);
            data.send(&[]).map_err(|_| gone)?; // ready
            for iters in &commands {
                for seq in 0..iters {
                    stamp(&mut message, seq);
                    data.send(&message).map_err(|_| gone)?;
                }
            }
        }
        "stream-source" => {
            let size: usize = arg(0)?.parse()?;
            let mut frame = vec![0u8; FRAME_HEADER];
            frame[..FRAME_HEADER].copy_from_slice(&u32::try_from(size)?.to_ne_bytes());
            frame.extend_from_slice(&payload(size));
            let mut commands = stdin_file()?;
            let out = stdout_file()?;
            let mut out: Box<dyn Write> = match arg(1)? {
                "buffered" => Box::new(BufWriter::with_capacity(STREAM_BUFFER, out)),
                _ => Box::new(out),
            };
            while let Some(iters) = read_or_eof(&mut commands)? {
                for seq in 0..iters {
                    stamp(&mut frame[FRAME_HEADER..], seq);
                    out.write_all(&frame)?;
                }
                out.flush()?;
            }
        }
        other => return Err(format!("unknown role {other:?}").into()),
    }
    Ok(())
}

/// The next `u64`, or `None` at end-of-file.
fn read_or_eof(from: &mut File) -> std::io::Result<Option<u64>> {
    let mut word = [0u8; 8];
    match from.read_exact(&mut word) {
        Ok(()) => Ok(Some(u64::from_ne_bytes(word))),
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
        eprintln!("shmchan bytes bench: not pinned ({NO_PIN_VAR} is set)");
        return None;
    }
    let cpus = allowed_cpus();
    if cpus.len() < 2 {
        eprintln!(
            "shmchan bytes bench: not pinned ({} CPU available)",
            cpus.len()
        );
        return None;
    }
    if let Err(err) = pin_to(cpus[0]) {
        eprintln!("shmchan bytes bench: not pinned (sched_setaffinity: {err})");
        return None;
    }
    eprintln!(
        "shmchan bytes bench: pinned, bench on CPU {}, peers on CPU {}",
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
