//! shmchan against a pipe, between two processes, in one command:
//!
//! ```text
//! cargo run --release --example demo                     # 5 000 000 messages, 200 000 round trips
//! cargo run --release --example demo -- 1000000 50000    # [MESSAGES] [ROUND_TRIPS]
//! SHMCHAN_DEMO_NO_PIN=1 cargo run --release --example demo  # no pinning
//! ```
//!
//! The demo starts its own peer process (it runs itself again as
//! `demo --peer <role> ...`) and measures, in the same run:
//!
//! 1. throughput: `MESSAGES` 24-byte `Tick`s one way, child to parent, over
//!    an spsc channel with `send`/`recv`, then with `send_batch`/`recv_batch`
//!    (batches of 64), then over a pipe (through a 64 KiB `BufWriter`, and
//!    with one `write(2)` per message);
//! 2. round-trip latency: ping-pong over two spsc channels, and over a pair
//!    of pipes (one `write(2)` and one `read_exact` each way).
//!
//! Every message is checked: the receiver compares each one with what the
//! sender must have sent (sequence number and every field), and the demo
//! stops with an error on the first mismatch, a missing or an extra message.
//! Each measurement runs three times, interleaved, and the table quotes
//! medians; "vs pipe" compares with the pipe's better figure.
//!
//! With two or more CPUs, the demo and its peer are pinned to different CPUs
//! (it says so), where spinning endpoints belong. A pipe's wake-up can be
//! cheaper when both ends share a CPU, so the pipe is measured a second time
//! unpinned, placed by the scheduler.

#[path = "common/mod.rs"]
mod common;

use common::cpus::pin_to;
use common::{stdout_file, Example, Peer, Res};
use shmchan::spsc::{Receiver, Sender};
use shmchan::{Options, RecvTimeoutError, ShmSafe};
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// One market-data tick: 24 bytes, no padding. `ShmSafe` sits beside
/// bytemuck's derives, which the pipe comparison uses to write ticks as
/// bytes.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable, shmchan::ShmSafe)]
#[repr(C)]
struct Tick {
    ts: u64,
    px: f64,
    qty: u32,
    side: u32,
}

const TICK_BYTES: usize = size_of::<Tick>();
/// Messages per `send_batch` / `recv_batch`.
const BATCH: usize = 64;
/// Capacity of the throughput channels, in messages.
const CAPACITY: usize = 4096;
/// Buffer of the pipe's `BufWriter` and `BufReader`.
const PIPE_BUFFER: usize = 64 * 1024;
/// Each measurement runs this many times, interleaved with the others.
const ROUNDS: usize = 3;
/// Round trips before the timed ones.
const WARM_UP: u64 = 10_000;
/// One write(2) per message runs on this fraction of the messages.
const WRITE_SHARE: u64 = 20;
/// The pipe's round trips are this fraction of spsc's.
const PIPE_RT_SHARE: u64 = 40;
/// The peer's CPU, when pinned, and the variable that turns pinning off.
const EXAMPLE: Example = Example {
    peer_cpu_var: "SHMCHAN_DEMO_PEER_CPU",
    no_pin_var: "SHMCHAN_DEMO_NO_PIN",
};

/// The `i`th tick a source sends: every field depends on `i`, and it is
/// cheap to make and to check (both are done for every message).
#[inline]
fn tick(i: u64) -> Tick {
    Tick {
        ts: i,
        px: i as f64 * 0.25,
        qty: (i as u32) ^ 0x5a5a_5a5a,
        side: (i & 1) as u32,
    }
}

/// What an echo peer sends back for `t`.
fn echo(t: Tick) -> Tick {
    Tick {
        qty: t.qty.wrapping_add(1),
        ..t
    }
}

fn check(got: Tick, want: Tick, what: &str) -> Res<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: message {} is wrong: got {got:?}, expected {want:?}",
            want.ts
        )
        .into())
    }
}

fn main() -> ExitCode {
    let peer_label =
        |args: &[String]| format!("demo peer {}", args.first().map_or("?", String::as_str));
    common::main("demo", peer_label, peer, run)
}

// ---------------------------------------------------------------------------
// The parent: runs the measurements and prints the table.

/// The command line, for a bad count.
const USAGE: &str = "demo [MESSAGES (default 5000000)] [ROUND_TRIPS (default 200000)]";

/// One transport's figures over the rounds.
#[derive(Default)]
struct Series {
    /// Messages per second, one per round.
    rates: Vec<f64>,
    /// Nanoseconds per round trip, every sample of every round.
    round_trips: Vec<u64>,
}

impl Series {
    fn add(&mut self, rate: Option<f64>, round_trips: Option<Vec<u64>>) {
        self.rates.extend(rate);
        self.round_trips.extend(round_trips.into_iter().flatten());
    }

    fn rate(&self) -> Option<f64> {
        (!self.rates.is_empty()).then(|| median(&self.rates))
    }

    fn round_trip(&self, p: usize) -> Option<u64> {
        (!self.round_trips.is_empty()).then(|| percentile(&self.round_trips, p))
    }
}

fn run(args: &[String]) -> Res<()> {
    let messages = common::count(args.first(), 5_000_000, "MESSAGES", USAGE)?;
    let round_trips = common::count(args.get(1), 200_000, "ROUND_TRIPS", USAGE)?;
    let write_messages = (messages / WRITE_SHARE).max(2);
    let pipe_rts = (round_trips / PIPE_RT_SHARE).max(2);

    println!(
        "shmchan demo: {TICK_BYTES}-byte messages between two processes, \
         {ROUNDS} interleaved rounds"
    );
    println!(
        "  one way: {messages} messages per run ({write_messages} with one write(2) per \
         message); round trips: {round_trips} (pipe: {pipe_rts}), after {WARM_UP} warm-up"
    );
    let place = Placement::choose();
    let peer = place.peer();
    let pinned = place.pinned.is_some();

    let [mut spsc, mut batch, mut pipe, mut pipe_free, mut pipe_write]: [Series; 5] =
        Default::default();
    for round in 1..=ROUNDS {
        let spsc_rate = spsc_throughput(messages, false, peer)?;
        let batch_rate = spsc_throughput(messages, true, peer)?;
        let pipe_rate = pipe_throughput(messages, true, peer)?;
        let write_rate = pipe_throughput(write_messages, false, peer)?;
        let free_rate = place.unpinned(|| pipe_throughput(messages, true, None))?;
        let spsc_rt = spsc_round_trips(round_trips, peer)?;
        let pipe_rt = pipe_round_trips(pipe_rts, peer)?;
        let free_rt = place.unpinned(|| pipe_round_trips(pipe_rts, None))?;
        print!(
            "  round {round}: M msg/s: spsc {:.1}, batch {:.1}, pipe {:.1}",
            spsc_rate / 1e6,
            batch_rate / 1e6,
            pipe_rate / 1e6
        );
        if pinned {
            print!(" (unpinned {:.1})", free_rate / 1e6);
        }
        print!(
            ", pipe per write {:.2} | round trip ns: spsc {}, pipe {}",
            write_rate / 1e6,
            percentile(&spsc_rt, 50),
            percentile(&pipe_rt, 50)
        );
        if pinned {
            print!(" (unpinned {})", percentile(&free_rt, 50));
        }
        println!();
        spsc.add(Some(spsc_rate), Some(spsc_rt));
        batch.add(Some(batch_rate), None);
        pipe.add(Some(pipe_rate), Some(pipe_rt));
        pipe_write.add(Some(write_rate), None);
        if pinned {
            pipe_free.add(Some(free_rate), Some(free_rt));
        }
    }

    let pipe_label = if pinned {
        "pipe, pinned like spsc"
    } else {
        "pipe"
    };
    let rows: [(&str, &mut Series); 5] = [
        ("shmchan spsc, send/recv", &mut spsc),
        ("shmchan spsc, send_batch/recv_batch (64)", &mut batch),
        (pipe_label, &mut pipe),
        ("pipe, unpinned (placed by the scheduler)", &mut pipe_free),
        ("pipe, one write(2) per message", &mut pipe_write),
    ];
    print_table(rows);
    Ok(())
}

fn print_table(mut rows: [(&str, &mut Series); 5]) {
    for (_, series) in &mut rows {
        series.round_trips.sort_unstable();
    }
    // The pipe to beat: the better of its placements (rows 2 and 3).
    let pipes = &rows[2..4];
    let best_rate = pipes
        .iter()
        .filter_map(|(_, s)| s.rate())
        .fold(0.0, f64::max);
    let best_rt = pipes.iter().filter_map(|(_, s)| s.round_trip(50)).min();

    let widths = [42, 8, 7, 8, 10, 10, 8];
    let header = [
        "transport (medians of the rounds)",
        "M msg/s",
        "ns/msg",
        "vs pipe",
        "RT median",
        "RT p99",
        "vs pipe",
    ];
    let line = |cells: [String; 7]| {
        let mut text = format!("{:<w$}", cells[0], w = widths[0]);
        for (cell, width) in cells[1..].iter().zip(&widths[1..]) {
            text += &format!(" | {cell:>width$}");
        }
        println!("{text}");
    };
    println!();
    line(header.map(String::from));
    println!("{}", "-".repeat(widths.iter().sum::<usize>() + 3 * 6));
    let dash = || "-".to_string();
    for (name, series) in &rows {
        if series.rates.is_empty() {
            continue;
        }
        let (rate_cells, rt_cells) = (
            series.rate().map_or_else(
                || [dash(), dash(), dash()],
                |rate| {
                    [
                        format!("{:.2}", rate / 1e6),
                        format!("{:.1}", 1e9 / rate),
                        ratio(rate / best_rate),
                    ]
                },
            ),
            match (series.round_trip(50), series.round_trip(99), best_rt) {
                (Some(median), Some(p99), Some(best)) => [
                    format!("{median} ns"),
                    format!("{p99} ns"),
                    ratio(best as f64 / median as f64),
                ],
                _ => [dash(), dash(), dash()],
            },
        );
        let [a, b, c] = rate_cells;
        let [d, e, f] = rt_cells;
        line([name.to_string(), a, b, c, d, e, f]);
    }
    println!(
        "\n\"vs pipe\" compares with the best pipe figure above (of the pipe rows \
         with a 64 KiB BufWriter on the sending side\nand write+read_exact round trips): \
         throughput / the pipe's, and the pipe's round trip / this one; above 1x is faster."
    );
}

/// Where the two processes run.
struct Placement {
    /// The CPUs this process was allowed at start, to undo the pinning.
    all: Vec<usize>,
    /// This process's CPU and the peer's, when pinned.
    pinned: Option<(usize, usize)>,
}

impl Placement {
    /// Pins this process to one CPU and picks another for the peer, if
    /// there are two and pinning is not turned off, and says what it did.
    fn choose() -> Self {
        let (all, pinned) = EXAMPLE.place("demo", "; the pipe is also measured unpinned");
        Self { all, pinned }
    }

    fn peer(&self) -> Option<usize> {
        self.pinned.map(|(_, peer)| peer)
    }

    /// Runs `measure` with this process, and so the peer it starts,
    /// free to run on any CPU; then pins this process again.
    fn unpinned<R>(&self, measure: impl FnOnce() -> Res<R>) -> Res<R> {
        let Some((mine, _)) = self.pinned else {
            return measure();
        };
        pin_to(&self.all)?;
        let result = measure();
        pin_to(&[mine])?;
        result
    }
}

fn ratio(r: f64) -> String {
    if r < 1.0 {
        format!("{r:.2}x")
    } else {
        format!("{r:.1}x")
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The `p`th percentile of `samples`.
fn percentile(samples: &[u64], p: usize) -> u64 {
    let mut sorted;
    let samples = if samples.is_sorted() {
        samples
    } else {
        sorted = samples.to_vec();
        sorted.sort_unstable();
        &sorted
    };
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

/// A fresh channel name for this run.
fn fresh_name(tag: &str) -> String {
    common::fresh_name("demo", tag)
}

/// Starts a peer in `role` with `args`, its standard input and output
/// pipes if `pipes`.
fn spawn_peer(role: &'static str, args: &[&str], cpu: Option<usize>, pipes: bool) -> Res<Peer> {
    let io = || if pipes { Stdio::piped() } else { Stdio::null() };
    EXAMPLE.spawn(role, args, cpu, io(), io())
}

/// `recv` for the first message: a peer that dies before it attaches (so
/// `recv` would wait for it forever) is noticed. Once the sender has
/// attached, `recv` itself notices its death.
fn recv_first<T: ShmSafe>(rx: &Receiver<T>, peer: &mut Peer) -> Res<T> {
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(value) => return Ok(value),
            Err(RecvTimeoutError::Timeout) => peer.alive()?,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("peer {} left before sending", peer.role).into())
            }
        }
    }
}

/// Messages per second from the child over an spsc channel. The clock starts
/// at the first message, so start-up is not counted.
fn spsc_throughput(n: u64, batched: bool, cpu: Option<usize>) -> Res<f64> {
    let what = if batched { "spsc batch" } else { "spsc" };
    let name = fresh_name("stream");
    let rx = Receiver::<Tick>::create_with(&name, &Options::new().capacity(CAPACITY))?;
    let role = if batched {
        "spsc-batch-source"
    } else {
        "spsc-source"
    };
    let mut peer = spawn_peer(role, &[&name, &n.to_string()], cpu, false)?;
    let gone = |next: u64| format!("{what}: the peer left after {next} of {n} messages");

    check(recv_first(&rx, &mut peer)?, tick(0), what)?;
    let start = Instant::now();
    let mut next = 1;
    if batched {
        let mut buf = [tick(0); BATCH];
        while next < n {
            let got = rx.recv_batch(&mut buf).map_err(|_| gone(next))?;
            for &t in &buf[..got] {
                check(t, tick(next), what)?;
                next += 1;
            }
        }
    } else {
        while next < n {
            let t = rx.recv().map_err(|_| gone(next))?;
            check(t, tick(next), what)?;
            next += 1;
        }
    }
    let elapsed = start.elapsed();
    if next != n {
        return Err(format!("{what}: received {next} messages, {n} were sent").into());
    }
    // Exactly `n`: after them, the channel reports the sender gone.
    if let Ok(extra) = rx.recv() {
        return Err(format!("{what}: an extra message arrived: {extra:?}").into());
    }
    peer.finish()?;
    Ok((n - 1) as f64 / elapsed.as_secs_f64())
}

/// Messages per second from the child over a pipe, read through a
/// `BufReader`; the child writes through a `BufWriter` if `buffered`, else
/// with one `write(2)` per message.
fn pipe_throughput(n: u64, buffered: bool, cpu: Option<usize>) -> Res<f64> {
    let what = if buffered { "pipe" } else { "pipe per write" };
    let role = if buffered {
        "pipe-source"
    } else {
        "pipe-write-source"
    };
    let mut peer = spawn_peer(role, &[&n.to_string()], cpu, true)?;
    drop(peer.child.stdin.take());
    let stdout = peer.child.stdout.take().ok_or("no pipe from the peer")?;
    let mut from = BufReader::with_capacity(PIPE_BUFFER, stdout);
    let fail = |next: u64| move |err| format!("{what}: after {next} of {n} messages: {err}");

    check(read_tick(&mut from).map_err(fail(0))?, tick(0), what)?;
    let start = Instant::now();
    for next in 1..n {
        check(read_tick(&mut from).map_err(fail(next))?, tick(next), what)?;
    }
    let elapsed = start.elapsed();
    if from.read(&mut [0u8; 1])? != 0 {
        return Err(format!("{what}: more than {n} messages arrived").into());
    }
    peer.finish()?;
    Ok((n - 1) as f64 / elapsed.as_secs_f64())
}

/// Nanoseconds of each of `n` round trips over two spsc channels.
fn spsc_round_trips(n: u64, cpu: Option<usize>) -> Res<Vec<u64>> {
    let (ping_name, pong_name) = (fresh_name("ping"), fresh_name("pong"));
    let ping = Sender::<Tick>::create(&ping_name, 64)?;
    let pong = Receiver::<Tick>::create(&pong_name, 64)?;
    let mut peer = spawn_peer("spsc-echo", &[&ping_name, &pong_name], cpu, false)?;
    let gone = || "spsc round trip: the peer left";

    ping.send(tick(0)).map_err(|_| gone())?;
    check(
        recv_first(&pong, &mut peer)?,
        echo(tick(0)),
        "spsc round trip",
    )?;
    for i in 1..WARM_UP {
        ping.send(tick(i)).map_err(|_| gone())?;
        check(
            pong.recv().map_err(|_| gone())?,
            echo(tick(i)),
            "spsc round trip",
        )?;
    }
    let mut samples = Vec::with_capacity(n as usize);
    let mut before = Instant::now();
    for i in 0..n {
        let t = tick(i);
        ping.send(t).map_err(|_| gone())?;
        let back = pong.recv().map_err(|_| gone())?;
        let now = Instant::now();
        check(back, echo(t), "spsc round trip")?;
        samples.push((now - before).as_nanos() as u64);
        before = now;
    }
    drop(ping); // the peer's `recv` fails and it exits
    peer.finish()?;
    Ok(samples)
}

/// Reads one `Tick` record.
fn read_tick(from: &mut impl Read) -> std::io::Result<Tick> {
    let mut record = [0u8; TICK_BYTES];
    from.read_exact(&mut record)?;
    Ok(bytemuck::pod_read_unaligned(&record))
}

/// Nanoseconds of each of `n` round trips over a pair of pipes.
fn pipe_round_trips(n: u64, cpu: Option<usize>) -> Res<Vec<u64>> {
    let mut peer = spawn_peer("pipe-echo", &[], cpu, true)?;
    let mut to = peer.child.stdin.take().ok_or("no pipe to the peer")?;
    let mut from = peer.child.stdout.take().ok_or("no pipe from the peer")?;
    let mut round_trip = |t: Tick| -> Res<()> {
        to.write_all(bytemuck::bytes_of(&t))?;
        let back = read_tick(&mut from).map_err(|err| format!("pipe round trip: {err}"))?;
        check(back, echo(t), "pipe round trip")
    };
    for i in 0..WARM_UP.min(n) {
        round_trip(tick(i))?;
    }
    let mut samples = Vec::with_capacity(n as usize);
    let mut before = Instant::now();
    for i in 0..n {
        round_trip(tick(i))?;
        let now = Instant::now();
        samples.push((now - before).as_nanos() as u64);
        before = now;
    }
    drop(to); // the peer reads end-of-file and exits
    peer.finish()?;
    Ok(samples)
}

// ---------------------------------------------------------------------------
// The peer: `demo --peer <role> <args>`.

fn peer(args: &[String]) -> Res<()> {
    EXAMPLE.pin_peer()?;
    let arg = |i: usize| common::arg(args, i);
    let count = |i: usize| -> Res<u64> { Ok(arg(i)?.parse()?) };
    match arg(0)? {
        "spsc-source" => {
            let tx = Sender::<Tick>::open(arg(1)?)?;
            for i in 0..count(2)? {
                tx.send(tick(i)).map_err(|_| "the demo stopped receiving")?;
            }
        }
        "spsc-batch-source" => {
            let tx = Sender::<Tick>::open(arg(1)?)?;
            let n = count(2)?;
            let mut buf = [tick(0); BATCH];
            let mut i = 0;
            while i < n {
                let len = BATCH.min((n - i) as usize);
                for (j, slot) in buf[..len].iter_mut().enumerate() {
                    *slot = tick(i + j as u64);
                }
                tx.send_batch(&buf[..len])
                    .map_err(|_| "the demo stopped receiving")?;
                i += len as u64;
            }
        }
        "spsc-echo" => {
            let ping = Receiver::<Tick>::open(arg(1)?)?;
            let pong = Sender::<Tick>::open(arg(2)?)?;
            for t in &ping {
                pong.send(echo(t))
                    .map_err(|_| "the demo stopped receiving")?;
            }
        }
        "pipe-source" => {
            let mut to = BufWriter::with_capacity(PIPE_BUFFER, stdout_file()?);
            for i in 0..count(1)? {
                to.write_all(bytemuck::bytes_of(&tick(i)))?;
            }
            to.flush()?;
        }
        "pipe-write-source" => {
            let mut to = stdout_file()?;
            for i in 0..count(1)? {
                to.write_all(bytemuck::bytes_of(&tick(i)))?;
            }
        }
        "pipe-echo" => {
            let mut from = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
            let mut to = stdout_file()?;
            loop {
                let t = match read_tick(&mut from) {
                    Ok(t) => t,
                    Err(err) if err.kind() == ErrorKind::UnexpectedEof => break,
                    Err(err) => return Err(err.into()),
                };
                to.write_all(bytemuck::bytes_of(&echo(t)))?;
            }
        }
        other => return Err(format!("unknown role {other:?}").into()),
    }
    Ok(())
}
