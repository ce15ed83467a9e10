//! shmchan's spsc channel against a pipe, between two processes.
//!
//! ```text
//! cargo bench --bench spsc                  # about 45 s
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
//! - `throughput/8B`: `u64` messages one way, peer to bench, reported per
//!   message. For each sample the bench tells the peer (over a command
//!   channel) how many messages to stream and stops the clock at the last
//!   one; every message is checked against its sequence number.
//!   - `spsc`: `send` / `recv`; `spsc_batch64`: `send_batch` / `recv_batch`
//!     of 64.
//!   - `raw_ring`, `raw_ring_batch64`: the baselines of DESIGN §7, a minimal
//!     hand-written Lamport ring (cached indices, same capacity) in a bare
//!     shared mapping, publishing every message or every 64.
//!   - `pipe`: 8-byte records written through a 64 KiB `BufWriter` and read
//!     through a `BufReader`; `pipe_write_per_msg`: one `write(2)` per
//!     message.
//! - `round_trip`: ping-pong of a `u64` that the peer increments: `spsc`
//!   over two channels (both sides spinning), `pipe` over two pipes (one
//!   `write(2)` and one `read(2)` each way), and `raw_atomic`, two bare
//!   shared words each side spins on (the floor of DESIGN §7).
//!
//! With two or more CPUs, the bench and its peers are pinned to different
//! CPUs (set `SHMCHAN_BENCH_NO_PIN` to turn that off). The host may move
//! the virtual CPUs between cores that share a cache and cores that do not,
//! which changes every figure here severalfold: compare the benchmarks of
//! one run, and repeat runs before believing a ratio.

mod common;

use common::{read_or_eof, read_u64, stdin_file, stdout_file, with_peer, Bench, Peer, Res, Run};
use criterion::{Criterion, Throughput};
use shmchan::spsc::{Receiver, Sender};
use shmchan::Options;
use std::ffi::CString;
use std::io::{BufReader, BufWriter, ErrorKind, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{ChildStdin, ChildStdout, Stdio};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The peer's environment (its channel names are its arguments), and how
/// the bench names itself and its channels.
const BENCH: Bench = Bench {
    role_var: "SHMCHAN_BENCH_PEER",
    args_var: "SHMCHAN_BENCH_ARGS",
    cpu_var: "SHMCHAN_BENCH_PEER_CPU",
    label: "shmchan bench",
    peer_label: "bench peer",
    name_prefix: "shmchan-bench",
};

/// Messages per `send_batch` / `recv_batch`.
const BATCH: usize = 64;
/// Capacity of the throughput channel, in messages.
const CAPACITY: usize = 4096;
/// Buffer of the pipe's `BufWriter` and `BufReader`.
const PIPE_BUFFER: usize = 64 * 1024;
/// The message a streaming peer sends once it is attached.
const READY: u64 = u64::MAX;

fn main() {
    if BENCH.peer_main(run_peer) {
        return;
    }
    let peer_cpu = BENCH.place_processes();
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
    with_peer(&mut group, "raw_ring", || RawStream::spawn(1, cpu));
    with_peer(&mut group, "spsc", || SpscStream::spawn(false, cpu));
    with_peer(&mut group, "raw_ring_batch64", || {
        RawStream::spawn(BATCH as u64, cpu)
    });
    with_peer(&mut group, "spsc_batch64", || SpscStream::spawn(true, cpu));
    with_peer(&mut group, "pipe", || PipeStream::spawn(true, cpu));
    with_peer(&mut group, "pipe_write_per_msg", || {
        PipeStream::spawn(false, cpu)
    });
    group.finish();
}

fn round_trip(c: &mut Criterion, cpu: Option<usize>) {
    let mut group = c.benchmark_group("round_trip");
    with_peer(&mut group, "raw_atomic", || RawEcho::spawn(cpu));
    with_peer(&mut group, "spsc", || SpscEcho::spawn(cpu));
    with_peer(&mut group, "pipe", || PipeEcho::spawn(cpu));
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
        let (commands_name, data_name) = (BENCH.fresh_name("ctl"), BENCH.fresh_name("data"));
        let commands = Sender::create(&commands_name, 16).expect("create the command channel");
        let data = Receiver::create_with(&data_name, &Options::new().capacity(CAPACITY))
            .expect("create the data channel");
        let role = if batched {
            "spsc-batch-source"
        } else {
            "spsc-source"
        };
        let mut peer = spawn_peer(role, &[&commands_name, &data_name], cpu, false);
        let ready = peer.recv_first(|timeout| data.recv_timeout(timeout));
        assert_eq!(ready, READY, "the peer's first message");
        Self {
            commands: Some(commands),
            data,
            batched,
            peer,
        }
    }
}

impl Run for SpscStream {
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

/// The bench streams from a pipe (through a `BufReader`); commands go over
/// another.
struct PipeStream {
    commands: Option<ChildStdin>,
    data: BufReader<ChildStdout>,
    peer: Peer,
}

impl PipeStream {
    /// The peer writes through a `BufWriter` if `buffered`, else with one
    /// `write(2)` per message.
    fn spawn(buffered: bool, cpu: Option<usize>) -> Self {
        let role = if buffered {
            "pipe-source"
        } else {
            "pipe-write-source"
        };
        let mut peer = spawn_peer(role, &[], cpu, true);
        let commands = peer.child.stdin.take().expect("pipe to the peer");
        let data = peer.child.stdout.take().expect("pipe from the peer");
        Self {
            commands: Some(commands),
            data: BufReader::with_capacity(PIPE_BUFFER, data),
            peer,
        }
    }
}

impl Run for PipeStream {
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
        let (ping_name, pong_name) = (BENCH.fresh_name("ping"), BENCH.fresh_name("pong"));
        let ping = Sender::create(&ping_name, 64).expect("create the ping channel");
        let pong = Receiver::create(&pong_name, 64).expect("create the pong channel");
        let mut peer = spawn_peer("spsc-echo", &[&ping_name, &pong_name], cpu, false);
        ping.send(41).expect("first ping");
        let first_pong = peer.recv_first(|timeout| pong.recv_timeout(timeout));
        assert_eq!(first_pong, 42, "the first pong");
        Self {
            ping: Some(ping),
            pong,
            peer,
        }
    }
}

impl Run for SpscEcho {
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
        let mut peer = spawn_peer("pipe-echo", &[], cpu, true);
        let ping = peer.child.stdin.take().expect("pipe to the peer");
        let pong = peer.child.stdout.take().expect("pipe from the peer");
        Self {
            ping: Some(ping),
            pong,
            peer,
        }
    }
}

impl Run for PipeEcho {
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

/// The hand-written baseline of `throughput/8B`: a minimal Lamport ring in
/// a bare mapping, with cached indices, publishing every `batch` messages.
struct RawStream {
    commands: Option<Sender<u64>>,
    shm: RawShm,
    batch: u64,
    head: u64,
    cached_tail: u64,
    peer: Peer,
}

impl RawStream {
    fn spawn(batch: u64, cpu: Option<usize>) -> Self {
        let (commands_name, raw_name) = (BENCH.fresh_name("ctl"), BENCH.fresh_name("raw"));
        let commands = Sender::create(&commands_name, 16).expect("create the command channel");
        let shm = RawShm::create(&raw_name).expect("create the raw mapping");
        let args = [
            commands_name.as_str(),
            raw_name.as_str(),
            &batch.to_string(),
        ];
        let mut peer = spawn_peer("raw-source", &args, cpu, false);
        let (head, tail, slots) = shm.ring();
        let mut spins = 0;
        // Acquire: pairs with the peer's Release store of its first `tail`.
        while tail.load(Ordering::Acquire) == 0 {
            peer.wait_turn(&mut spins);
        }
        assert_eq!(
            slots[0].load(Ordering::Relaxed),
            READY,
            "the peer's first message"
        );
        // Release: pairs with the peer's Acquire load of `head`.
        head.store(1, Ordering::Release);
        RawShm::unlink(&raw_name); // both ends have it mapped
        Self {
            commands: Some(commands),
            shm,
            batch,
            head: 1,
            cached_tail: 1,
            peer,
        }
    }
}

impl Run for RawStream {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        let commands = self.commands.as_ref().expect("running");
        commands.send(iters).unwrap_or_else(|_| self.peer.left());
        let (head_word, tail_word, slots) = self.shm.ring();
        let (mut head, mut cached_tail) = (self.head, self.cached_tail);
        let mut spins = 0;
        for i in 0..iters {
            while head == cached_tail {
                // Acquire: pairs with the peer's Release store of `tail`,
                // after the slots before it were written.
                cached_tail = tail_word.load(Ordering::Acquire);
                if head == cached_tail {
                    self.peer.wait_turn(&mut spins);
                }
            }
            verify(
                slots[(head % RAW_CAPACITY) as usize].load(Ordering::Relaxed),
                i,
            );
            head += 1;
            if head % self.batch == 0 || head == cached_tail {
                // Release: pairs with the peer's Acquire load of `head`,
                // after the slots before it were read.
                head_word.store(head, Ordering::Release);
            }
        }
        (self.head, self.cached_tail) = (head, cached_tail);
        start.elapsed()
    }
}

impl Drop for RawStream {
    fn drop(&mut self) {
        drop(self.commands.take()); // the peer's command loop ends
        self.peer.finish();
    }
}

/// The hand-written baseline of `round_trip`: two atomic words, each side
/// spinning on one.
struct RawEcho {
    shm: RawShm,
    next: u64,
    peer: Peer,
}

impl RawEcho {
    fn spawn(cpu: Option<usize>) -> Self {
        let name = BENCH.fresh_name("raw");
        let shm = RawShm::create(&name).expect("create the raw mapping");
        let mut peer = spawn_peer("raw-echo", &[&name], cpu, false);
        let (ping, pong) = shm.ping_pong();
        // Release/Acquire: `ping` pairs with the peer's Acquire load of it,
        // `pong` with its Release store (as in `run`).
        ping.store(1, Ordering::Release);
        let mut spins = 0;
        while pong.load(Ordering::Acquire) != 2 {
            peer.wait_turn(&mut spins);
        }
        RawShm::unlink(&name); // both ends have it mapped
        Self { shm, next: 2, peer }
    }
}

impl Run for RawEcho {
    fn run(&mut self, iters: u64) -> Duration {
        let (ping, pong) = self.shm.ping_pong();
        let mut spins = 0;
        let start = Instant::now();
        for _ in 0..iters {
            let value = self.next;
            // Release: pairs with the peer's Acquire load of `ping`; the
            // Acquire below with its Release store of `pong`. (One word
            // each way carries everything: the orderings are what a real
            // protocol pays, so the floor is honest.)
            ping.store(value, Ordering::Release);
            loop {
                let back = pong.load(Ordering::Acquire);
                if back == value + 1 {
                    break;
                }
                // Until the peer answers, `pong` holds its previous answer.
                verify(back, value);
                self.peer.wait_turn(&mut spins);
            }
            self.next += 1;
        }
        start.elapsed()
    }
}

impl Drop for RawEcho {
    fn drop(&mut self) {
        self.shm.ping_pong().0.store(u64::MAX, Ordering::Release); // the peer exits
        self.peer.finish();
    }
}

/// Slots of the hand-written ring: as many as the spsc channel's.
const RAW_CAPACITY: u64 = CAPACITY as u64;
/// Words of a raw mapping: two index words 128 bytes apart, then the slots.
const RAW_WORDS: usize = 32 + CAPACITY;

/// A bare POSIX shared-memory mapping of [`RAW_WORDS`] atomic words, for
/// the hand-written baselines: no header, no checks, no sleeping.
struct RawShm {
    words: NonNull<AtomicU64>,
}

impl RawShm {
    const LEN: usize = RAW_WORDS * size_of::<u64>();

    fn create(name: &str) -> std::io::Result<Self> {
        Self::map(name, true)
    }

    fn open(name: &str) -> std::io::Result<Self> {
        Self::map(name, false)
    }

    fn path(name: &str) -> std::io::Result<CString> {
        Ok(CString::new(format!("/{name}"))?)
    }

    fn map(name: &str, create: bool) -> std::io::Result<Self> {
        let path = Self::path(name)?;
        let flags = if create {
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR
        } else {
            libc::O_RDWR
        };
        // SAFETY: `path` is a NUL-terminated string.
        let fd = unsafe { libc::shm_open(path.as_ptr(), flags, 0o600) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `fd` is an open descriptor of a shared-memory object.
        if create && unsafe { libc::ftruncate(fd.as_raw_fd(), Self::LEN as libc::off_t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new shared mapping of `LEN` bytes of `fd`, which its
        // creator sized to `LEN` before any opener runs; no existing memory
        // is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let words = NonNull::new(ptr.cast()).ok_or(ErrorKind::Other)?;
        Ok(Self { words })
    }

    /// Removes the name; the mappings stay valid.
    fn unlink(name: &str) {
        if let Ok(path) = Self::path(name) {
            // SAFETY: `path` is a NUL-terminated string.
            unsafe { libc::shm_unlink(path.as_ptr()) };
        }
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is `RAW_WORDS` words long, page-aligned,
        // zero-filled when created, and mapped while `self` lives;
        // `AtomicU64` has the layout of `u64`, and both processes only ever
        // access the words atomically.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr(), RAW_WORDS) }
    }

    /// Head (written by the consumer), tail (by the producer), slots.
    fn ring(&self) -> (&AtomicU64, &AtomicU64, &[AtomicU64]) {
        let words = self.words();
        (&words[0], &words[16], &words[32..])
    }

    /// Ping (written by the bench), pong (by the peer).
    fn ping_pong(&self) -> (&AtomicU64, &AtomicU64) {
        let words = self.words();
        (&words[0], &words[16])
    }
}

impl Drop for RawShm {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference
        // into it outlives `self`.
        unsafe { libc::munmap(self.words.as_ptr().cast(), Self::LEN) };
    }
}

/// One turn of a peer's busy-wait; every 2^20 turns it fails if the bench
/// process is gone, so an orphaned peer does not spin forever.
fn spin(spins: u32) -> Res<u32> {
    std::hint::spin_loop();
    let spins = spins.wrapping_add(1);
    if spins % (1 << 20) == 0
        && std::os::unix::process::parent_id() != PARENT.load(Ordering::Relaxed)
    {
        return Err("the bench process is gone".into());
    }
    Ok(spins)
}

/// The bench process, as the peer first saw it.
static PARENT: AtomicU32 = AtomicU32::new(0);

#[inline(always)]
fn verify(got: u64, want: u64) {
    if got != want {
        panic!("message {want} arrived as {got}: the transport lost, duplicated or reordered one");
    }
}

/// Starts a peer in `role` with its channel `names`, its standard input and
/// output pipes if `pipes`.
fn spawn_peer(role: &'static str, names: &[&str], cpu: Option<usize>, pipes: bool) -> Peer {
    let io = || if pipes { Stdio::piped() } else { Stdio::null() };
    BENCH.spawn(role, names, cpu, io(), io())
}

impl Peer {
    /// One turn of a busy-wait for the peer; every 2^16 turns, panics if
    /// the peer has exited.
    #[inline]
    fn wait_turn(&mut self, spins: &mut u32) {
        std::hint::spin_loop();
        *spins = spins.wrapping_add(1);
        if *spins % (1 << 16) == 0 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("peer {} exited ({status})", self.role);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The peer process.

fn run_peer(role: &str) -> Res<()> {
    PARENT.store(std::os::unix::process::parent_id(), Ordering::Relaxed);
    let args = BENCH.peer_args()?;
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
                    data.send_batch(&buf[..len]).map_err(|_| gone)?;
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
        "pipe-write-source" => {
            let mut commands = stdin_file()?;
            let mut data = stdout_file()?;
            while let Some(iters) = read_or_eof(&mut commands)? {
                for i in 0..iters {
                    data.write_all(&i.to_ne_bytes())?;
                }
            }
        }
        "raw-source" => {
            let commands = Receiver::<u64>::open(name(0)?)?;
            let shm = RawShm::open(name(1)?)?;
            let batch: u64 = name(2)?.parse()?;
            let (head, tail, slots) = shm.ring();
            // Ready: a first message, at position 0.
            slots[0].store(READY, Ordering::Relaxed);
            // Release: publishes the slot; pairs with the bench's Acquire.
            tail.store(1, Ordering::Release);
            let (mut next, mut cached_head) = (1u64, 0u64);
            for iters in &commands {
                for i in 0..iters {
                    let mut spins = 0u32;
                    while next - cached_head == RAW_CAPACITY {
                        // Acquire: pairs with the bench's Release of `head`.
                        cached_head = head.load(Ordering::Acquire);
                        spins = spin(spins)?;
                    }
                    slots[(next % RAW_CAPACITY) as usize].store(i, Ordering::Relaxed);
                    next += 1;
                    if next % batch == 0 || i + 1 == iters {
                        // Release: pairs with the bench's Acquire of `tail`.
                        tail.store(next, Ordering::Release);
                    }
                }
            }
        }
        "raw-echo" => {
            let shm = RawShm::open(name(0)?)?;
            let (ping, pong) = shm.ping_pong();
            let mut last = 0;
            loop {
                let mut spins = 0u32;
                // Acquire here and Release below: the bench's `ping` and
                // `pong` pairs (see `RawEcho::run`).
                let mut value = ping.load(Ordering::Acquire);
                while value == last {
                    spins = spin(spins)?;
                    value = ping.load(Ordering::Acquire);
                }
                if value == u64::MAX {
                    break;
                }
                pong.store(value.wrapping_add(1), Ordering::Release);
                last = value;
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
