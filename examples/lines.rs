//! Variable-length records between two processes, zero copy at both ends,
//! against a Unix stream socket in the same run:
//!
//! ```text
//! cargo run --release --example lines              # 600 000 records, 3 rounds, about 5 s
//! cargo run --release --example lines -- 1000000   # [RECORDS]
//! SHMCHAN_LINES_NO_PIN=1 cargo run --release --example lines   # no pinning
//! ```
//!
//! The example starts its own peer process (it runs itself again as
//! `lines --peer <role> ...`). The peer generates JSON-lines-like records,
//!
//! ```text
//! {"seq":41,"sensor":"temp-2","values":[81234,7,90211],"sum":12345}
//! ```
//!
//! with a varying number of values (from about 50 to 2000 bytes a record:
//! half of them short, the other half up to 320 values), and streams them to
//! the parent:
//!
//! - over a `shmchan::bytes` channel: the peer [`claim`]s room for the
//!   longest record, formats the record directly into the ring, and
//!   [`commit`]s the bytes it wrote (no copy on the sending side); the
//!   parent reads each record in place through the guard [`recv`] returns
//!   (no copy on the receiving side);
//! - over a Unix stream socket (a socketpair; the peer's end is its
//!   standard output): the peer formats each record into a buffer and
//!   writes it with a 4-byte length prefix through a 64 KiB `BufWriter`;
//!   the parent reads through a 64 KiB `BufReader` with `read_exact`.
//!
//! The parent validates every record either way: the sequence number must
//! follow the previous one, and `sum` must be the sum of the bytes before
//! `,"sum":` (mod 2^32); a wrong, missing or extra record stops the example
//! with an error. It prints records, MB/s (record bytes, not counting the
//! socket's length prefix) and records/s for each transport, three rounds
//! interleaved, and the medians. For scale it also times the peer's work
//! alone, formatting the same records into a buffer with no transport:
//! formatting is the bottleneck here, and the line says how close each
//! transport comes to it.
//!
//! With two or more CPUs, the parent and its peer are pinned to different
//! CPUs (it says so).
//!
//! [`claim`]: shmchan::bytes::Sender::claim
//! [`commit`]: shmchan::bytes::Grant::commit
//! [`recv`]: shmchan::bytes::Receiver::recv

#[path = "common/mod.rs"]
mod common;

use common::{stdout_file, Example, Res};
use shmchan::bytes::{Receiver, Sender};
use shmchan::RecvTimeoutError;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Records per run, unless given on the command line.
const DEFAULT_RECORDS: u64 = 600_000;
/// Each measurement runs this many times, interleaved with the other.
const ROUNDS: usize = 3;
/// Bytes in the shmchan ring.
const RING_BYTES: usize = 256 * 1024;
/// No record is longer: the room the peer claims for each.
const MAX_RECORD: usize = 2048;
/// Buffer of the socket's `BufWriter` and `BufReader`.
const SOCKET_BUFFER: usize = 64 * 1024;
/// Where the checksum starts; it covers every byte before it.
const SUM_TAG: &[u8] = b",\"sum\":";
const SEQ_TAG: &[u8] = b"{\"seq\":";
/// The peer's CPU, when pinned, and the variable that turns pinning off.
const EXAMPLE: Example = Example {
    peer_cpu_var: "SHMCHAN_LINES_PEER_CPU",
    no_pin_var: "SHMCHAN_LINES_NO_PIN",
};

fn main() -> ExitCode {
    common::main("lines", |_| "lines peer".to_string(), peer, run)
}

// ---------------------------------------------------------------------------
// The records.

/// A small, fast pseudo-random generator (wyrand), seeded by the
/// record's sequence number so both ends could recompute a record.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }
}

/// Writes into a byte slice; the caller guarantees the room.
struct Cursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }

    /// `n` in decimal, written in place two digits at a time.
    #[inline(always)]
    fn number(&mut self, mut n: u64) {
        let len = decimal_digits(n);
        let out = &mut self.buf[self.pos..self.pos + len];
        let mut at = len;
        while n >= 100 {
            let pair = (n % 100) as usize * 2;
            n /= 100;
            at -= 2;
            out[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if n >= 10 {
            let pair = n as usize * 2;
            out[..2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        } else {
            out[0] = b'0' + n as u8;
        }
        self.pos += len;
    }
}

/// "00", "01", ... "99".
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// How many decimal digits `n` has.
#[inline]
fn decimal_digits(n: u64) -> usize {
    n.checked_ilog10().unwrap_or(0) as usize + 1
}

/// The checksum a record carries: the sum of `bytes`, mod 2^32.
#[inline]
fn checksum(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0u32, |sum, &b| sum.wrapping_add(u32::from(b)))
}

/// Formats record `seq` into `buf` (at least [`MAX_RECORD`] bytes) and
/// returns its length.
fn write_record(buf: &mut [u8], seq: u64) -> usize {
    let mut rng = Rng(seq);
    let shape = rng.next();
    // Half the records are short (0 to 7 values), half long (0 to 320).
    let values = if shape & 1 == 0 {
        (shape >> 1) % 8
    } else {
        (shape >> 1) % 321
    };
    let mut out = Cursor { buf, pos: 0 };
    out.put(SEQ_TAG);
    out.number(seq);
    out.put(b",\"sensor\":\"temp-");
    out.number(seq % 13);
    out.put(b"\",\"values\":[");
    for i in 0..values {
        if i > 0 {
            out.put(b",");
        }
        out.number(rng.next() % 100_000);
    }
    out.put(b"]");
    let sum = checksum(&out.buf[..out.pos]);
    out.put(SUM_TAG);
    out.number(u64::from(sum));
    out.put(b"}");
    out.pos
}

/// Parses the decimal number at the start of `bytes`, and returns it with
/// the rest.
fn parse_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let n = bytes[..digits]
        .iter()
        .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
    Some((n, &bytes[digits..]))
}

/// Checks that `record` is record number `want`, whole: its sequence
/// number, and its checksum over everything before it.
fn validate(record: &[u8], want: u64, what: &str) -> Res<()> {
    let fail = |why: &str| -> Res<()> {
        let shown = String::from_utf8_lossy(&record[..record.len().min(80)]);
        Err(format!("{what}: record {want} is wrong ({why}): {shown:?}").into())
    };
    let Some(rest) = record.strip_prefix(SEQ_TAG) else {
        return fail("no sequence number");
    };
    match parse_number(rest) {
        Some((seq, _)) if seq == want => {}
        Some((seq, _)) => return fail(&format!("it is number {seq}")),
        None => return fail("no sequence number"),
    }
    // `,"sum":<digits>}` ends the record; the digits are at most 10.
    let Some(body) = record.strip_suffix(b"}") else {
        return fail("it does not end with '}'");
    };
    let tail_start = body.len().saturating_sub(SUM_TAG.len() + 10);
    let Some(tag) = body[tail_start..]
        .windows(SUM_TAG.len())
        .rposition(|w| w == SUM_TAG)
    else {
        return fail("no checksum");
    };
    let tag = tail_start + tag;
    match parse_number(&body[tag + SUM_TAG.len()..]) {
        Some((sum, [])) => {
            if sum != u64::from(checksum(&body[..tag])) {
                return fail("the checksum does not match");
            }
        }
        _ => return fail("a malformed checksum"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The parent.

/// What one run measured.
#[derive(Clone, Copy)]
struct Run {
    records: u64,
    bytes: u64,
    seconds: f64,
}

impl Run {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds
    }

    fn per_s(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

fn run(args: &[String]) -> Res<()> {
    let usage = format!("lines [RECORDS (default {DEFAULT_RECORDS})]");
    let records = common::count(args.first(), DEFAULT_RECORDS, "RECORDS", &usage)?;
    println!(
        "shmchan lines: {records} JSON-like records of 50 to 2000 bytes, child to parent, \
         {ROUNDS} interleaved rounds"
    );
    let (_, pinned) = EXAMPLE.place("parent", "");
    let cpu = pinned.map(|(_, peer)| peer);

    let (mut shm, mut socket, mut alone) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let s = shm_run(records, cpu)?;
        let u = socket_run(records, cpu)?;
        let f = format_only(records);
        println!(
            "  round {round}: shmchan bytes {:6.0} MB/s {:5.2} M rec/s | \
             unix socket {:6.0} MB/s {:5.2} M rec/s | {:.1}x | format only {:6.0} MB/s",
            s.mb_per_s(),
            s.per_s() / 1e6,
            u.mb_per_s(),
            u.per_s() / 1e6,
            s.mb_per_s() / u.mb_per_s(),
            f.mb_per_s(),
        );
        shm.push(s);
        socket.push(u);
        alone.push(f);
    }

    let (s, u, f) = (median(&shm), median(&socket), median(&alone));
    println!();
    println!(
        "{:<44} | {:>9} | {:>8} | {:>7} | {:>11} | {:>9} | {:>9}",
        "median of the rounds", "records", "MB", "MB/s", "records/s", "vs socket", "vs format"
    );
    println!("{}", "-".repeat(44 + 9 + 8 + 7 + 11 + 9 + 9 + 3 * 6));
    for (name, r) in [
        ("shmchan bytes, claim/commit + recv guard", s),
        ("unix stream socket, length-prefixed", u),
        ("format only, one thread, no transport", f),
    ] {
        println!(
            "{name:<44} | {:>9} | {:>8.1} | {:>7.0} | {:>9.2} M | {:>8.2}x | {:>8.2}x",
            r.records,
            r.bytes as f64 / 1e6,
            r.mb_per_s(),
            r.per_s() / 1e6,
            r.mb_per_s() / u.mb_per_s(),
            r.mb_per_s() / f.mb_per_s(),
        );
    }
    println!(
        "\nEvery record was validated (sequence number and checksum); the average record \
         is {:.0} bytes.\n\
         \"format only\" is the peer's work alone (formatting the records into a buffer, \
         in this process): the most any\ntransport can deliver with this producer. \
         \"vs socket\" and \"vs format\" divide the MB/s.",
        s.bytes as f64 / s.records as f64
    );
    Ok(())
}

/// Formats the records as the peer does, into a buffer in this process,
/// sending them nowhere: the producer's own speed, which bounds both
/// transports.
fn format_only(n: u64) -> Run {
    let mut buf = vec![0u8; MAX_RECORD];
    let start = Instant::now();
    let mut bytes = 0;
    for seq in 1..n {
        bytes += write_record(std::hint::black_box(&mut buf), seq) as u64;
    }
    Run {
        records: n - 1,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// The run with the median throughput.
fn median(runs: &[Run]) -> Run {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.mb_per_s().total_cmp(&b.mb_per_s()));
    sorted[sorted.len() / 2]
}

/// Records from the peer over a `bytes` channel. The clock starts at the
/// first record, so start-up is not counted.
fn shm_run(n: u64, cpu: Option<usize>) -> Res<Run> {
    let what = "shmchan bytes";
    let name = fresh_name();
    let mut rx = Receiver::create(&name, RING_BYTES)?;
    let args = [&*name, &n.to_string()];
    let mut peer = EXAMPLE.spawn("shm", &args, cpu, Stdio::null(), Stdio::null())?;
    let gone = |next: u64| format!("{what}: the peer left after {next} of {n} records");

    // The first record, waiting in slices: a peer that dies before it
    // attaches would leave a plain `recv` waiting forever.
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(record) => {
                validate(&record, 0, what)?;
                break;
            }
            Err(RecvTimeoutError::Timeout) => peer.alive()?,
            Err(RecvTimeoutError::Disconnected) => return Err(gone(0).into()),
        }
    }
    let start = Instant::now();
    let mut bytes = 0;
    for next in 1..n {
        let record = rx.recv().map_err(|_| gone(next))?;
        validate(&record, next, what)?;
        bytes += record.len() as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    // Exactly `n`: after them, the channel reports the sender gone.
    if let Ok(extra) = rx.recv() {
        return Err(format!("{what}: an extra record arrived ({} bytes)", extra.len()).into());
    }
    peer.finish()?;
    Ok(Run {
        records: n - 1,
        bytes,
        seconds,
    })
}

/// Records from the peer over a Unix stream socket, each after its length.
fn socket_run(n: u64, cpu: Option<usize>) -> Res<Run> {
    let what = "unix socket";
    let (ours, theirs) = UnixStream::pair()?;
    let stdout = Stdio::from(OwnedFd::from(theirs));
    let peer = EXAMPLE.spawn("socket", &[&n.to_string()], cpu, Stdio::null(), stdout)?;
    let mut from = BufReader::with_capacity(SOCKET_BUFFER, ours);
    let mut buf = vec![0u8; MAX_RECORD];
    let mut read = |from: &mut BufReader<UnixStream>, next: u64| -> Res<usize> {
        let mut header = [0u8; 4];
        let fail = |err| format!("{what}: record {next} of {n}: {err}");
        from.read_exact(&mut header).map_err(fail)?;
        let len = u32::from_le_bytes(header) as usize;
        if len > MAX_RECORD {
            return Err(format!("{what}: record {next} claims {len} bytes").into());
        }
        from.read_exact(&mut buf[..len]).map_err(fail)?;
        validate(&buf[..len], next, what)?;
        Ok(len)
    };

    read(&mut from, 0)?;
    let start = Instant::now();
    let mut bytes = 0;
    for next in 1..n {
        bytes += read(&mut from, next)? as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    if from.read(&mut [0u8; 1])? != 0 {
        return Err(format!("{what}: more than {n} records arrived").into());
    }
    peer.finish()?;
    Ok(Run {
        records: n - 1,
        bytes,
        seconds,
    })
}

/// A fresh channel name for this run.
fn fresh_name() -> String {
    common::fresh_name("lines", "records")
}

// ---------------------------------------------------------------------------
// The peer: `lines --peer <role> <args>`.

fn peer(args: &[String]) -> Res<()> {
    EXAMPLE.pin_peer()?;
    let arg = |i: usize| common::arg(args, i);
    let gone = "the parent stopped receiving";
    match arg(0)? {
        "shm" => {
            let mut tx = Sender::open(arg(1)?)?;
            let n: u64 = arg(2)?.parse()?;
            for seq in 0..n {
                // Room for the longest record, written in place; only the
                // bytes written are published.
                let mut grant = tx.claim(MAX_RECORD).map_err(|_| gone)?;
                let len = write_record(&mut grant, seq);
                grant.commit(len);
            }
        }
        "socket" => {
            let n: u64 = arg(1)?.parse()?;
            let mut to = BufWriter::with_capacity(SOCKET_BUFFER, stdout_file()?);
            let mut buf = vec![0u8; MAX_RECORD];
            for seq in 0..n {
                let len = write_record(&mut buf, seq);
                to.write_all(&(len as u32).to_le_bytes())?;
                to.write_all(&buf[..len])?;
            }
            to.flush()?;
        }
        other => return Err(format!("unknown role {other:?}").into()),
    }
    Ok(())
}
