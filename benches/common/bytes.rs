//! One-way streams of messages of a given size from a peer process to the
//! bench: a `bytes` channel, a Unix stream socket and a pipe, and `memcpy`
//! in this process, the bandwidth floor. Each implements [`Run`]. Each
//! message carries its sequence number in its first, middle and last 8
//! bytes, and the bench checks them and the length of every message, so a
//! transport that lost, duplicated, reordered or truncated one fails the
//! run.

use super::raw::{remember_bench, spin, RawShm};
use super::{read_or_eof, stdin_file, stdout_file, Bench, Commanded, Peer, Res, Run, Wait};
use shmchan::{bytes, spsc};
use std::hint::black_box;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{ChildStdin, Stdio};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The peer's environment, and how the bench names itself and its
/// channels.
pub const BENCH: Bench = Bench {
    role_var: "SHMCHAN_BYTES_BENCH_PEER",
    args_var: "SHMCHAN_BYTES_BENCH_ARGS",
    cpu_var: "SHMCHAN_BYTES_BENCH_PEER_CPU",
    label: "shmchan bytes bench",
    peer_label: "bytes bench peer",
    name_prefix: "shmchan-bytes-bench",
};

/// Message sizes, one group each.
pub const SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (1024, "1KiB"),
    (4096, "4KiB"),
    (64 * 1024, "64KiB"),
];
/// Bytes in the shmchan ring: the largest message is half of it, less 8.
pub const RING_BYTES: usize = 1 << 20;
/// Buffer of the `BufReader`s and `BufWriter`s.
const STREAM_BUFFER: usize = 64 * 1024;
/// Bytes of the length prefix on a socket or pipe.
const FRAME_HEADER: usize = 4;

/// Where a message of `size` bytes carries its sequence number in the
/// middle (every size here is at least 24 bytes, so the three places are
/// apart): a transport that left the middle of the previous message at the
/// same place would be caught.
fn middle(size: usize) -> usize {
    (size / 2) & !7
}

/// Checks message `seq` of `size` bytes: its length, and the sequence
/// number in its first, middle and last 8 bytes.
#[inline(always)]
pub fn verify(message: &[u8], seq: u64, size: usize) {
    let mid = middle(size);
    let ok = message.len() == size
        && message[..8] == seq.to_ne_bytes()
        && message[mid..mid + 8] == seq.to_ne_bytes()
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

/// Writes `seq` into the first, middle and last 8 bytes of `message`.
#[inline(always)]
pub fn stamp(message: &mut [u8], seq: u64) {
    let size = message.len();
    let mid = middle(size);
    message[..8].copy_from_slice(&seq.to_ne_bytes());
    message[mid..mid + 8].copy_from_slice(&seq.to_ne_bytes());
    message[size - 8..].copy_from_slice(&seq.to_ne_bytes());
}

/// A message of `size` bytes whose middle is not all one value.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

/// The floor: single-thread `memcpy` of `size` bytes, in this process.
pub struct Memcpy {
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Memcpy {
    pub fn new(size: usize) -> Self {
        Self {
            src: payload(size),
            dst: vec![0; size],
        }
    }
}

impl Run for Memcpy {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.dst.copy_from_slice(black_box(&self.src));
            black_box(&mut self.dst);
        }
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------
// The bench's side of each peer.

/// The bench receives from a `bytes` channel; commands go over an spsc
/// channel.
pub struct ShmStream {
    source: Commanded,
    data: bytes::Receiver,
    size: usize,
    /// Copy each message out with `recv_into` (else read it in place).
    copy_out: bool,
    buf: Vec<u8>,
}

impl ShmStream {
    pub fn spawn(size: usize, copy_out: bool, wait: Wait, cpu: Option<usize>) -> Self {
        let (commands_name, data_name) = (BENCH.fresh_name("ctl"), BENCH.fresh_name("data"));
        let commands =
            spsc::Sender::<u64>::create(&commands_name, 16).expect("create the command channel");
        let mut data =
            bytes::Receiver::create_with(&data_name, &wait.options().capacity(RING_BYTES))
                .expect("create the data channel");
        assert!(size <= data.capacity() / 2 - 8, "the ring is too small");
        let args = [
            commands_name.as_str(),
            &data_name,
            &size.to_string(),
            wait.arg(),
        ];
        let mut peer = spawn_peer("shm-source", &args, cpu, Stdio::null());
        // The peer's first message, empty, says it has attached.
        let ready_empty =
            peer.recv_first(|timeout| data.recv_timeout(timeout).map(|ready| ready.is_empty()));
        assert!(ready_empty, "the peer's first message");
        Self {
            source: Commanded::new(commands, peer),
            data,
            size,
            copy_out,
            buf: Vec::with_capacity(size),
        }
    }
}

impl Run for ShmStream {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        self.source.start(iters);
        for seq in 0..iters {
            if self.copy_out {
                if self.data.recv_into(&mut self.buf).is_err() {
                    self.source.peer.left();
                }
                verify(&self.buf, seq, self.size);
            } else {
                match self.data.recv() {
                    Ok(message) => verify(&message, seq, self.size),
                    Err(_) => self.source.peer.left(),
                }
            }
        }
        start.elapsed()
    }
}

/// Bytes in the fixed-size comparison of the smallest `bytes` messages:
/// spsc carrying `[u8; BLOCK]`.
pub const BLOCK: usize = 64;

/// The bench receives `[u8; BLOCK]` messages from an spsc channel, each
/// stamped and checked as the `bytes` messages are: what `bytes` is held
/// to for its smallest messages (a typed channel of the same size, whose
/// slots need no record headers).
pub struct SpscBlocks {
    source: Commanded,
    data: spsc::Receiver<[u8; BLOCK]>,
}

impl SpscBlocks {
    pub fn spawn(cpu: Option<usize>) -> Self {
        let (commands_name, data_name) = (BENCH.fresh_name("ctl"), BENCH.fresh_name("data"));
        let commands =
            spsc::Sender::<u64>::create(&commands_name, 16).expect("create the command channel");
        // As many bytes of slots as the `bytes` channel's ring.
        let data = spsc::Receiver::create_with(
            &data_name,
            &Wait::Spin.options().capacity(RING_BYTES / BLOCK),
        )
        .expect("create the data channel");
        let args = [commands_name.as_str(), &data_name];
        let mut peer = spawn_peer("spsc-block-source", &args, cpu, Stdio::null());
        // The peer's first message, all zero, says it has attached.
        let ready = peer.recv_first(|timeout| data.recv_timeout(timeout));
        assert_eq!(ready, [0; BLOCK], "the peer's first message");
        Self {
            source: Commanded::new(commands, peer),
            data,
        }
    }
}

impl Run for SpscBlocks {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        self.source.start(iters);
        for seq in 0..iters {
            match self.data.recv() {
                Ok(message) => verify(&message, seq, BLOCK),
                Err(_) => self.source.peer.left(),
            }
        }
        start.elapsed()
    }
}

/// The cross-process floor: a minimal ring of fixed `size`-byte slots in a
/// bare mapping (as many bytes as the `bytes` channel's ring), the peer
/// copying each message in with `memcpy` and publishing it with one store,
/// the bench copying it out with `memcpy` and releasing it with one store.
/// What a hand-written program pays to carry the bytes to another core.
pub struct RawBytes {
    source: Commanded,
    shm: RawShm,
    size: usize,
    slots: u64,
    head: u64,
    cached_tail: u64,
    buf: Vec<u8>,
}

impl RawBytes {
    pub fn spawn(size: usize, cpu: Option<usize>) -> Self {
        let slots = (RING_BYTES / size) as u64;
        let (commands_name, raw_name) = (BENCH.fresh_name("ctl"), BENCH.fresh_name("raw"));
        let commands =
            spsc::Sender::<u64>::create(&commands_name, 16).expect("create the command channel");
        let shm = RawShm::create_bytes(&raw_name, RING_BYTES).expect("create the raw mapping");
        let args = [commands_name.as_str(), &raw_name, &size.to_string()];
        let peer = spawn_peer("raw-source", &args, cpu, Stdio::null());
        Self {
            source: Commanded::new(commands, peer),
            shm,
            size,
            slots,
            head: 0,
            cached_tail: 0,
            buf: vec![0; size],
        }
    }
}

/// Slot `position`'s first byte in a raw byte ring of `slots` slots of
/// `size` bytes at `base` (in bounds when those are the mapping's: the
/// callers' copies say so where they dereference it).
fn raw_slot(base: NonNull<u8>, position: u64, slots: u64, size: usize) -> *mut u8 {
    base.as_ptr()
        .wrapping_add((position % slots) as usize * size)
}

impl Run for RawBytes {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        self.source.start(iters);
        let (head_word, tail_word, base) = self.shm.byte_ring();
        let (mut head, mut cached_tail) = (self.head, self.cached_tail);
        let mut spins = 0;
        for seq in 0..iters {
            while head == cached_tail {
                // Acquire: pairs with the peer's Release store of `tail`,
                // after it copied the message in.
                cached_tail = tail_word.load(Ordering::Acquire);
                if head == cached_tail {
                    self.source.peer.wait_turn(&mut spins);
                }
            }
            let slot = raw_slot(base, head, self.slots, self.size);
            // SAFETY: the slot lies in the mapping (`RING_BYTES / size`
            // slots of `size` bytes fit the `RING_BYTES` mapped after the
            // index words; `raw_slot` masks the position), and is the
            // bench's until it stores a `head` past it: the peer published
            // it and does not write it again before then.
            unsafe { std::ptr::copy_nonoverlapping(slot, self.buf.as_mut_ptr(), self.size) };
            head += 1;
            // Release: pairs with the peer's Acquire load of `head`, after
            // the copy.
            head_word.store(head, Ordering::Release);
            verify(&self.buf, seq, self.size);
        }
        (self.head, self.cached_tail) = (head, cached_tail);
        start.elapsed()
    }
}

/// The bench reads length-prefixed messages from the peer's standard output
/// (a socket or a pipe); commands go to its standard input.
pub struct Stream<R> {
    commands: Option<ChildStdin>,
    data: BufReader<R>,
    size: usize,
    buf: Vec<u8>,
    peer: Peer,
}

impl Stream<UnixStream> {
    /// Over a socketpair; the peer writes each message with one `write_all`,
    /// or through a `BufWriter` if `buffered`.
    pub fn socket(size: usize, buffered: bool, cpu: Option<usize>) -> Self {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let mode = if buffered { "buffered" } else { "write" };
        let args = [size.to_string(), mode.to_string()];
        let stdout = Stdio::from(OwnedFd::from(theirs));
        let peer = spawn_peer("stream-source", &args, cpu, stdout);
        Self::new(ours, size, peer)
    }
}

impl Stream<std::process::ChildStdout> {
    /// Over a pipe; the peer writes each message with one `write_all`.
    pub fn pipe(size: usize, cpu: Option<usize>) -> Self {
        let args = [size.to_string(), "write".to_string()];
        let mut peer = spawn_peer("stream-source", &args, cpu, Stdio::piped());
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

/// Starts a peer in `role` with `args`, its standard input a pipe (for
/// commands) and its standard output `stdout`.
fn spawn_peer(
    role: &'static str,
    args: &[impl AsRef<str>],
    cpu: Option<usize>,
    stdout: Stdio,
) -> Peer {
    BENCH.spawn(role, args, cpu, Stdio::piped(), stdout)
}

// ---------------------------------------------------------------------------
// The peer process.

pub fn run_peer(role: &str) -> Res<()> {
    remember_bench();
    let args = BENCH.peer_args()?;
    let arg = |i: usize| args.get(i);
    let gone = "the bench stopped receiving";
    match role {
        "shm-source" => {
            let commands = spsc::Receiver::<u64>::open(arg(0)?)?;
            let data = bytes::Sender::open_with(arg(1)?, &Wait::parse(arg(3)?)?.options())?;
            let mut message = payload(arg(2)?.parse()?);
            data.send(&[]).map_err(|_| gone)?; // ready
            for iters in &commands {
                for seq in 0..iters {
                    stamp(&mut message, seq);
                    data.send(&message).map_err(|_| gone)?;
                }
            }
        }
        "spsc-block-source" => {
            let commands = spsc::Receiver::<u64>::open(arg(0)?)?;
            let data = spsc::Sender::<[u8; BLOCK]>::open(arg(1)?)?;
            data.send([0; BLOCK]).map_err(|_| gone)?; // ready
            let mut message: [u8; BLOCK] = payload(BLOCK).try_into().expect("a block");
            for iters in &commands {
                for seq in 0..iters {
                    stamp(&mut message, seq);
                    data.send(message).map_err(|_| gone)?;
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
        "raw-source" => {
            let commands = spsc::Receiver::<u64>::open(arg(0)?)?;
            let shm = RawShm::open_bytes(arg(1)?, RING_BYTES)?;
            let size: usize = arg(2)?.parse()?;
            if !(24..=RING_BYTES).contains(&size) {
                return Err(format!("a message of {size} bytes").into());
            }
            let slots = (RING_BYTES / size) as u64;
            let (head, tail, base) = shm.byte_ring();
            let mut message = payload(size);
            let (mut next, mut cached_head) = (0u64, 0u64);
            for iters in &commands {
                for seq in 0..iters {
                    stamp(&mut message, seq);
                    let mut spins = 0u32;
                    while next - cached_head == slots {
                        // Acquire: pairs with the bench's Release of `head`,
                        // after it copied the slot out.
                        cached_head = head.load(Ordering::Acquire);
                        spins = spin(spins)?;
                    }
                    let slot = raw_slot(base, next, slots, size);
                    // SAFETY: the slot lies in the mapping (as in the bench's
                    // `RawBytes::run`: the peer maps the same `RING_BYTES`),
                    // and is ours: the
                    // bench released it (`head` is past it) and reads it
                    // again only after we publish it.
                    unsafe { std::ptr::copy_nonoverlapping(message.as_ptr(), slot, size) };
                    next += 1;
                    // Release: pairs with the bench's Acquire of `tail`.
                    tail.store(next, Ordering::Release);
                }
            }
        }
        other => return Err(format!("unknown role {other:?}").into()),
    }
    Ok(())
}
