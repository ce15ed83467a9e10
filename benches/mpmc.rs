//! shmchan's mpsc and mpmc channels between processes, against
//! crossbeam-channel between the threads of one process.
//!
//! ```text
//! cargo bench --bench mpmc                  # about 30 s
//! cargo bench --bench mpmc -- mpsc/8B       # one group
//! cargo test --benches                      # each benchmark once, as a test
//! ```
//!
//! The benchmark binary re-runs itself as the peer processes, the role
//! chosen by the `SHMCHAN_MPMC_BENCH_PEER` environment variable, which
//! `main` checks before criterion sees the command line. Peers (and the
//! threads of the crossbeam baselines) are started when their benchmark
//! first runs and stopped when it is done. Messages are `u64`s that carry
//! their sender's index in the top byte and its sequence number below.
//!
//! Groups, each comparing side by side in the same run, reported per
//! message:
//!
//! - `mpsc/8B`: `mpsc_N`, N sender processes (N = 1, 2, 4) streaming into
//!   the one mpsc receiver, in the bench process (default shard count, each
//!   shard's ring [`CAPACITY`]); `spsc`, one sender process over an spsc
//!   channel of the same capacity (DESIGN §7: `mpsc_4` at least half of
//!   it); `crossbeam_N`, N sender threads and the bench's thread receiving,
//!   over one `crossbeam_channel::bounded(CAPACITY)`. For each sample the
//!   bench tells each sender (over a command channel) how many messages to
//!   send, its share of `iters`, and stops the clock at the last one. Every
//!   message is checked against its sender's sequence number, and at the
//!   end each sender's count against its share. When a benchmark is done,
//!   it prints on standard error which share of the first half of each
//!   timed run came from each sender, in all and the lowest in one run: a
//!   fair receiver takes about `1/N` from each, a sender that starves shows
//!   near 0 in all. (Where the senders share a CPU, the scheduler runs one
//!   at a time for a few milliseconds, so in a short run one sender may
//!   send its whole share before another starts: the lowest share of one
//!   run then says more about the scheduler than about the channel.)
//! - `mpmc/2x2`: `mpmc`, 2 producer processes and 2 consumer processes on
//!   one mpmc channel of [`CAPACITY`]; `crossbeam`, 2 producer threads and
//!   2 consumer threads on one `crossbeam_channel::bounded(CAPACITY)` (DESIGN
//!   §7: `mpmc` at least as fast). For each sample the bench starts the
//!   consumers, then tells each producer its share of `iters`; each producer
//!   sends its share and then an end-of-round mark; each consumer takes
//!   messages until it gets a mark, checking that each producer's arrive in
//!   order, and reports how many it took and their sum. The clock stops
//!   when both have reported: every message before the later mark has been
//!   taken by then, and the bench checks that the counts add up to `iters`
//!   and the sums to the sum of what was sent.
//!
//! `mpsc_4_asleep` and `mpmc_asleep` are `mpsc_4` and `mpmc` with no
//! spinning: every endpoint sleeps on the futex whenever it must wait.
//!
//! Placement: with two or more CPUs, the bench's thread is pinned to the
//! first. In `mpsc/8B` the receiver (the bench) keeps that CPU to itself
//! and the senders, processes or threads alike, share the others round
//! robin (on a 2-CPU machine all of them share the second). In `mpmc/2x2`
//! the bench only waits for reports; producers and consumers are placed
//! round robin over all the CPUs, producers first (on 2 CPUs, one producer
//! and one consumer on each). Set `SHMCHAN_BENCH_NO_PIN` to pin nothing.
//! With more busy processes than CPUs, a blocked send or receive spins for
//! a while, yielding the CPU now and then, and then sleeps, so the
//! oversubscribed runs make progress, at the scheduler's pace. As with the
//! spsc bench, the host may move the virtual CPUs between cores that share
//! a cache and cores that do not: compare the benchmarks of one run, and
//! repeat runs before believing a ratio.

// Each bench uses its own share of the workloads.
#[allow(dead_code)]
mod common;

use common::multi::{
    Cpus, ShmMpmc, ShmStream, ThreadMpmc, ThreadStream, BENCH, CONSUMERS, PRODUCERS, SENDERS,
};
use common::{with_peer, Crossbeam, StdMpsc, Wait};
use criterion::{Criterion, Throughput};
use shmchan::{mpsc, spsc};
use std::time::Duration;

fn main() {
    if common::peer_main() {
        return;
    }
    let cpus = Cpus(BENCH.pin_bench());
    if let Some(list) = &cpus.0 {
        eprintln!(
            "{}: pinned, bench (and mpsc receiver) on CPU {}; mpsc senders on CPUs {:?}; \
             mpmc producers and consumers on CPUs {:?}",
            BENCH.label,
            list[0],
            &list[1..],
            list
        );
    }
    let mut c = Criterion::default()
        .sample_size(15)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    mpsc_group(&mut c, &cpus);
    mpmc_group(&mut c, &cpus);
    c.final_summary();
}

fn mpsc_group(c: &mut Criterion, cpus: &Cpus) {
    let mut group = c.benchmark_group("mpsc/8B");
    group.throughput(Throughput::Elements(1));
    with_peer(&mut group, "spsc", || {
        ShmStream::<spsc::Receiver<u64>>::spawn(1, Wait::Spin, cpus)
    });
    for senders in SENDERS {
        with_peer(&mut group, &format!("mpsc_{senders}"), || {
            ShmStream::<mpsc::Receiver<u64>>::spawn(senders, Wait::Spin, cpus)
        });
        with_peer(&mut group, &format!("crossbeam_{senders}"), || {
            ThreadStream::<Crossbeam>::spawn(senders, cpus)
        });
        with_peer(&mut group, &format!("std_mpsc_{senders}"), || {
            ThreadStream::<StdMpsc>::spawn(senders, cpus)
        });
    }
    with_peer(&mut group, "mpsc_4_asleep", || {
        ShmStream::<mpsc::Receiver<u64>>::spawn(4, Wait::Sleep, cpus)
    });
    group.finish();
}

fn mpmc_group(c: &mut Criterion, cpus: &Cpus) {
    let mut group = c.benchmark_group(format!("mpmc/{PRODUCERS}x{CONSUMERS}"));
    group.throughput(Throughput::Elements(1));
    with_peer(&mut group, "mpmc", || ShmMpmc::spawn(Wait::Spin, cpus));
    with_peer(&mut group, "mpmc_asleep", || {
        ShmMpmc::spawn(Wait::Sleep, cpus)
    });
    with_peer(&mut group, "crossbeam", || ThreadMpmc::spawn(cpus));
    group.finish();
}
