//! Round trips: the bench sends a value, its peer sends it back, and the
//! bench waits for it before it sends the next. Each transport is a
//! [`Client`]; [`Echo`] drives one, checks every answer, and implements
//! [`Run`] (the time of `iters` round trips) and [`Echo::latencies`] (each
//! round trip timed on its own, into a histogram).
//!
//! - Floors, over a bare shared mapping: [`RawAtomic`], two words each side
//!   spins on (the least a round trip can cost), [`RawRings`], two minimal
//!   Lamport rings (what a round trip through rings costs, a message and
//!   its index being two cache lines), and [`RawFutex`], two
//!   words each side sleeps on with `FUTEX_WAIT` and the other wakes with
//!   `FUTEX_WAKE` (the least a sleeping round trip can cost).
//! - What users have today: [`Stream`] over two pipes or one Unix socket,
//!   and [`InProcess`] over crossbeam-channel or `std::sync::mpsc` to a
//!   thread of this process.
//! - shmchan: [`Typed`] over two spsc, mpsc or mpmc channels of `u64`, and
//!   [`Bytes`] over two `bytes` channels with messages of a given size,
//!   each spinning ([`Wait::Spin`], the default options) or asleep
//!   ([`Wait::Sleep`], no spinning: every `recv` sleeps on the futex).
//!
//! Peers are processes (the bench binary run again), pinned to the CPU the
//! caller gives, or, for [`InProcess`], a thread pinned the same way.

use super::raw::{futex_wait_change, futex_wake, remember_bench, spin, RawShm, RAW_CAPACITY};
use super::{
    read_or_eof, read_u64, stdin_file, stdout_file, verify, Bench, InProcessFlavor, Peer, Res, Run,
    Wait,
};
use hdrhistogram::Histogram;
use shmchan::{Options, RecvTimeoutError};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{ChildStdin, ChildStdout, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The peer's environment, and how the bench names itself and its
/// channels.
pub const BENCH: Bench = Bench {
    role_var: "SHMCHAN_ECHO_BENCH_PEER",
    args_var: "SHMCHAN_ECHO_BENCH_ARGS",
    cpu_var: "SHMCHAN_ECHO_BENCH_PEER_CPU",
    label: "shmchan round-trip bench",
    peer_label: "round-trip bench peer",
    name_prefix: "shmchan-echo-bench",
};

/// Capacity of the typed ping and pong channels, in messages, and of the
/// in-process ones: a round trip never has more than one in flight.
const CAPACITY: usize = 64;
/// Bytes in each ring of a [`Bytes`] round trip: room for a 64 KiB message.
const RING_BYTES: usize = 256 * 1024;
/// The value that tells a raw peer to exit.
const EXIT: u64 = u64::MAX;

/// The bench's side of one transport.
pub trait Client {
    /// Sends `value` and returns the peer's answer, which must be
    /// `value + 1`; panics, naming the peer, if the peer is gone.
    fn round_trip(&mut self, value: u64) -> u64;
}

/// A round-trip workload over the transport `C`.
pub struct Echo<C> {
    client: C,
    next: u64,
}

impl<C: Client> Echo<C> {
    /// The workload over `client`, whose first round trip (of value 0)
    /// is done.
    fn new(client: C) -> Self {
        Self { client, next: 1 }
    }

    #[inline(always)]
    fn once(&mut self) {
        let value = self.next;
        verify(self.client.round_trip(value), value + 1);
        self.next += 1;
    }

    /// Times `n` round trips, each on its own, into `histogram` (in
    /// nanoseconds). One clock read per round trip: each interval runs from
    /// the end of the previous round trip to the end of this one.
    pub fn latencies(&mut self, n: u64, histogram: &mut Histogram<u64>) {
        let mut last = Instant::now();
        for _ in 0..n {
            self.once();
            let now = Instant::now();
            let nanos = (now - last).as_nanos().min(u128::from(histogram.high())) as u64;
            histogram.record(nanos).expect("a value within the bounds");
            last = now;
        }
    }
}

/// A histogram of round-trip times in nanoseconds, 1 ns to 100 s, with 3
/// significant digits (a value is off by at most 0.1%).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

impl<C: Client> Run for Echo<C> {
    fn run(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.once();
        }
        start.elapsed()
    }
}

/// The other side of a round trip: a peer process, or a thread of this
/// one. Declared last in each client, so it is dropped after the client's
/// channels: the peer sees them close, exits, and is waited for.
enum Other {
    Process(Peer),
    Thread(Option<JoinHandle<()>>),
}

impl Other {
    /// Panics: the other side has gone.
    #[cold]
    fn left(&mut self) -> ! {
        match self {
            Other::Process(peer) => peer.left(),
            Other::Thread(_) => panic!("the echo thread is gone"),
        }
    }
}

impl Drop for Other {
    fn drop(&mut self) {
        match self {
            Other::Process(peer) => peer.finish(),
            Other::Thread(thread) => {
                let failed = thread
                    .take()
                    .map(JoinHandle::join)
                    .is_some_and(|r| r.is_err());
                if failed && !std::thread::panicking() {
                    panic!("the echo thread failed");
                }
            }
        }
    }
}

fn spawn_peer(role: &'static str, args: &[&str], cpu: Option<usize>) -> Peer {
    BENCH.spawn(role, args, cpu, Stdio::null(), Stdio::null())
}

// ---------------------------------------------------------------------------
// The floors.

/// Two 64-bit words in a bare mapping; each side spins on one.
pub struct RawAtomic {
    shm: RawShm,
    peer: Peer,
}

impl Echo<RawAtomic> {
    pub fn raw_atomic(cpu: Option<usize>) -> Self {
        let name = BENCH.fresh_name("raw");
        let shm = RawShm::create(&name).expect("create the raw mapping");
        let peer = spawn_peer("raw-atomic", &[&name], cpu);
        let mut client = RawAtomic { shm, peer };
        verify(client.round_trip(0), 1);
        RawShm::unlink(&name); // both ends have it mapped
        Echo::new(client)
    }
}

impl Client for RawAtomic {
    #[inline(always)]
    fn round_trip(&mut self, value: u64) -> u64 {
        let (ping, pong) = self.shm.ping_pong();
        // Release: pairs with the peer's Acquire load of `ping`; the
        // Acquire below with its Release store of `pong`. (One word each
        // way carries everything: the orderings are what a real protocol
        // pays, so the floor is honest.)
        ping.store(value, Ordering::Release);
        let mut spins = 0;
        loop {
            let back = pong.load(Ordering::Acquire);
            if back == value + 1 {
                return back;
            }
            self.peer.wait_turn(&mut spins);
        }
    }
}

impl Drop for RawAtomic {
    fn drop(&mut self) {
        // Release: as in `round_trip`; the peer exits.
        self.shm.ping_pong().0.store(EXIT, Ordering::Release);
    }
}

/// Two minimal Lamport rings of `u64` in bare mappings, one each way, with
/// cached indices, as the raw ring of the one-way streams: what a round
/// trip costs through rings, where a message and the index that publishes
/// it are on two cache lines.
pub struct RawRings {
    ping: RawShm,
    pong: RawShm,
    /// The bench's end of each: it produces into `ping`, consumes `pong`.
    ping_end: RawEnd,
    pong_end: RawEnd,
    peer: Peer,
}

/// One end of a raw ring: the producer's or the consumer's positions.
#[derive(Default)]
struct RawEnd {
    /// The next position to write (producer) or read (consumer).
    next: u64,
    /// The other end's index as last read.
    cached: u64,
}

impl RawEnd {
    /// Writes `value` into `shm`'s ring and publishes it, waiting (a ring
    /// holds `RAW_CAPACITY`) while the ring is full; `wait` fails if the
    /// other side is gone.
    #[inline(always)]
    fn push(
        &mut self,
        shm: &RawShm,
        value: u64,
        wait: &mut impl FnMut(&mut u32) -> Res<()>,
    ) -> Res<()> {
        let (head, tail, slots) = shm.ring();
        let mut spins = 0;
        while self.next - self.cached == RAW_CAPACITY {
            // Acquire: pairs with the consumer's Release store of `head`.
            self.cached = head.load(Ordering::Acquire);
            wait(&mut spins)?;
        }
        // Relaxed: ordered by the Release store of `tail` after it.
        slots[(self.next % RAW_CAPACITY) as usize].store(value, Ordering::Relaxed);
        self.next += 1;
        // Release: pairs with the consumer's Acquire load of `tail`.
        tail.store(self.next, Ordering::Release);
        Ok(())
    }

    /// Takes the next value from `shm`'s ring, waiting for one.
    #[inline(always)]
    fn pop(&mut self, shm: &RawShm, wait: &mut impl FnMut(&mut u32) -> Res<()>) -> Res<u64> {
        let (head, tail, slots) = shm.ring();
        let mut spins = 0;
        while self.next == self.cached {
            // Acquire: pairs with the producer's Release store of `tail`.
            self.cached = tail.load(Ordering::Acquire);
            if self.next == self.cached {
                wait(&mut spins)?;
            }
        }
        // Relaxed: ordered by the Acquire load of `tail` before it.
        let value = slots[(self.next % RAW_CAPACITY) as usize].load(Ordering::Relaxed);
        self.next += 1;
        // Release: pairs with the producer's Acquire load of `head`.
        head.store(self.next, Ordering::Release);
        Ok(value)
    }
}

impl Echo<RawRings> {
    pub fn raw_rings(cpu: Option<usize>) -> Self {
        let (ping_name, pong_name) = (BENCH.fresh_name("ping"), BENCH.fresh_name("pong"));
        let ping = RawShm::create(&ping_name).expect("create the raw mapping");
        let pong = RawShm::create(&pong_name).expect("create the raw mapping");
        let peer = spawn_peer("raw-rings", &[&ping_name, &pong_name], cpu);
        let mut client = RawRings {
            ping,
            pong,
            ping_end: RawEnd::default(),
            pong_end: RawEnd::default(),
            peer,
        };
        verify(client.round_trip(0), 1);
        RawShm::unlink(&ping_name); // both ends have them mapped
        RawShm::unlink(&pong_name);
        Echo::new(client)
    }
}

impl Client for RawRings {
    #[inline(always)]
    fn round_trip(&mut self, value: u64) -> u64 {
        // The peer's death is noticed, and panics, in `wait_turn`.
        let peer = &mut self.peer;
        let mut wait = |spins: &mut u32| {
            peer.wait_turn(spins);
            Ok(())
        };
        self.ping_end
            .push(&self.ping, value, &mut wait)
            .expect("wait_turn fails by panicking");
        self.pong_end
            .pop(&self.pong, &mut wait)
            .expect("wait_turn fails by panicking")
    }
}

impl Drop for RawRings {
    fn drop(&mut self) {
        // The peer exits when it reads `EXIT`. The ring has room (one value
        // is in flight at a time, and it came back); were it full, the
        // push would give up rather than wait in a drop.
        let _ = self
            .ping_end
            .push(&self.ping, EXIT, &mut |_| Err("full".into()));
    }
}

/// Two 32-bit words in a bare mapping; each side sleeps on one with
/// `FUTEX_WAIT` until the other stores to it and calls `FUTEX_WAKE`. No
/// spinning and no count of sleepers: each way costs one store, one wake
/// and one wait, which is the least a wake-up across processes can cost.
pub struct RawFutex {
    shm: RawShm,
    peer: Peer,
}

impl Echo<RawFutex> {
    pub fn raw_futex(cpu: Option<usize>) -> Self {
        let name = BENCH.fresh_name("futex");
        let shm = RawShm::create(&name).expect("create the raw mapping");
        let peer = spawn_peer("raw-futex", &[&name], cpu);
        let mut client = RawFutex { shm, peer };
        verify(client.round_trip(0), 1);
        RawShm::unlink(&name);
        Echo::new(client)
    }
}

impl Client for RawFutex {
    #[inline(always)]
    fn round_trip(&mut self, value: u64) -> u64 {
        use rustix::thread::futex;
        let (ping, pong) = self.shm.futex_pair();
        // The words carry the low 32 bits; `EXIT` is never reached.
        let (sent, want) = (value as u32, (value as u32).wrapping_add(1));
        // Release: pairs with the peer's Acquire load in
        // `futex_wait_change`.
        ping.store(sent, Ordering::Release);
        futex_wake(ping);
        let tick = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        loop {
            // Acquire: pairs with the peer's Release store of `pong`.
            let back = pong.load(Ordering::Acquire);
            if back == want {
                return value + 1;
            }
            // Sleeps unless `pong` moved since the load; a timeout checks
            // the peer.
            if futex::wait(pong, futex::Flags::empty(), back, Some(&tick))
                .is_err_and(|e| e == rustix::io::Errno::TIMEDOUT)
            {
                self.peer.check();
            }
        }
    }
}

impl Drop for RawFutex {
    fn drop(&mut self) {
        let ping = self.shm.futex_pair().0;
        // Release: as in `round_trip`; the peer exits.
        ping.store(EXIT as u32, Ordering::Release);
        futex_wake(ping);
    }
}

// ---------------------------------------------------------------------------
// The alternatives.

/// Two pipes (the peer's standard input and output), or one Unix stream
/// socket (both of them): one `write(2)` and one `read(2)` each way.
pub struct Stream<W, R> {
    ping: W,
    pong: R,
    other: Other,
}

impl Echo<Stream<ChildStdin, ChildStdout>> {
    pub fn pipe(cpu: Option<usize>) -> Self {
        let mut peer = BENCH.spawn("stream", &[""; 0], cpu, Stdio::piped(), Stdio::piped());
        let ping = peer.child.stdin.take().expect("pipe to the peer");
        let pong = peer.child.stdout.take().expect("pipe from the peer");
        Self::stream(ping, pong, peer)
    }
}

impl Echo<Stream<UnixStream, UnixStream>> {
    pub fn socket(cpu: Option<usize>) -> Self {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let theirs_out = theirs.try_clone().expect("dup the socket");
        let peer = BENCH.spawn(
            "stream",
            &[""; 0],
            cpu,
            Stdio::from(OwnedFd::from(theirs)),
            Stdio::from(OwnedFd::from(theirs_out)),
        );
        let pong = ours.try_clone().expect("dup the socket");
        Self::stream(ours, pong, peer)
    }
}

impl<W: Write, R: Read> Echo<Stream<W, R>> {
    fn stream(ping: W, pong: R, peer: Peer) -> Self {
        let mut client = Stream {
            ping,
            pong,
            other: Other::Process(peer),
        };
        verify(client.round_trip(0), 1);
        Echo::new(client)
    }
}

impl<W: Write, R: Read> Client for Stream<W, R> {
    #[inline(always)]
    fn round_trip(&mut self, value: u64) -> u64 {
        match self
            .ping
            .write_all(&value.to_ne_bytes())
            .and_then(|()| read_u64(&mut self.pong))
        {
            Ok(back) => back,
            Err(_) => self.other.left(),
        }
    }
}

/// Two in-process channels to an echo thread (the thread keeps blocking as
/// the channel does: a short spin, then parking).
pub struct InProcess<F: InProcessFlavor> {
    ping: F::Tx,
    pong: F::Rx,
    other: Other,
}

/// Round trips over two channels of flavor `F` to a thread.
pub fn in_process<F: InProcessFlavor>(cpu: Option<usize>) -> Echo<InProcess<F>> {
    let (ping, ping_rx) = F::bounded(CAPACITY);
    let (pong_tx, pong) = F::bounded(CAPACITY);
    let thread = std::thread::Builder::new()
        .name("echo".into())
        .spawn(move || {
            super::pin_thread(cpu).expect("pin the echo thread");
            while let Some(value) = F::recv(&ping_rx) {
                if !F::send(&pong_tx, value + 1) {
                    return;
                }
            }
        })
        .expect("start the echo thread");
    let mut client = InProcess::<F> {
        ping,
        pong,
        other: Other::Thread(Some(thread)),
    };
    verify(client.round_trip(0), 1);
    Echo::new(client)
}

impl<F: InProcessFlavor> Client for InProcess<F> {
    #[inline(always)]
    fn round_trip(&mut self, value: u64) -> u64 {
        if !F::send(&self.ping, value) {
            self.other.left();
        }
        F::recv(&self.pong).unwrap_or_else(|| self.other.left())
    }
}

// ---------------------------------------------------------------------------
// shmchan.

/// A typed shmchan flavor, for a channel of `u64`.
pub trait Flavor {
    type Tx;
    type Rx;
    /// The peer's role.
    const ROLE: &'static str;
    fn create_tx(name: &str, options: &Options) -> Result<Self::Tx, shmchan::Error>;
    fn create_rx(name: &str, options: &Options) -> Result<Self::Rx, shmchan::Error>;
    fn open_tx(name: &str, options: &Options) -> Result<Self::Tx, shmchan::Error>;
    fn open_rx(name: &str, options: &Options) -> Result<Self::Rx, shmchan::Error>;
    fn send(tx: &Self::Tx, value: u64) -> bool;
    fn recv(rx: &Self::Rx) -> Option<u64>;
    fn recv_timeout(rx: &Self::Rx, timeout: Duration) -> Result<u64, RecvTimeoutError>;
}

macro_rules! flavor {
    ($(#[$doc:meta])* $flavor:ident, $module:ident) => {
        $(#[$doc])*
        pub struct $flavor;

        impl Flavor for $flavor {
            type Tx = shmchan::$module::Sender<u64>;
            type Rx = shmchan::$module::Receiver<u64>;
            const ROLE: &'static str = stringify!($module);
            fn create_tx(name: &str, options: &Options) -> Result<Self::Tx, shmchan::Error> {
                Self::Tx::create_with(name, options)
            }
            fn create_rx(name: &str, options: &Options) -> Result<Self::Rx, shmchan::Error> {
                Self::Rx::create_with(name, options)
            }
            fn open_tx(name: &str, options: &Options) -> Result<Self::Tx, shmchan::Error> {
                Self::Tx::open_with(name, options)
            }
            fn open_rx(name: &str, options: &Options) -> Result<Self::Rx, shmchan::Error> {
                Self::Rx::open_with(name, options)
            }
            #[inline(always)]
            fn send(tx: &Self::Tx, value: u64) -> bool {
                tx.send(value).is_ok()
            }
            #[inline(always)]
            fn recv(rx: &Self::Rx) -> Option<u64> {
                rx.recv().ok()
            }
            fn recv_timeout(rx: &Self::Rx, timeout: Duration) -> Result<u64, RecvTimeoutError> {
                rx.recv_timeout(timeout)
            }
        }
    };
}

flavor!(
    /// `shmchan::spsc`.
    Spsc,
    spsc
);
flavor!(
    /// `shmchan::mpsc`, one sender each way.
    Mpsc,
    mpsc
);
flavor!(
    /// `shmchan::mpmc`, one sender and one receiver each way.
    Mpmc,
    mpmc
);

/// `shmchan::broadcast`, one receiver each way: its ring hands each message
/// over in its slot (a sequence word beside it), where spsc's also moves
/// the `tail` line.
pub struct Broadcast;

impl Flavor for Broadcast {
    type Tx = shmchan::broadcast::Sender<u64>;
    type Rx = shmchan::broadcast::Receiver<u64>;
    const ROLE: &'static str = "broadcast";
    fn create_tx(name: &str, options: &Options) -> Result<Self::Tx, shmchan::Error> {
        Self::Tx::create_with(name, options)
    }
    fn create_rx(name: &str, options: &Options) -> Result<Self::Rx, shmchan::Error> {
        Self::Rx::create_with(name, options)
    }
    fn open_tx(name: &str, options: &Options) -> Result<Self::Tx, shmchan::Error> {
        Self::Tx::open_with(name, options)
    }
    fn open_rx(name: &str, options: &Options) -> Result<Self::Rx, shmchan::Error> {
        Self::Rx::open_with(name, options)
    }
    #[inline(always)]
    fn send(tx: &Self::Tx, value: u64) -> bool {
        tx.send(value).is_ok()
    }
    #[inline(always)]
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv().ok()
    }
    fn recv_timeout(rx: &Self::Rx, timeout: Duration) -> Result<u64, RecvTimeoutError> {
        use shmchan::broadcast::RecvTimeoutError as E;
        rx.recv_timeout(timeout).map_err(|err| match err {
            E::Timeout => RecvTimeoutError::Timeout,
            // Block mode: never lapped.
            E::Disconnected | E::Lagged(_) => RecvTimeoutError::Disconnected,
        })
    }
}

/// Two typed channels of `u64`, ping and pong.
pub struct Typed<F: Flavor> {
    ping: F::Tx,
    pong: F::Rx,
    other: Other,
}

/// Round trips over two channels of flavor `F`.
pub fn typed<F: Flavor>(wait: Wait, cpu: Option<usize>) -> Echo<Typed<F>> {
    let (ping_name, pong_name) = (BENCH.fresh_name("ping"), BENCH.fresh_name("pong"));
    let options = wait.options().capacity(CAPACITY);
    let ping = F::create_tx(&ping_name, &options).expect("create the ping channel");
    let pong = F::create_rx(&pong_name, &options).expect("create the pong channel");
    let mut peer = spawn_peer(F::ROLE, &[&ping_name, &pong_name, wait.arg()], cpu);
    assert!(F::send(&ping, 0), "the first ping");
    let first = peer.recv_first(|timeout| F::recv_timeout(&pong, timeout));
    verify(first, 1);
    Echo::new(Typed {
        ping,
        pong,
        other: Other::Process(peer),
    })
}

impl<F: Flavor> Client for Typed<F> {
    #[inline(always)]
    fn round_trip(&mut self, value: u64) -> u64 {
        if !F::send(&self.ping, value) {
            self.other.left();
        }
        F::recv(&self.pong).unwrap_or_else(|| self.other.left())
    }
}

/// Two `bytes` channels; the bench stamps each message with its value (see
/// `bytes::stamp`), the peer sends back what it received, and the bench
/// checks every byte the stamp covers and the length.
pub struct Bytes {
    ping: shmchan::bytes::Sender,
    pong: shmchan::bytes::Receiver,
    message: Vec<u8>,
    other: Other,
}

impl Echo<Bytes> {
    pub fn bytes(size: usize, wait: Wait, cpu: Option<usize>) -> Self {
        let (ping_name, pong_name) = (BENCH.fresh_name("ping"), BENCH.fresh_name("pong"));
        let options = wait.options().capacity(RING_BYTES);
        let ping = shmchan::bytes::Sender::create_with(&ping_name, &options)
            .expect("create the ping channel");
        let mut pong = shmchan::bytes::Receiver::create_with(&pong_name, &options)
            .expect("create the pong channel");
        let mut peer = spawn_peer("bytes", &[&ping_name, &pong_name, wait.arg()], cpu);
        let mut message = super::bytes::payload(size);
        super::bytes::stamp(&mut message, 0);
        ping.send(&message).expect("the first ping");
        peer.recv_first(|timeout| {
            pong.recv_timeout(timeout).map(|echoed| {
                super::bytes::verify(&echoed, 0, size);
            })
        });
        Echo::new(Bytes {
            ping,
            pong,
            message,
            other: Other::Process(peer),
        })
    }
}

impl Client for Bytes {
    #[inline(always)]
    fn round_trip(&mut self, value: u64) -> u64 {
        super::bytes::stamp(&mut self.message, value);
        if self.ping.send(&self.message).is_err() {
            self.other.left();
        }
        match self.pong.recv() {
            Ok(echoed) => super::bytes::verify(&echoed, value, self.message.len()),
            Err(_) => self.other.left(),
        }
        value + 1
    }
}

// ---------------------------------------------------------------------------
// The peer process.

pub fn run_peer(role: &str) -> Res<()> {
    remember_bench();
    let args = BENCH.peer_args()?;
    let arg = |i: usize| args.get(i);
    match role {
        "raw-atomic" => {
            let shm = RawShm::open(arg(0)?)?;
            let (ping, pong) = shm.ping_pong();
            let mut last = None;
            loop {
                let mut spins = 0u32;
                // Acquire here and Release below: the bench's `ping` and
                // `pong` pairs (see `RawAtomic::round_trip`).
                let mut value = ping.load(Ordering::Acquire);
                while Some(value) == last {
                    spins = spin(spins)?;
                    value = ping.load(Ordering::Acquire);
                }
                if value == EXIT {
                    return Ok(());
                }
                pong.store(value + 1, Ordering::Release);
                last = Some(value);
            }
        }
        "raw-rings" => {
            let (ping, pong) = (RawShm::open(arg(0)?)?, RawShm::open(arg(1)?)?);
            let (mut from, mut to) = (RawEnd::default(), RawEnd::default());
            // Fails once the bench is gone.
            let mut wait = |spins: &mut u32| {
                *spins = spin(*spins)?;
                Ok(())
            };
            loop {
                let value = from.pop(&ping, &mut wait)?;
                if value == EXIT {
                    return Ok(());
                }
                to.push(&pong, value + 1, &mut wait)?;
            }
        }
        "raw-futex" => {
            let shm = RawShm::open(arg(0)?)?;
            let (ping, pong): (&AtomicU32, &AtomicU32) = shm.futex_pair();
            // The bench's first ping is 0, which is already there.
            let mut value = 0u32;
            loop {
                // Release: pairs with the bench's Acquire load of `pong`.
                pong.store(value.wrapping_add(1), Ordering::Release);
                futex_wake(pong);
                value = futex_wait_change(ping, value)?;
                if value == EXIT as u32 {
                    return Ok(());
                }
            }
        }
        "stream" => {
            let (mut ping, mut pong) = (stdin_file()?, stdout_file()?);
            while let Some(value) = read_or_eof(&mut ping)? {
                pong.write_all(&(value + 1).to_ne_bytes())?;
            }
            Ok(())
        }
        "spsc" => echo_typed::<Spsc>(arg(0)?, arg(1)?, Wait::parse(arg(2)?)?),
        "mpsc" => echo_typed::<Mpsc>(arg(0)?, arg(1)?, Wait::parse(arg(2)?)?),
        "mpmc" => echo_typed::<Mpmc>(arg(0)?, arg(1)?, Wait::parse(arg(2)?)?),
        "broadcast" => echo_typed::<Broadcast>(arg(0)?, arg(1)?, Wait::parse(arg(2)?)?),
        "bytes" => {
            let options = Wait::parse(arg(2)?)?.options();
            let mut ping = shmchan::bytes::Receiver::open_with(arg(0)?, &options)?;
            let pong = shmchan::bytes::Sender::open_with(arg(1)?, &options)?;
            while let Ok(message) = ping.recv() {
                pong.send(&message)?;
            }
            Ok(())
        }
        other => Err(format!("unknown role {other:?}").into()),
    }
}

/// The peer of [`Typed`]: sends back each value plus one until the bench
/// goes.
fn echo_typed<F: Flavor>(ping: &str, pong: &str, wait: Wait) -> Res<()> {
    let options = wait.options();
    let ping = F::open_rx(ping, &options)?;
    let pong = F::open_tx(pong, &options)?;
    while let Some(value) = F::recv(&ping) {
        if !F::send(&pong, value + 1) {
            return Err("the bench stopped receiving".into());
        }
    }
    Ok(())
}
