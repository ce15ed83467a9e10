//! shmchan's spsc channel, one way, against a hand-written ring, a pipe and
//! a Unix socket, between two processes.
//!
//! ```text
//! cargo bench --bench spsc                  # about 45 s
//! cargo bench --bench spsc -- spsc_batch64  # one benchmark
//! cargo test --benches                      # each benchmark once, as a test
//! ```
//!
//! The benchmark binary re-runs itself as the peer process, the role chosen
//! by an environment variable, which `main` checks before criterion sees
//! the command line. Each peer is started when its
//! benchmark first runs and stopped when the benchmark is done.
//!
//! One group, comparing the transports side by side in the same run:
//!
//! - `throughput/8B`: `u64` messages one way, peer to bench, reported per
//!   message. For each sample the bench tells the peer (over a command
//!   channel) how many messages to stream and stops the clock at the last
//!   one; every message is checked against its sequence number.
//!   - `spsc`: `send` / `recv`; `spsc_batch64`: `send_batch` / `recv_batch`
//!     of 64.
//!   - `raw_ring`, `raw_ring_batch64`: the baselines of DESIGN §7, a minimal
//!     hand-written Lamport ring (cached indices, same capacity) in a bare
//!     shared mapping, each side publishing every message or every 64.
//!   - `pipe`: 8-byte records written through a 64 KiB `BufWriter` and read
//!     through a `BufReader`; `pipe_write_per_msg`: one `write(2)` per
//!     message.
//!   - `spsc_asleep`: `send` / `recv` with no spinning: each side sleeps on
//!     the futex whenever it must wait.
//!   - `unix_socket`: as `pipe`, over a socketpair.
//! - `throughput/24B`: the same with 24-byte messages (three words, the
//!   size of the demo's tick): `raw_ring` (24-byte slots), `spsc`,
//!   `raw_ring_batch64`, `spsc_batch64`, and `pipe` (64 KiB writes).
//!
//! Round trips are in the `round_trip` bench; the workloads are in
//! `common::stream`.
//!
//! With two or more CPUs, the bench and its peers are pinned to different
//! CPUs (set `SHMCHAN_BENCH_NO_PIN` to turn that off). The host may move
//! the virtual CPUs between cores that share a cache and cores that do not,
//! which changes every figure here severalfold: compare the benchmarks of
//! one run, and repeat runs before believing a ratio.

// Each bench uses its own share of the workloads.
#[allow(dead_code)]
mod common;

use common::stream::{PipeStream, RawStream, SpscStream, Tick, BATCH, BENCH};
use common::{with_peer, Wait};
use criterion::{Criterion, Throughput};
use std::time::Duration;

fn main() {
    if common::peer_main() {
        return;
    }
    let cpu = BENCH.place_processes();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("throughput/8B");
    group.throughput(Throughput::Elements(1));
    with_peer(&mut group, "raw_ring", || RawStream::<u64>::spawn(1, cpu));
    with_peer(&mut group, "spsc", || {
        SpscStream::<u64>::spawn(false, Wait::Spin, cpu)
    });
    with_peer(&mut group, "spsc_asleep", || {
        SpscStream::<u64>::spawn(false, Wait::Sleep, cpu)
    });
    with_peer(&mut group, "raw_ring_batch64", || {
        RawStream::<u64>::spawn(BATCH as u64, cpu)
    });
    with_peer(&mut group, "spsc_batch64", || {
        SpscStream::<u64>::spawn(true, Wait::Spin, cpu)
    });
    with_peer(&mut group, "pipe", || {
        PipeStream::<_, u64>::spawn(true, cpu)
    });
    with_peer(&mut group, "pipe_write_per_msg", || {
        PipeStream::<_, u64>::spawn(false, cpu)
    });
    with_peer(&mut group, "unix_socket", || {
        PipeStream::<_, u64>::socket(true, cpu)
    });
    group.finish();

    let mut group = c.benchmark_group("throughput/24B");
    group.throughput(Throughput::Elements(1));
    with_peer(&mut group, "raw_ring", || RawStream::<Tick>::spawn(1, cpu));
    with_peer(&mut group, "spsc", || {
        SpscStream::<Tick>::spawn(false, Wait::Spin, cpu)
    });
    with_peer(&mut group, "raw_ring_batch64", || {
        RawStream::<Tick>::spawn(BATCH as u64, cpu)
    });
    with_peer(&mut group, "spsc_batch64", || {
        SpscStream::<Tick>::spawn(true, Wait::Spin, cpu)
    });
    with_peer(&mut group, "pipe", || {
        PipeStream::<_, Tick>::spawn(true, cpu)
    });
    group.finish();
    c.final_summary();
}
