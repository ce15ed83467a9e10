//! Many processes on one channel: mpsc with N sender processes streaming
//! into the bench, mpmc with producer and consumer processes, and the same
//! shapes with threads over crossbeam-channel and `std::sync::mpsc` in one
//! process. Messages are `u64`s that carry their sender's index in the top
//! byte and its sequence number below; every one is checked. Each workload
//! implements [`Run`].

use super::{pin_thread, Bench, InProcessFlavor, Peer, Res, Run, Wait};
use crossbeam_channel as cb;
use shmchan::{mpmc, mpsc, spsc, Options, RecvTimeoutError};
use std::fmt::Display;
use std::process::Stdio;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The peer's environment (its arguments are channel names and its index),
/// and how the bench names itself and its channels.
pub const BENCH: Bench = Bench {
    role_var: "SHMCHAN_MPMC_BENCH_PEER",
    args_var: "SHMCHAN_MPMC_BENCH_ARGS",
    cpu_var: "SHMCHAN_MPMC_BENCH_PEER_CPU",
    label: "shmchan mpmc bench",
    peer_label: "mpmc bench peer",
    name_prefix: "shmchan-mpmc-bench",
};

/// Capacity of every data channel, in messages (for mpsc, of each shard).
pub const CAPACITY: usize = 4096;
/// Sender counts of `mpsc/8B`.
pub const SENDERS: [usize; 3] = [1, 2, 4];
/// The most of them: the size of the receiver's per-sender tallies.
const MAX_SENDERS: usize = 4;
const _: () =
    assert!(SENDERS[0] <= MAX_SENDERS && SENDERS[1] <= MAX_SENDERS && SENDERS[2] <= MAX_SENDERS);
/// Producers and consumers of `mpmc/2x2`. Each consumer stops at the
/// first end-of-round mark it takes, so there must be as many marks (one
/// per producer) as consumers.
pub const PRODUCERS: usize = 2;
pub const CONSUMERS: usize = 2;
const _: () = assert!(PRODUCERS == CONSUMERS);

/// How long the bench waits for a message before it gives up: a lost
/// message must not hang the run.
const STALL: Duration = Duration::from_secs(20);
/// How often the bench, waiting for a message, checks that its peers live.
const SLICE: Duration = Duration::from_millis(100);
/// Samples shorter than this say little about fairness; they are left out
/// of the shares.
const MIN_FAIRNESS_ITERS: u64 = 10_000;

/// A message: its sender's index in the top byte, its sequence number (or
/// [`MARK`]) below.
const SEQ_BITS: u32 = 56;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// The sequence number of a control message: a sender's "ready" in
/// `mpsc/8B`, a producer's end of round in `mpmc/2x2`.
const MARK: u64 = SEQ_MASK;

/// Reports of `mpmc/2x2` peers: `[kind, index, count, sum]`.
const HELLO: u64 = 1;
const DONE: u64 = 2;
type Report = [u64; 4];

/// The CPUs the bench may use, its own first; `None` if nothing is pinned.
pub struct Cpus(pub Option<Vec<usize>>);

impl Cpus {
    /// The CPU of `mpsc/8B`'s sender `i`: the others than the receiver's,
    /// round robin.
    fn sender(&self, i: usize) -> Option<usize> {
        let others = &self.0.as_ref()?[1..];
        Some(others[i % others.len()])
    }

    /// The CPU of `mpmc/2x2`'s worker `k` (producers first): all of them,
    /// round robin.
    fn worker(&self, k: usize) -> Option<usize> {
        let all = self.0.as_ref()?;
        Some(all[k % all.len()])
    }
}

// ---------------------------------------------------------------------------
// Messages and their checks.

#[inline(always)]
fn tag(sender: usize, seq: u64) -> u64 {
    (sender as u64) << SEQ_BITS | seq
}

#[inline(always)]
fn untag(value: u64) -> (usize, u64) {
    ((value >> SEQ_BITS) as usize, value & SEQ_MASK)
}

/// Sender `i`'s share of `iters` messages split among `senders`.
fn quota(iters: u64, senders: usize, i: usize) -> u64 {
    let senders = senders as u64;
    iters / senders + u64::from((i as u64) < iters % senders)
}

/// The wrapping sum of every data message the producers send for `iters`.
fn expected_sum(iters: u64) -> u64 {
    (0..PRODUCERS).fold(0u64, |sum, p| {
        let q = quota(iters, PRODUCERS, p);
        // 0 + 1 + ... + (q - 1), halving the even factor first.
        let seqs = if q % 2 == 0 {
            (q / 2).wrapping_mul(q.saturating_sub(1))
        } else {
            q.wrapping_mul((q - 1) / 2)
        };
        sum.wrapping_add(q.wrapping_mul(tag(p, 0)))
            .wrapping_add(seqs)
    })
}

/// Receives `iters` messages from `senders` senders with `recv`, checking
/// that each sender's arrive in order, none lost or repeated, and that each
/// sent its share. Returns how many of the first half came from each.
#[inline(always)]
fn receive_checked(
    iters: u64,
    senders: usize,
    mut recv: impl FnMut() -> u64,
) -> [u64; MAX_SENDERS] {
    let mut next = [0u64; MAX_SENDERS];
    let half = iters / 2;
    for _ in 0..half {
        accept(&mut next, senders, recv());
    }
    let first_half = next;
    for _ in half..iters {
        accept(&mut next, senders, recv());
    }
    for (i, &got) in next[..senders].iter().enumerate() {
        let want = quota(iters, senders, i);
        assert_eq!(got, want, "messages from sender {i} of {senders}");
    }
    first_half
}

#[inline(always)]
fn accept(next: &mut [u64; MAX_SENDERS], senders: usize, value: u64) {
    let (sender, seq) = untag(value);
    if sender >= senders || next[sender] != seq {
        misdelivered(value, senders, next);
    }
    next[sender] += 1;
}

#[cold]
#[inline(never)]
fn misdelivered(value: u64, senders: usize, next: &[u64]) -> ! {
    let (sender, seq) = untag(value);
    panic!(
        "message {seq} of sender {sender} arrived when the next of each of the {senders} \
         senders was {:?}: the transport lost, duplicated or reordered one",
        &next[..senders]
    );
}

/// One round of an mpmc consumer: takes messages with `recv` until an
/// end-of-round mark, checking that each producer's arrive in increasing
/// order. Returns the count and wrapping sum of the data messages, or
/// `None` if the channel closed before the round began.
fn consume_round(mut recv: impl FnMut() -> Option<u64>) -> Result<Option<(u64, u64)>, String> {
    let mut next = [0u64; PRODUCERS];
    let (mut count, mut sum) = (0u64, 0u64);
    loop {
        let Some(value) = recv() else {
            return match count {
                0 => Ok(None),
                _ => Err(format!("the channel closed after {count} messages")),
            };
        };
        let (producer, seq) = untag(value);
        let Some(min) = next.get_mut(producer) else {
            return Err(format!("a message from producer {producer}"));
        };
        if seq == MARK {
            return Ok(Some((count, sum)));
        }
        if seq < *min {
            return Err(format!(
                "message {seq} of producer {producer} after message {}",
                *min - 1
            ));
        }
        *min = seq + 1;
        count += 1;
        sum = sum.wrapping_add(value);
    }
}

/// Which share of the first half of each sample came from each sender,
/// over the timed runs (warm-up included) of one benchmark.
struct Fairness {
    label: &'static str,
    senders: usize,
    runs: u32,
    /// Messages of the first halves, by sender, and in all.
    first_halves: [u64; MAX_SENDERS],
    total: u64,
    /// Each sender's lowest share of one run's first half.
    lowest: [f64; MAX_SENDERS],
}

impl Fairness {
    fn new(label: &'static str, senders: usize) -> Self {
        Self {
            label,
            senders,
            runs: 0,
            first_halves: [0; MAX_SENDERS],
            total: 0,
            lowest: [1.0; MAX_SENDERS],
        }
    }

    fn add(&mut self, iters: u64, first_half: &[u64]) {
        if iters < MIN_FAIRNESS_ITERS {
            return;
        }
        self.runs += 1;
        self.total += iters / 2;
        for (i, &count) in first_half[..self.senders].iter().enumerate() {
            self.first_halves[i] += count;
            let share = count as f64 / (iters / 2) as f64;
            self.lowest[i] = self.lowest[i].min(share);
        }
    }
}

impl Drop for Fairness {
    fn drop(&mut self) {
        if self.senders < 2 || self.runs == 0 {
            return;
        }
        let percent = |shares: &mut dyn Iterator<Item = f64>| {
            shares
                .map(|share| format!("{:.1}%", share * 100.0))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let overall = &mut self.first_halves[..self.senders]
            .iter()
            .map(|&count| count as f64 / self.total as f64);
        let lowest = &mut self.lowest[..self.senders].iter().copied();
        eprintln!(
            "mpsc/8B/{}_{}: each sender's share of the first half of a timed run \
             (fair: {:.1}%), over {} runs: in all {}; lowest in one run {}",
            self.label,
            self.senders,
            100.0 / self.senders as f64,
            self.runs,
            percent(overall),
            percent(lowest),
        );
    }
}

/// What each consumer of `mpmc/2x2` took, over the samples of one
/// benchmark.
struct ConsumerShares {
    label: &'static str,
    taken: [u64; CONSUMERS],
}

impl ConsumerShares {
    fn new(label: &'static str) -> Self {
        Self {
            label,
            taken: [0; CONSUMERS],
        }
    }

    /// Checks one sample's reports, `[count, sum]` by consumer, against
    /// what `iters` should have sent.
    fn check(&mut self, iters: u64, reports: &[[u64; 2]; CONSUMERS]) {
        let count: u64 = reports.iter().map(|r| r[0]).sum();
        let sum = reports.iter().fold(0u64, |sum, r| sum.wrapping_add(r[1]));
        assert_eq!(count, iters, "messages the consumers took, in all");
        assert_eq!(sum, expected_sum(iters), "sum of the messages taken");
        for (taken, report) in self.taken.iter_mut().zip(reports) {
            *taken += report[0];
        }
    }
}

impl Drop for ConsumerShares {
    fn drop(&mut self) {
        let total: u64 = self.taken.iter().sum();
        if total == 0 {
            return;
        }
        let shares: Vec<String> = self
            .taken
            .iter()
            .map(|&t| format!("{:.1}%", t as f64 * 100.0 / total as f64))
            .collect();
        eprintln!(
            "mpmc/{PRODUCERS}x{CONSUMERS}/{}: each consumer's share of all messages: {}",
            self.label,
            shares.join(" ")
        );
    }
}

// ---------------------------------------------------------------------------
// Peer processes, seen from the bench.

/// The peers of one benchmark.
struct Peers(Vec<Peer>);

impl Peers {
    fn spawn(&mut self, role: &'static str, args: &[&str], cpu: Option<usize>) {
        let peer = BENCH.spawn(role, args, cpu, Stdio::null(), Stdio::null());
        self.0.push(peer);
    }

    /// Panics: `what` went wrong; says how each peer is doing.
    #[cold]
    #[inline(never)]
    fn left(&mut self, what: impl Display) -> ! {
        let status: Vec<String> = self.0.iter_mut().map(Peer::status).collect();
        panic!("{what}: {}", status.join(", "))
    }

    /// Panics if a peer has exited.
    fn check(&mut self) {
        for peer in &mut self.0 {
            if let Ok(Some(status)) = peer.child.try_wait() {
                panic!("peer {} exited ({status})", peer.role);
            }
        }
    }

    /// Receives a message with `recv_timeout`, in slices of [`SLICE`],
    /// checking between them that no peer has exited; panics if nothing
    /// came for [`STALL`]. The first attempt, inlined, is the receive's
    /// fast path: the clock is read only once the channel is empty.
    #[inline(always)]
    fn recv<T>(
        &mut self,
        what: &str,
        mut recv_timeout: impl FnMut(Duration) -> Result<T, RecvTimeoutError>,
    ) -> T {
        match recv_timeout(SLICE) {
            Ok(value) => value,
            Err(err) => self.recv_slowly(what, err, recv_timeout),
        }
    }

    #[cold]
    #[inline(never)]
    fn recv_slowly<T>(
        &mut self,
        what: &str,
        mut err: RecvTimeoutError,
        mut recv_timeout: impl FnMut(Duration) -> Result<T, RecvTimeoutError>,
    ) -> T {
        for _ in 1..STALL.as_millis() / SLICE.as_millis() {
            if err != RecvTimeoutError::Timeout {
                break;
            }
            self.check();
            match recv_timeout(SLICE) {
                Ok(value) => return value,
                Err(again) => err = again,
            }
        }
        self.left(format_args!("{what}: {err}"))
    }

    /// Waits for every peer to exit.
    fn finish(&mut self) {
        for peer in &mut self.0 {
            peer.finish();
        }
    }
}

/// A data channel the bench receives `mpsc/8B` messages from.
pub trait StreamReceiver: Sized {
    /// The senders' role.
    const ROLE: &'static str;
    fn create(name: &str, options: &Options) -> Result<Self, shmchan::Error>;
    fn recv_within(&self, timeout: Duration) -> Result<u64, RecvTimeoutError>;
}

impl StreamReceiver for spsc::Receiver<u64> {
    const ROLE: &'static str = "spsc-source";

    fn create(name: &str, options: &Options) -> Result<Self, shmchan::Error> {
        Self::create_with(name, options)
    }

    #[inline(always)]
    fn recv_within(&self, timeout: Duration) -> Result<u64, RecvTimeoutError> {
        // The same fast path as `recv`: the clock is read only to wait.
        self.recv_timeout(timeout)
    }
}

impl StreamReceiver for mpsc::Receiver<u64> {
    const ROLE: &'static str = "mpsc-source";

    fn create(name: &str, options: &Options) -> Result<Self, shmchan::Error> {
        Self::create_with(name, options)
    }

    #[inline(always)]
    fn recv_within(&self, timeout: Duration) -> Result<u64, RecvTimeoutError> {
        self.recv_timeout(timeout)
    }
}

/// `mpsc/8B` over shmchan: sender processes, the bench receiving.
pub struct ShmStream<R: StreamReceiver> {
    /// One per sender: how many messages to send next. Dropping them stops
    /// the senders.
    commands: Vec<spsc::Sender<u64>>,
    data: R,
    peers: Peers,
    fairness: Fairness,
}

impl<R: StreamReceiver> ShmStream<R> {
    /// `senders` sender processes, all (and the bench) waiting as `wait`
    /// says.
    pub fn spawn(senders: usize, wait: Wait, cpus: &Cpus) -> Self {
        let data_name = BENCH.fresh_name("data");
        let data = R::create(&data_name, &wait.options().capacity(CAPACITY))
            .expect("create the data channel");
        let mut peers = Peers(Vec::new());
        let mut commands = Vec::new();
        for i in 0..senders {
            let name = BENCH.fresh_name("ctl");
            commands.push(spsc::Sender::create(&name, 16).expect("create a command channel"));
            let index = i.to_string();
            let args = [name.as_str(), &data_name, &index, wait.arg()];
            peers.spawn(R::ROLE, &args, cpus.sender(i));
        }
        let mut ready: Vec<(usize, u64)> = (0..senders)
            .map(|_| untag(peers.recv("waiting for the senders", |t| data.recv_within(t))))
            .collect();
        ready.sort_unstable();
        let want: Vec<(usize, u64)> = (0..senders).map(|i| (i, MARK)).collect();
        assert_eq!(ready, want, "the senders' first messages");
        let label = if R::ROLE == "spsc-source" {
            "spsc"
        } else {
            "mpsc"
        };
        Self {
            commands,
            data,
            peers,
            fairness: Fairness::new(label, senders),
        }
    }
}

impl<R: StreamReceiver> Run for ShmStream<R> {
    fn run(&mut self, iters: u64) -> Duration {
        let senders = self.commands.len();
        let start = Instant::now();
        for (i, commands) in self.commands.iter().enumerate() {
            commands
                .send(quota(iters, senders, i))
                .unwrap_or_else(|_| self.peers.left("a sender's command channel closed"));
        }
        let first_half = receive_checked(iters, senders, || {
            self.peers.recv("receiving", |t| self.data.recv_within(t))
        });
        let elapsed = start.elapsed();
        self.fairness.add(iters, &first_half);
        elapsed
    }
}

impl<R: StreamReceiver> Drop for ShmStream<R> {
    fn drop(&mut self) {
        self.commands.clear(); // the senders' command loops end
        self.peers.finish();
    }
}

/// `mpmc/2x2` over shmchan: producer and consumer processes; the bench
/// starts each round and collects the consumers' reports.
pub struct ShmMpmc {
    /// Producers' (how many to send) then consumers' (start a round).
    commands: Vec<spsc::Sender<u64>>,
    reports: mpsc::Receiver<Report>,
    /// The bench's own attachment, which keeps the channel while the peers
    /// open it; it never receives.
    queue: Option<mpmc::Receiver<u64>>,
    peers: Peers,
    shares: ConsumerShares,
}

impl ShmMpmc {
    /// Producers and consumers waiting as `wait` says.
    pub fn spawn(wait: Wait, cpus: &Cpus) -> Self {
        let (data_name, reports_name) = (BENCH.fresh_name("mpmc"), BENCH.fresh_name("reports"));
        let queue = mpmc::Receiver::create_with(&data_name, &wait.options().capacity(CAPACITY))
            .expect("create the mpmc channel");
        let reports =
            mpsc::Receiver::<Report>::create(&reports_name, 16).expect("create the report channel");
        let mut peers = Peers(Vec::new());
        let mut commands = Vec::new();
        let workers = (0..PRODUCERS)
            .map(|i| ("mpmc-producer", i))
            .chain((0..CONSUMERS).map(|i| ("mpmc-consumer", i)));
        for (k, (role, index)) in workers.enumerate() {
            let name = BENCH.fresh_name("ctl");
            commands.push(spsc::Sender::create(&name, 16).expect("create a command channel"));
            let index = index.to_string();
            let args = [name.as_str(), &data_name, &reports_name, &index, wait.arg()];
            peers.spawn(role, &args, cpus.worker(k));
        }
        let hellos: Vec<Report> = (0..PRODUCERS + CONSUMERS)
            .map(|_| peers.recv("waiting for the peers", |t| reports.recv_timeout(t)))
            .collect();
        assert!(
            hellos.iter().all(|report| report[0] == HELLO),
            "the peers' first reports: {hellos:?}"
        );
        Self {
            commands,
            reports,
            queue: Some(queue),
            peers,
            shares: ConsumerShares::new("mpmc"),
        }
    }
}

impl Run for ShmMpmc {
    fn run(&mut self, iters: u64) -> Duration {
        let (producers, consumers) = self.commands.split_at(PRODUCERS);
        let start = Instant::now();
        let commands = consumers
            .iter()
            .map(|_| 1)
            .chain((0..PRODUCERS).map(|i| quota(iters, PRODUCERS, i)));
        for (channel, command) in consumers.iter().chain(producers).zip(commands) {
            channel
                .send(command)
                .unwrap_or_else(|_| self.peers.left("a command channel closed"));
        }
        let mut reports = [[0u64; 2]; CONSUMERS];
        for _ in 0..CONSUMERS {
            let reports_rx = &self.reports;
            let report = self
                .peers
                .recv("waiting for a report", |t| reports_rx.recv_timeout(t));
            match report {
                [DONE, index, count, sum] if (index as usize) < CONSUMERS => {
                    reports[index as usize] = [count, sum];
                }
                other => self.peers.left(format_args!("a report {other:?}")),
            }
        }
        let elapsed = start.elapsed();
        self.shares.check(iters, &reports);
        elapsed
    }
}

impl Drop for ShmMpmc {
    fn drop(&mut self) {
        // The bench's attachment first: a producer blocked on a full queue
        // whose consumers died then sees the channel disconnected.
        drop(self.queue.take());
        self.commands.clear(); // every peer's command loop ends
        self.peers.finish();
    }
}

// ---------------------------------------------------------------------------
// The crossbeam-channel baselines: threads of the bench process.

/// Starts a thread pinned to `cpu` (if given) that runs `body`.
fn start_thread(
    name: String,
    cpu: Option<usize>,
    body: impl FnOnce() + Send + 'static,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            if let Err(err) = pin_thread(cpu) {
                eprintln!("{}: thread not pinned ({err})", BENCH.label);
            }
            body();
        })
        .expect("start a thread")
}

/// Joins `threads`; panics if one did, unless already panicking.
fn join_all(threads: &mut Vec<JoinHandle<()>>) {
    for thread in threads.drain(..) {
        if thread.join().is_err() && !std::thread::panicking() {
            panic!("a benchmark thread panicked");
        }
    }
}

/// `mpsc/8B` over crossbeam-channel: sender threads, the bench's thread
/// receiving.
pub struct ThreadStream<F: InProcessFlavor> {
    commands: Vec<cb::Sender<u64>>,
    data: Option<F::Rx>,
    threads: Vec<JoinHandle<()>>,
    fairness: Fairness,
}

impl<F: InProcessFlavor> ThreadStream<F> {
    pub fn spawn(senders: usize, cpus: &Cpus) -> Self {
        let (data_tx, data) = F::bounded(CAPACITY);
        let mut commands = Vec::new();
        let mut threads = Vec::new();
        for i in 0..senders {
            let (command_tx, command_rx) = cb::bounded::<u64>(16);
            commands.push(command_tx);
            let data = data_tx.clone();
            threads.push(start_thread(
                format!("sender {i}"),
                cpus.sender(i),
                move || {
                    for quota in command_rx {
                        for seq in 0..quota {
                            if !F::send(&data, tag(i, seq)) {
                                return; // the bench stopped receiving
                            }
                        }
                    }
                },
            ));
        }
        Self {
            commands,
            data: Some(data),
            threads,
            fairness: Fairness::new(F::NAME, senders),
        }
    }
}

impl<F: InProcessFlavor> Run for ThreadStream<F> {
    fn run(&mut self, iters: u64) -> Duration {
        let senders = self.commands.len();
        let data = self.data.as_ref().expect("running");
        let start = Instant::now();
        for (i, commands) in self.commands.iter().enumerate() {
            commands
                .send(quota(iters, senders, i))
                .expect("a sender thread is gone");
        }
        let first_half = receive_checked(iters, senders, || {
            F::recv(data).expect("every sender thread is gone")
        });
        let elapsed = start.elapsed();
        self.fairness.add(iters, &first_half);
        elapsed
    }
}

impl<F: InProcessFlavor> Drop for ThreadStream<F> {
    fn drop(&mut self) {
        self.commands.clear(); // the senders' command loops end
        drop(self.data.take()); // and a sender blocked on a full channel
        join_all(&mut self.threads);
    }
}

/// `mpmc/2x2` over crossbeam-channel: producer and consumer threads, as
/// [`ShmMpmc`] has processes.
pub struct ThreadMpmc {
    /// Producers' (how many to send) then consumers' (start a round).
    commands: Vec<cb::Sender<u64>>,
    reports: cb::Receiver<Report>,
    threads: Vec<JoinHandle<()>>,
    shares: ConsumerShares,
}

impl ThreadMpmc {
    pub fn spawn(cpus: &Cpus) -> Self {
        let (data_tx, data_rx) = cb::bounded::<u64>(CAPACITY);
        let (report_tx, reports) = cb::unbounded();
        let mut commands = Vec::new();
        let mut threads = Vec::new();
        for i in 0..PRODUCERS {
            let (command_tx, command_rx) = cb::bounded::<u64>(16);
            commands.push(command_tx);
            let data = data_tx.clone();
            threads.push(start_thread(
                format!("producer {i}"),
                cpus.worker(i),
                move || {
                    for quota in command_rx {
                        for seq in 0..quota {
                            data.send(tag(i, seq)).expect("the consumers are gone");
                        }
                        data.send(tag(i, MARK)).expect("the consumers are gone");
                    }
                },
            ));
        }
        for i in 0..CONSUMERS {
            let (command_tx, command_rx) = cb::bounded::<u64>(16);
            commands.push(command_tx);
            let (data, reports) = (data_rx.clone(), report_tx.clone());
            let cpu = cpus.worker(PRODUCERS + i);
            threads.push(start_thread(format!("consumer {i}"), cpu, move || {
                for _round in command_rx {
                    match consume_round(|| data.recv().ok()) {
                        Ok(Some((count, sum))) => {
                            reports
                                .send([DONE, i as u64, count, sum])
                                .expect("the bench is gone");
                        }
                        Ok(None) => return,
                        Err(err) => panic!("consumer {i}: {err}"),
                    }
                }
            }));
        }
        Self {
            commands,
            reports,
            threads,
            shares: ConsumerShares::new("crossbeam"),
        }
    }
}

impl Run for ThreadMpmc {
    fn run(&mut self, iters: u64) -> Duration {
        let (producers, consumers) = self.commands.split_at(PRODUCERS);
        let start = Instant::now();
        for channel in consumers {
            channel.send(1).expect("a consumer thread is gone");
        }
        for (i, channel) in producers.iter().enumerate() {
            channel
                .send(quota(iters, PRODUCERS, i))
                .expect("a producer thread is gone");
        }
        let mut reports = [[0u64; 2]; CONSUMERS];
        for _ in 0..CONSUMERS {
            match self.reports.recv_timeout(STALL) {
                Ok([DONE, index, count, sum]) if (index as usize) < CONSUMERS => {
                    reports[index as usize] = [count, sum];
                }
                other => panic!("waiting for a consumer's report: {other:?}"),
            }
        }
        let elapsed = start.elapsed();
        self.shares.check(iters, &reports);
        elapsed
    }
}

impl Drop for ThreadMpmc {
    fn drop(&mut self) {
        self.commands.clear(); // every thread's command loop ends
        join_all(&mut self.threads);
    }
}

// ---------------------------------------------------------------------------
// The peer process.

pub fn run_peer(role: &str) -> Res<()> {
    let args = BENCH.peer_args()?;
    let arg = |i: usize| args.get(i);
    let gone = "the bench stopped receiving";
    match role {
        "spsc-source" => {
            let commands = spsc::Receiver::<u64>::open(arg(0)?)?;
            let data = spsc::Sender::<u64>::open_with(arg(1)?, &Wait::parse(arg(3)?)?.options())?;
            let index = arg(2)?.parse()?;
            stream(index, &commands, |value| data.send(value).is_ok()).ok_or(gone)?;
        }
        "mpsc-source" => {
            let commands = spsc::Receiver::<u64>::open(arg(0)?)?;
            let data = mpsc::Sender::<u64>::open_with(arg(1)?, &Wait::parse(arg(3)?)?.options())?;
            let index = arg(2)?.parse()?;
            stream(index, &commands, |value| data.send(value).is_ok()).ok_or(gone)?;
        }
        "mpmc-producer" => {
            let commands = spsc::Receiver::<u64>::open(arg(0)?)?;
            let data = mpmc::Sender::<u64>::open_with(arg(1)?, &Wait::parse(arg(4)?)?.options())?;
            let reports = mpsc::Sender::<Report>::open(arg(2)?)?;
            let index: usize = arg(3)?.parse()?;
            reports
                .send([HELLO, index as u64, 0, 0])
                .map_err(|_| gone)?;
            for quota in &commands {
                for seq in 0..quota {
                    data.send(tag(index, seq)).map_err(|_| gone)?;
                }
                data.send(tag(index, MARK)).map_err(|_| gone)?;
            }
        }
        "mpmc-consumer" => {
            let commands = spsc::Receiver::<u64>::open(arg(0)?)?;
            let data = mpmc::Receiver::<u64>::open_with(arg(1)?, &Wait::parse(arg(4)?)?.options())?;
            let reports = mpsc::Sender::<Report>::open(arg(2)?)?;
            let index: u64 = arg(3)?.parse()?;
            reports.send([HELLO, index, 0, 0]).map_err(|_| gone)?;
            for _round in &commands {
                let Some((count, sum)) = consume_round(|| data.recv().ok())? else {
                    return Err("the producers left before the round".into());
                };
                reports.send([DONE, index, count, sum]).map_err(|_| gone)?;
            }
        }
        other => return Err(format!("unknown role {other:?}").into()),
    }
    Ok(())
}

/// A sender's life in `mpsc/8B`: says it is ready (a [`MARK`]), then for
/// each command sends that many messages, numbered from 0. `None` if the
/// bench stopped receiving.
fn stream(index: usize, commands: &spsc::Receiver<u64>, send: impl Fn(u64) -> bool) -> Option<()> {
    send(tag(index, MARK)).then_some(())?;
    for quota in commands {
        for seq in 0..quota {
            send(tag(index, seq)).then_some(())?;
        }
    }
    Some(())
}
