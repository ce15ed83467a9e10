//! `shmchan::serde` against the work it cannot avoid, in one thread: the
//! events of the `orders` example (strings, vectors, options, enums; 29
//! bytes encoded on average, 4 to 130), 256 different ones per timed batch.
//!
//! ```text
//! cargo bench --features serde --bench serde    # about 30 s
//! ```
//!
//! `serde/encode`, the cost of one send (DESIGN §7: encoding into the ring
//! costs at most 1.2x postcard's `to_slice` into a local buffer):
//!
//! - `postcard_to_slice`: `postcard::to_slice` into a 4 KiB local buffer.
//! - `serde_send`: `Sender::send(&event)` into a 1 MiB serde channel,
//!   encoding straight into the ring. The ring is drained between batches,
//!   off the clock.
//! - `bytes_send_encoded`: `bytes::Sender::send(&encoding)` of the same
//!   events encoded beforehand: the copy without the encoding.
//!
//! `serde/send_recv`, a message out and in again (each side decodes):
//!
//! - `postcard`: `to_slice` into a local buffer, then `from_bytes`.
//! - `serde_channel`: `send(&event)`, then `recv()`.
//! - `bytes_encoded`: the bytes flavor carrying encodings made beforehand:
//!   `send(&encoding)`, then `recv()` and `from_bytes` on the guard.
//! - `unix_socket`: a socketpair carrying the same encodings, a 4-byte
//!   length first: one `write(2)` of length and encoding, `read_exact` of
//!   both (two `read(2)`s), `from_bytes`.
//!
//! One thread, so no cache line crosses cores: this measures the code on
//! the path, not the interconnect. Between processes, see the `orders`
//! example.

// The example's echo is not used here.
#[allow(dead_code)]
#[path = "../examples/common/orders.rs"]
mod orders;

use criterion::{black_box, Criterion, Throughput};
use orders::{event, Event};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Events per timed batch.
const BATCH: usize = 256;

fn name(tag: &str) -> String {
    format!("shmchan-bench-serde-{}-{tag}", std::process::id())
}

/// Times `batches` runs of `timed` over the events, running `untimed`
/// after each.
fn per_batch(batches: u64, mut timed: impl FnMut(), mut untimed: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..batches {
        let start = Instant::now();
        timed();
        total += start.elapsed();
        untimed();
    }
    total
}

fn main() {
    let events: Vec<Event> = (0..BATCH as u64).map(event).collect();
    let encoded: Vec<Vec<u8>> = events
        .iter()
        .map(|e| postcard::to_allocvec(e).expect("an event encodes"))
        .collect();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    let (tx, rx) = shmchan::serde::channel::<Event>(&name("serde"), 64 << 10).expect("a channel");
    let (btx, mut brx) = shmchan::bytes::channel(&name("bytes"), 64 << 10).expect("a channel");
    let mut buf = vec![0u8; 4096];

    let mut group = c.benchmark_group("serde/encode");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("postcard_to_slice", |b| {
        b.iter(|| {
            for e in &events {
                black_box(postcard::to_slice(e, &mut buf).expect("fits").len());
            }
        })
    });
    group.bench_function("serde_send", |b| {
        b.iter_custom(|batches| {
            per_batch(
                batches,
                || {
                    for e in &events {
                        tx.send(e).expect("the receiver is here");
                    }
                },
                || assert_eq!(rx.try_iter().count(), BATCH),
            )
        })
    });
    group.bench_function("bytes_send_encoded", |b| {
        b.iter_custom(|batches| {
            per_batch(
                batches,
                || {
                    for message in &encoded {
                        btx.send(message).expect("the receiver is here");
                    }
                },
                || assert_eq!(brx.try_iter().count(), BATCH),
            )
        })
    });
    group.finish();

    let (mut ours, mut theirs) = UnixStream::pair().expect("a socketpair");
    let mut group = c.benchmark_group("serde/send_recv");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("postcard", |b| {
        b.iter(|| {
            for e in &events {
                let bytes = postcard::to_slice(e, &mut buf).expect("fits");
                black_box(postcard::from_bytes::<Event>(bytes).expect("decodes"));
            }
        })
    });
    group.bench_function("serde_channel", |b| {
        b.iter(|| {
            for e in &events {
                tx.send(e).expect("the receiver is here");
                black_box(rx.recv().expect("a message"));
            }
        })
    });
    group.bench_function("bytes_encoded", |b| {
        b.iter(|| {
            for message in &encoded {
                btx.send(message).expect("the receiver is here");
                let guard = brx.recv().expect("a message");
                black_box(postcard::from_bytes::<Event>(&guard).expect("decodes"));
            }
        })
    });
    group.bench_function("unix_socket", |b| {
        let mut frame = vec![0u8; 4096];
        b.iter(|| {
            for message in &encoded {
                let len = message.len();
                frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
                frame[4..4 + len].copy_from_slice(message);
                ours.write_all(&frame[..4 + len]).expect("a write");
                let mut prefix = [0u8; 4];
                theirs.read_exact(&mut prefix).expect("a read");
                let len = u32::from_le_bytes(prefix) as usize;
                theirs.read_exact(&mut buf[..len]).expect("a read");
                black_box(postcard::from_bytes::<Event>(&buf[..len]).expect("decodes"));
            }
        })
    });
    group.finish();
    c.final_summary();
}
