//! One-way streams from a peer process to the bench: spsc (message by
//! message and in batches), the hand-written Lamport ring, a pipe and a
//! Unix socket, each carrying 8-byte messages (`u64`) or 24-byte ones
//! ([`Tick`], three words), as [`Msg`] says. Each implements [`Run`]:
//! `run(iters)` has the peer stream `iters` messages, checks every one
//! against what message `i` must be, and returns the time to the last.

use super::raw::{remember_bench, spin, RawShm, RAW_CAPACITY, RAW_SLOT_WORDS};
use super::{read_or_eof, stdin_file, stdout_file, verify, Bench, Commanded, Peer, Res, Run, Wait};
use shmchan::spsc::{Receiver, Sender};
use shmchan::ShmSafe;
use std::fmt::Debug;
use std::io::{BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{ChildStdin, ChildStdout, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A streamed message: what message `i` is, word by word.
pub trait Msg: ShmSafe + PartialEq + Debug + 'static {
    /// How the peer is told which it is.
    const TAG: &'static str;
    /// 64-bit words in one.
    const WORDS: usize;
    /// Word `k` of message `i`; word 0 is `i`.
    fn word(i: u64, k: usize) -> u64;
    fn from_words(words: &[u64]) -> Self;
    /// Message `i`.
    #[inline(always)]
    fn make(i: u64) -> Self {
        let mut words = [0u64; RAW_SLOT_WORDS];
        for (k, word) in words[..Self::WORDS].iter_mut().enumerate() {
            *word = Self::word(i, k);
        }
        Self::from_words(&words[..Self::WORDS])
    }
    /// Fails the run unless `got` is message `i`.
    #[inline(always)]
    fn check(got: &Self, i: u64) {
        if *got != Self::make(i) {
            mismatch(got, i);
        }
    }
}

#[cold]
#[inline(never)]
fn mismatch(got: &impl Debug, i: u64) -> ! {
    panic!("message {i} arrived as {got:?}: lost, duplicated, reordered or torn")
}

impl Msg for u64 {
    const TAG: &'static str = "8B";
    const WORDS: usize = 1;
    #[inline(always)]
    fn word(i: u64, _k: usize) -> u64 {
        i
    }
    #[inline(always)]
    fn from_words(words: &[u64]) -> Self {
        words[0]
    }
    #[inline(always)]
    fn check(got: &Self, i: u64) {
        verify(*got, i);
    }
}

/// A 24-byte message (the size of the demo's market-data tick): its
/// sequence number and two words derived from it.
#[derive(Clone, Copy, Debug, PartialEq, shmchan::ShmSafe)]
#[repr(C)]
pub struct Tick {
    seq: u64,
    px: u64,
    qty: u64,
}

impl Msg for Tick {
    const TAG: &'static str = "24B";
    const WORDS: usize = 3;
    #[inline(always)]
    fn word(i: u64, k: usize) -> u64 {
        match k {
            0 => i,
            1 => i ^ 0x5A5A_5A5A_5A5A_5A5A,
            _ => i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }
    #[inline(always)]
    fn from_words(words: &[u64]) -> Self {
        Self {
            seq: words[0],
            px: words[1],
            qty: words[2],
        }
    }
    /// Field by field: a comparison of whole values may load the message
    /// back 16 bytes at a time from the 8-byte stores that made it, a
    /// stall that would be the check's cost, not the transport's.
    #[inline(always)]
    fn check(got: &Self, i: u64) {
        let (seq, px, qty) = (got.seq, got.px, got.qty);
        if seq != Self::word(i, 0) || px != Self::word(i, 1) || qty != Self::word(i, 2) {
            mismatch(got, i);
        }
    }
}

/// The peer's environment (its channel names are its arguments), and how
/// the bench names itself and its channels.
pub const BENCH: Bench = Bench {
    role_var: "SHMCHAN_BENCH_PEER",
    args_var: "SHMCHAN_BENCH_ARGS",
    cpu_var: "SHMCHAN_BENCH_PEER_CPU",
    label: "shmchan bench",
    peer_label: "bench peer",
    name_prefix: "shmchan-bench",
};

/// Messages per `send_batch` / `recv_batch`.
pub const BATCH: usize = 64;
/// Capacity of the throughput channel, in messages.
pub const CAPACITY: usize = 4096;
const _: () = assert!(CAPACITY as u64 == RAW_CAPACITY);
/// Buffer of the pipe's `BufWriter` and `BufReader`.
pub const PIPE_BUFFER: usize = 64 * 1024;
/// The message a streaming peer sends once it is attached.
const READY: u64 = u64::MAX;

// ---------------------------------------------------------------------------
// The bench's side of each peer.

/// The bench streams from an spsc channel; commands go over another.
pub struct SpscStream<M: Msg> {
    source: Commanded,
    data: Receiver<M>,
    batched: bool,
}

impl<M: Msg> SpscStream<M> {
    pub fn spawn(batched: bool, wait: Wait, cpu: Option<usize>) -> Self {
        let (commands_name, data_name) = (BENCH.fresh_name("ctl"), BENCH.fresh_name("data"));
        let commands = Sender::create(&commands_name, 16).expect("create the command channel");
        let data = Receiver::create_with(&data_name, &wait.options().capacity(CAPACITY))
            .expect("create the data channel");
        let role = if batched {
            "spsc-batch-source"
        } else {
            "spsc-source"
        };
        let args = [commands_name.as_str(), &data_name, wait.arg(), M::TAG];
        let mut peer = spawn_peer(role, &args, cpu, false);
        let ready = peer.recv_first(|timeout| data.recv_timeout(timeout));
        assert_eq!(ready, M::make(READY), "the peer's first message");
        Self {
            source: Commanded::new(commands, peer),
            data,
            batched,
        }
    }
}

impl<M: Msg> Run for SpscStream<M> {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        self.source.start(iters);
        let mut next = 0;
        if self.batched {
            let mut buf = [M::make(0); BATCH];
            while next < iters {
                let want = BATCH.min((iters - next) as usize);
                let got = self
                    .data
                    .recv_batch(&mut buf[..want])
                    .unwrap_or_else(|_| self.source.peer.left());
                for value in &buf[..got] {
                    M::check(value, next);
                    next += 1;
                }
            }
        } else {
            while next < iters {
                let value = self.data.recv().unwrap_or_else(|_| self.source.peer.left());
                M::check(&value, next);
                next += 1;
            }
        }
        start.elapsed()
    }
}

/// The bench streams from a pipe or a Unix stream socket (the peer's
/// standard output), through a `BufReader`; commands go over a pipe (its
/// standard input).
pub struct PipeStream<R, M: Msg> {
    commands: Option<ChildStdin>,
    data: BufReader<R>,
    peer: Peer,
    _messages: PhantomData<M>,
}

impl<M: Msg> PipeStream<ChildStdout, M> {
    /// The peer writes through a `BufWriter` if `buffered`, else with one
    /// `write(2)` per message.
    pub fn spawn(buffered: bool, cpu: Option<usize>) -> Self {
        let mut peer = BENCH.spawn(
            source_role(buffered),
            &[M::TAG],
            cpu,
            Stdio::piped(),
            Stdio::piped(),
        );
        let data = peer.child.stdout.take().expect("pipe from the peer");
        Self::new(data, peer)
    }
}

impl<M: Msg> PipeStream<UnixStream, M> {
    /// Over a socketpair; the peer writes as in [`PipeStream::spawn`].
    pub fn socket(buffered: bool, cpu: Option<usize>) -> Self {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let stdout = Stdio::from(OwnedFd::from(theirs));
        let peer = BENCH.spawn(
            source_role(buffered),
            &[M::TAG],
            cpu,
            Stdio::piped(),
            stdout,
        );
        Self::new(ours, peer)
    }
}

fn source_role(buffered: bool) -> &'static str {
    if buffered {
        "pipe-source"
    } else {
        "pipe-write-source"
    }
}

impl<R: Read, M: Msg> PipeStream<R, M> {
    fn new(data: R, mut peer: Peer) -> Self {
        let commands = peer.child.stdin.take().expect("pipe to the peer");
        Self {
            commands: Some(commands),
            data: BufReader::with_capacity(PIPE_BUFFER, data),
            peer,
            _messages: PhantomData,
        }
    }
}

/// Message `i` as the bytes a pipe carries: its words, in order.
#[inline(always)]
fn record<M: Msg>(i: u64) -> ([u8; 8 * RAW_SLOT_WORDS], usize) {
    let mut bytes = [0u8; 8 * RAW_SLOT_WORDS];
    for k in 0..M::WORDS {
        bytes[8 * k..8 * k + 8].copy_from_slice(&M::word(i, k).to_ne_bytes());
    }
    (bytes, 8 * M::WORDS)
}

/// The next message from a pipe.
#[inline(always)]
fn read_msg<M: Msg>(from: &mut impl Read) -> std::io::Result<M> {
    let mut bytes = [0u8; 8 * RAW_SLOT_WORDS];
    from.read_exact(&mut bytes[..8 * M::WORDS])?;
    let mut words = [0u64; RAW_SLOT_WORDS];
    for (k, word) in words[..M::WORDS].iter_mut().enumerate() {
        *word = u64::from_ne_bytes(bytes[8 * k..8 * k + 8].try_into().expect("8 bytes"));
    }
    Ok(M::from_words(&words[..M::WORDS]))
}

impl<R: Read, M: Msg> Run for PipeStream<R, M> {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        let commands = self.commands.as_mut().expect("running");
        commands
            .write_all(&iters.to_ne_bytes())
            .expect("send a command to the pipe peer");
        for next in 0..iters {
            let value = read_msg::<M>(&mut self.data)
                .unwrap_or_else(|err| panic!("the pipe peer left ({err}): {}", self.peer.status()));
            M::check(&value, next);
        }
        start.elapsed()
    }
}

impl<R, M: Msg> Drop for PipeStream<R, M> {
    fn drop(&mut self) {
        drop(self.commands.take()); // the peer reads end-of-file
        self.peer.finish();
    }
}

/// The hand-written baseline of the one-way streams: a minimal Lamport
/// ring in a bare mapping, with cached indices, a slot of `M::WORDS` words
/// per message. The producer writes one message,
/// or a batch of `batch`, and publishes it with one store; the consumer
/// takes one, or up to a batch of what is ready, and releases it with one
/// store. (The batched consumer reads a batch in one loop, as `recv_batch`
/// does: taking them one at a time and releasing every `batch` ran at a
/// third of the speed, which would flatter spsc.)
pub struct RawStream<M: Msg> {
    source: Commanded,
    shm: RawShm,
    batch: u64,
    head: u64,
    cached_tail: u64,
    _messages: PhantomData<M>,
}

/// The words of slot `position` of a raw ring of `words`-word slots.
#[inline(always)]
fn raw_slot(slots: &[AtomicU64], position: u64, words: usize) -> &[AtomicU64] {
    let base = (position % RAW_CAPACITY) as usize * words;
    &slots[base..base + words]
}

impl<M: Msg> RawStream<M> {
    pub fn spawn(batch: u64, cpu: Option<usize>) -> Self {
        assert!((1..=RAW_CAPACITY).contains(&batch), "a batch of {batch}");
        let (commands_name, raw_name) = (BENCH.fresh_name("ctl"), BENCH.fresh_name("raw"));
        let commands = Sender::create(&commands_name, 16).expect("create the command channel");
        let shm = RawShm::create(&raw_name).expect("create the raw mapping");
        let args = [
            commands_name.as_str(),
            raw_name.as_str(),
            &batch.to_string(),
            M::TAG,
        ];
        let mut peer = spawn_peer("raw-source", &args, cpu, false);
        let (head, tail, slots) = shm.ring();
        let mut spins = 0;
        // Acquire: pairs with the peer's Release store of its first `tail`.
        while tail.load(Ordering::Acquire) == 0 {
            peer.wait_turn(&mut spins);
        }
        assert_eq!(
            read_slot::<M>(raw_slot(slots, 0, M::WORDS)),
            M::make(READY),
            "the peer's first message"
        );
        // Release: pairs with the peer's Acquire load of `head`.
        head.store(1, Ordering::Release);
        RawShm::unlink(&raw_name); // both ends have it mapped
        Self {
            source: Commanded::new(commands, peer),
            shm,
            batch,
            head: 1,
            cached_tail: 1,
            _messages: PhantomData,
        }
    }
}

/// The message in a raw ring's slot.
#[inline(always)]
fn read_slot<M: Msg>(slot: &[AtomicU64]) -> M {
    let mut words = [0u64; RAW_SLOT_WORDS];
    for (word, cell) in words.iter_mut().zip(slot) {
        // Relaxed: ordered by the Acquire load of `tail` before it.
        *word = cell.load(Ordering::Relaxed);
    }
    M::from_words(&words[..M::WORDS])
}

/// Writes message `i` into a raw ring's slot.
#[inline(always)]
fn write_slot<M: Msg>(slot: &[AtomicU64], i: u64) {
    for (k, cell) in slot.iter().enumerate() {
        // Relaxed: ordered by the Release store of `tail` after it.
        cell.store(M::word(i, k), Ordering::Relaxed);
    }
}

impl<M: Msg> Run for RawStream<M> {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        self.source.start(iters);
        if self.batch == 1 {
            self.one_by_one(iters);
        } else {
            self.in_batches(iters);
        }
        start.elapsed()
    }
}

impl<M: Msg> RawStream<M> {
    /// Takes `iters` messages, releasing each.
    fn one_by_one(&mut self, iters: u64) {
        let (head_word, tail_word, slots) = self.shm.ring();
        let (mut head, mut cached_tail) = (self.head, self.cached_tail);
        let mut spins = 0;
        for i in 0..iters {
            while head == cached_tail {
                // Acquire: pairs with the peer's Release store of `tail`,
                // after the slots before it were written.
                cached_tail = tail_word.load(Ordering::Acquire);
                if head == cached_tail {
                    self.source.peer.wait_turn(&mut spins);
                }
            }
            M::check(&read_slot::<M>(raw_slot(slots, head, M::WORDS)), i);
            head += 1;
            // Release: pairs with the peer's Acquire load of `head`, after
            // the slot was read.
            head_word.store(head, Ordering::Release);
        }
        (self.head, self.cached_tail) = (head, cached_tail);
    }

    /// Takes `iters` messages, up to a batch of what is ready at a time,
    /// releasing each batch with one store.
    fn in_batches(&mut self, iters: u64) {
        let (head_word, tail_word, slots) = self.shm.ring();
        let (mut head, mut cached_tail) = (self.head, self.cached_tail);
        let mut spins = 0;
        let mut i = 0;
        while i < iters {
            while head == cached_tail {
                // Acquire: as in `one_by_one`.
                cached_tail = tail_word.load(Ordering::Acquire);
                if head == cached_tail {
                    self.source.peer.wait_turn(&mut spins);
                }
            }
            let n = (cached_tail - head).min(self.batch).min(iters - i);
            for k in 0..n {
                let slot = raw_slot(slots, head + k, M::WORDS);
                M::check(&read_slot::<M>(slot), i + k);
            }
            (head, i) = (head + n, i + n);
            // Release: as in `one_by_one`, after the whole batch was read.
            head_word.store(head, Ordering::Release);
        }
        (self.head, self.cached_tail) = (head, cached_tail);
    }
}

/// Starts a peer in `role` with its channel `names`, its standard input and
/// output pipes if `pipes`.
fn spawn_peer(role: &'static str, names: &[&str], cpu: Option<usize>, pipes: bool) -> Peer {
    let io = || if pipes { Stdio::piped() } else { Stdio::null() };
    BENCH.spawn(role, names, cpu, io(), io())
}

// ---------------------------------------------------------------------------
// The peer process.

pub fn run_peer(role: &str) -> Res<()> {
    remember_bench();
    let args = BENCH.peer_args()?;
    // The message size is the last argument.
    let tag = args.last()?;
    match tag {
        "8B" => run_peer_of::<u64>(role, &args),
        "24B" => run_peer_of::<Tick>(role, &args),
        other => Err(format!("no message size {other:?}").into()),
    }
}

fn run_peer_of<M: Msg>(role: &str, args: &super::PeerArgs) -> Res<()> {
    let name = |i: usize| args.get(i);
    let gone = "the bench stopped receiving";
    match role {
        "spsc-source" | "spsc-batch-source" => {
            let commands = Receiver::<u64>::open(name(0)?)?;
            let data = Sender::<M>::open_with(name(1)?, &Wait::parse(name(2)?)?.options())?;
            data.send(M::make(READY)).map_err(|_| gone)?;
            let mut buf = [M::make(0); BATCH];
            for iters in &commands {
                if role == "spsc-source" {
                    for i in 0..iters {
                        data.send(M::make(i)).map_err(|_| gone)?;
                    }
                    continue;
                }
                let mut i = 0;
                while i < iters {
                    let len = BATCH.min((iters - i) as usize);
                    for (j, slot) in buf[..len].iter_mut().enumerate() {
                        *slot = M::make(i + j as u64);
                    }
                    data.send_batch(&buf[..len]).map_err(|_| gone)?;
                    i += len as u64;
                }
            }
        }
        "pipe-source" => {
            let mut commands = stdin_file()?;
            let mut data = BufWriter::with_capacity(PIPE_BUFFER, stdout_file()?);
            while let Some(iters) = read_or_eof(&mut commands)? {
                for i in 0..iters {
                    let (bytes, len) = record::<M>(i);
                    data.write_all(&bytes[..len])?;
                }
                data.flush()?;
            }
        }
        "pipe-write-source" => {
            let mut commands = stdin_file()?;
            let mut data = stdout_file()?;
            while let Some(iters) = read_or_eof(&mut commands)? {
                for i in 0..iters {
                    let (bytes, len) = record::<M>(i);
                    data.write_all(&bytes[..len])?;
                }
            }
        }
        "raw-source" => {
            let commands = Receiver::<u64>::open(name(0)?)?;
            let shm = RawShm::open(name(1)?)?;
            let batch: u64 = name(2)?.parse()?;
            if batch == 0 || batch > RAW_CAPACITY {
                return Err(format!("a batch of {batch}").into());
            }
            let (head, tail, slots) = shm.ring();
            // Ready: a first message, at position 0.
            write_slot::<M>(raw_slot(slots, 0, M::WORDS), READY);
            // Release: publishes the slot; pairs with the bench's Acquire.
            tail.store(1, Ordering::Release);
            let (mut next, mut cached_head) = (1u64, 0u64);
            for iters in &commands {
                if batch == 1 {
                    for i in 0..iters {
                        let mut spins = 0u32;
                        while next - cached_head == RAW_CAPACITY {
                            // Acquire: pairs with the bench's Release of
                            // `head`.
                            cached_head = head.load(Ordering::Acquire);
                            spins = spin(spins)?;
                        }
                        write_slot::<M>(raw_slot(slots, next, M::WORDS), i);
                        next += 1;
                        // Release: pairs with the bench's Acquire of `tail`.
                        tail.store(next, Ordering::Release);
                    }
                    continue;
                }
                let mut i = 0;
                while i < iters {
                    // A batch (fewer at the end), then one publish.
                    let n = batch.min(iters - i);
                    let mut spins = 0u32;
                    while RAW_CAPACITY - (next - cached_head) < n {
                        // Acquire: as above.
                        cached_head = head.load(Ordering::Acquire);
                        spins = spin(spins)?;
                    }
                    for k in 0..n {
                        write_slot::<M>(raw_slot(slots, next + k, M::WORDS), i + k);
                    }
                    (next, i) = (next + n, i + n);
                    // Release: as above, after the whole batch was written.
                    tail.store(next, Ordering::Release);
                }
            }
        }
        other => return Err(format!("unknown role {other:?}").into()),
    }
    Ok(())
}
