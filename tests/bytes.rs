//! The byte stream, `shmchan::bytes`: variable-length messages in a ring of
//! bytes, between processes.
//!
//! What is shown here (DESIGN §4, §5, §9):
//!
//! - property tests: random sequences of lengths `0..=max`, including
//!   records that end exactly at the ring's end and ones that just miss it,
//!   over small rings so that records wrap thousands of times; in one
//!   process against an exact model of the ring (including when `try_send`
//!   must say `Full`: room is contiguous room), and across two processes,
//!   both sides regenerating the same sequence from a seed and deriving
//!   every payload byte from (index, length);
//! - empty messages are messages, also next to wrap markers and across
//!   processes (§9: a zero-length wrap marker would swallow them);
//! - `TooLarge` past `max_message_len()`, exactly the max always fits;
//!   claims committed short, claims dropped, receive guards;
//! - a sender waiting for room for a large message is woken as soon as the
//!   receiver frees enough contiguous room, not when the ring empties (§9);
//! - statistics, modes, unlink, busy roles, flavor mismatches;
//! - SIGKILL of either end, as for spsc (§4).
//!
//! Timing is never pass/fail: waits are bounded by generous timeouts and
//! the tests assert what kind of result came back.

mod common;

use common::shm::{read_u32, shm_path};
use common::{
    peer_wait, segment_mode, sigkill, sleep_forever, unique_name, wait_until, within, Cleanup,
    Peer, Rng,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use shmchan::bytes::{
    self, Grant, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use shmchan::{spsc, Error, Options};
use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a live peer may take to do its part.
const PATIENCE: Duration = Duration::from_secs(20);
/// How long a peer may take to finish its whole part.
const PEER_LIMIT: Duration = Duration::from_secs(60);
/// How long a survivor may take to notice a dead peer before the test
/// fails (the contract is 1 s).
const NOTICE: Duration = Duration::from_secs(5);
/// Bytes in a record header.
const HEADER: u64 = 8;

// Offsets in a byte channel's segment (checked against the library in
// tests/bytes_hostile.rs): ring 0 at 640, its `not_full` doorbell at +384
// (futex word, then the sleeper count).
const NOT_FULL_SEQ: u64 = 640 + 384;
const NOT_FULL_SLEEPERS: u64 = NOT_FULL_SEQ + 4;
/// Set by the release that rang, cleared by the sender when it looks again.
const NOT_FULL_SIGNALLED: u64 = NOT_FULL_SEQ + 8;

// ---------------------------------------------------------------------------
// Helpers: payloads, the record arithmetic, a seeded generator.

/// `n` rounded up to a multiple of 8.
fn pad8(n: u64) -> u64 {
    (n + 7) & !7
}

/// Ring bytes a message of `len` bytes takes.
fn record(len: u64) -> u64 {
    HEADER + pad8(len)
}

/// Byte `k` of message `index`, `len` bytes long: neighbours differ, and a
/// message of another length or index reads differently.
fn payload_byte(index: u64, len: usize, k: usize) -> u8 {
    let x = index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (len as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (k as u64 >> 3).wrapping_mul(0x1656_67B1_9E37_79F9);
    (x >> (8 * (k % 8))) as u8 ^ (x >> 59) as u8
}

/// Message `index` of `len` bytes into `buf`.
fn fill(index: u64, len: usize, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend((0..len).map(|k| payload_byte(index, len, k)));
}

/// Whether `got` is message `index` of `len` bytes; says how not.
fn check(index: u64, len: usize, got: &[u8]) -> Result<(), String> {
    if got.len() != len {
        return Err(format!(
            "message {index}: {} bytes arrived, {len} were sent",
            got.len()
        ));
    }
    match (0..len).find(|&k| got[k] != payload_byte(index, len, k)) {
        None => Ok(()),
        Some(k) => Err(format!(
            "message {index} ({len} bytes): byte {k} is {:#04x}, expected {:#04x}",
            got[k],
            payload_byte(index, len, k)
        )),
    }
}

// ---------------------------------------------------------------------------
// A plan: a seeded sequence of sends that both processes can regenerate.

/// How the sender sends one step of a [`Plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    Send,
    TrySend,
    SendTimeout,
    /// `claim(claim)`, then `commit(len)`: `claim >= len`.
    Claim,
    TryClaim,
    /// `claim(claim)`, write, drop: no message.
    DropClaim,
}

#[derive(Clone, Copy, Debug)]
struct Step {
    how: How,
    /// Bytes claimed (for the claim kinds; `len` otherwise).
    claim: usize,
    /// Bytes of the message.
    len: usize,
}

impl Step {
    fn is_message(&self) -> bool {
        self.how != How::DropClaim
    }
}

/// A seeded sequence of steps. It follows where each record lands in the
/// ring (that depends on the lengths alone, never on timing), so that it
/// can aim at the ring's end: records that end exactly there, and records
/// one word too long, which must wrap.
struct Plan {
    rng: Rng,
    capacity: u64,
    max: u64,
    /// Half the messages empty.
    empties: bool,
    /// Where the next record starts.
    tail: u64,
    wraps: u64,
    /// Records that ended exactly at the ring's end, and of them, empty ones.
    at_end: u64,
    empty_at_end: u64,
}

impl Plan {
    fn new(seed: u64, capacity: usize, empties: bool) -> Self {
        let capacity = capacity as u64;
        Self {
            rng: Rng::new(seed),
            capacity,
            max: capacity / 2 - HEADER,
            empties,
            tail: 0,
            wraps: 0,
            at_end: 0,
            empty_at_end: 0,
        }
    }

    fn length(&mut self) -> u64 {
        let to_end = self.capacity - self.tail % self.capacity;
        // Payload bytes that end the record exactly at the ring's end.
        let room = to_end - HEADER;
        if self.empties && self.rng.below(2) == 0 {
            return 0;
        }
        match self.rng.below(10) {
            0 => 0,
            1 => self.max,
            2 | 3 if room <= self.max => room - self.rng.below(8.min(room + 1)),
            4 if room + 8 <= self.max => room + 1 + self.rng.below(8),
            5 => self.rng.below(17).min(self.max),
            _ => self.rng.below(self.max + 1),
        }
    }

    fn next(&mut self) -> Step {
        let len = self.length();
        let how = match self.rng.below(12) {
            0..=3 => How::Send,
            4 | 5 => How::TrySend,
            6 => How::SendTimeout,
            7 | 8 | 11 => How::Claim,
            9 => How::TryClaim,
            _ => How::DropClaim,
        };
        let claim = match how {
            How::Claim | How::TryClaim | How::DropClaim if self.rng.below(2) == 0 => {
                len + self.rng.below(self.max - len + 1)
            }
            _ => len,
        };
        if how != How::DropClaim {
            // Where the claim was made decides whether the record wraps;
            // what was committed decides where it ends.
            let to_end = self.capacity - self.tail % self.capacity;
            if record(claim) > to_end {
                self.tail += to_end;
                self.wraps += 1;
            }
            self.tail += record(len);
            if self.tail % self.capacity == 0 {
                self.at_end += 1;
                self.empty_at_end += u64::from(len == 0);
            }
        }
        Step {
            how,
            claim: claim as usize,
            len: len as usize,
        }
    }

    /// The length of the next message, skipping dropped claims.
    fn next_message(&mut self) -> usize {
        loop {
            let step = self.next();
            if step.is_message() {
                return step.len;
            }
        }
    }
}

/// Sends message `index` (or a dropped claim) as `step` says.
fn send_step(tx: &mut Sender, step: Step, index: u64, scratch: &mut Vec<u8>) -> Result<(), String> {
    fill(index, step.len, scratch);
    let deadline = Instant::now() + PATIENCE;
    match step.how {
        How::Send => tx.send(scratch).map_err(|e| format!("send: {e:?}")),
        How::SendTimeout => tx
            .send_timeout(scratch, PATIENCE)
            .map_err(|e| format!("send_timeout: {e:?}")),
        How::TrySend => loop {
            match tx.try_send(scratch) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full) if Instant::now() < deadline => std::thread::yield_now(),
                Err(e) => return Err(format!("try_send: {e:?}")),
            }
        },
        How::Claim | How::DropClaim => {
            let grant = tx.claim(step.claim).map_err(|e| format!("claim: {e:?}"))?;
            write_grant(grant, step, scratch)
        }
        How::TryClaim => {
            let grant = loop {
                match tx.try_claim(step.claim) {
                    Ok(grant) => break grant,
                    Err(TrySendError::Full) if Instant::now() < deadline => {
                        std::thread::yield_now()
                    }
                    Err(e) => return Err(format!("try_claim: {e:?}")),
                }
            };
            write_grant(grant, step, scratch)
        }
    }
}

fn write_grant(mut grant: Grant<'_>, step: Step, payload: &[u8]) -> Result<(), String> {
    if grant.len() != step.claim {
        return Err(format!(
            "a claim of {} bytes gave a grant of {}",
            step.claim,
            grant.len()
        ));
    }
    if step.how == How::DropClaim {
        // Written, then dropped uncommitted.
        grant.fill(0xEE);
        return Ok(());
    }
    grant[..step.len].copy_from_slice(payload);
    // Written but not committed: must not be delivered.
    grant[step.len..].fill(0xEE);
    grant.commit(step.len);
    Ok(())
}

/// Receives message `index`, `len` bytes long, by one of the receiving
/// calls (chosen by the index), and checks it.
fn recv_step(rx: &mut Receiver, index: u64, len: usize, buf: &mut Vec<u8>) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    match index % 6 {
        0 => {
            let message = rx.recv().map_err(|e| format!("recv: {e:?}"))?;
            check(index, len, &message)
        }
        1 => {
            let n = rx.recv_into(buf).map_err(|e| format!("recv_into: {e:?}"))?;
            if n != buf.len() {
                return Err(format!("recv_into said {n}, filled {}", buf.len()));
            }
            check(index, len, buf)
        }
        2 => match rx.recv_timeout(PATIENCE) {
            Ok(message) => check(index, len, &message),
            Err(e) => Err(format!("recv_timeout: {e:?}")),
        },
        3 => loop {
            match rx.try_recv() {
                Ok(message) => return check(index, len, &message),
                Err(TryRecvError::Empty) if Instant::now() < deadline => std::thread::yield_now(),
                Err(e) => return Err(format!("try_recv: {e:?}")),
            }
        },
        4 => match rx.iter().next() {
            Some(message) => check(index, len, &message),
            None => Err("iter ended".into()),
        },
        _ => loop {
            if let Some(message) = rx.try_iter().next() {
                return check(index, len, &message);
            }
            if Instant::now() >= deadline {
                return Err("try_iter found nothing".into());
            }
            std::thread::yield_now();
        },
    }
}

/// Sends the first `steps` steps of the plan `seed`.
fn send_plan(tx: &mut Sender, seed: u64, steps: u64, empties: bool) -> Result<Plan, String> {
    let mut plan = Plan::new(seed, tx.capacity(), empties);
    let mut scratch = Vec::new();
    let mut index = 0;
    for _ in 0..steps {
        let step = plan.next();
        send_step(tx, step, index, &mut scratch)
            .map_err(|e| format!("sending message {index} ({step:?}): {e}"))?;
        index += u64::from(step.is_message());
    }
    Ok(plan)
}

/// Receives and checks the messages of the first `steps` steps of the plan
/// `seed`.
fn recv_plan(rx: &mut Receiver, seed: u64, steps: u64, empties: bool) -> Result<Plan, String> {
    let mut plan = Plan::new(seed, rx.capacity(), empties);
    let mut buf = Vec::new();
    let mut index = 0;
    for _ in 0..steps {
        let step = plan.next();
        if step.is_message() {
            recv_step(rx, index, step.len, &mut buf)?;
            index += 1;
        }
    }
    Ok(plan)
}

fn spin_options(spin_us: &str) -> Options {
    Options::new().spin(Duration::from_micros(spin_us.parse().unwrap()))
}

// ---------------------------------------------------------------------------
// Peer processes.

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Sends a plan, then detaches. Args: name, seed, steps, empties, spin µs.
        "plan-send" => {
            let mut tx = Sender::open_with(&args[0], &spin_options(&args[4])).unwrap();
            send_plan(
                &mut tx,
                args[1].parse().unwrap(),
                args[2].parse().unwrap(),
                args[3] == "1",
            )
            .unwrap_or_else(|e| panic!("sending peer: {e}"));
        }
        // Receives a plan, then expects the sender gone. Args as above.
        "plan-recv" => {
            let mut rx = Receiver::open_with(&args[0], &spin_options(&args[4])).unwrap();
            recv_plan(
                &mut rx,
                args[1].parse().unwrap(),
                args[2].parse().unwrap(),
                args[3] == "1",
            )
            .unwrap_or_else(|e| panic!("receiving peer: {e}"));
            let end = rx.recv_timeout(PATIENCE).map(|m| m.len());
            assert_eq!(
                end,
                Err(RecvTimeoutError::Disconnected),
                "receiving peer: after the plan"
            );
        }
        // Sends `count` messages of `index % 50` bytes, then detaches.
        "send-count" => {
            let tx = Sender::open(&args[0]).unwrap();
            let mut scratch = Vec::new();
            for index in 0..args[1].parse().unwrap() {
                fill(index, index as usize % 50, &mut scratch);
                tx.send(&scratch).unwrap();
            }
        }
        // Sends the plan `seed` until the receiver is gone (or it is killed).
        "plan-stream" => {
            let mut tx = Sender::open(&args[0]).unwrap();
            let mut plan = Plan::new(args[1].parse().unwrap(), tx.capacity(), false);
            let mut scratch = Vec::new();
            let mut index = 0;
            loop {
                let step = plan.next();
                if send_step(&mut tx, step, index, &mut scratch).is_err() {
                    return;
                }
                index += u64::from(step.is_message());
            }
        }
        // Receives the plan `seed` until the sender is gone (or it is killed).
        "plan-recv-forever" => {
            let rx = Receiver::open(&args[0]).unwrap();
            let mut plan = Plan::new(args[1].parse().unwrap(), rx.capacity(), false);
            let mut buf = Vec::new();
            for index in 0.. {
                let len = plan.next_message();
                let Ok(n) = rx.recv_into(&mut buf) else {
                    return;
                };
                assert_eq!(n, buf.len());
                check(index, len, &buf).unwrap_or_else(|e| panic!("receiving peer: {e}"));
            }
        }
        // Sends the first `count` messages of the plan `seed`, then idles
        // holding the sender.
        "send-then-hold" => {
            let mut tx = Sender::open(&args[0]).unwrap();
            let count: u64 = args[2].parse().unwrap();
            let mut plan = Plan::new(args[1].parse().unwrap(), tx.capacity(), false);
            let mut scratch = Vec::new();
            let mut index = 0;
            while index < count {
                let step = plan.next();
                send_step(&mut tx, step, index, &mut scratch).unwrap();
                index += u64::from(step.is_message());
            }
            sleep_forever(tx);
        }
        // Receives `count` messages, then idles holding the receiver.
        "recv-then-hold" => {
            let rx = Receiver::open(&args[0]).unwrap();
            let count: usize = args[1].parse().unwrap();
            let mut buf = Vec::new();
            for _ in 0..count {
                rx.recv_into(&mut buf).unwrap();
            }
            sleep_forever(rx);
        }
        // Once the sender has found the ring full, receives `k` messages
        // (the ring is still far from empty), waits until the sender
        // publishes its large message, then drains the rest: 16-byte
        // messages `[i; 8]`, then the large one, all `0xB1`.
        "free-then-hold" => {
            let mut rx = Receiver::open(&args[0]).unwrap();
            let k: u8 = args[1].parse().unwrap();
            let small: u8 = args[2].parse().unwrap();
            let big: usize = args[3].parse().unwrap();
            peer_wait(PATIENCE, "the sender found the ring full", || {
                rx.stats().full > 0
            });
            std::thread::sleep(Duration::from_millis(50));
            for i in 0..k {
                assert_eq!(&*rx.recv().unwrap(), &[i; 8]);
            }
            let sent = u64::from(small);
            peer_wait(PATIENCE, "the large message is published", || {
                rx.stats().sent > sent
            });
            for i in k..small {
                assert_eq!(&*rx.recv().unwrap(), &[i; 8]);
            }
            assert_eq!(&*rx.recv().unwrap(), &vec![0xB1; big][..]);
            assert_eq!(rx.recv().map(|m| m.len()), Err(RecvError));
        }
        other => panic!("unknown role {other}"),
    });
}

// ---------------------------------------------------------------------------
// Property tests, one process: an exact model of the ring.

/// A length, resolved against the ring's state when the operation runs.
#[derive(Clone, Copy, Debug)]
enum Len {
    Any(u16),
    Zero,
    Max,
    /// A record that ends exactly at the ring's end (if one can).
    ToEnd(u8),
    /// A record one word too long to end there: it wraps.
    PastEnd(u8),
    Small(u8),
}

#[derive(Clone, Copy, Debug)]
enum Op {
    TrySend(Len),
    /// `try_claim(len + extra)`, commit `len`.
    Claim(Len, u16),
    /// `try_claim(len + extra)`, write, drop.
    DropClaim(Len, u16),
    TryRecv(u8),
    /// `recv_timeout(0)`.
    RecvTimeout,
    /// `recv_into`, when the model says a message waits.
    RecvInto,
    TryIter(u8),
    /// `try_send` until `Full`.
    Fill(Len),
}

fn len_strategy() -> impl Strategy<Value = Len> {
    prop_oneof![
        3 => any::<u16>().prop_map(Len::Any),
        1 => Just(Len::Zero),
        1 => Just(Len::Max),
        2 => any::<u8>().prop_map(Len::ToEnd),
        1 => any::<u8>().prop_map(Len::PastEnd),
        1 => any::<u8>().prop_map(Len::Small),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => len_strategy().prop_map(Op::TrySend),
        2 => (len_strategy(), any::<u16>()).prop_map(|(len, extra)| Op::Claim(len, extra)),
        1 => (len_strategy(), any::<u16>()).prop_map(|(len, extra)| Op::DropClaim(len, extra)),
        4 => (1u8..4).prop_map(Op::TryRecv),
        1 => Just(Op::RecvTimeout),
        1 => Just(Op::RecvInto),
        1 => (0u8..6).prop_map(Op::TryIter),
        1 => len_strategy().prop_map(Op::Fill),
    ]
}

/// What the ring must hold: positions, and the messages with where each
/// record ends.
struct Model {
    capacity: u64,
    max: u64,
    head: u64,
    tail: u64,
    queue: VecDeque<(u64, usize, u64)>,
    sent: u64,
    received: u64,
    wraps: u64,
    at_end: u64,
}

impl Model {
    fn new(capacity: u64) -> Self {
        Self {
            capacity,
            max: capacity / 2 - HEADER,
            head: 0,
            tail: 0,
            queue: VecDeque::new(),
            sent: 0,
            received: 0,
            wraps: 0,
            at_end: 0,
        }
    }

    fn len(&self, len: Len) -> usize {
        let room = self.capacity - self.tail % self.capacity - HEADER;
        let n = match len {
            Len::Any(n) => u64::from(n) % (self.max + 1),
            Len::Zero => 0,
            Len::Max => self.max,
            Len::ToEnd(r) if room <= self.max => room - u64::from(r) % 8.min(room + 1),
            Len::ToEnd(r) => u64::from(r) % (self.max + 1),
            Len::PastEnd(r) if room + 8 <= self.max => room + 1 + u64::from(r) % 8,
            Len::PastEnd(_) => self.max,
            Len::Small(r) => u64::from(r % 17).min(self.max),
        };
        n as usize
    }

    /// Whether a claim of `claim` bytes fits now: contiguous room, with
    /// the bytes a wrap skips counted as used.
    fn fits(&self, claim: usize) -> bool {
        let record = record(claim as u64);
        let to_end = self.capacity - self.tail % self.capacity;
        let needed = if record <= to_end {
            record
        } else {
            to_end + record
        };
        self.capacity - (self.tail - self.head) >= needed
    }

    /// Records a message of `len` bytes sent through a claim of `claim`.
    fn push(&mut self, claim: usize, len: usize) {
        let to_end = self.capacity - self.tail % self.capacity;
        if record(claim as u64) > to_end {
            self.tail += to_end;
            self.wraps += 1;
        }
        self.tail += record(len as u64);
        if self.tail % self.capacity == 0 {
            self.at_end += 1;
        }
        self.queue.push_back((self.sent, len, self.tail));
        self.sent += 1;
    }

    fn pop(&mut self) -> Option<(u64, usize)> {
        let (index, len, end) = self.queue.pop_front()?;
        self.head = end;
        self.received += 1;
        Some((index, len))
    }
}

fn fail(e: String) -> TestCaseError {
    TestCaseError::fail(e)
}

/// One `try_send` of `len` bytes, which must succeed exactly when the
/// model says it fits. Returns whether it did.
fn model_try_send(
    tx: &Sender,
    m: &mut Model,
    len: usize,
    scratch: &mut Vec<u8>,
) -> Result<bool, TestCaseError> {
    fill(m.sent, len, scratch);
    let fits = m.fits(len);
    match tx.try_send(scratch) {
        Ok(()) => {
            prop_assert!(
                fits,
                "try_send of {} bytes succeeded; the model says no room (head {}, tail {})",
                len,
                m.head,
                m.tail
            );
            m.push(len, len);
            Ok(true)
        }
        Err(TrySendError::Full) => {
            prop_assert!(
                !fits,
                "try_send of {} bytes said Full with room for it (head {}, tail {}, capacity {})",
                len,
                m.head,
                m.tail,
                m.capacity
            );
            Ok(false)
        }
        Err(other) => Err(fail(format!("try_send of {len} bytes: {other:?}"))),
    }
}

/// Runs `ops` on a fresh channel of `capacity` bytes; returns the model.
fn run_ops(capacity: usize, ops: &[Op]) -> Result<Model, TestCaseError> {
    let name = unique_name("bytes-prop");
    let _cleanup = Cleanup(name.clone());
    let (mut tx, mut rx) = bytes::channel(&name, capacity).unwrap();
    prop_assert_eq!(tx.capacity(), capacity);
    let mut m = Model::new(capacity as u64);
    prop_assert_eq!(tx.max_message_len() as u64, m.max);
    let mut scratch = Vec::new();
    let mut buf = vec![0xAA; 3];
    for (n, &op) in ops.iter().enumerate() {
        match op {
            Op::TrySend(len) => {
                let len = m.len(len);
                model_try_send(&tx, &mut m, len, &mut scratch)?;
            }
            Op::Fill(len) => {
                for _ in 0..=capacity / 8 {
                    let len = m.len(len);
                    if !model_try_send(&tx, &mut m, len, &mut scratch)? {
                        break;
                    }
                }
            }
            Op::Claim(len, extra) | Op::DropClaim(len, extra) => {
                let commit = matches!(op, Op::Claim(..));
                let len = m.len(len);
                let claim = if extra % 3 == 0 {
                    len
                } else {
                    len + usize::from(extra) % (m.max as usize - len + 1)
                };
                let fits = m.fits(claim);
                let index = m.sent;
                match tx.try_claim(claim) {
                    Ok(mut grant) => {
                        prop_assert!(
                            fits,
                            "op {}: try_claim({}) succeeded without room",
                            n,
                            claim
                        );
                        prop_assert_eq!(grant.len(), claim);
                        fill(index, len, &mut scratch);
                        grant[..len].copy_from_slice(&scratch);
                        grant[len..].fill(0xEE);
                        if commit {
                            grant.commit(len);
                            m.push(claim, len);
                        }
                    }
                    Err(TrySendError::Full) => prop_assert!(
                        !fits,
                        "op {}: try_claim({}) said Full with room (head {}, tail {})",
                        n,
                        claim,
                        m.head,
                        m.tail
                    ),
                    Err(other) => {
                        return Err(fail(format!("op {n}: try_claim({claim}): {other:?}")))
                    }
                }
            }
            Op::TryRecv(count) => {
                for _ in 0..count {
                    let expected = m.pop();
                    match (rx.try_recv(), expected) {
                        (Ok(message), Some((index, len))) => {
                            check(index, len, &message).map_err(fail)?
                        }
                        (Err(TryRecvError::Empty), None) => {}
                        (got, expected) => {
                            return Err(fail(format!(
                                "op {n}: try_recv gave {:?}, expected {expected:?}",
                                got.map(|g| g.len())
                            )))
                        }
                    }
                }
            }
            Op::RecvTimeout => match (rx.recv_timeout(Duration::ZERO), m.pop()) {
                (Ok(message), Some((index, len))) => check(index, len, &message).map_err(fail)?,
                (Err(RecvTimeoutError::Timeout), None) => {}
                (got, expected) => {
                    return Err(fail(format!(
                        "op {n}: recv_timeout(0) gave {:?}, expected {expected:?}",
                        got.map(|g| g.len())
                    )))
                }
            },
            Op::RecvInto => {
                if let Some((index, len)) = m.pop() {
                    let got = rx
                        .recv_into(&mut buf)
                        .map_err(|e| fail(format!("recv_into: {e:?}")))?;
                    prop_assert_eq!(got, buf.len());
                    check(index, len, &buf).map_err(fail)?;
                }
            }
            Op::TryIter(count) => {
                let got: Vec<Vec<u8>> = rx.try_iter().take(usize::from(count)).collect();
                prop_assert_eq!(
                    got.len(),
                    usize::from(count).min(m.queue.len()),
                    "op {}: try_iter",
                    n
                );
                for message in &got {
                    let (index, len) = m.pop().unwrap();
                    check(index, len, message).map_err(fail)?;
                }
            }
        }
        prop_assert_eq!(tx.len(), m.queue.len(), "op {}: len() counts messages", n);
        prop_assert_eq!(rx.is_empty(), m.queue.is_empty(), "op {}: is_empty()", n);
    }
    let stats = rx.stats();
    prop_assert_eq!((stats.sent, stats.received), (m.sent, m.received));
    prop_assert_eq!(stats.len, m.queue.len() as u64);
    // The rest arrives after the sender is gone, then the end.
    drop(tx);
    let rest: Vec<Vec<u8>> = rx.iter().collect();
    prop_assert_eq!(rest.len(), m.queue.len());
    for message in &rest {
        let (index, len) = m.pop().unwrap();
        check(index, len, message).map_err(fail)?;
    }
    prop_assert_eq!(
        rx.try_recv().map(|g| g.len()),
        Err(TryRecvError::Disconnected)
    );
    Ok(m)
}

/// Random operations over rings of 64 to 256 bytes, checked against the
/// model after every one: every message intact and in order, `try_send`
/// and `try_claim` refuse exactly when there is no contiguous room.
#[test]
fn prop_random_operations_match_the_model() {
    static WRAPS: AtomicU64 = AtomicU64::new(0);
    static AT_END: AtomicU64 = AtomicU64::new(0);
    let config = Config {
        cases: 80,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = (
        prop_oneof![Just(64usize), Just(128), Just(256)],
        proptest::collection::vec(op_strategy(), 1..1500),
    );
    runner
        .run(&strategy, |(capacity, ops)| {
            let m = run_ops(capacity, &ops)?;
            WRAPS.fetch_add(m.wraps, Ordering::Relaxed);
            AT_END.fetch_add(m.at_end, Ordering::Relaxed);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (wraps, at_end) = (
        WRAPS.load(Ordering::Relaxed),
        AT_END.load(Ordering::Relaxed),
    );
    eprintln!("{wraps} wraps, {at_end} records ending exactly at the ring's end");
    assert!(
        wraps >= 2000,
        "only {wraps} wraps: the test does not exercise wrapping"
    );
    assert!(
        at_end >= 500,
        "only {at_end} records ended exactly at the ring's end"
    );
}

/// Random length sequences through a 64-byte ring, sender and receiver in
/// two threads, blocking calls: every message intact and in order.
#[test]
fn prop_length_sequences_between_threads() {
    let config = Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let lengths = proptest::collection::vec(
        prop_oneof![0usize..=24, Just(0), Just(24), Just(16), Just(8)],
        1..3000,
    );
    runner
        .run(&lengths, |lengths| {
            let name = unique_name("bytes-prop-threads");
            let _cleanup = Cleanup(name.clone());
            let (tx, mut rx) = bytes::channel(&name, 64).unwrap();
            let sent = lengths.clone();
            let sender = std::thread::spawn(move || {
                let mut scratch = Vec::new();
                for (index, &len) in sent.iter().enumerate() {
                    fill(index as u64, len, &mut scratch);
                    tx.send_timeout(&scratch, PATIENCE).unwrap();
                }
            });
            for (index, &len) in lengths.iter().enumerate() {
                let message = rx
                    .recv_timeout(PATIENCE)
                    .map_err(|e| fail(format!("message {index}: {e:?}")))?;
                check(index as u64, len, &message).map_err(fail)?;
            }
            sender.join().unwrap();
            prop_assert_eq!(
                rx.recv_timeout(NOTICE).map(|m| m.len()),
                Err(RecvTimeoutError::Disconnected)
            );
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------
// Property tests, two processes.

/// One plan through a child process, in either direction; the side in this
/// process runs under a watchdog.
fn plan_across_processes(
    seed: u64,
    capacity: usize,
    steps: u64,
    empties: bool,
    spin_us: u64,
    child_sends: bool,
) -> Plan {
    let name = unique_name("bytes-plan");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new()
        .capacity(capacity)
        .spin(Duration::from_micros(spin_us));
    let args = [
        name.clone(),
        seed.to_string(),
        steps.to_string(),
        if empties { "1" } else { "0" }.to_owned(),
        spin_us.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if child_sends {
        let mut rx = Receiver::create_with(&name, &options).unwrap();
        let peer = Peer::spawn("plan-send", &args);
        let (plan, rx) = within(Duration::from_secs(60), "receiving the plan", move || {
            let plan = recv_plan(&mut rx, seed, steps, empties);
            (plan, rx)
        });
        let plan = plan.unwrap_or_else(|e| panic!("seed {seed}, capacity {capacity}: {e}"));
        peer.finish(PEER_LIMIT);
        let mut rx = rx;
        assert_eq!(
            rx.recv_timeout(NOTICE).map(|m| m.len()),
            Err(RecvTimeoutError::Disconnected),
            "after the plan, only the end"
        );
        assert_eq!(rx.stats().received, rx.stats().sent);
        plan
    } else {
        let mut tx = Sender::create_with(&name, &options).unwrap();
        let peer = Peer::spawn("plan-recv", &args);
        let plan = within(Duration::from_secs(60), "sending the plan", move || {
            send_plan(&mut tx, seed, steps, empties)
        });
        let plan = plan.unwrap_or_else(|e| panic!("seed {seed}, capacity {capacity}: {e}"));
        peer.finish(PEER_LIMIT);
        plan
    }
}

/// The same property across two processes: the parent draws the seed, the
/// ring size, the length of the run and the spin time; both processes
/// regenerate the sequence from the seed, and the receiver checks every
/// byte.
#[test]
fn prop_plans_cross_processes_intact_and_in_order() {
    let config = Config {
        cases: 4,
        failure_persistence: None,
        max_shrink_iters: 8,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = (
        any::<u64>(),
        6u32..=9,
        1500u64..4000,
        prop_oneof![Just(0u64), Just(50)],
    );
    let wraps = AtomicU64::new(0);
    runner
        .run(&strategy, |(seed, log, steps, spin_us)| {
            for child_sends in [true, false] {
                let plan =
                    plan_across_processes(seed, 1 << log, steps, false, spin_us, child_sends);
                wraps.fetch_add(plan.wraps, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let wraps = wraps.into_inner();
    eprintln!("{wraps} wraps across processes");
    assert!(wraps >= 1000, "only {wraps} wraps across processes");
}

/// DESIGN §9: a zero-length record used as the wrap marker makes an empty
/// message vanish, with what follows. Half the messages here are empty,
/// some of them filling the last 8 bytes of the ring, some right after a
/// wrap marker.
#[test]
fn empty_messages_interleaved_with_data_cross_processes() {
    for child_sends in [true, false] {
        let plan = plan_across_processes(0xE3B7_0001, 64, 3000, true, 50, child_sends);
        assert!(
            plan.empty_at_end > 0 && plan.wraps > 100,
            "the plan should put empty messages at the ring's end ({}) and wrap often ({})",
            plan.empty_at_end,
            plan.wraps
        );
    }
}

// ---------------------------------------------------------------------------
// Sizes, claims and guards.

#[test]
fn capacity_is_a_power_of_two_of_at_least_64_and_0_is_invalid() {
    for (asked, real) in [
        (1, 64),
        (63, 64),
        (64, 64),
        (65, 128),
        (100, 128),
        (4096, 4096),
    ] {
        let name = unique_name("bytes-capacity");
        let (tx, rx) = bytes::channel(&name, asked).unwrap();
        assert_eq!(
            (tx.capacity(), rx.capacity()),
            (real, real),
            "asked for {asked}"
        );
        assert_eq!(
            tx.max_message_len(),
            real / 2 - 8,
            "max_message_len of {real}"
        );
    }
    let name = unique_name("bytes-capacity-0");
    assert!(matches!(
        bytes::channel(&name, 0),
        Err(Error::InvalidCapacity { requested: 0, .. })
    ));
    assert!(matches!(
        Sender::create(&name, 0),
        Err(Error::InvalidCapacity { .. })
    ));
    assert!(matches!(
        Receiver::create(&name, 0),
        Err(Error::InvalidCapacity { .. })
    ));
    assert!(!common::segment_exists(&name));
}

#[test]
fn longer_than_max_message_len_is_too_large_and_exactly_max_fits() {
    for capacity in [64, 256, 4096] {
        let name = unique_name("bytes-too-large");
        let (mut tx, mut rx) = bytes::channel(&name, capacity).unwrap();
        let max = tx.max_message_len();
        let too_long = vec![7u8; max + 1];
        assert_eq!(tx.try_send(&too_long), Err(TrySendError::TooLarge));
        assert_eq!(tx.send(&too_long), Err(SendError::TooLarge));
        assert_eq!(
            tx.send_timeout(&too_long, NOTICE),
            Err(SendTimeoutError::TooLarge)
        );
        assert_eq!(
            tx.try_claim(max + 1).map(|g| g.len()),
            Err(TrySendError::TooLarge)
        );
        assert_eq!(tx.claim(max + 1).map(|g| g.len()), Err(SendError::TooLarge));
        assert_eq!(
            tx.try_claim(usize::MAX).map(|g| g.len()),
            Err(TrySendError::TooLarge)
        );
        assert_eq!(tx.stats().sent, 0, "nothing was sent");

        // Exactly the max fits an empty ring wherever the ring stands: move
        // the position 8 bytes at a time (empty messages) all the way round.
        let cap = capacity as u64;
        let mut pos = 0u64;
        let mut scratch = Vec::new();
        for (n, offset) in (0..cap).step_by(8).enumerate() {
            while pos % cap != offset {
                tx.try_send(b"").unwrap();
                assert_eq!(rx.try_recv().unwrap().len(), 0);
                pos += 8;
            }
            fill(offset, max, &mut scratch);
            match n % 3 {
                0 => tx.try_send(&scratch).unwrap(),
                1 => tx.send_timeout(&scratch, NOTICE).unwrap(),
                _ => {
                    let mut grant = tx.try_claim(max).unwrap();
                    grant.copy_from_slice(&scratch);
                    grant.commit(max);
                }
            }
            check(offset, max, &rx.try_recv().unwrap()).unwrap();
            let to_end = cap - pos % cap;
            if record(max as u64) > to_end {
                pos += to_end;
            }
            pos += record(max as u64);
        }
        // And a full ring still answers TooLarge for what could never fit.
        while tx.try_send(&[1; 8]).is_ok() {}
        assert_eq!(tx.try_send(&too_long), Err(TrySendError::TooLarge));
        assert_eq!(
            tx.send_timeout(&too_long, Duration::from_millis(1)),
            Err(SendTimeoutError::TooLarge)
        );
    }
}

#[test]
fn empty_messages_are_delivered_as_empty_slices() {
    let name = unique_name("bytes-empty");
    let (mut tx, mut rx) = bytes::channel(&name, 64).unwrap();
    // An empty message in the last 8 bytes of the ring.
    tx.send(&[1; 16]).unwrap(); // 0..24
    tx.send(b"").unwrap(); // 24..32
    tx.send(b"").unwrap(); // 32..40
    tx.send(&[2; 8]).unwrap(); // 40..56
    tx.send(b"").unwrap(); // 56..64
    assert_eq!(
        tx.try_send(b""),
        Err(TrySendError::Full),
        "64 bytes in a 64-byte ring"
    );
    assert_eq!(tx.len(), 5);
    assert_eq!(&*rx.recv().unwrap(), &[1; 16]);
    assert_eq!(rx.recv().unwrap().len(), 0);
    assert_eq!(rx.recv().unwrap().len(), 0);
    assert_eq!(&*rx.recv().unwrap(), &[2; 8]);
    assert_eq!(rx.recv().unwrap().len(), 0);
    assert!(rx.is_empty());
    // The next record starts at 0 again.
    tx.send(&[3; 5]).unwrap(); // 0..16
    assert_eq!(&*rx.recv().unwrap(), &[3; 5]);
    tx.send(&[4; 24]).unwrap(); // 16..48
    tx.send(&[5; 1]).unwrap(); // 48..64
    assert_eq!(tx.try_send(&[6; 24]), Err(TrySendError::Full));
    assert_eq!(&*rx.recv().unwrap(), &[4; 24]);
    assert_eq!(&*rx.recv().unwrap(), &[5; 1]);
    tx.send(&[6; 24]).unwrap(); // 0..32
    assert_eq!(&*rx.recv().unwrap(), &[6; 24]);
    tx.send(&[7; 8]).unwrap(); // 32..48
    assert_eq!(&*rx.recv().unwrap(), &[7; 8]);
    // A wrap marker, then an empty message: a claim that had to wrap (24
    // bytes, 16 left before the end), committed empty.
    tx.try_claim(16).unwrap().commit(0); // marker at 48, record at 0..8
    tx.send(&[8; 3]).unwrap(); // 8..24
    assert_eq!(rx.recv().unwrap().len(), 0);
    assert_eq!(&*rx.recv().unwrap(), &[8; 3]);
    // A data message that wraps, then an empty one.
    tx.send(&[9; 24]).unwrap(); // 24..56
    assert_eq!(&*rx.recv().unwrap(), &[9; 24]);
    tx.send(&[10; 9]).unwrap(); // 24 bytes, 8 left: marker at 56, record at 0..24
    tx.send(b"").unwrap(); // 24..32
    tx.send(&[11; 2]).unwrap(); // 32..48
    assert_eq!(&*rx.recv().unwrap(), &[10; 9]);
    assert_eq!(rx.recv().unwrap().len(), 0);
    assert_eq!(&*rx.recv().unwrap(), &[11; 2]);
    assert_eq!(rx.try_recv().map(|m| m.len()), Err(TryRecvError::Empty));
    assert_eq!(rx.stats().received, 16);
    drop(tx);
    assert_eq!(
        rx.try_recv().map(|m| m.len()),
        Err(TryRecvError::Disconnected)
    );
}

#[test]
fn a_claim_committed_short_delivers_only_the_prefix() {
    let name = unique_name("bytes-commit-short");
    let (mut tx, mut rx) = bytes::channel(&name, 64).unwrap();
    let mut grant = tx.claim(24).unwrap();
    assert_eq!(grant.len(), 24);
    grant.copy_from_slice(&[9; 24]);
    grant[..3].copy_from_slice(b"abc");
    grant.commit(3);
    assert_eq!(&*rx.recv().unwrap(), b"abc");

    // Committing nothing sends an empty message; committing more than was
    // claimed sends the whole grant.
    let mut grant = tx.try_claim(10).unwrap();
    grant.fill(1);
    grant.commit(0);
    let mut grant = tx.try_claim(5).unwrap();
    grant.copy_from_slice(b"hello");
    grant.commit(1000);
    assert_eq!(rx.recv().unwrap().len(), 0);
    assert_eq!(&*rx.recv().unwrap(), b"hello");

    // The short record takes only the room of what was committed: a claim
    // of 24 committed empty takes 8 bytes, and two more records of 24 and
    // 16 bytes then fill the 64-byte ring exactly.
    let name = unique_name("bytes-commit-short-room");
    let (mut tx, mut rx) = bytes::channel(&name, 64).unwrap();
    tx.try_claim(24).unwrap().commit(0);
    tx.try_send(&[1; 24]).unwrap(); // 32 bytes
    tx.try_send(&[2; 16]).unwrap(); // 24 bytes
    assert_eq!(tx.try_send(b""), Err(TrySendError::Full));
    assert_eq!(rx.recv().unwrap().len(), 0);
    assert_eq!(&*rx.recv().unwrap(), &[1; 24]);
    assert_eq!(&*rx.recv().unwrap(), &[2; 16]);
}

#[test]
fn a_dropped_claim_delivers_nothing() {
    let name = unique_name("bytes-dropped-claim");
    let (mut tx, mut rx) = bytes::channel(&name, 64).unwrap();
    {
        let mut grant = tx.claim(24).unwrap();
        grant.fill(0xEE);
        // Dropped here, uncommitted.
    }
    assert_eq!(rx.try_recv().map(|m| m.len()), Err(TryRecvError::Empty));
    assert_eq!((tx.len(), tx.stats().sent), (0, 0));
    assert!(rx.is_empty());
    // It took no room: two records of 32 bytes still fit exactly.
    tx.try_send(&[1; 24]).unwrap();
    tx.try_send(&[2; 24]).unwrap();
    assert_eq!(tx.try_send(b""), Err(TrySendError::Full));
    assert_eq!(&*rx.recv().unwrap(), &[1; 24]);
    assert_eq!(&*rx.recv().unwrap(), &[2; 24]);

    // A dropped claim that would have wrapped leaves no wrap marker: with 8
    // bytes before the end, an empty message still goes there.
    tx.try_send(&[3; 16]).unwrap(); // 0..24
    tx.try_send(&[4; 24]).unwrap(); // 24..56
    assert_eq!(&*rx.recv().unwrap(), &[3; 16]);
    {
        // Would wrap (8 bytes skipped, then 24); dropped uncommitted.
        let grant = tx.try_claim(16).unwrap();
        assert_eq!(grant.len(), 16);
    }
    tx.try_send(b"").unwrap(); // 56..64
    tx.try_send(&[5; 16]).unwrap(); // 0..24
    assert_eq!(
        tx.try_send(b""),
        Err(TrySendError::Full),
        "24..88: the ring is full"
    );
    assert_eq!(&*rx.recv().unwrap(), &[4; 24]);
    assert_eq!(rx.recv().unwrap().len(), 0);
    assert_eq!(&*rx.recv().unwrap(), &[5; 16]);
    assert_eq!(rx.try_recv().map(|m| m.len()), Err(TryRecvError::Empty));
}

#[test]
fn a_receive_guard_holds_the_space_until_dropped_and_recv_into_replaces() {
    let name = unique_name("bytes-guard");
    let (tx, mut rx) = bytes::channel(&name, 64).unwrap();
    tx.send(&[1; 24]).unwrap();
    tx.send(&[2; 24]).unwrap();
    assert_eq!(tx.try_send(b""), Err(TrySendError::Full));
    let guard = rx.try_recv().unwrap();
    assert_eq!(&*guard, &[1; 24]);
    assert_eq!(
        tx.try_send(b""),
        Err(TrySendError::Full),
        "the guard still holds its record"
    );
    drop(guard);
    tx.try_send(&[3; 24]).unwrap();

    let mut buf = vec![0xAA; 100];
    assert_eq!(rx.recv_into(&mut buf), Ok(24));
    assert_eq!(buf, [2; 24], "recv_into replaces the vector's contents");
    tx.send(b"").unwrap();
    assert_eq!(rx.recv_into(&mut buf), Ok(24));
    assert_eq!(buf, [3; 24]);
    assert_eq!(rx.recv_into(&mut buf), Ok(0));
    assert!(buf.is_empty());
    drop(tx);
    assert_eq!(rx.recv_into(&mut buf), Err(RecvError));
    assert_eq!(rx.iter().next(), None);
}

/// DESIGN §5, §9: a sender waiting for room for a large message is woken
/// as soon as enough contiguous bytes are free, although the ring is far
/// from empty. The release that makes the room rings the sender's
/// doorbell (seen through the segment), so no timeout is involved.
#[test]
fn a_blocked_sender_wakes_when_enough_contiguous_room_is_freed() {
    let name = unique_name("bytes-big-wakes");
    let options = Options::new().capacity(256).spin(Duration::ZERO);
    let (tx, mut rx) = bytes::channel_with(&name, &options).unwrap();
    let file = File::open(shm_path(&name)).expect("open the segment's /dev/shm file");
    // Start at offset 8, then fill 8..248 with 15 records of 16 bytes; the
    // 8 bytes at the end are too few for another.
    tx.send(b"").unwrap();
    assert_eq!(rx.recv().unwrap().len(), 0);
    for i in 0..15u8 {
        tx.try_send(&[i; 8]).unwrap();
    }
    assert_eq!(tx.try_send(&[99; 8]), Err(TrySendError::Full));
    // 96 bytes (a 104-byte record) must wrap: it needs the 8 bytes at the
    // end plus 104 at the start, 112 bytes; 16 are free, so the receiver
    // must free 6 records (5 are not enough).
    let big = [0xB1u8; 96];
    let sender = std::thread::spawn(move || {
        let result = tx.send_timeout(&big, PATIENCE);
        (tx, result)
    });
    wait_until(PATIENCE, "the sender sleeps on not_full", || {
        read_u32(&file, NOT_FULL_SLEEPERS) == 1
    });
    for i in 0..5u8 {
        assert_eq!(&*rx.recv().unwrap(), &[i; 8]);
    }
    assert!(
        !sender.is_finished(),
        "96 bytes of room are not enough for a 112-byte wrap"
    );
    assert_eq!(
        read_u32(&file, NOT_FULL_SLEEPERS),
        1,
        "the sender still waits"
    );
    // The releases above woke the sender once (a publisher rings once per
    // look of its waiter); it looked, found too little room, and sleeps
    // again, ready to be rung for.
    wait_until(PATIENCE, "the sender looks again and sleeps", || {
        read_u32(&file, NOT_FULL_SIGNALLED) == 0
    });
    let seq = read_u32(&file, NOT_FULL_SEQ);
    assert_eq!(&*rx.recv().unwrap(), &[5; 8]);
    assert_ne!(
        read_u32(&file, NOT_FULL_SEQ),
        seq,
        "the release that made room for the waiting sender did not wake it"
    );
    let (tx, result) = sender.join().unwrap();
    assert_eq!(result, Ok(()));
    for i in 6..15u8 {
        assert_eq!(&*rx.recv().unwrap(), &[i; 8]);
    }
    assert_eq!(&*rx.recv().unwrap(), &big);
    drop(tx);
    assert_eq!(rx.recv().map(|m| m.len()), Err(RecvError));
}

/// The same with the receiver in another process: it frees a few records
/// and then holds on until the large message is in; the sender, asleep,
/// must get it in while the ring still holds the rest.
#[test]
fn a_blocked_sender_wakes_when_a_receiver_process_frees_room() {
    const SMALL: u8 = 16;
    const BIG: usize = 56; // a 64-byte record: 4 records of 16 bytes
    let name = unique_name("bytes-big-wakes-peer");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(256).spin(Duration::ZERO);
    let tx = Sender::create_with(&name, &options).unwrap();
    for i in 0..SMALL {
        tx.try_send(&[i; 8]).unwrap();
    }
    assert_eq!(tx.try_send(&[0; 8]), Err(TrySendError::Full));
    let peer = Peer::spawn(
        "free-then-hold",
        &[&name, "4", &SMALL.to_string(), &BIG.to_string()],
    );
    assert_eq!(tx.send_timeout(&[0xB1; BIG], PATIENCE), Ok(()));
    drop(tx);
    peer.finish(PEER_LIMIT);
}

// ---------------------------------------------------------------------------
// Statistics, queries, segments.

#[test]
fn stats_count_messages_and_bytes() {
    let name = unique_name("bytes-stats");
    let (tx, mut rx) = bytes::channel(&name, 256).unwrap();
    tx.send(&[1; 10]).unwrap(); // 24 bytes
    tx.send(b"").unwrap(); // 8
    tx.send(&[2; 30]).unwrap(); // 40
    let stats = tx.stats();
    assert_eq!(
        (stats.sent, stats.received, stats.len),
        (3, 0, 3),
        "messages"
    );
    assert_eq!(stats.capacity, 256, "bytes");
    assert_eq!(stats.full, 0);
    assert_eq!((tx.len(), rx.len()), (3, 3));
    assert!(!tx.is_empty() && !rx.is_empty());

    assert_eq!(&*rx.try_recv().unwrap(), &[1; 10]);
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received, stats.len), (3, 1, 2));
    assert_eq!(stats.high_water, 72, "the receiver saw 72 bytes queued");
    assert_eq!(
        tx.stats().high_water,
        72,
        "both ends read the same counters"
    );

    let mut refused = 0;
    while tx.try_send(&[3; 100]).is_ok() {}
    refused += 1;
    assert_eq!(tx.try_send(&[3; 100]), Err(TrySendError::Full));
    refused += 1;
    let stats = rx.stats();
    assert_eq!(stats.full, refused, "try_send refusals");
    assert!(stats.high_water <= 256);
    while rx.try_recv().is_ok() {}
    let stats = tx.stats();
    assert_eq!(stats.sent, stats.received);
    assert_eq!((stats.len, tx.len()), (0, 0));
    assert!(tx.is_empty() && rx.is_empty());

    let me = std::process::id();
    let mut roles: Vec<_> = stats
        .endpoints
        .iter()
        .map(|e| (e.role, e.pid, e.alive))
        .collect();
    roles.sort();
    assert_eq!(roles, [("receiver", me, true), ("sender", me, true)]);
    assert_eq!((tx.name(), rx.name()), (name.as_str(), name.as_str()));
    assert!(format!("{tx:?} {rx:?}").contains(&name));
}

#[test]
fn segment_mode_and_unlink_behave_as_for_spsc() {
    // 0600 by default; the segment goes when both ends have dropped.
    let name = unique_name("bytes-mode");
    let rx = Receiver::create(&name, 64).unwrap();
    assert_eq!(segment_mode(&name), 0o600);
    let tx = Sender::open(&name).unwrap();
    drop(rx);
    assert!(common::segment_exists(&name), "the sender still holds it");
    drop(tx);
    assert!(!common::segment_exists(&name));

    // The builder's mode, exactly, from either end.
    let name = unique_name("bytes-mode-640");
    let tx = Sender::create_with(&name, &Options::new().capacity(64).mode(0o640)).unwrap();
    assert_eq!(segment_mode(&name), 0o640);
    let mut rx = Receiver::open(&name).unwrap();

    // Unlinked while attached: the name is free, the ends keep working, and
    // a new channel of that name is another channel.
    shmchan::unlink(&name).unwrap();
    assert!(!common::segment_exists(&name));
    tx.send(b"still here").unwrap();
    assert_eq!(&*rx.recv().unwrap(), b"still here");
    let (tx2, mut rx2) = bytes::channel(&name, 64).unwrap();
    tx2.send(b"new").unwrap();
    drop((tx, rx));
    assert!(
        common::segment_exists(&name),
        "dropping the unlinked channel removed its successor"
    );
    assert_eq!(&*rx2.recv().unwrap(), b"new");
    drop((tx2, rx2));
    assert!(!common::segment_exists(&name));
    assert!(matches!(
        shmchan::unlink(&name),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn taken_roles_are_busy_and_live_names_already_exist() {
    let name = unique_name("bytes-busy");
    let (tx, rx) = bytes::channel(&name, 64).unwrap();
    let me = std::process::id();
    match Sender::open(&name) {
        Err(Error::Busy { role, pid, .. }) => assert_eq!((role, pid), ("sender", me)),
        other => panic!("a second sender: expected Busy, got {other:?}"),
    }
    match Receiver::open(&name) {
        Err(Error::Busy { role, pid, .. }) => assert_eq!((role, pid), ("receiver", me)),
        other => panic!("a second receiver: expected Busy, got {other:?}"),
    }
    assert!(matches!(
        Sender::create(&name, 64),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        Receiver::create(&name, 64),
        Err(Error::AlreadyExists { .. })
    ));
    drop(tx);
    let tx = Sender::open(&name).expect("a dropped sender's role is free");
    tx.send(b"x").unwrap();
    drop((tx, rx));
    assert!(matches!(Sender::open(&name), Err(Error::NotFound { .. })));
}

#[test]
fn opening_across_flavors_is_incompatible_and_names_the_flavor() {
    let name = unique_name("bytes-as-spsc");
    let (tx, mut rx) = bytes::channel(&name, 64).unwrap();
    let errors = [
        spsc::Sender::<u64>::open(&name).err(),
        spsc::Receiver::<u8>::open(&name).err(),
        spsc::Sender::<[u8; 64]>::open(&name).err(),
    ];
    for err in errors {
        let err = err.expect("a byte channel opened as spsc");
        assert!(matches!(err, Error::Incompatible { .. }), "{err:?}");
        let text = err.to_string().replace(&name, "").to_lowercase();
        assert!(
            text.contains("bytes") && text.contains("spsc"),
            "the message names both flavors: {err}"
        );
    }
    tx.send(b"fine").unwrap();
    assert_eq!(
        &*rx.recv().unwrap(),
        b"fine",
        "refused opens claimed nothing"
    );

    let name = unique_name("spsc-as-bytes");
    let (stx, srx) = spsc::channel::<u8>(&name, 64).unwrap();
    drop(stx);
    for err in [Sender::open(&name).err(), Receiver::open(&name).err()] {
        let err = err.expect("an spsc channel opened as bytes");
        assert!(matches!(err, Error::Incompatible { .. }), "{err:?}");
        let text = err.to_string().replace(&name, "").to_lowercase();
        assert!(
            text.contains("bytes") && text.contains("spsc"),
            "the message names both flavors: {err}"
        );
    }
    let stx = spsc::Sender::<u8>::open(&name).unwrap();
    stx.send(1).unwrap();
    assert_eq!(srx.recv(), Ok(1));
}

// ---------------------------------------------------------------------------
// Disconnection.

#[test]
fn receiver_drains_then_disconnects_when_the_sender_process_exits() {
    let name = unique_name("bytes-drain");
    let _cleanup = Cleanup(name.clone());
    let mut rx = Receiver::create(&name, 4096).unwrap();
    // 60 messages of 0 to 49 bytes fit a 4 KiB ring: the child has exited
    // before the receiver starts.
    Peer::spawn("send-count", &[&name, "60"]).finish(PEER_LIMIT);
    for index in 0..60 {
        check(index, index as usize % 50, &rx.try_recv().unwrap()).unwrap();
    }
    assert_eq!(
        rx.try_recv().map(|m| m.len()),
        Err(TryRecvError::Disconnected)
    );
    assert_eq!(
        rx.recv_timeout(NOTICE).map(|m| m.len()),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(rx.recv().map(|m| m.len()), Err(RecvError));
    assert_eq!(rx.try_iter().next(), None);
    assert_eq!(rx.iter().next(), None);
}

#[test]
fn recv_waits_for_a_first_sender_and_a_later_sender_revives() {
    let name = unique_name("bytes-first-sender");
    let mut rx = Receiver::create(&name, 64).unwrap();
    assert_eq!(
        rx.try_recv().map(|m| m.len()),
        Err(TryRecvError::Empty),
        "no sender yet: empty, not disconnected"
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(50)).map(|m| m.len()),
        Err(RecvTimeoutError::Timeout)
    );
    let tx = Sender::open(&name).unwrap();
    tx.send(b"one").unwrap();
    drop(tx);
    assert_eq!(&*rx.recv().unwrap(), b"one");
    assert_eq!(
        rx.try_recv().map(|m| m.len()),
        Err(TryRecvError::Disconnected)
    );
    let tx = Sender::open(&name).unwrap();
    tx.send(b"two").unwrap();
    assert_eq!(
        &*rx.recv().unwrap(),
        b"two",
        "a later sender revives the channel"
    );
    assert_eq!(rx.try_recv().map(|m| m.len()), Err(TryRecvError::Empty));
}

#[test]
fn sender_fills_then_waits_before_a_receiver_and_fails_after_it_is_gone() {
    let name = unique_name("bytes-first-receiver");
    let mut tx = Sender::create(&name, 64).unwrap();
    tx.try_send(&[1; 24]).unwrap();
    tx.try_send(&[2; 24]).unwrap();
    assert_eq!(
        tx.try_send(b""),
        Err(TrySendError::Full),
        "no receiver yet: full, not disconnected"
    );
    assert_eq!(
        tx.send_timeout(b"", Duration::from_millis(50)),
        Err(SendTimeoutError::Timeout)
    );
    let mut rx = Receiver::open(&name).unwrap();
    assert_eq!(&*rx.recv().unwrap(), &[1; 24]);
    drop(rx);
    assert_eq!(tx.try_send(b"x"), Err(TrySendError::Disconnected));
    assert_eq!(tx.send(b"x"), Err(SendError::Disconnected));
    assert_eq!(
        tx.send_timeout(b"x", NOTICE),
        Err(SendTimeoutError::Disconnected)
    );
    assert_eq!(
        tx.try_claim(1).map(|g| g.len()),
        Err(TrySendError::Disconnected)
    );
    assert_eq!(tx.claim(1).map(|g| g.len()), Err(SendError::Disconnected));
    let mut rx = Receiver::open(&name).expect("the receiver's role is free again");
    assert_eq!(
        &*rx.recv().unwrap(),
        &[2; 24],
        "what the first receiver left"
    );
    tx.send(b"again").unwrap();
    assert_eq!(&*rx.recv().unwrap(), b"again");
}

// ---------------------------------------------------------------------------
// SIGKILL (as tests/kill.rs does for spsc).

/// The receiver drains everything the killed sender published, in order,
/// then reports disconnection.
fn receiver_drains_after_sender_killed(reap: bool) {
    const BEFORE_KILL: u64 = 3000;
    const SEED: u64 = 0x5EED_B17E;
    let name = unique_name("bytes-kill-sender");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::create(&name, 512).unwrap();
    let mut peer = Peer::spawn("plan-stream", &[&name, &SEED.to_string()]);
    let (mut rx, mut plan, mut next) = within(
        Duration::from_secs(60),
        "receiving from the streaming peer",
        move || {
            let mut rx = rx;
            let mut plan = Plan::new(SEED, rx.capacity(), false);
            let mut buf = Vec::new();
            for index in 0..BEFORE_KILL {
                let len = plan.next_message();
                recv_step(&mut rx, index, len, &mut buf)
                    .unwrap_or_else(|e| panic!("before the kill: {e}"));
            }
            (rx, plan, BEFORE_KILL)
        },
    );
    if reap {
        peer.kill_and_reap();
    } else {
        peer.kill_unreaped();
    }
    loop {
        match rx.recv_timeout(NOTICE) {
            Ok(message) => {
                check(next, plan.next_message(), &message)
                    .unwrap_or_else(|e| panic!("after the kill: {e}"));
                next += 1;
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                panic!("recv_timeout({NOTICE:?}) timed out after the sender was SIGKILLed (reaped: {reap})")
            }
        }
    }
    if !reap {
        peer.reap();
    }
    // The sender counts a message just after publishing it: killed in
    // between, its count lags by one.
    let stats = rx.stats();
    assert_eq!(stats.received, next);
    assert!(
        stats.sent == next || stats.sent + 1 == next,
        "the sender counted {} messages, {next} were received",
        stats.sent
    );
    assert_eq!(
        rx.try_recv().map(|m| m.len()),
        Err(TryRecvError::Disconnected)
    );
    assert_eq!(
        rx.recv_timeout(NOTICE).map(|m| m.len()),
        Err(RecvTimeoutError::Disconnected)
    );
    drop(rx);
    assert!(
        !common::segment_exists(&name),
        "unlinked once the last live end is gone"
    );
}

#[test]
fn killed_sender_receiver_drains_then_disconnects() {
    receiver_drains_after_sender_killed(true);
}

#[test]
fn killed_sender_receiver_drains_then_disconnects_while_zombie() {
    receiver_drains_after_sender_killed(false);
}

#[derive(Clone, Copy, Debug)]
enum Blocked {
    SendTimeout,
    Send,
    Claim,
}

/// A sender blocked on a full ring fails with `Disconnected` once the
/// receiver process is killed.
fn sender_blocked_when_receiver_killed(how: Blocked) {
    let name = unique_name("bytes-kill-receiver");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(256).spin(Duration::ZERO);
    let mut tx = Sender::create_with(&name, &options).unwrap();
    let mut peer = Peer::spawn("recv-then-hold", &[&name, "3"]);
    for i in 0..3u8 {
        tx.send_timeout(&[i; 5], PATIENCE).unwrap();
    }
    wait_until(PATIENCE, "the peer received 3 messages", || {
        tx.stats().received == 3
    });
    while tx.try_send(&[7; 40]).is_ok() {}
    assert_eq!(tx.try_send(&[7; 40]), Err(TrySendError::Full));
    let pid = peer.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        sigkill(pid);
    });
    let big = [0xB1; 100];
    let result = within(
        NOTICE + Duration::from_secs(5),
        "the blocked send",
        move || {
            let result = match how {
                Blocked::SendTimeout => tx.send_timeout(&big, NOTICE),
                Blocked::Send => tx.send(&big).map_err(SendTimeoutError::from),
                Blocked::Claim => tx.claim(100).map(drop).map_err(SendTimeoutError::from),
            };
            (tx, result)
        },
    );
    let (mut tx, result) = result;
    assert_eq!(
        result,
        Err(SendTimeoutError::Disconnected),
        "{how:?} after the receiver was SIGKILLed"
    );
    // Sticky, for every kind of send.
    assert_eq!(tx.try_send(b""), Err(TrySendError::Disconnected));
    assert_eq!(tx.send(b""), Err(SendError::Disconnected));
    assert_eq!(
        tx.try_claim(0).map(|g| g.len()),
        Err(TrySendError::Disconnected)
    );
    killer.join().unwrap();
    peer.reap();
}

#[test]
fn killed_receiver_fails_a_blocked_send_timeout() {
    sender_blocked_when_receiver_killed(Blocked::SendTimeout);
}

#[test]
fn killed_receiver_fails_a_blocked_send() {
    sender_blocked_when_receiver_killed(Blocked::Send);
}

#[test]
fn killed_receiver_fails_a_blocked_claim() {
    sender_blocked_when_receiver_killed(Blocked::Claim);
}

/// A killed sender's role can be opened again; the receiver gets the dead
/// sender's last message after its death, then the new sender's.
fn sender_role_reopens_after_kill(reap: bool) {
    const OLD: u64 = 40;
    const SEED: u64 = 0x5EED_0E0E;
    let name = unique_name("bytes-kill-reopen");
    let _cleanup = Cleanup(name.clone());
    let mut rx = Receiver::create(&name, 4096).unwrap();
    let mut peer = Peer::spawn(
        "send-then-hold",
        &[&name, &SEED.to_string(), &OLD.to_string()],
    );
    let mut check_plan = Plan::new(SEED, rx.capacity(), false);
    // All but the last: any one message fits the empty ring, so the peer
    // gets its last one in and then holds the sender.
    for index in 0..OLD - 1 {
        let message = rx.recv_timeout(PATIENCE).unwrap();
        check(index, check_plan.next_message(), &message).unwrap();
    }
    wait_until(PATIENCE, "the peer sent its messages", || {
        rx.stats().sent == OLD
    });
    match Sender::open(&name) {
        Err(Error::Busy { role, pid, .. }) => assert_eq!((role, pid), ("sender", peer.pid())),
        other => panic!("opening a held sender should be Busy, got {other:?}"),
    }
    let mut tx = if reap {
        peer.kill_and_reap();
        Sender::open(&name).expect("a reaped sender's role is free at once")
    } else {
        peer.kill_unreaped();
        let mut opened = None;
        wait_until(
            NOTICE,
            "the zombie sender's role is reclaimed",
            || match Sender::open(&name) {
                Ok(tx) => {
                    opened = Some(tx);
                    true
                }
                Err(Error::Busy { .. }) => false,
                Err(err) => panic!("reopening after the kill: {err}"),
            },
        );
        opened.unwrap()
    };
    check(
        OLD - 1,
        check_plan.next_message(),
        &rx.recv_timeout(PATIENCE).unwrap(),
    )
    .unwrap_or_else(|e| panic!("the dead sender's last message: {e}"));
    // The new sender goes on with the same plan where the old one stopped.
    let mut plan = Plan::new(SEED, tx.capacity(), false);
    let mut index = 0;
    while index < OLD {
        index += u64::from(plan.next().is_message());
    }
    let mut scratch = Vec::new();
    while index < 2 * OLD {
        let step = plan.next();
        send_step(&mut tx, step, index, &mut scratch).unwrap();
        if step.is_message() {
            let message = rx.recv_timeout(PATIENCE).unwrap();
            check(index, check_plan.next_message(), &message)
                .unwrap_or_else(|e| panic!("the new sender's messages: {e}"));
            index += 1;
        }
    }
    assert_eq!(
        rx.try_recv().map(|m| m.len()),
        Err(TryRecvError::Empty),
        "the new sender lives"
    );
    drop(tx);
    assert_eq!(
        rx.recv_timeout(NOTICE).map(|m| m.len()),
        Err(RecvTimeoutError::Disconnected)
    );
    if !reap {
        peer.reap();
    }
}

#[test]
fn killed_sender_role_can_be_opened_again() {
    sender_role_reopens_after_kill(true);
}

#[test]
fn killed_sender_role_can_be_opened_again_while_zombie() {
    sender_role_reopens_after_kill(false);
}

/// A receiver killed mid-stream: the sender fills what room is left, then
/// fails; a new receiver takes over where the dead one stopped.
#[test]
fn killed_receiver_role_can_be_opened_again_and_resumes() {
    const BEFORE_KILL: u64 = 3000;
    const SEED: u64 = 0x5EED_2ECE;
    let name = unique_name("bytes-kill-receiver-resume");
    let _cleanup = Cleanup(name.clone());
    let tx = Sender::create(&name, 512).unwrap();
    let mut peer = Peer::spawn("plan-recv-forever", &[&name, &SEED.to_string()]);
    let (tx, mut plan, mut lengths) = within(
        Duration::from_secs(60),
        "streaming to the peer",
        move || {
            let mut tx = tx;
            let mut plan = Plan::new(SEED, tx.capacity(), false);
            let mut lengths = Vec::new();
            let mut scratch = Vec::new();
            while (lengths.len() as u64) < BEFORE_KILL {
                let step = plan.next();
                send_step(&mut tx, step, lengths.len() as u64, &mut scratch).unwrap();
                if step.is_message() {
                    lengths.push(step.len);
                }
            }
            (tx, plan, lengths)
        },
    );
    peer.kill_and_reap();

    // Fill what room is left, until the dead receiver is noticed.
    let mut scratch = Vec::new();
    let unsent = loop {
        let len = plan.next_message();
        let index = lengths.len() as u64;
        fill(index, len, &mut scratch);
        match tx.send_timeout(&scratch, NOTICE) {
            Ok(()) => lengths.push(len),
            Err(SendTimeoutError::Disconnected) => break len,
            Err(err) => panic!("send_timeout after the receiver was SIGKILLed: {err:?}"),
        }
        assert!(
            lengths.len() as u64 <= BEFORE_KILL + 512 / 8,
            "sent more than the ring holds after the receiver died"
        );
    };

    let mut rx = Receiver::open(&name).expect("a killed receiver's role can be opened again");
    // The dead receiver released `received` messages, or one more if it
    // died between releasing a record and counting it.
    let released = rx.stats().received;
    let sent = lengths.len() as u64;
    assert!(released <= sent, "received {released} of {sent}");
    let mut next = released;
    if next < sent {
        let message = rx.recv_timeout(PATIENCE).unwrap().to_vec();
        next = if check(next, lengths[next as usize], &message).is_ok() {
            next + 1
        } else {
            check(next + 1, lengths[next as usize + 1], &message)
                .unwrap_or_else(|e| panic!("the first message for the new receiver: {e}"));
            next + 2
        };
    }
    while next < sent {
        let message = rx.recv_timeout(PATIENCE).unwrap();
        check(next, lengths[next as usize], &message)
            .unwrap_or_else(|e| panic!("what the dead receiver left: {e}"));
        next += 1;
    }
    assert_eq!(rx.try_recv().map(|m| m.len()), Err(TryRecvError::Empty));
    // The stream goes on, the refused message first.
    lengths.push(unsent);
    for _ in 0..200 {
        let index = lengths.len() as u64 - 1;
        let len = lengths[index as usize];
        fill(index, len, &mut scratch);
        tx.send_timeout(&scratch, PATIENCE).unwrap();
        check(index, len, &rx.recv_timeout(PATIENCE).unwrap()).unwrap();
        lengths.push(plan.next_message());
    }
    drop(tx);
    assert_eq!(
        rx.recv_timeout(NOTICE).map(|m| m.len()),
        Err(RecvTimeoutError::Disconnected)
    );
}
