//! `shmchan::broadcast`: one sender process to 1, 2 and 4 receiver
//! processes, against spsc to one, in the same run.
//!
//! ```text
//! cargo bench --bench broadcast                 # about a minute
//! cargo bench --bench broadcast -- round_trip   # one group
//! cargo test --benches                          # each benchmark once, as a test
//! ```
//!
//! The benchmark binary re-runs itself as the receiver processes, the role
//! chosen by the `SHMCHAN_BROADCAST_BENCH_PEER` environment variable, which
//! `main` checks before criterion sees the command line. Messages are
//! `u64` sequence numbers, one `send` and one `recv` per message (no
//! batches), default options (spinning before sleeping), Block mode.
//!
//! Groups, reported per message:
//!
//! - `broadcast/8B`: one-way throughput. The bench sends `iters` messages,
//!   then an end-of-round mark; each receiver checks that every message is
//!   the next in sequence and, at the mark, reports its count on an mpsc
//!   channel. The clock stops when every receiver has reported: every
//!   receiver has read every message by then. `spsc` is the same over an
//!   spsc channel to one receiver; `broadcast_N` over a broadcast channel
//!   to N.
//! - `broadcast/round_trip`: the bench sends a message and waits until
//!   every receiver has echoed it back (on one mpsc channel, a shard per
//!   receiver, for spsc and broadcast alike), then sends the next.
//!
//! DESIGN §7 gives iceoryx2 0.10's publish-subscribe figures on this host
//! for orientation (≈740 ns round trip, ≈3.9 M msg/s); it is not built
//! here.
//!
//! Placement: with two or more CPUs, the bench is pinned to the first and
//! the receivers share the others round robin (on a 2-CPU machine, all of
//! them share the second, so `broadcast_2` and `broadcast_4` measure
//! receivers taking turns on one CPU). Set `SHMCHAN_BENCH_NO_PIN` to pin
//! nothing. Compare the benchmarks of one run, and repeat runs before
//! believing a ratio.

// Each bench uses its own share of the shared workloads.
#[allow(dead_code)]
mod common;

use common::{with_peer, Bench, Peer, Res, Run};
use criterion::{Criterion, Throughput};
use shmchan::broadcast::RecvError;
use shmchan::{broadcast, mpsc, spsc, Options};
use std::process::Stdio;
use std::time::{Duration, Instant};

const BENCH: Bench = Bench {
    role_var: "SHMCHAN_BROADCAST_BENCH_PEER",
    args_var: "SHMCHAN_BROADCAST_BENCH_ARGS",
    cpu_var: "SHMCHAN_BROADCAST_BENCH_PEER_CPU",
    label: "shmchan broadcast bench",
    peer_label: "broadcast bench peer",
    name_prefix: "shmchan-broadcast-bench",
};

/// Capacity of the data channels, in messages.
const CAPACITY: usize = 1024;
/// Receiver counts of the broadcast benchmarks.
const RECEIVERS: [usize; 3] = [1, 2, 4];
/// The end of a round of `broadcast/8B`.
const MARK: u64 = u64::MAX;
/// How long the bench waits for a report before it gives up.
const STALL: Duration = Duration::from_secs(20);

fn main() {
    if BENCH.peer_main(run_peer) {
        return;
    }
    let cpus = BENCH.pin_bench();
    if let Some(list) = &cpus {
        eprintln!(
            "{}: pinned, bench on CPU {}, receivers on CPUs {:?}",
            BENCH.label,
            list[0],
            &list[1..]
        );
    }
    let mut c = Criterion::default()
        .sample_size(15)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    let mut group = c.benchmark_group("broadcast/8B");
    group.throughput(Throughput::Elements(1));
    with_peer(&mut group, "spsc", || Fanout::spawn(Flavor::Spsc, 1, &cpus));
    for receivers in RECEIVERS {
        with_peer(&mut group, &format!("broadcast_{receivers}"), || {
            Fanout::spawn(Flavor::Broadcast, receivers, &cpus)
        });
    }
    group.finish();

    let mut group = c.benchmark_group("broadcast/round_trip");
    with_peer(&mut group, "spsc", || {
        Fanout::spawn(Flavor::SpscEcho, 1, &cpus)
    });
    for receivers in RECEIVERS {
        with_peer(&mut group, &format!("broadcast_{receivers}"), || {
            Fanout::spawn(Flavor::BroadcastEcho, receivers, &cpus)
        });
    }
    group.finish();
    c.final_summary();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Spsc,
    Broadcast,
    SpscEcho,
    BroadcastEcho,
}

impl Flavor {
    fn arg(self) -> &'static str {
        match self {
            Self::Spsc => "spsc",
            Self::Broadcast => "broadcast",
            Self::SpscEcho => "spsc-echo",
            Self::BroadcastEcho => "broadcast-echo",
        }
    }

    fn echoes(self) -> bool {
        matches!(self, Self::SpscEcho | Self::BroadcastEcho)
    }
}

/// The bench's sending end, of either flavor.
enum Tx {
    Spsc(spsc::Sender<u64>),
    Broadcast(broadcast::Sender<u64>),
}

impl Tx {
    #[inline(always)]
    fn send(&self, value: u64) {
        let sent = match self {
            Self::Spsc(tx) => tx.send(value),
            Self::Broadcast(tx) => tx.send(value),
        };
        sent.expect("a receiver left");
    }
}

/// The bench's side: the data channel, the reports (or echoes) coming back,
/// and the receiver processes.
struct Fanout {
    flavor: Flavor,
    /// Taken when the bench is done, which ends the receivers.
    tx: Option<Tx>,
    back: mpsc::Receiver<u64>,
    peers: Vec<Peer>,
    /// The next sequence number: numbering goes on across samples.
    next: u64,
}

impl Fanout {
    fn spawn(flavor: Flavor, receivers: usize, cpus: &Option<Vec<usize>>) -> Self {
        let name = BENCH.fresh_name("data");
        let back_name = BENCH.fresh_name("back");
        let back = mpsc::Receiver::<u64>::create_with(
            &back_name,
            &Options::new().capacity(64).shards(RECEIVERS[2]),
        )
        .expect("create the report channel");
        let options = Options::new().capacity(CAPACITY).receivers(RECEIVERS[2]);
        let tx = match flavor {
            Flavor::Spsc | Flavor::SpscEcho => {
                Tx::Spsc(spsc::Sender::create_with(&name, &options).expect("create spsc"))
            }
            Flavor::Broadcast | Flavor::BroadcastEcho => Tx::Broadcast(
                broadcast::Sender::create_with(&name, &options).expect("create broadcast"),
            ),
        };
        let peers = (0..receivers)
            .map(|i| {
                let cpu = cpus.as_ref().map(|all| all[1 + i % (all.len() - 1)]);
                BENCH.spawn(
                    "receiver",
                    &[flavor.arg(), &name, &back_name],
                    cpu,
                    Stdio::null(),
                    Stdio::null(),
                )
            })
            .collect();
        let mut fanout = Self {
            flavor,
            tx: Some(tx),
            back,
            peers,
            next: 0,
        };
        // Every receiver says hello once attached, so that all of them
        // start at message 0.
        for _ in 0..receivers {
            fanout.report();
        }
        fanout
    }

    /// The next report or echo, failing (not hanging) if none comes.
    fn report(&mut self) -> u64 {
        let give_up = Instant::now() + STALL;
        loop {
            match self.back.recv_timeout(Duration::from_millis(100)) {
                Ok(value) => return value,
                Err(_) if Instant::now() < give_up => {
                    for peer in &mut self.peers {
                        peer.check();
                    }
                }
                Err(err) => panic!("no report from the receivers: {err}"),
            }
        }
    }
}

impl Run for Fanout {
    fn run(&mut self, iters: u64) -> Duration {
        let tx = self.tx.as_ref().expect("the sender");
        let start = Instant::now();
        if self.flavor.echoes() {
            for _ in 0..iters {
                let value = self.next;
                tx.send(value);
                for _ in 0..self.peers.len() {
                    let echo = self.back.recv().expect("an echo");
                    assert_eq!(echo, value, "an echo of another message");
                }
                self.next += 1;
            }
        } else {
            for value in self.next..self.next + iters {
                tx.send(value);
            }
            tx.send(MARK);
            for _ in 0..self.peers.len() {
                assert_eq!(self.report(), iters, "a receiver's count");
            }
            self.next += iters;
        }
        start.elapsed()
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        // Dropping the sender ends the receivers.
        self.tx = None;
        for peer in &mut self.peers {
            peer.finish();
        }
    }
}

// ---------------------------------------------------------------------------
// The receiver processes.

fn run_peer(role: &str) -> Res<()> {
    let args = BENCH.peer_args()?;
    if role != "receiver" {
        return Err(format!("unknown role {role}").into());
    }
    let (flavor, name, back_name) = (args.get(0)?, args.get(1)?, args.get(2)?);
    let back = mpsc::Sender::<u64>::open(back_name)?;
    match flavor {
        "spsc" | "spsc-echo" => {
            let rx = spsc::Receiver::<u64>::open(name)?;
            back.send(0)?;
            receive(flavor.ends_with("echo"), || rx.recv().ok(), &back)
        }
        "broadcast" | "broadcast-echo" => {
            let rx = broadcast::Receiver::<u64>::open(name)?;
            back.send(0)?;
            let recv = || match rx.recv() {
                Ok(value) => Some(value),
                Err(RecvError::Disconnected) => None,
                Err(RecvError::Lagged(n)) => panic!("lapped by {n} in block mode"),
            };
            receive(flavor.ends_with("echo"), recv, &back)
        }
        other => Err(format!("unknown flavor {other}").into()),
    }
}

/// Receives until disconnection: echoes every message, or checks that each
/// is the next in sequence and reports the count at each mark.
#[inline(always)]
fn receive(echo: bool, mut recv: impl FnMut() -> Option<u64>, back: &mpsc::Sender<u64>) -> Res<()> {
    let (mut next, mut count) = (0u64, 0u64);
    while let Some(value) = recv() {
        if echo {
            back.send(value)?;
        } else if value == MARK {
            back.send(count)?;
            count = 0;
        } else {
            if value != next {
                return Err(format!("message {value}, expected {next}").into());
            }
            next += 1;
            count += 1;
        }
    }
    Ok(())
}
