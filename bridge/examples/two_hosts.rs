//! Two "hosts" on one machine, linked by two bridges over 127.0.0.1.
//!
//! Host A is a process with a producer of typed `Tick`s on its channel
//! `two-hosts-a` and an exporter; host B is another process with an
//! importer into its channel `two-hosts-b` and a consumer. Neither
//! producer nor consumer knows about Zenoh: each uses its shmchan channel.
//! The bridges run in process, through the library (the `shmchan-bridge`
//! command does the same from a shell).
//!
//! ```text
//! cargo run --release -p shmchan-zenoh --example two_hosts [-- MESSAGES]
//! ```

use shmchan_zenoh::{Network, Options};
use std::process::Command;
use std::time::{Duration, Instant};

/// The message: what a trading gateway sends its risk host.
#[derive(Clone, Copy, Debug, PartialEq, shmchan::ShmSafe)]
#[repr(C)]
struct Tick {
    seq: u64,
    price: f64,
    /// When the producer sent it, in ns since the run began (both hosts
    /// share this machine's clock).
    sent_ns: u64,
}

const CHANNEL_A: &str = "two-hosts-a";
const CHANNEL_B: &str = "two-hosts-b";
const KEY: &str = "demo/ticks";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("host-a") => host_a(&args[2], args[3].parse()?, args[4].parse()?),
        Some("host-b") => host_b(&args[2], args[3].parse()?, args[4].parse()?),
        count => launch(count.map_or(Ok(1_000_000), str::parse)?),
    }
}

/// Starts both hosts as processes and waits for them.
fn launch(count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos()
        .to_string();
    let me = std::env::current_exe()?;
    let spawn = |host: &str| {
        Command::new(&me)
            .args([host, &endpoint, &count.to_string(), &epoch])
            .spawn()
    };
    println!("{count} Ticks from host A's channel {CHANNEL_A:?} to host B's {CHANNEL_B:?}, over Zenoh key {KEY:?} on {endpoint}");
    let mut b = spawn("host-b")?;
    let mut a = spawn("host-a")?;
    let (a, b) = (a.wait()?, b.wait()?);
    if !(a.success() && b.success()) {
        return Err(format!("host A {a}, host B {b}").into());
    }
    Ok(())
}

/// Nanoseconds since the launcher's `epoch` (Unix ns).
fn since(epoch: u128) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    now.saturating_sub(epoch) as u64
}

/// The producer's host: its channel, drained into Zenoh by an exporter.
fn host_a(endpoint: &str, count: u64, epoch: u128) -> Result<(), Box<dyn std::error::Error>> {
    let _ = shmchan::unlink(CHANNEL_A);
    // The producer's code: create the channel, send.
    let tx = shmchan::spsc::Sender::<Tick>::create(CHANNEL_A, 4096)?;
    // Beside it, the bridge.
    let session = Network::new().listen(endpoint).open()?;
    let rx = shmchan::spsc::Receiver::<Tick>::open(CHANNEL_A)?;
    let exporter = shmchan_zenoh::export(&session, rx, KEY, &Options::new())?;
    for seq in 0..count {
        let tick = Tick {
            seq,
            price: 100.0 + (seq % 100) as f64 / 100.0,
            sent_ns: since(epoch),
        };
        tx.send(tick)?;
    }
    // Until host B has all of them: then its importer leaves.
    while exporter.stats().peers > 0 || exporter.stats().messages < count {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = exporter.stop()?;
    println!(
        "host A: exported {} messages in {} Zenoh samples ({:.0} messages a sample)",
        stats.messages,
        stats.frames,
        stats.messages as f64 / stats.frames.max(1) as f64
    );
    Ok(())
}

/// The consumer's host: an importer fills its channel from Zenoh.
fn host_b(endpoint: &str, count: u64, epoch: u128) -> Result<(), Box<dyn std::error::Error>> {
    let _ = shmchan::unlink(CHANNEL_B);
    // The consumer's code: create the channel, receive.
    let rx = shmchan::spsc::Receiver::<Tick>::create(CHANNEL_B, 4096)?;
    // Beside it, the bridge.
    let session = Network::new().connect(endpoint).open()?;
    let tx = shmchan::spsc::Sender::<Tick>::open(CHANNEL_B)?;
    let importer = shmchan_zenoh::import(&session, KEY, tx, &Options::new())?;
    let mut latencies = Vec::with_capacity(count as usize);
    let mut started = None;
    for seq in 0..count {
        let tick = rx.recv()?;
        started.get_or_insert_with(Instant::now);
        if tick.seq != seq {
            return Err(format!("expected Tick {seq}, got {}", tick.seq).into());
        }
        latencies.push(since(epoch).saturating_sub(tick.sent_ns));
    }
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    let stats = importer.stop()?;
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize] as f64 / 1e3;
    println!(
        "host B: received {count} Ticks in order, {:.2} M msg/s after the first; \
         one-way latency p50 {:.0} µs, p99 {:.0} µs (the stream runs with the window full, \
         so this is mostly queueing); {} lost",
        count as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6,
        pct(0.5),
        pct(0.99),
        stats.lost
    );
    Ok(())
}
