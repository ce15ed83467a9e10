//! The whole comparison, short: every shmchan flavor next to its floor and
//! to what users have today, in one run, in one table.
//!
//! ```text
//! cargo run --release --example compare                 # about a minute and a half
//! cargo run --release --example compare -- --quick      # a few seconds: checks that it runs
//! cargo run --release --example compare -- --out DIR    # where the report goes
//! cargo run --release --example compare -- --only trip   # the workloads whose name has "trip"
//! ```
//!
//! It runs the benchmarks' own workloads (`benches/common`: the same peer
//! processes, the same checks of every message) with its own clock instead
//! of criterion's, and prints one table. Rows are transport × workload:
//!
//! - round trip, spinning: floor `raw atomic` (two bare shared words); the
//!   second floor, `raw rings`, two minimal Lamport rings, one each way
//!   (what any ring pays: a message and its index are two cache lines);
//! - round trip, asleep: floor `raw futex` (two bare words, `FUTEX_WAIT` /
//!   `FUTEX_WAKE`), and the pipe and socket, which always sleep;
//! - one way, 8 B: floor `raw ring` (a minimal hand-written Lamport ring);
//!   in batches of 64, floor `raw ring, batch 64`. The pipe and the socket
//!   carry each message with one `write(2)`, as a message transport must
//!   (a writer that buffers, shown as `pipe, 64 KiB writes`, delivers
//!   nothing until its buffer fills);
//! - one way, 24 B (the demo's tick), per message and in batches of 64:
//!   floor `raw ring` with 24-byte slots, against spsc and a pipe;
//! - one way, 64 B to 64 KiB: floor `memcpy` of the message in one thread;
//!   the second floor, `raw byte ring`, is what a hand-written program pays
//!   to carry the bytes to another process: a minimal ring of fixed slots,
//!   `memcpy` in and `memcpy` out. `bytes` reads each message in place;
//!   `bytes, recv_into` copies it out into a `Vec`. At 64 B, `spsc, [u8;
//!   64]` carries the same messages through a typed channel, what `bytes`
//!   is held to for small messages. `time ÷ floor` divides by `memcpy`.
//!
//! Columns: the median and the 99th percentile of the time per round trip
//! (each one timed on its own) or per message (the mean over one sample of
//! a few milliseconds of streaming), then `time ÷ floor` (the median over
//! the floor's: 1.25 is 25% slower than the floor) and `pipe ÷ time` (the
//! pipe's median over this one: 50 is fifty times faster than the pipe;
//! blank where no pipe does the same work).
//!
//! The host may move its virtual CPUs between cores that share a cache and
//! cores that do not, which changes every figure severalfold. So each
//! workload is measured in rounds (5, or 1 with `--quick`), every row once
//! per round, one after the other: the median and p99 pool the samples of
//! all rounds, and each ratio is the median of the ratios of one round,
//! whose rows ran moments apart.
//!
//! The table is written to `DIR/compare.md` (Markdown) and `DIR/compare.svg`
//! (a bar chart of the medians, log scale, with the p99 marked), `DIR`
//! being `target/compare` unless `--out` says otherwise. With two or more
//! CPUs, this process and its peers are pinned to different CPUs; set
//! `SHMCHAN_BENCH_NO_PIN` to turn that off.

#[path = "../benches/common/mod.rs"]
#[allow(dead_code)] // the criterion plumbing and some helpers are the benches' alone
mod common;

use common::echo::{self, Broadcast, Client, Echo, Mpmc, Mpsc, Spsc};
use common::multi::{Cpus, ShmMpmc, ShmStream, ThreadMpmc, ThreadStream};
use common::stream::{PipeStream, RawStream, SpscStream, Tick, BATCH};
use common::{bytes, Crossbeam, Run, StdMpsc, Wait};
use hdrhistogram::Histogram;
use shmchan::mpsc;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: compare [--quick] [--out DIR] [--only TEXT]";

/// How long to measure each row, per round.
struct Plan {
    rounds: usize,
    /// Per row and round: warm-up, then measurement.
    warm_up: Duration,
    measure: Duration,
    /// One-way: the length of one sample.
    sample: Duration,
}

const FULL: Plan = Plan {
    rounds: 5,
    warm_up: Duration::from_millis(100),
    measure: Duration::from_millis(250),
    sample: Duration::from_millis(4),
};

const QUICK: Plan = Plan {
    rounds: 1,
    warm_up: Duration::from_millis(5),
    measure: Duration::from_millis(20),
    sample: Duration::from_millis(1),
};

/// What a row is to the others of its workload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// What the hardware allows; `time ÷ floor` divides by it.
    Floor,
    /// shmchan.
    Ours,
    /// What users have today; `Pipe` is also what `pipe ÷ time` divides.
    Other,
    Pipe,
}

/// One row: a transport in a workload, and how to start it.
struct Row {
    transport: &'static str,
    role: Role,
    start: Box<dyn Fn() -> Box<dyn Measure>>,
    /// Times per round trip or per message, in picoseconds, all rounds.
    times: Histogram<u64>,
    /// The median of each round, in nanoseconds.
    round_medians: Vec<f64>,
}

/// A workload: rows measured side by side.
struct Workload {
    name: String,
    rows: Vec<Row>,
}

/// A started transport, measured for a while.
trait Measure {
    /// Warms up for `plan.warm_up`, then records times into `times` (in
    /// picoseconds) for `plan.measure`.
    fn measure(&mut self, plan: &Plan, times: &mut Histogram<u64>);
}

/// Round trips: each one timed on its own.
struct RoundTrips<C>(Echo<C>);

impl<C: Client> Measure for RoundTrips<C> {
    fn measure(&mut self, plan: &Plan, times: &mut Histogram<u64>) {
        let start = Instant::now();
        while start.elapsed() < plan.warm_up {
            self.0.run(100);
        }
        let mut nanos = echo::histogram();
        let start = Instant::now();
        while start.elapsed() < plan.measure {
            self.0.latencies(100, &mut nanos);
        }
        for v in nanos.iter_recorded() {
            record(times, v.value_iterated_to() * 1000, v.count_at_value());
        }
    }
}

/// One-way streams: each sample is the mean time per message over
/// `plan.sample`.
struct Stream<R>(R);

impl<R: Run> Measure for Stream<R> {
    fn measure(&mut self, plan: &Plan, times: &mut Histogram<u64>) {
        // Calibrate: how many messages make a sample of the planned length.
        let mut iters = 1_000u64;
        let start = Instant::now();
        while start.elapsed() < plan.warm_up {
            let took = self.0.run(iters);
            let per_message = took.as_secs_f64() / iters as f64;
            iters = ((plan.sample.as_secs_f64() / per_message) as u64).clamp(100, 50_000_000);
        }
        let start = Instant::now();
        while start.elapsed() < plan.measure {
            let took = self.0.run(iters);
            record(
                times,
                (took.as_nanos() * 1000 / u128::from(iters)) as u64,
                1,
            );
        }
    }
}

fn main() -> ExitCode {
    if common::peer_main() {
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("compare FAILED: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> common::Res<()> {
    let mut plan = &FULL;
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/compare"));
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => plan = &QUICK,
            "--out" => out = args.next().ok_or(USAGE)?.into(),
            "--only" => only = Some(args.next().ok_or(USAGE)?),
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}").into()),
        }
    }

    let machine = machine();
    let cpus = Cpus(common::multi::BENCH.pin_bench());
    let cpu = cpus.0.as_ref().map(|all| all[1]);
    let placement = match &cpus.0 {
        Some(all) => format!(
            "this process on CPU {}, single peers on CPU {} (mpsc senders on CPUs {:?}, mpmc workers on {:?})",
            all[0],
            all[1],
            &all[1..],
            all
        ),
        None => "not pinned".to_string(),
    };
    println!("compare: {machine}; {placement}");
    println!(
        "{} round(s) of {} ms per row; every message checked\n",
        plan.rounds,
        plan.measure.as_millis()
    );

    let mut workloads = workloads(cpu, cpus);
    if let Some(only) = &only {
        workloads.retain(|w| w.name.contains(only.as_str()));
        if workloads.is_empty() {
            return Err(format!("no workload's name contains {only:?}").into());
        }
    }
    let started = Instant::now();
    for workload in &mut workloads {
        eprint!("{} ", workload.name);
        for _ in 0..plan.rounds {
            for row in &mut workload.rows {
                let mut transport = (row.start)();
                let mut round = picoseconds();
                transport.measure(plan, &mut round);
                row.round_medians.push(quantiles(&round).0);
                row.times
                    .add(&round)
                    .expect("histograms of the same bounds");
                eprint!(".");
            }
        }
        eprintln!();
    }
    let elapsed = started.elapsed();

    let table = table(&workloads);
    println!("{table}");
    std::fs::create_dir_all(&out)
        .map_err(|err| format!("cannot create {}: {err}", out.display()))?;
    let header = format!(
        "Machine: {machine}; {placement}. {} round(s) of {} ms per row, {:.0} s in all.\n\n",
        plan.rounds,
        plan.measure.as_millis(),
        elapsed.as_secs_f64()
    );
    let md = out.join("compare.md");
    std::fs::write(&md, header + &table)
        .map_err(|err| format!("cannot write {}: {err}", md.display()))?;
    let svg = out.join("compare.svg");
    std::fs::write(&svg, chart(&workloads, &machine))
        .map_err(|err| format!("cannot write {}: {err}", svg.display()))?;
    println!("written: {} and {}", md.display(), svg.display());
    Ok(())
}

/// The rows, workload by workload.
fn workloads(cpu: Option<usize>, cpus: Cpus) -> Vec<Workload> {
    let cpus = std::rc::Rc::new(cpus);
    let mut all = Vec::new();
    let row = |transport, role, start: Box<dyn Fn() -> Box<dyn Measure>>| Row {
        transport,
        role,
        start,
        times: picoseconds(),
        round_medians: Vec::new(),
    };
    fn rt<C: Client + 'static>(echo: Echo<C>) -> Box<dyn Measure> {
        Box::new(RoundTrips(echo))
    }
    fn st<R: Run + 'static>(run: R) -> Box<dyn Measure> {
        Box::new(Stream(run))
    }
    use Role::*;

    all.push(Workload {
        name: "round trip, spinning".into(),
        rows: vec![
            row(
                "raw atomic",
                Floor,
                Box::new(move || rt(Echo::raw_atomic(cpu))),
            ),
            row(
                "raw rings",
                Floor,
                Box::new(move || rt(Echo::raw_rings(cpu))),
            ),
            row(
                "spsc",
                Ours,
                Box::new(move || rt(echo::typed::<Spsc>(Wait::Spin, cpu))),
            ),
            row(
                "mpsc",
                Ours,
                Box::new(move || rt(echo::typed::<Mpsc>(Wait::Spin, cpu))),
            ),
            row(
                "mpmc",
                Ours,
                Box::new(move || rt(echo::typed::<Mpmc>(Wait::Spin, cpu))),
            ),
            row(
                "broadcast, 1 receiver",
                Ours,
                Box::new(move || rt(echo::typed::<Broadcast>(Wait::Spin, cpu))),
            ),
            row(
                "bytes, 64 B",
                Ours,
                Box::new(move || rt(Echo::bytes(64, Wait::Spin, cpu))),
            ),
            row(
                "crossbeam (threads)",
                Other,
                Box::new(move || rt(echo::in_process::<Crossbeam>(cpu))),
            ),
            row(
                "std mpsc (threads)",
                Other,
                Box::new(move || rt(echo::in_process::<StdMpsc>(cpu))),
            ),
            row("pipe", Pipe, Box::new(move || rt(Echo::pipe(cpu)))),
        ],
    });
    all.push(Workload {
        name: "round trip, asleep".into(),
        rows: vec![
            row(
                "raw futex",
                Floor,
                Box::new(move || rt(Echo::raw_futex(cpu))),
            ),
            row(
                "spsc",
                Ours,
                Box::new(move || rt(echo::typed::<Spsc>(Wait::Sleep, cpu))),
            ),
            row(
                "mpsc",
                Ours,
                Box::new(move || rt(echo::typed::<Mpsc>(Wait::Sleep, cpu))),
            ),
            row(
                "mpmc",
                Ours,
                Box::new(move || rt(echo::typed::<Mpmc>(Wait::Sleep, cpu))),
            ),
            row(
                "bytes, 64 B",
                Ours,
                Box::new(move || rt(Echo::bytes(64, Wait::Sleep, cpu))),
            ),
            row(
                "unix socket",
                Other,
                Box::new(move || rt(Echo::socket(cpu))),
            ),
            row("pipe", Pipe, Box::new(move || rt(Echo::pipe(cpu)))),
        ],
    });
    // The rows that place several peers share the placement.
    let on = |start: fn(&Cpus) -> Box<dyn Measure>| -> Box<dyn Fn() -> Box<dyn Measure>> {
        let cpus = cpus.clone();
        Box::new(move || start(&cpus))
    };
    all.push(Workload {
        name: "one way, 8 B".into(),
        rows: vec![
            row(
                "raw ring",
                Floor,
                Box::new(move || st(RawStream::<u64>::spawn(1, cpu))),
            ),
            row(
                "spsc",
                Ours,
                Box::new(move || st(SpscStream::<u64>::spawn(false, Wait::Spin, cpu))),
            ),
            row(
                "spsc, asleep",
                Ours,
                Box::new(move || st(SpscStream::<u64>::spawn(false, Wait::Sleep, cpu))),
            ),
            row(
                "mpsc, 1 sender",
                Ours,
                on(|c| st(ShmStream::<mpsc::Receiver<u64>>::spawn(1, Wait::Spin, c))),
            ),
            row(
                "mpsc, 2 senders",
                Ours,
                on(|c| st(ShmStream::<mpsc::Receiver<u64>>::spawn(2, Wait::Spin, c))),
            ),
            row(
                "mpsc, 4 senders",
                Ours,
                on(|c| st(ShmStream::<mpsc::Receiver<u64>>::spawn(4, Wait::Spin, c))),
            ),
            row(
                "mpsc, 4 senders, asleep",
                Ours,
                on(|c| st(ShmStream::<mpsc::Receiver<u64>>::spawn(4, Wait::Sleep, c))),
            ),
            row("mpmc, 2x2", Ours, on(|c| st(ShmMpmc::spawn(Wait::Spin, c)))),
            row(
                "mpmc, 2x2, asleep",
                Ours,
                on(|c| st(ShmMpmc::spawn(Wait::Sleep, c))),
            ),
            row(
                "crossbeam (threads)",
                Other,
                on(|c| st(ThreadStream::<Crossbeam>::spawn(1, c))),
            ),
            row(
                "crossbeam 2x2 (threads)",
                Other,
                on(|c| st(ThreadMpmc::spawn(c))),
            ),
            row(
                "std mpsc (threads)",
                Other,
                on(|c| st(ThreadStream::<StdMpsc>::spawn(1, c))),
            ),
            row(
                "unix socket",
                Other,
                Box::new(move || st(PipeStream::<_, u64>::socket(false, cpu))),
            ),
            row(
                "pipe, 64 KiB writes",
                Other,
                Box::new(move || st(PipeStream::<_, u64>::spawn(true, cpu))),
            ),
            row(
                "pipe",
                Pipe,
                Box::new(move || st(PipeStream::<_, u64>::spawn(false, cpu))),
            ),
        ],
    });
    all.push(Workload {
        name: format!("one way, 8 B, batches of {BATCH}"),
        rows: vec![
            row(
                "raw ring, batch 64",
                Floor,
                Box::new(move || st(RawStream::<u64>::spawn(BATCH as u64, cpu))),
            ),
            row(
                "spsc, batch 64",
                Ours,
                Box::new(move || st(SpscStream::<u64>::spawn(true, Wait::Spin, cpu))),
            ),
        ],
    });
    all.push(Workload {
        name: "one way, 24 B".into(),
        rows: vec![
            row(
                "raw ring",
                Floor,
                Box::new(move || st(RawStream::<Tick>::spawn(1, cpu))),
            ),
            row(
                "spsc",
                Ours,
                Box::new(move || st(SpscStream::<Tick>::spawn(false, Wait::Spin, cpu))),
            ),
            row(
                "pipe, 64 KiB writes",
                Other,
                Box::new(move || st(PipeStream::<_, Tick>::spawn(true, cpu))),
            ),
            row(
                "pipe",
                Pipe,
                Box::new(move || st(PipeStream::<_, Tick>::spawn(false, cpu))),
            ),
        ],
    });
    all.push(Workload {
        name: format!("one way, 24 B, batches of {BATCH}"),
        rows: vec![
            row(
                "raw ring, batch 64",
                Floor,
                Box::new(move || st(RawStream::<Tick>::spawn(BATCH as u64, cpu))),
            ),
            row(
                "spsc, batch 64",
                Ours,
                Box::new(move || st(SpscStream::<Tick>::spawn(true, Wait::Spin, cpu))),
            ),
        ],
    });
    for (size, label) in bytes::SIZES {
        let mut rows = vec![
            row(
                "memcpy",
                Floor,
                Box::new(move || st(bytes::Memcpy::new(size))),
            ),
            row(
                "raw byte ring, memcpy in and out",
                Floor,
                Box::new(move || st(bytes::RawBytes::spawn(size, cpu))),
            ),
            row(
                "bytes",
                Ours,
                Box::new(move || st(bytes::ShmStream::spawn(size, false, Wait::Spin, cpu))),
            ),
            row(
                "bytes, recv_into",
                Ours,
                Box::new(move || st(bytes::ShmStream::spawn(size, true, Wait::Spin, cpu))),
            ),
            row(
                "bytes, asleep",
                Ours,
                Box::new(move || st(bytes::ShmStream::spawn(size, false, Wait::Sleep, cpu))),
            ),
            row(
                "unix socket",
                Other,
                Box::new(move || st(bytes::Stream::socket(size, false, cpu))),
            ),
            row(
                "pipe",
                Pipe,
                Box::new(move || st(bytes::Stream::pipe(size, cpu))),
            ),
        ];
        if size == bytes::BLOCK {
            // What `bytes` is held to for small messages: a typed channel
            // of blocks the same size.
            rows.insert(
                4,
                row(
                    "spsc, [u8; 64]",
                    Ours,
                    Box::new(move || st(bytes::SpscBlocks::spawn(cpu))),
                ),
            );
        }
        all.push(Workload {
            name: format!("one way, {label}"),
            rows,
        });
    }
    all
}

/// A histogram of times in picoseconds, 1 ps to 1000 s, with 3
/// significant digits.
fn picoseconds() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1_000_000_000_000_000, 3).expect("valid histogram bounds")
}

/// Records `count` times of `ps` picoseconds, clamped to the bounds.
fn record(times: &mut Histogram<u64>, ps: u64, count: u64) {
    let ps = ps.clamp(1, times.high());
    times
        .record_n(ps, count)
        .expect("a value within the bounds");
}

/// The median and the 99th percentile of `times`, in nanoseconds.
fn quantiles(times: &Histogram<u64>) -> (f64, f64) {
    let ns = |q| times.value_at_quantile(q) as f64 / 1000.0;
    (ns(0.5), ns(0.99))
}

/// The median (nearest rank) of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len().max(1) - 1) / 2]
}

/// `row`'s median over `base`'s, taken round by round (the two were
/// measured moments apart, in the same placement, as far as one can tell),
/// and the median of those.
fn round_ratio(row: &Row, base: &Row) -> f64 {
    let ratios: Vec<f64> = row
        .round_medians
        .iter()
        .zip(&base.round_medians)
        .map(|(r, b)| r / b)
        .collect();
    median(ratios)
}

/// A time in nanoseconds, in the unit that suits it.
fn time(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}")
    } else {
        format!("{r:.0}")
    }
}

/// The Markdown table.
fn table(workloads: &[Workload]) -> String {
    let mut md = String::from(
        "| workload | transport | median | p99 | time ÷ floor | pipe ÷ time |\n|---|---|--:|--:|--:|--:|\n",
    );
    for workload in workloads {
        let find = |role| workload.rows.iter().find(|row| row.role == role);
        let (floor, pipe) = (find(Role::Floor), find(Role::Pipe));
        for row in &workload.rows {
            let (median, p99) = quantiles(&row.times);
            let name = match row.role {
                Role::Ours => format!("**shmchan {}**", row.transport),
                Role::Floor => format!("*{} (floor)*", row.transport),
                _ => row.transport.to_string(),
            };
            let _ = writeln!(
                md,
                "| {} | {name} | {} | {} | {} | {} |",
                workload.name,
                time(median),
                time(p99),
                floor.map_or("".into(), |f| ratio(round_ratio(row, f))),
                pipe.map_or("".into(), |p| ratio(1.0 / round_ratio(row, p))),
            );
        }
    }
    md
}

/// A horizontal bar chart of the medians (log scale), the p99 marked on
/// each bar, grouped by workload.
fn chart(workloads: &[Workload], machine: &str) -> String {
    const LABEL: f64 = 300.0;
    const PLOT: f64 = 560.0;
    const BAR: f64 = 14.0;
    const GAP: f64 = 4.0;
    let rows: usize = workloads.iter().map(|w| w.rows.len()).sum();
    let height = 60.0 + rows as f64 * (BAR + GAP) + workloads.len() as f64 * 24.0 + 30.0;
    let width = LABEL + PLOT + 120.0;
    let all = workloads
        .iter()
        .flat_map(|w| &w.rows)
        .map(|r| quantiles(&r.times));
    let (lo, hi) = all.fold((f64::MAX, 0f64), |(lo, hi), (m, p)| (lo.min(m), hi.max(p)));
    let (lo, hi) = (lo.max(0.01).log10().floor(), hi.max(1.0).log10().ceil());
    let x = |ns: f64| LABEL + (ns.max(0.01).log10() - lo) / (hi - lo).max(1.0) * PLOT;
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">shmchan compared: median time per round trip or message (log scale; tick: p99)</text>"#
    );
    let _ = writeln!(
        svg,
        r##"<text x="10" y="38" fill="#555">{}</text>"##,
        esc(machine)
    );
    // Decade grid lines.
    let top = 50.0;
    for decade in lo as i32..=hi as i32 {
        let gx = x(10f64.powi(decade));
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            height - 25.0,
            height - 10.0,
            decade_label(decade)
        );
    }
    let mut y = top;
    for workload in workloads {
        y += 18.0;
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{y:.1}" font-weight="bold">{}</text>"#,
            esc(&workload.name)
        );
        y += 6.0;
        for row in &workload.rows {
            let (median, p99) = quantiles(&row.times);
            let colour = match row.role {
                Role::Floor => "#9e9e9e",
                Role::Ours => "#1f77b4",
                Role::Other | Role::Pipe => "#ff7f0e",
            };
            let label = match row.role {
                Role::Ours => format!("shmchan {}", row.transport),
                Role::Floor => format!("{} (floor)", row.transport),
                _ => row.transport.to_string(),
            };
            let (x0, x1, xp) = (LABEL, x(median).max(LABEL + 1.0), x(p99));
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{x0}" y="{y:.1}" width="{:.1}" height="{BAR}" fill="{colour}"/><line x1="{xp:.1}" y1="{y:.1}" x2="{xp:.1}" y2="{:.1}" stroke="#333"/><text x="{:.1}" y="{:.1}" fill="#333">{}</text>"##,
                LABEL - 6.0,
                y + BAR - 3.0,
                esc(&label),
                x1 - x0,
                y + BAR,
                x1.max(xp) + 4.0,
                y + BAR - 3.0,
                time(median)
            );
            y += BAR + GAP;
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// 10^`decade` nanoseconds, as a round figure: `1 ns`, `10 µs`.
fn decade_label(decade: i32) -> String {
    if decade < 0 {
        return format!("{} ns", 10f64.powi(decade));
    }
    let units = ["ns", "µs", "ms", "s"];
    let unit = (decade / 3).min(3);
    let mantissa = 10u64.pow((decade - unit * 3) as u32);
    format!("{mantissa} {}", units[unit as usize])
}

/// The CPU model, the CPUs this process may use, and the kernel.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |k| k.trim().to_string());
    format!("{model}, {cpus} CPUs, Linux {kernel}")
}
