//! Round trips between two processes: the bench sends a value, the peer
//! sends it back, the bench waits for it before the next. Every transport,
//! spinning and asleep, next to its floor, in the same run.
//!
//! ```text
//! cargo bench --bench round_trip                 # about 2 minutes
//! cargo bench --bench round_trip -- asleep       # one group
//! cargo test --benches                           # each benchmark once, as a test
//! ```
//!
//! The benchmark binary re-runs itself as the peer process, the role chosen
//! by an environment variable, which `main` checks before criterion sees
//! the command line. The workloads are in `common::echo`.
//!
//! Groups, reported per round trip:
//!
//! - `round_trip/spinning`: both sides spin while they wait.
//!   - `raw_atomic`: the floor of DESIGN §7, two bare shared words each
//!     side spins on.
//!   - `raw_rings`: two minimal hand-written Lamport rings of `u64`, one
//!     each way: the least a round trip through rings costs, where each
//!     message and the index that publishes it are two cache lines.
//!   - `spsc`, `mpsc`, `mpmc`: ping-pong of a `u64` over two channels of
//!     the flavor, default options (which spin for 50 µs before sleeping);
//!     `bytes_64B`: over two `bytes` channels, 64-byte messages.
//!   - `crossbeam`, `std_mpsc`: over two bounded in-process channels to a
//!     thread of the bench (they spin briefly, then park).
//! - `round_trip/asleep`: both sides sleep whenever they wait.
//!   - `raw_futex`: the floor, two bare shared words each side sleeps on
//!     with `FUTEX_WAIT` and the other wakes with `FUTEX_WAKE`.
//!   - `spsc`, `mpsc`, `mpmc`, `bytes_64B`: as above with `spin` set to
//!     zero on both sides, so every `recv` sleeps on the futex.
//!   - `pipe`, `unix_socket`: one `write(2)` and one `read(2)` each way;
//!     the reader sleeps in the kernel.
//! - `round_trip/bytes`: the `bytes` channel with 64 B, 1 KiB, 4 KiB and
//!   64 KiB messages, spinning and (`_asleep`) asleep; the bench checks
//!   the echoed stamp of every message.
//!
//! After the groups, the bench prints latency distributions (p50, p99,
//! p99.9, max) for spsc, bytes and the floors, each round trip timed on
//! its own into an HDR histogram: 200,000 round trips each under
//! `cargo bench`, 2,000 under `cargo test --benches`; with a filter, only
//! if the filter is part of the word `latency` (`cargo bench --bench
//! round_trip -- latency` runs only them).
//!
//! With two or more CPUs, the bench and its peer are pinned to different
//! CPUs (set `SHMCHAN_BENCH_NO_PIN` to turn that off). The host may move
//! the virtual CPUs between cores that share a cache and cores that do not,
//! which changes every figure here severalfold: compare the benchmarks of
//! one run, and repeat runs before believing a ratio.

// Each bench uses its own share of the workloads.
#[allow(dead_code)]
mod common;

use common::echo::{self, Echo, Mpmc, Mpsc, Spsc, BENCH};
use common::{with_peer, Crossbeam, Run, StdMpsc, Wait};
use criterion::Criterion;
use std::time::Duration;

/// Message sizes of `round_trip/bytes`.
const SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (1024, "1KiB"),
    (4096, "4KiB"),
    (64 * 1024, "64KiB"),
];

fn main() {
    if common::peer_main() {
        return;
    }
    let benching = std::env::args().any(|arg| arg == "--bench");
    let latency_wanted = filter().is_none_or(|f| "latency".contains(f.as_str()));
    let cpu = BENCH.place_processes();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    let mut group = c.benchmark_group("round_trip/spinning");
    with_peer(&mut group, "raw_atomic", || Echo::raw_atomic(cpu));
    with_peer(&mut group, "raw_rings", || Echo::raw_rings(cpu));
    with_peer(&mut group, "spsc", || echo::typed::<Spsc>(Wait::Spin, cpu));
    with_peer(&mut group, "mpsc", || echo::typed::<Mpsc>(Wait::Spin, cpu));
    with_peer(&mut group, "mpmc", || echo::typed::<Mpmc>(Wait::Spin, cpu));
    with_peer(&mut group, "bytes_64B", || Echo::bytes(64, Wait::Spin, cpu));
    with_peer(&mut group, "crossbeam", || {
        echo::in_process::<Crossbeam>(cpu)
    });
    with_peer(&mut group, "std_mpsc", || echo::in_process::<StdMpsc>(cpu));
    group.finish();

    let mut group = c.benchmark_group("round_trip/asleep");
    with_peer(&mut group, "raw_futex", || Echo::raw_futex(cpu));
    with_peer(&mut group, "spsc", || echo::typed::<Spsc>(Wait::Sleep, cpu));
    with_peer(&mut group, "mpsc", || echo::typed::<Mpsc>(Wait::Sleep, cpu));
    with_peer(&mut group, "mpmc", || echo::typed::<Mpmc>(Wait::Sleep, cpu));
    with_peer(&mut group, "bytes_64B", || {
        Echo::bytes(64, Wait::Sleep, cpu)
    });
    with_peer(&mut group, "pipe", || Echo::pipe(cpu));
    with_peer(&mut group, "unix_socket", || Echo::socket(cpu));
    group.finish();

    let mut group = c.benchmark_group("round_trip/bytes");
    for (size, label) in SIZES {
        with_peer(&mut group, label, || Echo::bytes(size, Wait::Spin, cpu));
        with_peer(&mut group, &format!("{label}_asleep"), || {
            Echo::bytes(size, Wait::Sleep, cpu)
        });
    }
    group.finish();
    c.final_summary();

    if !latency_wanted {
        return;
    }
    let n = if benching { 200_000 } else { 2_000 };
    println!("\nround-trip latency, {n} round trips each (ns)");
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p99", "p99.9", "max"
    );
    distribution("raw_atomic", n, Echo::raw_atomic(cpu));
    distribution("raw_rings", n, Echo::raw_rings(cpu));
    distribution("spsc", n, echo::typed::<Spsc>(Wait::Spin, cpu));
    distribution("bytes_64B", n, Echo::bytes(64, Wait::Spin, cpu));
    distribution("bytes_4KiB", n, Echo::bytes(4096, Wait::Spin, cpu));
    distribution("raw_futex", n, Echo::raw_futex(cpu));
    distribution("spsc_asleep", n, echo::typed::<Spsc>(Wait::Sleep, cpu));
    distribution("bytes_64B_asleep", n, Echo::bytes(64, Wait::Sleep, cpu));
    distribution("bytes_4KiB_asleep", n, Echo::bytes(4096, Wait::Sleep, cpu));
    distribution("pipe", n, Echo::pipe(cpu));
}

/// The benchmark filter on the command line, if any: the first argument
/// that is neither an option nor an option's value.
fn filter() -> Option<String> {
    const WITH_VALUE: [&str; 8] = [
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--profile-time",
        "--noise-threshold",
        "--significance-level",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.iter().enumerate().find_map(|(i, arg)| {
        let is_value = i > 0 && WITH_VALUE.contains(&args[i - 1].as_str());
        (!arg.starts_with('-') && !is_value).then(|| arg.clone())
    })
}

/// Prints the distribution of `n` round trips of `echo`, after a warm-up of
/// a tenth as many.
fn distribution<C: echo::Client>(label: &str, n: u64, mut echo: Echo<C>) {
    echo.run(n / 10);
    let mut histogram = common::echo::histogram();
    echo.latencies(n, &mut histogram);
    println!(
        "{label:<28} {:>9} {:>9} {:>9} {:>9}",
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max()
    );
}
