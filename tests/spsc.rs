//! spsc across real processes.
//!
//! Most tests start this binary again as a peer process (see `peer` below and
//! `common::spawn_peer`) so that what they check is what a user sees between
//! two programs: creating, opening, type checks, disconnection, statistics.
//! Peers that must report something the parent asserts on write it to a
//! report file; a peer that just checks and exits is not trusted alone (its
//! harness exits 0 when it runs no test), so the parent always checks an
//! effect of its work too.

mod common;

use common::{
    expect_success, peer_wait, segment_exists, segment_mode, spawn_peer, unique_name, wait_until,
    Peer,
};
use shmchan::spsc::{
    self, Error, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use shmchan::{Options, ShmSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long any peer may take before the test calls it hung.
const PEER_LIMIT: Duration = Duration::from_secs(20);
/// How long a peer that waits for the parent waits before giving up.
const PEER_PATIENCE: Duration = Duration::from_secs(15);
/// How long the parent waits for a peer to reach a state.
const STATE_LIMIT: Duration = Duration::from_secs(10);

/// The message type of the type-safety tests.
#[derive(Clone, Copy, Debug, PartialEq, shmchan::ShmSafe)]
#[repr(C)]
struct Tick {
    ts: u64,
    px: f64,
    qty: u32,
    side: u32,
}

/// The `i`th tick a peer sends; every field depends on `i`.
fn tick(i: u64) -> Tick {
    Tick {
        ts: 1_700_000_000_000_000_000 + i * 1_000_003,
        px: 100.25 + i as f64 * 0.125,
        qty: (i as u32).wrapping_mul(7).wrapping_add(1),
        side: (i % 2) as u32,
    }
}

/// A struct with the same name as [`Tick`] whose third field is retyped.
mod retyped {
    #[allow(dead_code)] // only ever named as a channel's type: opening fails
    #[derive(Clone, Copy, shmchan::ShmSafe)]
    #[repr(C)]
    pub struct Tick {
        pub ts: u64,
        pub px: f64,
        pub qty: i32,
        pub side: u32,
    }
}

/// A struct defined exactly like [`Tick`], in another module.
mod mirror {
    #[derive(Clone, Copy, shmchan::ShmSafe)]
    #[repr(C)]
    pub struct Tick {
        pub ts: u64,
        pub px: f64,
        pub qty: u32,
        pub side: u32,
    }
}

/// A fresh path for a peer's report.
fn report_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.report", unique_name(tag)))
}

/// Reads and removes a peer's report.
fn take_report(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("peer wrote no report at {path:?}: {err}"));
    let _ = std::fs::remove_file(path);
    text
}

/// An open result as a report: `Ok`, or the error's Debug and Display.
fn describe<E: std::fmt::Debug + std::fmt::Display, T>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => "Ok".to_owned(),
        Err(err) => format!("{err:?}\n{err}"),
    }
}

/// Whether `stats` list `pid` attached, and alive, as `role`.
fn attached(stats: &shmchan::Stats, role: &str, pid: u32) -> bool {
    stats
        .endpoints
        .iter()
        .any(|e| e.role == role && e.pid == pid && e.alive)
}

/// Receives until the channel reports disconnection, failing (not hanging)
/// if nothing happens for [`STATE_LIMIT`].
fn drain<T: ShmSafe>(rx: &spsc::Receiver<T>) -> Vec<T> {
    let mut got = Vec::new();
    loop {
        match rx.recv_timeout(STATE_LIMIT) {
            Ok(value) => got.push(value),
            Err(RecvTimeoutError::Disconnected) => return got,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "neither a message nor disconnection within {STATE_LIMIT:?}, after {} messages",
                    got.len()
                )
            }
        }
    }
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let name = args[0].as_str();
        match role {
            // Opens the sender and sends 0..count.
            "send-count" => {
                let count: u64 = args[1].parse().unwrap();
                let tx = spsc::Sender::<u64>::open(name).unwrap();
                for i in 0..count {
                    tx.send(i).unwrap();
                }
            }
            // Opens the sender and sends start..end; with a 4th argument
            // "sleepy", it never spins: every wait sleeps on the futex.
            "send-range" => {
                let (start, end): (u64, u64) = (args[1].parse().unwrap(), args[2].parse().unwrap());
                let spin = if args.get(3).map(String::as_str) == Some("sleepy") {
                    Duration::ZERO
                } else {
                    Options::DEFAULT_SPIN
                };
                let tx = spsc::Sender::<u64>::open_with(name, &Options::new().spin(spin)).unwrap();
                for i in start..end {
                    tx.send(i).unwrap();
                }
            }
            // Receives on channel args[0] and sends each value + 1 on
            // channel args[1], never spinning, until the first sender leaves.
            "echo-sleepy" => {
                let sleepy = Options::new().spin(Duration::ZERO);
                let rx = spsc::Receiver::<u64>::open_with(name, &sleepy).unwrap();
                let tx = spsc::Sender::<u64>::open_with(&args[1], &sleepy).unwrap();
                for value in &rx {
                    tx.send(value + 1).unwrap();
                }
            }
            // Opens the sender, sends 0..count, then stays attached until killed.
            "send-then-hang" => {
                let count: u64 = args[1].parse().unwrap();
                let tx = spsc::Sender::<u64>::open(name).unwrap();
                for i in 0..count {
                    tx.send(i).unwrap();
                }
                std::thread::sleep(PEER_PATIENCE);
                panic!("send-then-hang was not killed");
            }
            // Creates the channel as its sender (capacity 8), sends 1, 2, 3,
            // then stays attached until killed.
            "create-sender-then-hang" => {
                let tx = spsc::Sender::<u64>::create(name, 8).unwrap();
                for i in 1..=3 {
                    tx.send(i).unwrap();
                }
                std::thread::sleep(PEER_PATIENCE);
                panic!("create-sender-then-hang was not killed");
            }
            // Opens the sender, sends 7, and leaves once it was received.
            "hold-sender" => {
                let tx = spsc::Sender::<u64>::open(name).unwrap();
                tx.send(7).unwrap();
                peer_wait(PEER_PATIENCE, "the parent received the 7", || {
                    tx.stats().received >= 1
                });
            }
            // Opens the receiver and receives (counting nothing) until the
            // sender is gone; then, if given a second channel, keeps the
            // receiver until a message arrives there.
            "hold-receiver" => {
                let rx = spsc::Receiver::<u64>::open(name).unwrap();
                let give_up = Instant::now() + PEER_PATIENCE;
                loop {
                    match rx.recv_timeout(Duration::from_millis(20)) {
                        Ok(_) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            assert!(Instant::now() < give_up, "sender never left")
                        }
                    }
                }
                if let Some(go) = args.get(1) {
                    let go = spsc::Receiver::<u64>::open(go).unwrap();
                    assert!(go.recv_timeout(PEER_PATIENCE).is_ok(), "no word to go");
                }
            }
            // Opens the receiver, receives 0..count in order, and leaves.
            "recv-count" => {
                let count: u64 = args[1].parse().unwrap();
                let rx = spsc::Receiver::<u64>::open(name).unwrap();
                for i in 0..count {
                    assert_eq!(rx.recv(), Ok(i));
                }
            }
            // Creates the channel as its receiver and expects exactly [42]
            // before the sender leaves.
            "create-receiver-expect-42" => {
                let rx = spsc::Receiver::<u64>::create(name, 8).unwrap();
                let give_up = Instant::now() + PEER_PATIENCE;
                let mut got = Vec::new();
                loop {
                    match rx.recv_timeout(Duration::from_millis(20)) {
                        Ok(value) => got.push(value),
                        Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            assert!(Instant::now() < give_up, "no sender came")
                        }
                    }
                }
                assert_eq!(got, [42]);
            }
            // Under a restrictive umask, creates one channel with mode 0o640
            // and one with the default mode; reports both modes.
            "create-under-umask" => {
                // SAFETY: umask only swaps the process's file-creation mask;
                // this peer process runs nothing else concurrently.
                unsafe { libc::umask(0o277) };
                let named = args[1].as_str();
                let report = args[2].as_str();
                let with_mode =
                    spsc::Receiver::<u64>::create_with(name, &Options::new().mode(0o640)).unwrap();
                let default = spsc::Receiver::<u64>::create(named, 8).unwrap();
                std::fs::write(
                    report,
                    format!("{:o} {:o}", segment_mode(name), segment_mode(named)),
                )
                .unwrap();
                drop((with_mode, default));
            }
            // Opens a channel of u64 as u32; reports the result.
            "open-as-u32" => {
                std::fs::write(&args[1], describe(spsc::Sender::<u32>::open(name))).unwrap();
            }
            // Opens a channel of Tick with a retyped Tick; reports the result.
            "open-retyped-tick" => {
                std::fs::write(
                    &args[1],
                    describe(spsc::Sender::<retyped::Tick>::open(name)),
                )
                .unwrap();
            }
            // Sends tick(0..count).
            "send-ticks" => {
                let count: u64 = args[1].parse().unwrap();
                let tx = spsc::Sender::<Tick>::open(name).unwrap();
                for i in 0..count {
                    tx.send(tick(i)).unwrap();
                }
            }
            // Sends tick(0..count) as the identically defined mirror::Tick.
            "send-mirror-ticks" => {
                let count: u64 = args[1].parse().unwrap();
                let tx = spsc::Sender::<mirror::Tick>::open(name).unwrap();
                for i in 0..count {
                    let t = tick(i);
                    tx.send(mirror::Tick {
                        ts: t.ts,
                        px: t.px,
                        qty: t.qty,
                        side: t.side,
                    })
                    .unwrap();
                }
            }
            // Sends 0..total in chunks of 1..=300 values, alternating
            // `send_batch` and `try_send_batch`.
            "send-batches" => {
                let total: u64 = args[1].parse().unwrap();
                let tx = spsc::Sender::<u64>::open(name).unwrap();
                let mut next = 0u64;
                let mut rng = 0x9E37_79B9_7F4A_7C15u64;
                let first = [1u64, 300, 2, 299, 257, 256, 255];
                let mut round = 0usize;
                let mut chunk = Vec::with_capacity(300);
                while next < total {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let size = first
                        .get(round)
                        .copied()
                        .unwrap_or(1 + rng % 300)
                        .min(total - next);
                    chunk.clear();
                    chunk.extend(next..next + size);
                    let mut rest = &chunk[..];
                    while !rest.is_empty() {
                        let sent = if round % 2 == 0 {
                            tx.send_batch(rest).unwrap();
                            rest.len()
                        } else {
                            match tx.try_send_batch(rest) {
                                Ok(sent) => {
                                    assert!(sent >= 1, "try_send_batch returned Ok(0)");
                                    sent
                                }
                                Err(TrySendError::Full(())) => {
                                    std::thread::yield_now();
                                    0
                                }
                                Err(err) => panic!("try_send_batch: {err}"),
                            }
                        };
                        assert!(sent <= rest.len());
                        rest = &rest[sent..];
                    }
                    next += size;
                    round += 1;
                }
            }
            // On a channel of capacity 8 (asked for as 5): 8 accepted
            // try_sends, then 3 refused; stays attached until all 8 are
            // received.
            "stats-sender" => {
                let tx = spsc::Sender::<u64>::open(name).unwrap();
                assert_eq!(tx.capacity(), 8);
                for i in 0..8 {
                    tx.try_send(i).unwrap();
                }
                for i in 100..103 {
                    match tx.try_send(i) {
                        Err(TrySendError::Full(back)) => assert_eq!(back, i),
                        other => panic!("try_send on a full channel: {other:?}"),
                    }
                }
                assert!(tx.is_full());
                peer_wait(PEER_PATIENCE, "the parent received all 8", || {
                    tx.stats().received == 8
                });
            }
            other => panic!("unknown role {other}"),
        }
    });
}

// ---------------------------------------------------------------------------
// Streaming.

#[test]
fn child_streams_a_million_in_order() {
    let name = unique_name("million");
    let rx = spsc::Receiver::<u64>::create(&name, 1024).unwrap();
    let child = spawn_peer("send-count", &[&name, "1000000"]);
    let mut expected = 0u64;
    for value in &rx {
        assert_eq!(value, expected);
        expected += 1;
    }
    assert_eq!(expected, 1_000_000);
    expect_success(child, Duration::from_secs(30));
}

// ---------------------------------------------------------------------------
// Errors of create and open.

#[test]
fn invalid_names_are_refused_by_every_constructor() {
    let too_long = "x".repeat(201);
    let bad = [
        "", "/", &too_long, "sp ace", "star*", "tab\t", "é", "a:b", "a/b", "/a/b", "//a", "..",
        "/..", ".",
    ];
    for name in bad {
        let check = |what: &str, err: Option<Error>| match err {
            Some(Error::InvalidName {
                name: given,
                reason,
            }) => {
                assert_eq!(given, name, "{what}: the error names the name given");
                assert!(!reason.is_empty(), "{what}: the error says why");
            }
            other => panic!("{what}({name:?}): expected InvalidName, got {other:?}"),
        };
        check(
            "Receiver::create",
            spsc::Receiver::<u64>::create(name, 8).err(),
        );
        check("Sender::create", spsc::Sender::<u64>::create(name, 8).err());
        check("channel", spsc::channel::<u64>(name, 8).err());
        check("Receiver::open", spsc::Receiver::<u64>::open(name).err());
        check("Sender::open", spsc::Sender::<u64>::open(name).err());
        check("unlink", shmchan::unlink(name).err());
    }
    let text = spsc::channel::<u64>("a/b", 8).unwrap_err().to_string();
    assert!(
        text.contains("\"a/b\"") && text.contains("200"),
        "the message names the name and the rule: {text}"
    );
}

#[test]
fn names_of_200_characters_with_or_without_a_leading_slash_are_valid() {
    let base = unique_name("long");
    let long = format!("{base}{}", "x".repeat(200 - base.len()));
    assert_eq!(long.len(), 200);
    let (tx, rx) = spsc::channel::<u64>(&long, 4).unwrap();
    assert!(segment_exists(&long));
    assert_eq!(rx.name(), long);
    tx.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));
    drop((tx, rx));
    assert!(!segment_exists(&long));

    // "/name" and "name" are the same channel.
    let base = unique_name("slash");
    let bare = format!("{base}{}", "y".repeat(200 - base.len()));
    let slashed = format!("/{bare}");
    let rx = spsc::Receiver::<u64>::create(&slashed, 4).unwrap();
    assert_eq!(rx.name(), slashed);
    assert!(segment_exists(&bare));
    let tx = spsc::Sender::<u64>::open(&bare).unwrap();
    assert_eq!(tx.name(), bare);
    tx.send(2).unwrap();
    assert_eq!(rx.recv(), Ok(2));
    drop((tx, rx));
    assert!(!segment_exists(&bare));
}

#[test]
fn capacity_zero_or_unmappable_is_invalid_capacity() {
    let name = unique_name("cap0");
    let check = |what: &str, requested: usize, err: Option<Error>| match err {
        Some(Error::InvalidCapacity {
            requested: got,
            reason,
        }) => {
            assert_eq!(got, requested, "{what}");
            assert!(!reason.is_empty(), "{what}");
        }
        other => {
            panic!("{what} with capacity {requested}: expected InvalidCapacity, got {other:?}")
        }
    };
    check("channel", 0, spsc::channel::<u64>(&name, 0).err());
    check(
        "Receiver::create",
        0,
        spsc::Receiver::<u64>::create(&name, 0).err(),
    );
    check(
        "Sender::create",
        0,
        spsc::Sender::<u64>::create(&name, 0).err(),
    );
    check(
        "channel_with",
        0,
        spsc::channel_with::<u64>(&name, &Options::new().capacity(0)).err(),
    );
    check(
        "Receiver::create",
        usize::MAX,
        spsc::Receiver::<u64>::create(&name, usize::MAX).err(),
    );
    check(
        "Sender::create",
        1 << 50,
        spsc::Sender::<u64>::create(&name, 1 << 50).err(),
    );
    assert!(
        !segment_exists(&name),
        "a refused create leaves nothing behind"
    );
    assert!(matches!(
        spsc::Sender::<u64>::open(&name),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn capacity_is_rounded_up_to_a_power_of_two() {
    for (asked, real) in [(1usize, 1usize), (5, 8), (8, 8), (9, 16), (1000, 1024)] {
        let name = unique_name("round");
        let (tx, rx) = spsc::channel::<u64>(&name, asked).unwrap();
        assert_eq!(
            (tx.capacity(), rx.capacity()),
            (real, real),
            "asked for {asked}"
        );
        assert_eq!(rx.stats().capacity, real as u64);
        // It really holds `real` messages, no more.
        for i in 0..real as u64 {
            tx.try_send(i)
                .unwrap_or_else(|err| panic!("message {i} of {real}: {err}"));
        }
        assert!(
            matches!(tx.try_send(u64::MAX), Err(TrySendError::Full(u64::MAX))),
            "asked for {asked}"
        );
        // An opener's capacity option is ignored: the channel's wins.
        drop(tx);
        let tx = spsc::Sender::<u64>::open_with(&name, &Options::new().capacity(4 * real)).unwrap();
        assert_eq!(tx.capacity(), real);
    }
}

#[test]
fn opening_a_missing_channel_is_not_found() {
    let name = unique_name("missing");
    match spsc::Sender::<u64>::open(&name) {
        Err(Error::NotFound { name: given }) => assert_eq!(given, name),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match spsc::Receiver::<u64>::open(&name) {
        Err(Error::NotFound { name: given }) => assert_eq!(given, name),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        shmchan::unlink(&name),
        Err(Error::NotFound { .. })
    ));
    assert!(!segment_exists(&name), "open does not create");
}

#[test]
fn creating_over_a_live_peer_is_already_exists() {
    let name = unique_name("exists");
    let peer = Peer::spawn("create-receiver-expect-42", &[&name]);
    let child = peer.pid();
    // The child's receiver is in place once opening it is Busy.
    wait_until(
        STATE_LIMIT,
        "the child created the channel",
        || match spsc::Receiver::<u64>::open(&name) {
            Err(Error::NotFound { .. }) => false,
            Err(Error::Busy { pid, role, .. }) => {
                assert_eq!((pid, role), (child, "receiver"));
                true
            }
            other => panic!("unexpected open result {other:?}"),
        },
    );
    for (what, result) in [
        (
            "Receiver::create",
            spsc::Receiver::<u64>::create(&name, 8).err(),
        ),
        (
            "Sender::create",
            spsc::Sender::<u64>::create(&name, 8).err(),
        ),
        ("channel", spsc::channel::<u64>(&name, 8).err()),
        (
            "create of another type",
            spsc::Receiver::<u32>::create(&name, 8).err(),
        ),
    ] {
        match result {
            Some(err @ Error::AlreadyExists { .. }) => {
                let text = err.to_string();
                assert!(
                    text.contains(&child.to_string()),
                    "{what}: the message names the holder: {text}"
                );
            }
            other => panic!("{what}: expected AlreadyExists, got {other:?}"),
        }
    }
    // The refused creates did not touch the live channel: the child gets
    // exactly the 42 sent now.
    let tx = spsc::Sender::<u64>::open(&name).unwrap();
    tx.send(42).unwrap();
    drop(tx);
    peer.finish(PEER_LIMIT);
    assert!(
        !segment_exists(&name),
        "the peer, last to leave, removed the segment"
    );
}

#[test]
fn busy_sender_names_the_holding_pid() {
    // In one process.
    let name = unique_name("busy-tx-local");
    let (tx, rx) = spsc::channel::<u64>(&name, 4).unwrap();
    match spsc::Sender::<u64>::open(&name) {
        Err(Error::Busy {
            pid,
            role,
            name: given,
        }) => {
            assert_eq!(
                (pid, role, given.as_str()),
                (std::process::id(), "sender", name.as_str())
            )
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    drop((tx, rx));

    // Held by another process.
    let name = unique_name("busy-tx");
    let rx = spsc::Receiver::<u64>::create(&name, 4).unwrap();
    let peer = Peer::spawn("hold-sender", &[&name]);
    let child = peer.pid();
    wait_until(STATE_LIMIT, "the child attached as sender", || {
        attached(&rx.stats(), "sender", child)
    });
    let err = spsc::Sender::<u64>::open(&name).unwrap_err();
    match &err {
        Error::Busy {
            pid,
            role,
            name: given,
        } => assert_eq!((*pid, *role, given), (child, "sender", &name)),
        other => panic!("expected Busy, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&format!("process {child}")), "{text}");
    // The refusal took nothing from the holder, and once it leaves the role
    // is free again.
    assert_eq!(rx.recv(), Ok(7));
    peer.finish(PEER_LIMIT);
    let tx = spsc::Sender::<u64>::open(&name).unwrap();
    tx.send(8).unwrap();
    assert_eq!(rx.recv(), Ok(8));
}

#[test]
fn busy_receiver_names_the_holding_pid() {
    let name = unique_name("busy-rx-local");
    let (tx, rx) = spsc::channel::<u64>(&name, 4).unwrap();
    match spsc::Receiver::<u64>::open(&name) {
        Err(Error::Busy { pid, role, .. }) => {
            assert_eq!((pid, role), (std::process::id(), "receiver"))
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    drop((tx, rx));

    let name = unique_name("busy-rx");
    let tx = spsc::Sender::<u64>::create(&name, 4).unwrap();
    let peer = Peer::spawn("hold-receiver", &[&name]);
    let child = peer.pid();
    wait_until(STATE_LIMIT, "the child attached as receiver", || {
        attached(&tx.stats(), "receiver", child)
    });
    let err = spsc::Receiver::<u64>::open(&name).unwrap_err();
    match &err {
        Error::Busy { pid, role, .. } => assert_eq!((*pid, *role), (child, "receiver")),
        other => panic!("expected Busy, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&format!("process {child}")), "{text}");
    // The child leaves when the sender does, and being last removes the
    // segment.
    drop(tx);
    peer.finish(PEER_LIMIT);
    assert!(!segment_exists(&name));
}

#[test]
fn stale_segment_of_a_killed_creator_is_replaced_by_create() {
    let name = unique_name("stale");
    let peer = Peer::spawn("create-sender-then-hang", &[&name]);
    let child = peer.pid();
    wait_until(
        STATE_LIMIT,
        "the child created the channel",
        || match spsc::Sender::<u64>::open(&name) {
            Err(Error::NotFound { .. }) => false,
            Err(Error::Busy { pid, .. }) => {
                assert_eq!(pid, child);
                true
            }
            other => panic!("unexpected open result {other:?}"),
        },
    );
    peer.kill();
    assert!(segment_exists(&name), "SIGKILL leaves the segment behind");

    // Nobody alive is attached: create replaces it with a fresh channel.
    let rx = spsc::Receiver::<u64>::create(&name, 16).expect("create over a stale segment");
    assert_eq!(
        rx.capacity(),
        16,
        "the new channel, not the dead one's (capacity 8)"
    );
    let stats = rx.stats();
    assert_eq!(
        (stats.sent, stats.received, stats.len),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "the dead sender's 1, 2, 3 are gone"
    );
    let tx = spsc::Sender::<u64>::open(&name).unwrap();
    tx.send(5).unwrap();
    assert_eq!(rx.recv(), Ok(5));
    let me = std::process::id();
    let endpoints = rx.stats().endpoints;
    assert_eq!(endpoints.len(), 2, "{endpoints:?}");
    assert!(
        endpoints.iter().all(|e| e.pid == me && e.alive),
        "{endpoints:?}"
    );
    drop((tx, rx));
    assert!(!segment_exists(&name));
}

#[test]
fn stale_segment_is_replaced_by_sender_create_too() {
    let name = unique_name("stale-tx");
    let peer = Peer::spawn("create-sender-then-hang", &[&name]);
    let child = peer.pid();
    wait_until(
        STATE_LIMIT,
        "the child created the channel",
        || matches!(spsc::Sender::<u64>::open(&name), Err(Error::Busy { pid, .. }) if pid == child),
    );
    peer.kill();
    let tx = spsc::Sender::<u64>::create(&name, 2).expect("create over a stale segment");
    assert_eq!(tx.capacity(), 2);
    assert!(tx.is_empty());
    let rx = spsc::Receiver::<u64>::open(&name).unwrap();
    tx.send(9).unwrap();
    assert_eq!(rx.recv(), Ok(9));
}

#[test]
fn segment_is_removed_when_both_ends_drop() {
    // In one process, in either order.
    for receiver_first in [false, true] {
        let name = unique_name("unlink-local");
        let (tx, rx) = spsc::channel::<u64>(&name, 4).unwrap();
        assert!(segment_exists(&name));
        if receiver_first {
            drop(rx);
            assert!(segment_exists(&name), "the sender still holds it");
            drop(tx);
        } else {
            drop(tx);
            assert!(segment_exists(&name), "the receiver still holds it");
            drop(rx);
        }
        assert!(!segment_exists(&name));
    }

    // The peer process leaves first; the parent's drop removes it.
    let name = unique_name("unlink-peer-first");
    let rx = spsc::Receiver::<u64>::create(&name, 4).unwrap();
    let peer = Peer::spawn("send-range", &[&name, "0", "3"]);
    peer.finish(PEER_LIMIT);
    assert!(segment_exists(&name), "the receiver still holds it");
    assert_eq!(drain(&rx), [0, 1, 2]);
    drop(rx);
    assert!(!segment_exists(&name));

    // The parent leaves first; the peer's exit removes it. (The peer keeps
    // its receiver until told, so that it cannot have left by the time the
    // parent looks.)
    let name = unique_name("unlink-peer-last");
    let go_name = unique_name("unlink-peer-last-go");
    let tx = spsc::Sender::<u64>::create(&name, 4).unwrap();
    let go = spsc::Sender::<u64>::create(&go_name, 4).unwrap();
    let peer = Peer::spawn("hold-receiver", &[&name, &go_name]);
    let child = peer.pid();
    wait_until(STATE_LIMIT, "the child attached", || {
        attached(&tx.stats(), "receiver", child)
    });
    drop(tx);
    assert!(segment_exists(&name), "the peer still holds it");
    go.send(1).unwrap();
    peer.finish(PEER_LIMIT);
    assert!(!segment_exists(&name));
}

#[test]
fn segment_mode_is_0600_by_default_and_exactly_the_builders_mode() {
    let name = unique_name("mode-default");
    let rx = spsc::Receiver::<u64>::create(&name, 4).unwrap();
    assert_eq!(segment_mode(&name), 0o600, "default mode");
    drop(rx);

    let name = unique_name("mode-640");
    let (tx, rx) =
        spsc::channel_with::<u64>(&name, &Options::new().mode(0o640).capacity(4)).unwrap();
    assert_eq!(segment_mode(&name), 0o640);
    drop((tx, rx));

    // Under a umask that would strip group read and owner write.
    let with_mode = unique_name("mode-umask-640");
    let default = unique_name("mode-umask-default");
    let report = report_path("mode");
    let peer = Peer::spawn(
        "create-under-umask",
        &[&with_mode, &default, report.to_str().unwrap()],
    );
    peer.finish(PEER_LIMIT);
    assert_eq!(
        take_report(&report),
        "640 600",
        "modes (Options::mode(0o640), default) under umask 0o277"
    );
    assert!(!segment_exists(&with_mode) && !segment_exists(&default));
}

// ---------------------------------------------------------------------------
// Type safety.

#[test]
fn opening_a_u64_channel_as_u32_is_incompatible_and_names_both_types() {
    let name = unique_name("narrowed");
    let rx = spsc::Receiver::<u64>::create(&name, 8).unwrap();
    let report = report_path("u32");
    Peer::spawn("open-as-u32", &[&name, report.to_str().unwrap()]).finish(PEER_LIMIT);
    let text = take_report(&report);
    assert!(
        text.starts_with("Incompatible"),
        "expected Error::Incompatible, the child got {text}"
    );
    let display = text.lines().nth(1).unwrap_or_default();
    assert!(
        display.contains(&name),
        "the message names the channel: {display}"
    );
    let without_name = display.replace(&name, "");
    assert!(
        without_name.contains("u64") && without_name.contains("u32"),
        "the message names both types: {display}"
    );

    // In this process too, for either role (the type check comes first).
    assert!(matches!(
        spsc::Receiver::<u32>::open(&name),
        Err(Error::Incompatible { .. })
    ));
    assert!(matches!(
        spsc::Sender::<i64>::open(&name),
        Err(Error::Incompatible { .. })
    ));
    assert!(matches!(
        spsc::Sender::<[u32; 2]>::open(&name),
        Err(Error::Incompatible { .. })
    ));
    // A refused open claims nothing: the sender's role is still free.
    let tx = spsc::Sender::<u64>::open(&name).unwrap();
    tx.send(3).unwrap();
    assert_eq!(rx.recv(), Ok(3));
}

#[test]
fn derived_struct_crosses_processes_intact() {
    let name = unique_name("ticks");
    let rx = spsc::Receiver::<Tick>::create(&name, 64).unwrap();
    let peer = Peer::spawn("send-ticks", &[&name, "5000"]);
    let ticks = drain(&rx);
    assert_eq!(ticks.len(), 5000);
    for (i, got) in (0u64..).zip(ticks) {
        let want = tick(i);
        assert_eq!(got.ts, want.ts, "ts of tick {i}");
        assert_eq!(got.px.to_bits(), want.px.to_bits(), "px of tick {i}");
        assert_eq!(got.qty, want.qty, "qty of tick {i}");
        assert_eq!(got.side, want.side, "side of tick {i}");
    }
    peer.finish(PEER_LIMIT);
}

#[test]
fn identically_defined_struct_in_another_module_is_compatible() {
    let name = unique_name("mirror");
    let rx = spsc::Receiver::<Tick>::create(&name, 16).unwrap();
    let peer = Peer::spawn("send-mirror-ticks", &[&name, "100"]);
    let got: Vec<Tick> = drain(&rx);
    assert_eq!(got, (0..100).map(tick).collect::<Vec<_>>());
    peer.finish(PEER_LIMIT);
}

#[test]
fn retyped_field_is_incompatible_and_the_message_names_the_field() {
    let name = unique_name("retyped");
    let rx = spsc::Receiver::<Tick>::create(&name, 8).unwrap();
    let report = report_path("retyped");
    Peer::spawn("open-retyped-tick", &[&name, report.to_str().unwrap()]).finish(PEER_LIMIT);
    let text = take_report(&report);
    assert!(
        text.starts_with("Incompatible"),
        "expected Error::Incompatible, the child got {text}"
    );
    assert!(
        text.contains(
            "first difference: field 3 is `qty:u32@16` in the channel, `qty:i32@16` here"
        ),
        "the message names the differing field: {text}"
    );
    assert!(text.contains("Tick"), "{text}");
    drop(rx);
}

// ---------------------------------------------------------------------------
// Semantics of std::sync::mpsc, across processes.

#[test]
fn try_send_on_a_full_channel_hands_the_value_back() {
    let name = unique_name("full");
    let (tx, rx) = spsc::channel::<u64>(&name, 2).unwrap();
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert!(tx.is_full() && rx.is_full());
    let err = tx.try_send(3).unwrap_err();
    assert!(matches!(err, TrySendError::Full(3)), "{err:?}");
    assert!(err.is_full() && !err.is_disconnected());
    assert_eq!(err.into_inner(), 3);
    assert_eq!(err.to_string(), "sending on a full channel");
    assert_eq!(rx.recv(), Ok(1));
    tx.try_send(3).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 3]);
}

#[test]
fn try_recv_on_an_empty_channel_is_empty() {
    let name = unique_name("empty");
    let (tx, rx) = spsc::channel::<u64>(&name, 4).unwrap();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(rx.is_empty() && tx.is_empty());
    tx.send(4).unwrap();
    assert_eq!(rx.try_recv(), Ok(4));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rx.try_iter().next(), None);
}

#[test]
fn recv_timeout_with_nothing_sent_times_out() {
    let name = unique_name("recv-timeout");
    let (tx, rx) = spsc::channel::<u64>(&name, 4).unwrap();
    let timeout = Duration::from_millis(100);
    let start = Instant::now();
    assert_eq!(rx.recv_timeout(timeout), Err(RecvTimeoutError::Timeout));
    let waited = start.elapsed();
    assert!(
        waited >= timeout,
        "returned after {waited:?}, before the {timeout:?} timeout"
    );
    // Something sent meanwhile is received at once.
    tx.send(6).unwrap();
    assert_eq!(rx.recv_timeout(timeout), Ok(6));
}

#[test]
fn send_timeout_on_a_full_channel_times_out() {
    let name = unique_name("send-timeout");
    let (tx, rx) = spsc::channel::<u64>(&name, 2).unwrap();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let timeout = Duration::from_millis(100);
    let start = Instant::now();
    let err = tx.send_timeout(3, timeout).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, SendTimeoutError::Timeout(3)), "{err:?}");
    assert!(err.is_timeout());
    assert!(
        waited >= timeout,
        "returned after {waited:?}, before the {timeout:?} timeout"
    );
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(tx.send_timeout(3, timeout), Ok(()));
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 3]);
}

#[test]
fn receiver_drains_everything_then_reports_disconnection_after_the_sender_exits() {
    let name = unique_name("drain");
    let rx = spsc::Receiver::<u64>::create(&name, 128).unwrap();
    Peer::spawn("send-range", &[&name, "0", "100"]).finish(PEER_LIMIT);
    // The sender is gone, but what it sent is all there.
    for i in 0..100 {
        assert_eq!(rx.recv(), Ok(i));
    }
    // (recv_timeout first: if disconnection went unnoticed, fail, not hang.)
    assert_eq!(
        rx.recv_timeout(STATE_LIMIT),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.iter().next(), None);
    let mut buf = [0u64; 4];
    assert_eq!(rx.recv_batch(&mut buf), Err(RecvError));
    assert_eq!(rx.try_recv_batch(&mut buf), Err(TryRecvError::Disconnected));

    // The same through iter(), which ends.
    let name = unique_name("drain-iter");
    let rx = spsc::Receiver::<u64>::create(&name, 128).unwrap();
    Peer::spawn("send-range", &[&name, "0", "100"]).finish(PEER_LIMIT);
    assert_eq!(rx.iter().collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
}

#[test]
fn recv_reports_disconnection_when_the_sender_process_is_killed() {
    let name = unique_name("kill-tx");
    let rx = spsc::Receiver::<u64>::create(&name, 64).unwrap();
    let peer = Peer::spawn("send-then-hang", &[&name, "10"]);
    for i in 0..5 {
        assert_eq!(rx.recv(), Ok(i));
    }
    wait_until(STATE_LIMIT, "the child published all 10", || {
        rx.stats().sent == 10
    });
    peer.kill();
    // What it published before dying is still delivered, then disconnection.
    for i in 5..10 {
        assert_eq!(rx.recv(), Ok(i));
    }
    assert_eq!(
        rx.recv_timeout(STATE_LIMIT),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(rx.recv(), Err(RecvError));
    // The dead sender's role can be taken again.
    let tx = spsc::Sender::<u64>::open(&name).unwrap();
    tx.send(11).unwrap();
    assert_eq!(rx.recv(), Ok(11));
    drop((tx, rx));
    assert!(!segment_exists(&name));
}

#[test]
fn send_fails_once_the_receiver_process_exits() {
    let name = unique_name("rx-gone");
    let tx = spsc::Sender::<u64>::create(&name, 16).unwrap();
    let peer = Peer::spawn("recv-count", &[&name, "3"]);
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    peer.finish(PEER_LIMIT);
    assert_eq!(tx.stats().received, 3, "the child received what was sent");
    assert!(tx.is_empty());
    // Room enough, but nobody to receive.
    assert_eq!(tx.send(7), Err(SendError(7)));
    assert_eq!(tx.send(7).unwrap_err().into_inner(), 7);
    let err = tx.try_send(8).unwrap_err();
    assert!(matches!(err, TrySendError::Disconnected(8)), "{err:?}");
    assert!(err.is_disconnected());
    assert!(matches!(
        tx.send_timeout(9, Duration::from_secs(5)),
        Err(SendTimeoutError::Disconnected(9))
    ));
    assert_eq!(tx.send_batch(&[1, 2]), Err(SendError(0)));
    assert!(matches!(
        tx.try_send_batch(&[1, 2]),
        Err(TrySendError::Disconnected(()))
    ));
    assert_eq!(tx.stats().sent, 3, "nothing more was queued");
}

#[test]
fn send_reports_disconnection_when_the_receiver_process_is_killed() {
    let name = unique_name("kill-rx");
    let tx = spsc::Sender::<u64>::create(&name, 4).unwrap();
    let peer = Peer::spawn("hold-receiver", &[&name]);
    let child = peer.pid();
    wait_until(STATE_LIMIT, "the child attached", || {
        attached(&tx.stats(), "receiver", child)
    });
    peer.kill();
    // Sends may fill the ring before the death is noticed; once full, the
    // next one fails rather than waiting forever. (send_timeout, so that a
    // death never noticed fails the test instead of hanging it.)
    let mut failed_at = None;
    for i in 0..=4u64 {
        match tx.send_timeout(i, STATE_LIMIT) {
            Ok(()) => {}
            Err(SendTimeoutError::Disconnected(back)) => {
                assert_eq!(back, i);
                failed_at = Some(i);
                break;
            }
            Err(SendTimeoutError::Timeout(_)) => {
                panic!("message {i}: the dead receiver went unnoticed")
            }
        }
    }
    let failed_at = failed_at.expect("more sends succeeded than the ring holds");
    assert_eq!(tx.send(99), Err(SendError(99)));
    assert!(matches!(
        tx.try_send(99),
        Err(TrySendError::Disconnected(99))
    ));
    // The dead receiver's role can be taken again; it finds what was queued.
    let rx = spsc::Receiver::<u64>::open(&name).unwrap();
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        (0..failed_at).collect::<Vec<_>>()
    );
    tx.send(50).unwrap();
    assert_eq!(rx.recv(), Ok(50));
}

#[test]
fn recv_waits_for_a_first_sender_instead_of_reporting_disconnection() {
    let name = unique_name("no-sender-yet");
    let rx = spsc::Receiver::<u64>::create(&name, 8).unwrap();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let timeout = Duration::from_millis(100);
    let start = Instant::now();
    assert_eq!(rx.recv_timeout(timeout), Err(RecvTimeoutError::Timeout));
    assert!(start.elapsed() >= timeout);
    // A blocking recv started before the sender attaches waits for it.
    let peer = Peer::spawn("send-range", &[&name, "0", "5"]);
    assert_eq!(rx.recv(), Ok(0));
    assert_eq!(drain(&rx), [1, 2, 3, 4]);
    peer.finish(PEER_LIMIT);
}

#[test]
fn a_later_sender_revives_the_channel() {
    let name = unique_name("revive");
    let rx = spsc::Receiver::<u64>::create(&name, 64).unwrap();
    Peer::spawn("send-range", &[&name, "0", "10"]).finish(PEER_LIMIT);
    assert_eq!(drain(&rx), (0..10).collect::<Vec<_>>());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

    // A second process attaches and streams more than the ring holds.
    let peer = Peer::spawn("send-range", &[&name, "10", "2000"]);
    let child = peer.pid();
    wait_until(STATE_LIMIT, "the second sender attached", || {
        attached(&rx.stats(), "sender", child) || rx.stats().sent > 10
    });
    assert_eq!(drain(&rx), (10..2000).collect::<Vec<_>>());
    peer.finish(PEER_LIMIT);
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn sender_created_before_any_receiver_fills_then_says_full() {
    let name = unique_name("no-receiver-yet");
    let tx = spsc::Sender::<u64>::create(&name, 4).unwrap();
    for i in 0..4 {
        assert_eq!(tx.try_send(i), Ok(()), "message {i}");
    }
    assert!(matches!(tx.try_send(4), Err(TrySendError::Full(4))));
    assert!(matches!(
        tx.send_timeout(4, Duration::from_millis(50)),
        Err(SendTimeoutError::Timeout(4))
    ));
    assert!(matches!(
        tx.try_send_batch(&[4, 5]),
        Err(TrySendError::Full(()))
    ));
    // A receiver that attaches later gets them all.
    Peer::spawn("recv-count", &[&name, "4"]).finish(PEER_LIMIT);
    assert_eq!(tx.stats().received, 4);
    assert_eq!(tx.send(5), Err(SendError(5)), "that receiver has left");
}

// ---------------------------------------------------------------------------
// Batches.

#[test]
fn batches_cross_processes_every_value_once_in_order() {
    const TOTAL: u64 = 200_000;
    let name = unique_name("batches");
    let rx = spsc::Receiver::<u64>::create(&name, 256).unwrap();
    let peer = Peer::spawn("send-batches", &[&name, &TOTAL.to_string()]);
    let mut buf = [u64::MAX; 257];
    let mut expected = 0u64;
    let mut largest = 0;
    while expected < TOTAL {
        let n = rx
            .recv_batch(&mut buf)
            .unwrap_or_else(|_| panic!("disconnected after {expected} of {TOTAL}"));
        assert!((1..=buf.len()).contains(&n), "recv_batch returned {n}");
        largest = largest.max(n);
        for &value in &buf[..n] {
            assert_eq!(value, expected, "values lost, repeated or reordered");
            expected += 1;
        }
    }
    assert!(largest <= 256, "a batch larger than the ring: {largest}");
    peer.finish(PEER_LIMIT);
    assert_eq!(rx.stats().sent, TOTAL);
    // Nothing more, and recv_batch reports the sender gone.
    assert_eq!(
        rx.recv_timeout(STATE_LIMIT),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(rx.recv_batch(&mut buf), Err(RecvError));
}

#[test]
fn batch_calls_move_what_fits() {
    let name = unique_name("batch-fit");
    let (tx, rx) = spsc::channel::<u64>(&name, 4).unwrap();
    assert_eq!(tx.send_batch(&[]), Ok(()));
    assert_eq!(
        tx.try_send_batch(&[0, 1, 2, 3, 4, 5]),
        Ok(4),
        "as many as fit"
    );
    assert!(matches!(
        tx.try_send_batch(&[4]),
        Err(TrySendError::Full(()))
    ));
    assert_eq!(rx.stats().full, 1, "a refused try_send_batch is counted");
    let mut out = [0u64; 3];
    assert_eq!(rx.recv_batch(&mut []), Ok(0));
    assert_eq!(rx.try_recv_batch(&mut out), Ok(3));
    assert_eq!(out, [0, 1, 2]);
    assert_eq!(tx.try_send_batch(&[4, 5, 6, 7]), Ok(3));
    assert_eq!(rx.recv_batch(&mut out), Ok(3));
    assert_eq!(out, [3, 4, 5]);
    assert_eq!(rx.recv_batch(&mut out), Ok(1));
    assert_eq!(out[0], 6);
    assert_eq!(rx.try_recv_batch(&mut out), Err(TryRecvError::Empty));
    // The blocking form sends everything, waiting for room as it goes.
    let sender = std::thread::spawn(move || tx.send_batch(&[10, 11, 12, 13, 14, 15, 16]));
    let mut seen = Vec::new();
    while seen.len() < 7 {
        let n = rx.recv_batch(&mut out).unwrap();
        seen.extend_from_slice(&out[..n]);
    }
    assert_eq!(seen, [10, 11, 12, 13, 14, 15, 16]);
    assert_eq!(sender.join().unwrap(), Ok(()));
    assert_eq!(rx.try_recv_batch(&mut out), Err(TryRecvError::Disconnected));
}

// ---------------------------------------------------------------------------
// Statistics.

#[test]
fn stats_seen_from_the_receiver_count_a_peer_senders_work() {
    let name = unique_name("stats");
    let rx = spsc::Receiver::<u64>::create(&name, 5).unwrap();
    assert_eq!(rx.capacity(), 8);
    let me = std::process::id();
    let peer = Peer::spawn("stats-sender", &[&name]);
    let child = peer.pid();
    wait_until(
        STATE_LIMIT,
        "the child sent 8 and was refused 3 times",
        || {
            let stats = rx.stats();
            stats.sent == 8 && stats.full == 3
        },
    );

    let stats = rx.stats();
    assert_eq!(
        (
            stats.sent,
            stats.received,
            stats.len,
            stats.capacity,
            stats.full
        ),
        (8, 0, 8, 8, 3),
        "{stats:?}"
    );
    assert_eq!((rx.len(), rx.is_full(), rx.is_empty()), (8, true, false));
    let roles = |stats: &shmchan::Stats| {
        let mut roles: Vec<(&str, u32, bool)> = stats
            .endpoints
            .iter()
            .map(|e| (e.role, e.pid, e.alive))
            .collect();
        roles.sort();
        roles
    };
    assert_eq!(
        roles(&stats),
        [("receiver", me, true), ("sender", child, true)]
    );

    for i in 0..3 {
        assert_eq!(rx.recv(), Ok(i));
    }
    let stats = rx.stats();
    assert_eq!(
        (stats.sent, stats.received, stats.len, stats.full),
        (8, 3, 5, 3),
        "{stats:?}"
    );
    assert_eq!(stats.high_water, 8, "the receiver found 8 waiting");
    assert_eq!(
        roles(&stats),
        [("receiver", me, true), ("sender", child, true)]
    );
    assert_eq!((rx.len(), rx.is_full(), rx.is_empty()), (5, false, false));
    assert_eq!(rx.name(), name);

    for i in 3..8 {
        assert_eq!(rx.recv(), Ok(i));
    }
    peer.finish(PEER_LIMIT);
    assert_eq!(
        rx.recv_timeout(STATE_LIMIT),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(rx.recv(), Err(RecvError));
    let stats = rx.stats();
    assert_eq!(
        (stats.sent, stats.received, stats.len, stats.full),
        (8, 8, 0, 3),
        "{stats:?}"
    );
    assert_eq!(roles(&stats), [("receiver", me, true)], "the sender left");
    assert_eq!((rx.len(), rx.is_full(), rx.is_empty()), (0, false, true));
}

#[test]
fn both_ends_answer_the_same_queries() {
    let name = unique_name("queries");
    let (tx, rx) = spsc::channel::<u64>(&name, 3).unwrap();
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    assert_eq!((tx.capacity(), rx.capacity()), (4, 4));
    assert_eq!((tx.len(), rx.len()), (3, 3));
    assert_eq!((tx.is_empty(), tx.is_full()), (false, false));
    assert_eq!((tx.name(), rx.name()), (name.as_str(), name.as_str()));
    assert!(matches!(tx.try_send(3), Ok(())));
    assert!(tx.is_full() && rx.is_full());
    assert!(matches!(tx.try_send(4), Err(TrySendError::Full(4))));
    assert_eq!(tx.stats(), rx.stats(), "both ends read the same counters");
    let stats = tx.stats();
    assert_eq!(
        (
            stats.sent,
            stats.received,
            stats.len,
            stats.capacity,
            stats.full
        ),
        (4, 0, 4, 4, 1)
    );
    let debug = format!("{tx:?} {rx:?}");
    assert!(debug.contains(&name) && debug.contains("u64"), "{debug}");
}

// ---------------------------------------------------------------------------
// Sleeping, and unlink.

#[test]
fn ends_that_never_spin_are_woken_across_processes() {
    // Streaming through 2 slots: both sides sleep on the futex again and
    // again, and each must be woken by the other process.
    let sleepy = Options::new().spin(Duration::ZERO).capacity(2);
    let name = unique_name("sleepy-stream");
    let rx = spsc::Receiver::<u64>::create_with(&name, &sleepy).unwrap();
    let peer = Peer::spawn("send-range", &[&name, "0", "2000", "sleepy"]);
    assert_eq!(drain(&rx), (0..2000).collect::<Vec<_>>());
    peer.finish(PEER_LIMIT);

    // Ping-pong: each side sleeps until the other answers.
    let (ping_name, pong_name) = (unique_name("sleepy-ping"), unique_name("sleepy-pong"));
    let ping = spsc::Sender::<u64>::create_with(&ping_name, &sleepy).unwrap();
    let pong = spsc::Receiver::<u64>::create_with(&pong_name, &sleepy).unwrap();
    let peer = Peer::spawn("echo-sleepy", &[&ping_name, &pong_name]);
    for i in 0..200u64 {
        ping.send(2 * i).unwrap();
        assert_eq!(
            pong.recv_timeout(STATE_LIMIT),
            Ok(2 * i + 1),
            "round trip {i}"
        );
    }
    drop(ping);
    assert_eq!(
        pong.recv_timeout(STATE_LIMIT),
        Err(RecvTimeoutError::Disconnected)
    );
    peer.finish(PEER_LIMIT);
}

#[test]
fn unlink_removes_the_name_while_attached_ends_keep_working() {
    let name = unique_name("unlink");
    let (tx, rx) = spsc::channel::<u64>(&name, 4).unwrap();
    shmchan::unlink(&name).unwrap();
    assert!(!segment_exists(&name));
    assert!(matches!(
        spsc::Sender::<u64>::open(&name),
        Err(Error::NotFound { .. })
    ));
    tx.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));

    // The name is free for a new channel, which the old ends' drop leaves alone.
    let (tx2, rx2) = spsc::channel::<u64>(&name, 8).unwrap();
    assert_eq!(rx2.capacity(), 8);
    drop((tx, rx));
    assert!(
        segment_exists(&name),
        "dropping the unlinked channel removed its successor"
    );
    let tx3 = spsc::Sender::<u64>::open(&name);
    assert!(matches!(tx3, Err(Error::Busy { .. })), "{tx3:?}");
    tx2.send(2).unwrap();
    assert_eq!(rx2.recv(), Ok(2));
    drop((tx2, rx2));
    assert!(!segment_exists(&name));
}

// ---------------------------------------------------------------------------
// Threads.

#[test]
fn both_ends_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<spsc::Sender<Tick>>();
    assert_send::<spsc::Receiver<Tick>>();

    // A receiver moved into a thread, fed by another process.
    let name = unique_name("send-rx");
    let rx = spsc::Receiver::<u64>::create(&name, 64).unwrap();
    let peer = Peer::spawn("send-range", &[&name, "0", "1000"]);
    let got = std::thread::spawn(move || rx.into_iter().collect::<Vec<_>>())
        .join()
        .unwrap();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    peer.finish(PEER_LIMIT);
    assert!(!segment_exists(&name), "the thread's drop removed it");

    // A sender moved into a thread.
    let name = unique_name("send-tx");
    let (tx, rx) = spsc::channel::<u64>(&name, 16).unwrap();
    let sender = std::thread::spawn(move || {
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
    });
    assert_eq!(drain(&rx), (0..1000).collect::<Vec<_>>());
    sender.join().unwrap();
}

#[test]
fn a_blocked_send_takes_a_single_freed_slot() {
    // A sender blocked on a full ring must not hold out for more room than
    // one message needs: here the receiver frees exactly one slot and then
    // waits for that message, as a request/ack protocol would.
    for spin in [Duration::ZERO, Options::DEFAULT_SPIN] {
        let name = unique_name("one-slot");
        let options = Options::new().capacity(1024).spin(spin);
        let (tx, rx) = spsc::channel_with::<u64>(&name, &options).unwrap();
        for i in 0..1024 {
            tx.try_send(i).unwrap();
        }
        let sender = std::thread::spawn(move || tx.send_timeout(1024, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rx.recv(), Ok(0));
        assert_eq!(sender.join().unwrap(), Ok(()), "spin {spin:?}");
        assert_eq!(rx.len(), 1024);
    }
}

#[test]
fn a_ring_larger_than_dev_shm_is_an_error_not_a_later_crash() {
    // Twice what /dev/shm can hold: tmpfs refuses the reservation up front,
    // so this never allocates real memory. Without the reservation, `create`
    // would succeed and the process would die of SIGBUS when the ring filled.
    // SAFETY: `statvfs` writes only into the struct it is given; the path is
    // a NUL-terminated literal.
    let fs = unsafe {
        let mut fs: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c"/dev/shm".as_ptr(), &mut fs), 0);
        fs
    };
    let shm_bytes = fs.f_blocks * fs.f_frsize;
    let capacity = (2 * shm_bytes / 8).next_power_of_two();
    if capacity * 8 > 1 << 40 {
        eprintln!("/dev/shm is larger than the largest ring; nothing to check");
        return;
    }
    let name = unique_name("too-big");
    let err = spsc::Receiver::<u64>::create(&name, capacity as usize).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/dev/shm"), "{err}");
    assert!(
        !segment_exists(&name),
        "the failed create left its object behind"
    );
}
