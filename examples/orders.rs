//! Orders of every shape between two processes over `shmchan::serde`, next
//! to a Unix socket carrying the same encodings, in one command:
//!
//! ```text
//! cargo run --release --features serde --example orders                  # 1 000 000 events, 100 000 round trips
//! cargo run --release --features serde --example orders -- 200000 20000  # [EVENTS] [ROUND_TRIPS]
//! ```
//!
//! A gateway process (this example run again as `orders --peer ...`) sends
//! a stream of `Event`s: new orders with a `String` symbol and account and
//! an optional limit, fills carrying a `Vec` of executions, cancels with a
//! reason, heartbeats. They are the serde types a gateway already has; no
//! field is `Copy`-only or fixed-size. The parent checks every event
//! against what the gateway must have sent and keeps a position per
//! symbol, and measures, in three interleaved rounds (medians quoted):
//!
//! 1. one way: events per second over a serde channel, and over a Unix
//!    socket carrying the same postcard encodings, length-prefixed,
//!    through 64 KiB buffers;
//! 2. round trips: an event out and its echo back, over two serde channels
//!    and over the socket (one `write(2)` and one read each way).
//!
//! With two or more CPUs the two processes are pinned to different CPUs.

#[path = "common/mod.rs"]
mod common;
#[path = "common/orders.rs"]
mod orders;

use common::{fresh_name, stdout_file, Example, Peer, Res};
use orders::{echo, event, Event, Side, SYMBOLS};
use shmchan::serde::{Receiver, RecvTimeoutError, Sender};
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Capacity of the one-way channel, in bytes.
const CAPACITY: usize = 1 << 20;
/// The socket's buffers, as large as a pipe's.
const SOCKET_BUFFER: usize = 64 * 1024;
const ROUNDS: usize = 3;
const WARM_UP: u64 = 10_000;
const EXAMPLE: Example = Example {
    peer_cpu_var: "SHMCHAN_ORDERS_PEER_CPU",
    no_pin_var: "SHMCHAN_ORDERS_NO_PIN",
};
const USAGE: &str = "orders [EVENTS (default 1000000)] [ROUND_TRIPS (default 100000)]";

fn check(got: &Event, i: u64, what: &str) -> Res<()> {
    let want = event(i);
    if *got == want {
        Ok(())
    } else {
        Err(format!("{what}: event {i} is wrong: got {got:?}, expected {want:?}").into())
    }
}

/// What the receiver does with each event: a filled quantity per symbol
/// and side, so the events are used, not only compared.
#[derive(Default)]
struct Book {
    sides: BTreeMap<u64, (Side, usize)>,
    filled: [[u64; 2]; 6],
}

impl Book {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::New(order) => {
                let symbol = SYMBOLS.iter().position(|s| *s == order.symbol);
                self.sides
                    .insert(order.id, (order.side, symbol.unwrap_or(0)));
            }
            Event::Filled { order, fills } => {
                if let Some(&(side, symbol)) = self.sides.get(order) {
                    let qty: u64 = fills.iter().map(|f| u64::from(f.qty)).sum();
                    self.filled[symbol][side as usize] += qty;
                }
            }
            Event::Cancel { order, .. } => {
                self.sides.remove(order);
            }
            Event::Heartbeat { .. } => {}
        }
        // Orders are filled within ten events: older ones are done.
        while self.sides.len() > 16 {
            self.sides.pop_first();
        }
    }
}

fn main() -> ExitCode {
    let label =
        |args: &[String]| format!("orders peer {}", args.first().map_or("?", String::as_str));
    common::main("orders", label, peer, run)
}

fn run(args: &[String]) -> Res<()> {
    let events = common::count(args.first(), 1_000_000, "EVENTS", USAGE)?;
    let round_trips = common::count(args.get(1), 100_000, "ROUND_TRIPS", USAGE)?;
    let mut buf = vec![0u8; 4096];
    let encoded: usize = (0..events)
        .map(|i| postcard::to_slice(&event(i), &mut buf).map(|b| b.len()))
        .sum::<Result<_, _>>()?;
    let mean = encoded as f64 / events as f64;
    println!(
        "shmchan orders: {events} serde events one way (postcard, {mean:.1} bytes on average), \
         {round_trips} round trips, {ROUNDS} interleaved rounds"
    );
    let (_, pinned) = EXAMPLE.place("orders", "");
    let cpu = pinned.map(|(_, peer)| peer);

    let mut rates = [vec![], vec![]];
    let mut trips = [vec![], vec![]];
    let mut book = Book::default();
    for round in 1..=ROUNDS {
        let shm = serde_one_way(events, cpu, &mut book)?;
        let socket = socket_one_way(events, cpu, &mut book)?;
        let shm_rt = serde_round_trips(round_trips, cpu)?;
        let socket_rt = socket_round_trips(round_trips, cpu)?;
        println!(
            "  round {round}: k events/s: serde channel {:.0}, socket {:.0} | round trip ns: \
             serde channel {}, socket {}",
            shm / 1e3,
            socket / 1e3,
            percentile(&shm_rt, 50),
            percentile(&socket_rt, 50)
        );
        rates[0].push(shm);
        rates[1].push(socket);
        trips[0].extend(shm_rt);
        trips[1].extend(socket_rt);
    }

    println!();
    println!(
        "{:<34} | {:>10} | {:>8} | {:>9} | {:>9} | {:>7}",
        "transport (medians)", "k events/s", "MB/s", "RT median", "RT p99", "vs sock"
    );
    println!("{}", "-".repeat(34 + 10 + 8 + 9 + 9 + 7 + 15));
    let socket_rate = median(&rates[1]);
    for (k, name) in ["shmchan::serde channel", "Unix socket, same encodings"]
        .iter()
        .enumerate()
    {
        trips[k].sort_unstable();
        let rate = median(&rates[k]);
        println!(
            "{name:<34} | {:>10.0} | {:>8.1} | {:>9} | {:>9} | {:>6.1}x",
            rate / 1e3,
            rate * mean / 1e6,
            percentile(&trips[k], 50),
            percentile(&trips[k], 99),
            rate / socket_rate
        );
    }
    // Every pass (two transports, each round) books the same events.
    let filled: u64 = book.filled.iter().flatten().sum::<u64>() / (2 * ROUNDS as u64);
    println!(
        "\nevery event checked and booked; {filled} shares filled per pass, over {} symbols",
        SYMBOLS.len()
    );
    Ok(())
}

/// Events per second over a serde channel, the gateway sending.
fn serde_one_way(n: u64, cpu: Option<usize>, book: &mut Book) -> Res<f64> {
    let name = fresh_name("orders", "events");
    let rx = Receiver::<Event>::create(&name, CAPACITY)?;
    let peer = EXAMPLE.spawn(
        "serde-source",
        &[&name, &n.to_string()],
        cpu,
        Stdio::null(),
        Stdio::inherit(),
    )?;
    let mut peer = peer;
    check(&recv_first(&rx, &mut peer)?, 0, "serde channel")?;
    let start = Instant::now();
    let mut next = 1;
    for got in &rx {
        check(&got, next, "serde channel")?;
        book.apply(&got);
        next += 1;
    }
    let elapsed = start.elapsed();
    if next != n {
        return Err(format!("serde channel: {next} of {n} events arrived").into());
    }
    peer.finish()?;
    Ok((n - 1) as f64 / elapsed.as_secs_f64())
}

/// Events per second over a Unix socket, length-prefixed postcard.
fn socket_one_way(n: u64, cpu: Option<usize>, book: &mut Book) -> Res<f64> {
    let (ours, theirs) = UnixStream::pair()?;
    let peer = EXAMPLE.spawn(
        "socket-source",
        &[&n.to_string()],
        cpu,
        Stdio::null(),
        Stdio::from(OwnedFd::from(theirs)),
    )?;
    let mut from = BufReader::with_capacity(SOCKET_BUFFER, ours);
    let mut buf = vec![0u8; 4096];
    check(&read_event(&mut from, &mut buf)?, 0, "socket")?;
    let start = Instant::now();
    for i in 1..n {
        let got = read_event(&mut from, &mut buf)?;
        check(&got, i, "socket")?;
        book.apply(&got);
    }
    let elapsed = start.elapsed();
    peer.finish()?;
    Ok((n - 1) as f64 / elapsed.as_secs_f64())
}

/// Nanoseconds of each of `n` round trips over two serde channels.
fn serde_round_trips(n: u64, cpu: Option<usize>) -> Res<Vec<u64>> {
    let (out_name, back_name) = (fresh_name("orders", "out"), fresh_name("orders", "back"));
    let out = Sender::<Event>::create(&out_name, 4096)?;
    let back = Receiver::<Event>::create(&back_name, 4096)?;
    let peer = EXAMPLE.spawn(
        "serde-echo",
        &[&out_name, &back_name],
        cpu,
        Stdio::null(),
        Stdio::inherit(),
    )?;
    let mut peer = peer;
    out.send(&event(0))?;
    if recv_first(&back, &mut peer)? != echo(event(0)) {
        return Err("serde round trip: a wrong echo".into());
    }
    let samples = time_round_trips(n, |e| {
        out.send(e)?;
        Ok(back.recv()?)
    })?;
    drop(out);
    peer.finish()?;
    Ok(samples)
}

/// Nanoseconds of each of `n` round trips over a Unix socket.
fn socket_round_trips(n: u64, cpu: Option<usize>) -> Res<Vec<u64>> {
    let (mut ours, theirs) = UnixStream::pair()?;
    let fd = OwnedFd::from(theirs);
    let peer = EXAMPLE.spawn(
        "socket-echo",
        &[],
        cpu,
        Stdio::from(fd.try_clone()?),
        Stdio::from(fd),
    )?;
    let mut buf = vec![0u8; 4096];
    let mut reader = ours.try_clone()?;
    let samples = time_round_trips(n, |e| {
        write_event(&mut ours, e, &mut buf)?;
        read_event(&mut reader, &mut buf)
    })?;
    ours.shutdown(std::net::Shutdown::Both)?;
    peer.finish()?;
    Ok(samples)
}

/// Times `n` round trips through `trip` after a warm-up, checking each echo.
fn time_round_trips(n: u64, mut trip: impl FnMut(&Event) -> Res<Event>) -> Res<Vec<u64>> {
    for i in 0..WARM_UP {
        let e = event(i);
        if trip(&e)? != echo(e) {
            return Err(format!("round trip {i}: a wrong echo").into());
        }
    }
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..n {
        let e = event(i);
        let start = Instant::now();
        let got = trip(&e)?;
        samples.push(start.elapsed().as_nanos() as u64);
        if got != echo(e) {
            return Err(format!("round trip {i}: a wrong echo").into());
        }
    }
    Ok(samples)
}

/// `recv` for the first event: a peer that dies before it attaches (so
/// `recv` would wait for it forever) is noticed. Once the sender has
/// attached, `recv` itself notices its death.
fn recv_first(rx: &Receiver<Event>, peer: &mut Peer) -> Res<Event> {
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(event) => return Ok(event),
            Err(RecvTimeoutError::Timeout) => peer.alive()?,
            Err(err) => return Err(format!("peer {}: {err}", peer.role).into()),
        }
    }
}

/// Writes `event` as a 4-byte length and its postcard encoding.
fn write_event(to: &mut impl Write, event: &Event, buf: &mut [u8]) -> Res<()> {
    let len = postcard::to_slice(event, &mut buf[4..])?.len();
    buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
    to.write_all(&buf[..4 + len])?;
    Ok(())
}

fn read_event(from: &mut impl Read, buf: &mut [u8]) -> Res<Event> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    let bytes = buf
        .get_mut(..len)
        .ok_or("a socket record longer than any event")?;
    from.read_exact(bytes)?;
    Ok(postcard::from_bytes(bytes)?)
}

fn peer(args: &[String]) -> Res<()> {
    EXAMPLE.pin_peer()?;
    let arg = |i: usize| common::arg(args, i);
    let stopped = "the parent stopped receiving";
    match arg(0)? {
        "serde-source" => {
            let tx = Sender::<Event>::open(arg(1)?)?;
            for i in 0..arg(2)?.parse()? {
                tx.send(&event(i)).map_err(|_| stopped)?;
            }
        }
        "socket-source" => {
            let mut to = BufWriter::with_capacity(SOCKET_BUFFER, stdout_file()?);
            let mut buf = vec![0u8; 4096];
            for i in 0..arg(1)?.parse()? {
                write_event(&mut to, &event(i), &mut buf)?;
            }
            to.flush()?;
        }
        "serde-echo" => {
            let out = Receiver::<Event>::open(arg(1)?)?;
            let back = Sender::<Event>::open(arg(2)?)?;
            for e in &out {
                back.send(&echo(e)).map_err(|_| stopped)?;
            }
        }
        "socket-echo" => {
            let (mut from, mut to) = (std::io::stdin().lock(), stdout_file()?);
            let mut buf = vec![0u8; 4096];
            // Until the parent shuts the socket down.
            while let Ok(e) = read_event(&mut from, &mut buf) {
                write_event(&mut to, &echo(e), &mut buf)?;
            }
        }
        other => return Err(format!("unknown role {other}").into()),
    }
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn percentile(sorted_or_not: &[u64], p: usize) -> u64 {
    let mut sorted = sorted_or_not.to_vec();
    sorted.sort_unstable();
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}
