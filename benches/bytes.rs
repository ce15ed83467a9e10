//! shmchan's byte stream against a Unix stream socket, a pipe and `memcpy`,
//! between two processes.
//!
//! ```text
//! cargo bench --bench bytes                 # about 90 s
//! cargo bench --bench bytes -- 'bytes/4KiB' # one group
//! cargo test --benches                      # each benchmark once, as a test
//! ```
//!
//! The benchmark binary re-runs itself as the peer process, the role chosen
//! by an environment variable, which `main` checks before criterion sees
//! the command line. Each peer is started when
//! its benchmark first runs and stopped when the benchmark is done.
//!
//! One group per message size, `bytes/64B`, `bytes/1KiB`, `bytes/4KiB` and
//! `bytes/64KiB`, reported in bytes per second (payload bytes; framing is
//! not counted). For each sample the bench tells the peer how many messages
//! to stream (over an spsc channel of `u64`, or the peer's standard input)
//! and stops the clock at the last one. Each message carries its sequence
//! number in its first and last 8 bytes, and the bench checks both and the
//! length of every message, so a transport that lost, duplicated, reordered
//! or truncated one fails the run.
//!
//! - `memcpy`: the baseline of DESIGN §7, one `copy_from_slice` of the
//!   message size between two buffers in this process, on one thread.
//! - `raw_ring`: the cross-process floor, a minimal hand-written ring of
//!   fixed slots (1 MiB, as the channel's) in a bare mapping: the peer
//!   copies each message in with `memcpy` and publishes it with one store,
//!   the bench copies it out with `memcpy` and releases it with one store.
//! - `shmchan`: a `bytes` channel with a 1 MiB ring. The peer copies the
//!   message into the ring with `send(&[u8])`; the bench reads it in place
//!   through the guard `recv()` returns (zero copy: only the checked bytes
//!   are touched).
//! - `shmchan_recv_into`: the same, but the bench copies every message out
//!   with `recv_into(&mut Vec<u8>)`, so each byte crosses between the
//!   processes, as it must through a socket.
//! - `spsc_u8x64` (64 B only): the same messages, stamped and checked the
//!   same way, through an spsc channel of `[u8; 64]`: what `bytes` is held
//!   to for small messages (DESIGN §7).
//! - `unix_socket`: a socketpair (the peer's standard output), each message
//!   framed by a 4-byte length and written with one `write_all` (one
//!   `write(2)`); the bench reads through a 64 KiB `BufReader` with
//!   `read_exact` into a buffer.
//! - `unix_socket_buffered`: the same with a 64 KiB `BufWriter` on the
//!   sending side, so small messages share a `write(2)`.
//! - `pipe`: as `unix_socket`, over a pipe.
//! - `shmchan_asleep`: as `shmchan`, with no spinning: each side sleeps on
//!   the futex whenever it must wait.
//!
//! The workloads are in `common::bytes`; round trips of these sizes are in
//! the `round_trip` bench.
//!
//! With two or more CPUs, the bench and its peers are pinned to different
//! CPUs (set `SHMCHAN_BENCH_NO_PIN` to turn that off). The host may move
//! the virtual CPUs between cores that share a cache and cores that do not,
//! which changes the figures: compare the benchmarks of one run, and repeat
//! runs before believing a ratio.

// Each bench uses its own share of the workloads.
#[allow(dead_code)]
mod common;

use common::bytes::{Memcpy, RawBytes, ShmStream, SpscBlocks, Stream, BENCH, BLOCK, SIZES};
use common::{with_peer, Wait};
use criterion::{Criterion, Throughput};
use std::time::Duration;

fn main() {
    if common::peer_main() {
        return;
    }
    let cpu = BENCH.place_processes();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for (size, label) in SIZES {
        let mut group = c.benchmark_group(format!("bytes/{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        with_peer(&mut group, "memcpy", || Memcpy::new(size));
        with_peer(&mut group, "raw_ring", || RawBytes::spawn(size, cpu));
        with_peer(&mut group, "shmchan", || {
            ShmStream::spawn(size, false, Wait::Spin, cpu)
        });
        with_peer(&mut group, "shmchan_recv_into", || {
            ShmStream::spawn(size, true, Wait::Spin, cpu)
        });
        if size == BLOCK {
            with_peer(&mut group, "spsc_u8x64", || SpscBlocks::spawn(cpu));
        }
        with_peer(&mut group, "shmchan_asleep", || {
            ShmStream::spawn(size, false, Wait::Sleep, cpu)
        });
        with_peer(&mut group, "unix_socket", || {
            Stream::socket(size, false, cpu)
        });
        with_peer(&mut group, "unix_socket_buffered", || {
            Stream::socket(size, true, cpu)
        });
        with_peer(&mut group, "pipe", || Stream::pipe(size, cpu));
        group.finish();
    }
    c.final_summary();
}
