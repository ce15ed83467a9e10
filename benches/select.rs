//! `Select` against a single blocking `recv`, between two processes.
//!
//! ```text
//! cargo bench --bench select    # about 30 s
//! ```
//!
//! A round trip: the bench sends a `u64` on an spsc channel; the peer (this
//! binary run again) sends it back on reply channel `value % N` of its N
//! spsc reply channels. The bench waits for the reply:
//!
//! - `recv_1`: a blocking `recv` on the one reply channel (the baseline),
//!   and `recv_1_asleep`, the same without spinning (each wait sleeps on
//!   the futex);
//! - `select_N` (N = 1, 8, 64): `Select::ready` over all N reply channels,
//!   then `try_recv` on the one it names.
//!
//! Both sides spin before sleeping (the default options), so at this rate
//! the waits rarely sleep: this measures what looking at N channels costs.
//! `select_64_asleep` makes every wait sleep (no spinning), so each round
//! trip includes one `futex_waitv` over 64 words and the wake that ends it;
//! compare it with `recv_1_asleep`.
//!
//! With two or more CPUs, the bench and its peer are pinned to different
//! CPUs. Every reply is checked.

#[allow(dead_code)]
#[path = "common/cpus.rs"]
mod cpus;

use criterion::Criterion;
use shmchan::{spsc, Options, Select};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const ROLE_VAR: &str = "SHMCHAN_SELECT_BENCH_PEER";
const CPU_VAR: &str = "SHMCHAN_SELECT_BENCH_CPU";

fn names(base: &str, n: usize) -> (String, Vec<String>) {
    (
        format!("{base}-ping"),
        (0..n).map(|k| format!("{base}-reply-{k}")).collect(),
    )
}

/// The echo peer: `base n spin`.
fn peer(args: &str) {
    if let Some(cpu) = std::env::var(CPU_VAR).ok().and_then(|v| v.parse().ok()) {
        cpus::pin_to(&[cpu]).expect("pin the peer");
    }
    let mut args = args.split(' ');
    let base = args.next().expect("a base name");
    let n: usize = args.next().and_then(|n| n.parse().ok()).expect("a count");
    let options = options(args.next() == Some("spin"));
    let (ping, replies) = names(base, n);
    let ping = spsc::Receiver::<u64>::open_with(&ping, &options).expect("the ping channel");
    let replies: Vec<spsc::Sender<u64>> = replies
        .iter()
        .map(|name| spsc::Sender::open_with(name, &options).expect("a reply channel"))
        .collect();
    for value in &ping {
        if replies[value as usize % n].send(value).is_err() {
            return;
        }
    }
}

fn options(spin: bool) -> Options {
    if spin {
        Options::new()
    } else {
        Options::new().spin(Duration::ZERO)
    }
}

/// Both ends of a bench's channels, and the peer that echoes.
struct Echo {
    ping: spsc::Sender<u64>,
    replies: Vec<spsc::Receiver<u64>>,
    peer: Child,
}

impl Echo {
    fn start(n: usize, spin: bool, cpu: Option<usize>) -> Self {
        let base = format!("shmchan-bench-select-{}-{n}-{spin}", std::process::id());
        let (ping, replies) = names(&base, n);
        let options = options(spin).capacity(16);
        let ping = spsc::Sender::create_with(&ping, &options).expect("the ping channel");
        let replies = replies
            .iter()
            .map(|name| spsc::Receiver::create_with(name, &options).expect("a reply channel"))
            .collect();
        let mut command = Command::new(std::env::current_exe().expect("the bench binary"));
        command.env(
            ROLE_VAR,
            format!("{base} {n} {}", if spin { "spin" } else { "sleep" }),
        );
        if let Some(cpu) = cpu {
            command.env(CPU_VAR, cpu.to_string());
        }
        let peer = command.spawn().expect("start the peer");
        Self {
            ping,
            replies,
            peer,
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.peer.kill();
        let _ = self.peer.wait();
    }
}

fn check(got: u64, want: u64) {
    assert_eq!(got, want, "a reply was lost, duplicated or reordered");
}

fn main() {
    if let Ok(args) = std::env::var(ROLE_VAR) {
        peer(&args);
        return;
    }
    let all = cpus::allowed_cpus();
    let cpu = if all.len() >= 2 && std::env::var_os("SHMCHAN_BENCH_NO_PIN").is_none() {
        cpus::pin_to(&all[..1]).expect("pin the bench");
        Some(all[1])
    } else {
        None
    };
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("select/round_trip");

    for (spin, label) in [(true, "recv_1"), (false, "recv_1_asleep")] {
        group.bench_function(label, |b| {
            let echo = Echo::start(1, spin, cpu);
            let mut next = 0u64;
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    echo.ping.send(next).expect("the peer is there");
                    check(echo.replies[0].recv().expect("a reply"), next);
                    next += 1;
                }
                start.elapsed()
            });
        });
    }
    for (n, spin, label) in [
        (1, true, "select_1"),
        (8, true, "select_8"),
        (64, true, "select_64"),
        (64, false, "select_64_asleep"),
    ] {
        group.bench_function(label, |b| {
            let echo = Echo::start(n, spin, cpu);
            let mut sel = Select::new();
            for rx in &echo.replies {
                sel.recv(rx);
            }
            let mut next = 0u64;
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    echo.ping.send(next).expect("the peer is there");
                    let index = sel.ready();
                    check(echo.replies[index].try_recv().expect("a ready reply"), next);
                    next += 1;
                }
                start.elapsed()
            });
        });
    }
    group.finish();
    c.final_summary();
}
