//! One process waits on three channels of different flavors at once with
//! `Select`, fed by three producer processes, and prints what it got from
//! each and the latency it saw:
//!
//! ```text
//! cargo run --release --example gather              # 20 000 messages per producer
//! cargo run --release --example gather -- 100000    # [MESSAGES per producer]
//! ```
//!
//! - `ticks`: an spsc channel of `Tick`s, from a market-data process that
//!   sends in bursts;
//! - `alerts`: an mpsc channel of `Alert`s, from a monitor that sends one
//!   now and then;
//! - `log`: a byte channel of text lines, from a service that logs.
//!
//! Each message carries the wall-clock time it was sent (the same clock in
//! every process), so the gatherer can tell how long each waited from send
//! to receive, through its sleep on all three doorbells at once. The
//! gatherer checks every message's sequence number per channel, and runs
//! until all three producers are done (their channels then report
//! disconnection, which `Select` counts as ready).

// Shared with the other examples; not all of it is used here.
#[allow(dead_code)]
#[path = "common/mod.rs"]
mod common;

use common::{fresh_name, Example, Res};
use shmchan::{bytes, mpsc, spsc, Select, ShmSafe, TryRecvError};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, ShmSafe)]
#[repr(C)]
struct Tick {
    seq: u64,
    sent_ns: u64,
    px: f64,
    qty: u32,
    side: u32,
}

#[derive(Clone, Copy, Debug, ShmSafe)]
#[repr(C)]
struct Alert {
    seq: u64,
    sent_ns: u64,
    level: u32,
    code: u32,
}

const EXAMPLE: Example = Example {
    peer_cpu_var: "SHMCHAN_GATHER_PEER_CPU",
    no_pin_var: "SHMCHAN_GATHER_NO_PIN",
};
const USAGE: &str = "gather [MESSAGES per producer (default 20000)]";

/// Nanoseconds since the epoch, by the wall clock every process shares.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn main() -> ExitCode {
    let label = |args: &[String]| {
        format!(
            "gather producer {}",
            args.first().map_or("?", String::as_str)
        )
    };
    common::main("gather", label, producer, run)
}

/// What one channel delivered.
#[derive(Default)]
struct Seen {
    count: u64,
    latencies: Vec<u64>,
    last: String,
}

impl Seen {
    fn take(
        &mut self,
        seq: u64,
        sent_ns: u64,
        what: &str,
        text: impl FnOnce() -> String,
    ) -> Res<()> {
        if seq != self.count {
            return Err(
                format!("{what}: message {seq} arrived where {} was due", self.count).into(),
            );
        }
        self.count += 1;
        self.latencies.push(now_ns().saturating_sub(sent_ns));
        if self.count % 1000 == 0 {
            self.last = text();
        }
        Ok(())
    }

    fn percentile(&mut self, p: usize) -> u64 {
        self.latencies.sort_unstable();
        self.latencies
            .get((self.latencies.len() * p / 100).min(self.latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    }
}

fn run(args: &[String]) -> Res<()> {
    let n = common::count(args.first(), 20_000, "MESSAGES", USAGE)?;
    let (ticks_name, alerts_name, log_name) = (
        fresh_name("gather", "ticks"),
        fresh_name("gather", "alerts"),
        fresh_name("gather", "log"),
    );
    let ticks = spsc::Receiver::<Tick>::create(&ticks_name, 1024)?;
    let alerts = mpsc::Receiver::<Alert>::create(&alerts_name, 64)?;
    let log = bytes::Receiver::create(&log_name, 64 * 1024)?;
    let mut line = Vec::with_capacity(256);
    println!("shmchan gather: Select over an spsc, an mpsc and a bytes channel, {n} messages from each of three producer processes");
    let (_, pinned) = EXAMPLE.place("gather", ", the producers beside it");
    let cpu = pinned.map(|(_, peer)| peer);
    let count = n.to_string();
    let mut producers = [
        EXAMPLE.spawn(
            "ticks",
            &[&ticks_name, &count],
            cpu,
            Stdio::null(),
            Stdio::inherit(),
        )?,
        EXAMPLE.spawn(
            "alerts",
            &[&alerts_name, &count],
            cpu,
            Stdio::null(),
            Stdio::inherit(),
        )?,
        EXAMPLE.spawn(
            "log",
            &[&log_name, &count],
            cpu,
            Stdio::null(),
            Stdio::inherit(),
        )?,
    ];

    let mut seen: [Seen; 3] = Default::default();
    let mut done = [false; 3];
    let mut wakes = 0u64;
    let mut sel = Select::new();
    let indices = [sel.recv(&ticks), sel.recv(&alerts), sel.recv(&log)];
    let started = std::time::Instant::now();
    while done.iter().any(|d| !d) {
        // A producer that died before attaching would leave its channel
        // waiting forever: time out now and then to look.
        let Ok(index) = sel.ready_timeout(Duration::from_secs(1)) else {
            for (k, producer) in producers.iter_mut().enumerate() {
                if !done[k] {
                    producer.alive()?;
                }
            }
            continue;
        };
        wakes += 1;
        let k = indices
            .iter()
            .position(|&i| i == index)
            .expect("one of ours");
        let gone = match k {
            0 => match ticks.try_recv() {
                Ok(t) => seen[0]
                    .take(t.seq, t.sent_ns, "ticks", || format!("{t:?}"))
                    .map(|()| false)?,
                Err(TryRecvError::Empty) => false,
                Err(TryRecvError::Disconnected) => true,
            },
            1 => match alerts.try_recv() {
                Ok(a) => seen[1]
                    .take(a.seq, a.sent_ns, "alerts", || format!("{a:?}"))
                    .map(|()| false)?,
                Err(TryRecvError::Empty) => false,
                Err(TryRecvError::Disconnected) => true,
            },
            _ => match log.try_recv_into(&mut line) {
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    let mut fields = text.splitn(3, ' ');
                    let seq = fields
                        .next()
                        .and_then(|f| f.parse().ok())
                        .ok_or("a log line without a number")?;
                    let sent = fields
                        .next()
                        .and_then(|f| f.parse().ok())
                        .ok_or("a log line without a time")?;
                    seen[2].take(seq, sent, "log", || text.clone())?;
                    false
                }
                Err(TryRecvError::Empty) => false,
                Err(TryRecvError::Disconnected) => true,
            },
        };
        if gone {
            done[k] = true;
            sel.remove(index);
        }
    }
    let elapsed = started.elapsed();
    for producer in producers {
        producer.finish()?;
    }

    println!(
        "\n{:<8} | {:>9} | {:>11} | {:>11} | last seen (every 1000th)",
        "channel", "messages", "p50 latency", "p99 latency"
    );
    println!("{}", "-".repeat(100));
    for (label, s) in ["ticks", "alerts", "log"].iter().zip(&mut seen) {
        if s.count != n {
            return Err(format!("{label}: {} of {n} messages arrived", s.count).into());
        }
        let (p50, p99) = (s.percentile(50), s.percentile(99));
        println!(
            "{label:<8} | {:>9} | {:>8} ns | {:>8} ns | {}",
            s.count, p50, p99, s.last
        );
    }
    println!(
        "\nevery message checked, in order per channel; {} messages in {:.2} s, {wakes} returns from Select",
        3 * n,
        elapsed.as_secs_f64()
    );
    Ok(())
}

fn producer(args: &[String]) -> Res<()> {
    EXAMPLE.pin_peer()?;
    let name = common::arg(args, 1)?;
    let n: u64 = common::arg(args, 2)?.parse()?;
    let stopped = "the gatherer stopped receiving";
    match common::arg(args, 0)? {
        // Bursts of 100 ticks, a pause between bursts.
        "ticks" => {
            let tx = spsc::Sender::<Tick>::open(name)?;
            for seq in 0..n {
                let tick = Tick {
                    seq,
                    sent_ns: now_ns(),
                    px: 100.0 + (seq % 97) as f64 * 0.25,
                    qty: (seq % 500) as u32 + 1,
                    side: (seq % 2) as u32,
                };
                tx.send(tick).map_err(|_| stopped)?;
                if seq % 100 == 99 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
        // One alert at a time, spaced out: the gatherer is asleep when
        // each arrives.
        "alerts" => {
            let tx = mpsc::Sender::<Alert>::open(name)?;
            for seq in 0..n {
                std::thread::sleep(Duration::from_micros(20));
                let alert = Alert {
                    seq,
                    sent_ns: now_ns(),
                    level: (seq % 3) as u32,
                    code: 500 + (seq % 7) as u32,
                };
                tx.send(alert).map_err(|_| stopped)?;
            }
        }
        // Text lines: "seq sent_ns message".
        "log" => {
            let tx = bytes::Sender::open(name)?;
            for seq in 0..n {
                let line = format!(
                    "{seq} {} GET /orders/{} 200 {}us",
                    now_ns(),
                    seq % 1000,
                    seq % 300
                );
                tx.send(line.as_bytes()).map_err(|_| stopped)?;
                if seq % 10 == 9 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
        other => return Err(format!("unknown producer {other}").into()),
    }
    Ok(())
}
