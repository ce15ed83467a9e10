//! The sending half of the two-terminal demo: sends `Tick`s to the channel
//! `shmchan-demo` that the `consumer` example created.
//!
//! Start the consumer first, then the producer, in two terminals:
//!
//! ```text
//! cargo run --release --example consumer
//! cargo run --release --example producer            # 1 000 000 ticks
//! cargo run --release --example producer -- 5000000 # or as many as you like
//! ```
//!
//! The consumer prints every 100 000th tick and, once this process exits,
//! how many it received and how fast. Without a consumer, this prints why
//! it cannot open the channel and exits with status 1.

use shmchan::spsc::Sender;
use std::process::ExitCode;
use std::time::Instant;

/// The channel both examples use.
const CHANNEL: &str = "shmchan-demo";

/// One market-data tick. The consumer declares the same struct in its own
/// crate: the layout fingerprint depends on the fields, not on module paths,
/// so the two agree.
#[derive(Clone, Copy, Debug, shmchan::ShmSafe)]
#[repr(C)]
struct Tick {
    ts: u64,
    px: f64,
    qty: u32,
    side: u32,
}

/// The `i`th tick: a deterministic pattern the consumer can check.
fn tick(i: u64) -> Tick {
    Tick {
        ts: i,
        px: 100.0 + (i % 997) as f64 * 0.25,
        qty: (i % 499) as u32 + 1,
        side: (i % 3 % 2) as u32,
    }
}

fn main() -> ExitCode {
    let count: u64 = match std::env::args().nth(1) {
        None => 1_000_000,
        Some(arg) => {
            match arg.replace('_', "").parse() {
                Ok(count) => count,
                Err(_) => {
                    eprintln!("usage: producer [count]   (count: how many ticks to send, default 1000000)");
                    return ExitCode::from(2);
                }
            }
        }
    };

    let tx = match Sender::<Tick>::open(CHANNEL) {
        Ok(tx) => tx,
        Err(err) => {
            eprintln!("{err}");
            if matches!(err, shmchan::Error::NotFound { .. }) {
                eprintln!("start the consumer first: cargo run --release --example consumer");
            }
            return ExitCode::FAILURE;
        }
    };
    println!(
        "producer: sending {count} ticks to {:?} (capacity {})",
        tx.name(),
        tx.capacity()
    );

    let start = Instant::now();
    for i in 0..count {
        if tx.send(tick(i)).is_err() {
            eprintln!("producer: the consumer went away after {i} ticks");
            return ExitCode::FAILURE;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "producer: sent {count} ticks in {:.3} s ({:.1} M ticks/s)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64() / 1e6
    );
    // Dropping `tx` detaches it: the consumer drains the channel, sees the
    // sender gone, and its loop ends.
    ExitCode::SUCCESS
}
