//! async against tokio's `UnixStream` and against the sync API, between
//! two processes (feature `async`).
//!
//! ```text
//! cargo bench --features async --bench asynch    # about 40 s
//! ```
//!
//! `async/round_trip`, one `u64` out and back, the peer (this binary run
//! again) echoing it:
//!
//! - `shmchan_async`: both sides on a tokio current-thread runtime,
//!   `send_async` then `recv_async` over two spsc channels;
//! - `unix_stream`: both sides on a tokio current-thread runtime, 8 bytes
//!   written and read back over a tokio `UnixStream` (a socketpair);
//! - `shmchan_sync`: the blocking `send` and `recv` (spinning, then asleep).
//!
//! `async/one_way`, `u64`s from the peer, each checked:
//!
//! - `shmchan_async`: the peer sends through `into_sink`, the bench takes
//!   them from `stream()`, both on tokio current-thread runtimes;
//! - `shmchan_sync`: blocking `send` and `recv` (DESIGN §7: async at least
//!   50% of this).
//!
//! With two or more CPUs, the bench and its peer are pinned to different
//! CPUs.

#[allow(dead_code)]
#[path = "common/cpus.rs"]
mod cpus;

use criterion::{Criterion, Throughput};
use shmchan::spsc;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROLE_VAR: &str = "SHMCHAN_ASYNC_BENCH_PEER";
const CPU_VAR: &str = "SHMCHAN_ASYNC_BENCH_CPU";
/// Messages per one-way sample.
const BURST: u64 = 100_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The next item of a stream, without a futures crate.
async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}

fn peer(role: &str) {
    if let Some(cpu) = std::env::var(CPU_VAR).ok().and_then(|v| v.parse().ok()) {
        cpus::pin_to(&[cpu]).expect("pin the peer");
    }
    let mut words = role.split(' ');
    let kind = words.next().expect("a role");
    let a = words.next().unwrap_or_default();
    let b = words.next().unwrap_or_default();
    match kind {
        "async-echo" => runtime().block_on(async {
            let ping = spsc::Receiver::<u64>::open(a).expect("ping");
            let pong = spsc::Sender::<u64>::open(b).expect("pong");
            while let Ok(value) = ping.recv_async().await {
                if pong.send_async(value).await.is_err() {
                    return;
                }
            }
        }),
        "sync-echo" => {
            let ping = spsc::Receiver::<u64>::open(a).expect("ping");
            let pong = spsc::Sender::<u64>::open(b).expect("pong");
            for value in &ping {
                if pong.send(value).is_err() {
                    return;
                }
            }
        }
        "stream-echo" => runtime().block_on(async {
            // The socketpair is this process's standard input.
            let fd = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .expect("stdin");
            let std = std::os::unix::net::UnixStream::from(fd);
            std.set_nonblocking(true).expect("nonblocking");
            let mut stream = tokio::net::UnixStream::from_std(std).expect("a tokio stream");
            let mut buf = [0u8; 8];
            while stream.read_exact(&mut buf).await.is_ok() {
                if stream.write_all(&buf).await.is_err() {
                    return;
                }
            }
        }),
        // Streams 0.. into `a` until the bench leaves.
        "async-source" => runtime().block_on(async {
            use std::future::poll_fn;
            use std::pin::Pin;
            let tx = spsc::Sender::<u64>::open(a).expect("the channel");
            let mut sink = tx.into_sink();
            for i in 0.. {
                let ready = poll_fn(|cx| futures_sink::Sink::poll_ready(Pin::new(&mut sink), cx));
                if ready.await.is_err()
                    || futures_sink::Sink::start_send(Pin::new(&mut sink), i).is_err()
                {
                    return;
                }
            }
        }),
        "sync-source" => {
            let tx = spsc::Sender::<u64>::open(a).expect("the channel");
            for i in 0.. {
                if tx.send(i).is_err() {
                    return;
                }
            }
        }
        other => panic!("unknown role {other}"),
    }
}

struct Peer(Child);

impl Peer {
    fn spawn(role: String, stdin: Stdio, cpu: Option<usize>) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("the bench binary"));
        command.env(ROLE_VAR, role).stdin(stdin);
        if let Some(cpu) = cpu {
            command.env(CPU_VAR, cpu.to_string());
        }
        Self(command.spawn().expect("start the peer"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn name(tag: &str) -> String {
    format!("shmchan-bench-async-{}-{tag}", std::process::id())
}

fn check(got: u64, want: u64) {
    assert_eq!(got, want, "a message was lost, duplicated or reordered");
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_VAR) {
        peer(&role);
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
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let rt = runtime();

    let mut group = c.benchmark_group("async/round_trip");
    group.bench_function("shmchan_async", |b| {
        let (ping_name, pong_name) = (name("rt-ping"), name("rt-pong"));
        let ping = spsc::Sender::<u64>::create(&ping_name, 16).expect("ping");
        let pong = spsc::Receiver::<u64>::create(&pong_name, 16).expect("pong");
        let _peer = Peer::spawn(
            format!("async-echo {ping_name} {pong_name}"),
            Stdio::null(),
            cpu,
        );
        let mut next = 0u64;
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    ping.send_async(next).await.expect("the peer is there");
                    check(pong.recv_async().await.expect("an echo"), next);
                    next += 1;
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("unix_stream", |b| {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a socketpair");
        let _peer = Peer::spawn(
            "stream-echo".into(),
            Stdio::from(OwnedFd::from(theirs)),
            cpu,
        );
        ours.set_nonblocking(true).expect("nonblocking");
        let mut stream = rt
            .block_on(async { tokio::net::UnixStream::from_std(ours) })
            .expect("a tokio stream");
        let mut next = 0u64;
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut buf = [0u8; 8];
                let start = Instant::now();
                for _ in 0..iters {
                    stream
                        .write_all(&next.to_le_bytes())
                        .await
                        .expect("a write");
                    stream.read_exact(&mut buf).await.expect("an echo");
                    check(u64::from_le_bytes(buf), next);
                    next += 1;
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("shmchan_sync", |b| {
        let (ping_name, pong_name) = (name("srt-ping"), name("srt-pong"));
        let ping = spsc::Sender::<u64>::create(&ping_name, 16).expect("ping");
        let pong = spsc::Receiver::<u64>::create(&pong_name, 16).expect("pong");
        let _peer = Peer::spawn(
            format!("sync-echo {ping_name} {pong_name}"),
            Stdio::null(),
            cpu,
        );
        let mut next = 0u64;
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                ping.send(next).expect("the peer is there");
                check(pong.recv().expect("an echo"), next);
                next += 1;
            }
            start.elapsed()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("async/one_way");
    group.throughput(Throughput::Elements(BURST));
    for (label, role) in [
        ("shmchan_async", "async-source"),
        ("shmchan_sync", "sync-source"),
    ] {
        group.bench_function(label, |b| {
            let channel = name(label);
            let rx = spsc::Receiver::<u64>::create(&channel, 4096).expect("the channel");
            let _peer = Peer::spawn(format!("{role} {channel}"), Stdio::null(), cpu);
            let mut expected = 0u64;
            b.iter_custom(|iters| {
                if label == "shmchan_async" {
                    rt.block_on(async {
                        let mut stream = rx.stream();
                        let start = Instant::now();
                        for _ in 0..iters * BURST {
                            check(next(&mut stream).await.expect("a message"), expected);
                            expected += 1;
                        }
                        start.elapsed()
                    })
                } else {
                    let start = Instant::now();
                    for _ in 0..iters * BURST {
                        check(rx.recv().expect("a message"), expected);
                        expected += 1;
                    }
                    start.elapsed()
                }
            });
        });
    }
    group.finish();
    c.final_summary();
}
