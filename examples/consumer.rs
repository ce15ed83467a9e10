//! The receiving half of the two-terminal demo: creates the channel
//! `shmchan-demo` and prints the `Tick`s a `producer` sends.
//!
//! In two terminals:
//!
//! ```text
//! cargo run --release --example consumer            # waits for a producer
//! cargo run --release --example producer            # 1 000 000 ticks
//! cargo run --release --example producer -- 5000000 # or as many as you like
//! ```
//!
//! The consumer prints every 100 000th tick, checks that every tick arrives
//! in order and intact, and when the producer exits (the iteration ends on
//! disconnection, as with `std::sync::mpsc`) prints the count and the rate,
//! then exits and removes the channel.

use shmchan::spsc::Receiver;
use shmchan::Options;
use std::process::ExitCode;
use std::time::Instant;

/// The channel both examples use.
const CHANNEL: &str = "shmchan-demo";
/// Print one tick in this many.
const EVERY: u64 = 100_000;

/// One market-data tick; the producer declares the same struct.
#[derive(Clone, Copy, Debug, PartialEq, shmchan::ShmSafe)]
#[repr(C)]
struct Tick {
    ts: u64,
    px: f64,
    qty: u32,
    side: u32,
}

/// The `i`th tick the producer sends.
fn tick(i: u64) -> Tick {
    Tick {
        ts: i,
        px: 100.0 + (i % 997) as f64 * 0.25,
        qty: (i % 499) as u32 + 1,
        side: (i % 3 % 2) as u32,
    }
}

fn main() -> ExitCode {
    let rx = match Receiver::<Tick>::create_with(CHANNEL, &Options::new().capacity(4096)) {
        Ok(rx) => rx,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "consumer: created {:?} (capacity {}); now run: cargo run --release --example producer",
        rx.name(),
        rx.capacity()
    );

    let mut received = 0u64;
    let mut wrong = 0u64;
    let mut start = None;
    for t in &rx {
        // Time from the first tick, not from our own start-up.
        start.get_or_insert_with(Instant::now);
        if t != tick(received) {
            if wrong == 0 {
                eprintln!("consumer: tick {received} is wrong: {t:?}");
            }
            wrong += 1;
        }
        if received % EVERY == 0 {
            println!(
                "#{received:>9}  ts={:<9} px={:>8.2} qty={:>3} side={}",
                t.ts,
                t.px,
                t.qty,
                if t.side == 0 { "buy" } else { "sell" }
            );
        }
        received += 1;
    }

    match start {
        None => println!("consumer: the producer sent nothing"),
        Some(start) => {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "consumer: producer gone; received {received} ticks in {secs:.3} s ({:.1} M ticks/s)",
                received as f64 / secs / 1e6
            );
        }
    }
    if wrong != 0 {
        eprintln!("consumer: {wrong} ticks arrived out of order or damaged");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
