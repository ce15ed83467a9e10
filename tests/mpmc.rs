//! mpmc across threads and real processes: any number of senders and
//! receivers, both ends `Clone + Send + Sync`, each message received once.
//!
//! The in-process tests pin down the API (errors, capacity, hints,
//! statistics, `Busy`, disconnection, batches); the others start this
//! binary again as peer processes (see `peer` below and
//! `common::spawn_peer`): two producer processes and two consumer
//! processes, with and without threads sharing each process's endpoint,
//! every message exactly once; FIFO as each consumer sees it.
//!
//! No timing is pass/fail: generous limits only turn a hang into a failure.

mod common;

use common::{arg, live, Cleanup, Peer};
use common::{segment_exists, sleep_forever, unique_name, wait_until, within};
use shmchan::mpmc::{
    self, Error, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use shmchan::Options;
use std::time::Duration;

/// How long any peer may take before the test calls it hung.
const PEER_LIMIT: Duration = Duration::from_secs(120);
/// How long the parent waits for a peer (or itself) to reach a state.
const STATE_LIMIT: Duration = Duration::from_secs(30);
/// The watchdog of the long-running tests.
const WATCHDOG: Duration = Duration::from_secs(400);
/// A timeout that is meant to pass.
const SHORT: Duration = Duration::from_millis(50);

/// Message `seq` of producer `id`: distinct values, the producer in the
/// high bits.
fn tag(id: u64, seq: u64) -> u64 {
    id << 40 | seq
}

/// `(producer, seq)` of a tagged value.
fn untag(value: u64) -> (u64, u64) {
    (value >> 40, value & ((1 << 40) - 1))
}

/// A 64-bit mix (splitmix64's finalizer): summed over the values received,
/// it catches a duplicate that a lost message would hide from a plain sum.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What one consumer thread received: a count, a sum, a xor and a sum of
/// mixed values. Sent back to the test through an mpsc channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, shmchan::ShmSafe)]
#[repr(C)]
struct Report {
    consumer: u64,
    count: u64,
    sum: u64,
    xor: u64,
    mixed: u64,
}

impl Report {
    fn add(&mut self, value: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(value);
        self.xor ^= value;
        self.mixed = self.mixed.wrapping_add(mix(value));
    }

    fn merge(&mut self, other: &Report) {
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
        self.xor ^= other.xor;
        self.mixed = self.mixed.wrapping_add(other.mixed);
    }

    /// What receiving `tag(id, 0..count)` for each of `producers` gives.
    fn expected(producers: u64, count: u64) -> Report {
        let mut report = Report::default();
        for id in 0..producers {
            for seq in 0..count {
                report.add(tag(id, seq));
            }
        }
        report
    }
}

/// Checks one consumer's view: each producer's values arrive in increasing
/// order (FIFO: a consumer's receives take increasing positions), and none
/// twice.
#[derive(Debug, Default)]
struct Increasing {
    last: Vec<Option<u64>>,
}

impl Increasing {
    fn accept(&mut self, value: u64) {
        let (id, seq) = untag(value);
        let id = id as usize;
        assert!(id < 64, "a value from no producer: {value:#x}");
        if self.last.len() <= id {
            self.last.resize(id + 1, None);
        }
        if let Some(last) = self.last[id] {
            assert!(
                seq > last,
                "producer {id}: {seq} received after {last} by one consumer"
            );
        }
        self.last[id] = Some(seq);
    }
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let name = args[0].as_str();
        match role {
            // Opens one sender; `threads` threads share it (thread `t`
            // through a clone, thread 0 through a reference) and send
            // tag(first + t, 0..count), one by one or ("batch") in chunks.
            "produce" => {
                let (first, threads, count): (u64, u64, u64) =
                    (arg(args, 1), arg(args, 2), arg(args, 3));
                let batch = args[4] == "batch";
                let tx = Sender::<u64>::open(name).unwrap();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let clone = tx.clone();
                        let shared = &tx;
                        s.spawn(move || {
                            let tx = if t == 0 { shared } else { &clone };
                            produce(tx, first + t, count, batch);
                        });
                    }
                });
            }
            // Opens one receiver; `threads` threads share it and receive
            // until the channel is disconnected, each checking that every
            // producer's values come in increasing order; each reports
            // what it got through the mpsc channel `report`.
            "consume" => {
                let report_name = args[1].as_str();
                let (id, threads): (u64, u64) = (arg(args, 2), arg(args, 3));
                let batch = args[4] == "batch";
                let rx = Receiver::<u64>::open(name).unwrap();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let clone = rx.clone();
                        let shared = &rx;
                        s.spawn(move || {
                            let rx = if t == 0 { shared } else { &clone };
                            let mut report = consume(rx, batch);
                            report.consumer = id * 100 + t;
                            let out = shmchan::mpsc::Sender::<Report>::open(report_name).unwrap();
                            out.send(report).unwrap();
                        });
                    }
                });
            }
            // Sends tag(id, 0..count), then holds its sender until killed.
            "send-then-hold" => {
                let (id, count): (u64, u64) = (arg(args, 1), arg(args, 2));
                let tx = Sender::<u64>::open(name).unwrap();
                for seq in 0..count {
                    tx.send(tag(id, seq)).unwrap();
                }
                sleep_forever(tx);
            }
            // Sends tag(id, 0..count), and leaves.
            "send-seq" => {
                let (id, count): (u64, u64) = (arg(args, 1), arg(args, 2));
                let tx = Sender::<u64>::open(name).unwrap();
                for seq in 0..count {
                    tx.send(tag(id, seq)).unwrap();
                }
            }
            // Holds a receiver until killed.
            "hold-receiver" => {
                let rx = Receiver::<u64>::open(name).unwrap();
                sleep_forever(rx);
            }
            // Receives `count` messages, and leaves.
            "recv-count" => {
                let count: u64 = arg(args, 1);
                let rx = Receiver::<u64>::open(name).unwrap();
                for _ in 0..count {
                    rx.recv().unwrap();
                }
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// Sends tag(id, 0..count): one by one, or in chunks of 1..=100,
/// alternating `send_batch` and `try_send_batch` (retrying while full).
fn produce(tx: &Sender<u64>, id: u64, count: u64, batch: bool) {
    if !batch {
        for seq in 0..count {
            tx.send(tag(id, seq)).unwrap();
        }
        return;
    }
    common::send_in_chunks(
        id + 1,
        count,
        100,
        |seq| tag(id, seq),
        |chunk| tx.send_batch(chunk).unwrap(),
        |chunk| tx.try_send_batch(chunk),
    );
}

/// Receives until disconnection, checking FIFO per producer; returns what
/// was received.
fn consume(rx: &Receiver<u64>, batch: bool) -> Report {
    let mut report = Report::default();
    let mut order = Increasing::default();
    if batch {
        let mut buf = [0u64; 64];
        while let Ok(n) = rx.recv_batch(&mut buf) {
            assert!((1..=buf.len()).contains(&n), "recv_batch returned {n}");
            for &value in &buf[..n] {
                order.accept(value);
                report.add(value);
            }
        }
    } else {
        for value in rx {
            order.accept(value);
            report.add(value);
        }
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    report
}

// ---------------------------------------------------------------------------
// The API in one process.

#[test]
fn try_send_try_recv_full_and_empty_in_fifo_order() {
    let name = unique_name("mpmc-basics");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 4).unwrap();
    assert_eq!((tx.capacity(), rx.capacity()), (4, 4));
    assert_eq!((tx.name(), rx.name()), (name.as_str(), name.as_str()));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    // Many laps around the four cells.
    for lap in 0..10u64 {
        for i in 0..4 {
            tx.try_send(lap * 4 + i).unwrap();
        }
        assert!(
            matches!(tx.try_send(99), Err(TrySendError::Full(99))),
            "a full channel hands the message back"
        );
        assert!(tx.try_send(99).unwrap_err().is_full());
        for i in 0..4 {
            assert_eq!(rx.try_recv(), Ok(lap * 4 + i));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(rx.try_recv().unwrap_err().is_empty());
    }

    // Interleaved, never full: FIFO too.
    for i in 0..100 {
        tx.send(i).unwrap();
        tx.send(1000 + i).unwrap();
        assert_eq!(rx.recv(), Ok(i));
        assert_eq!(rx.recv_timeout(STATE_LIMIT), Ok(1000 + i));
    }
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received, stats.len), (240, 240, 0));
}

#[test]
fn send_timeout_and_recv_timeout_time_out() {
    let name = unique_name("mpmc-timeouts");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 2).unwrap();
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(rx.recv_timeout(SHORT).unwrap_err().is_timeout());
    tx.send_timeout(1, SHORT).unwrap();
    tx.send_timeout(2, Duration::ZERO).unwrap();
    assert!(matches!(
        tx.send_timeout(3, SHORT),
        Err(SendTimeoutError::Timeout(3))
    ));
    assert!(matches!(
        tx.send_timeout(3, Duration::ZERO),
        Err(SendTimeoutError::Timeout(3))
    ));
    assert_eq!(rx.recv_timeout(SHORT), Ok(1));
    tx.send_timeout(3, SHORT).unwrap();
    assert_eq!(rx.recv_timeout(SHORT), Ok(2));
    assert_eq!(rx.recv_timeout(SHORT), Ok(3));
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));

    // A receiver waiting with a long timeout gets a message sent meanwhile
    // by another thread; a sender waiting on a full channel gets room.
    let rx2 = rx.clone();
    let waiter = std::thread::spawn(move || rx2.recv_timeout(STATE_LIMIT));
    std::thread::sleep(Duration::from_millis(20));
    tx.send(7).unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(7));
    tx.send(8).unwrap();
    tx.send(9).unwrap();
    let tx2 = tx.clone();
    let blocked = std::thread::spawn(move || tx2.send_timeout(10, STATE_LIMIT));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(rx.recv(), Ok(8));
    assert!(blocked.join().unwrap().is_ok());
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [9, 10]);
}

#[test]
fn capacity_is_rounded_up_to_a_power_of_two_of_at_least_two() {
    for (asked, real) in [
        (1, 2),
        (2, 2),
        (3, 4),
        (5, 8),
        (1000, 1024),
        (1024, 1024),
        (1025, 2048),
    ] {
        let name = unique_name("mpmc-capacity");
        let _cleanup = Cleanup(name.clone());
        let (tx, rx) = mpmc::channel::<u64>(&name, asked).unwrap();
        assert_eq!(tx.capacity(), real, "asked for {asked}");
        assert_eq!(rx.capacity(), real, "asked for {asked}");
        assert_eq!(rx.stats().capacity, real as u64, "asked for {asked}");
        // The channel holds exactly that many.
        for i in 0..real as u64 {
            tx.try_send(i)
                .unwrap_or_else(|err| panic!("asked {asked}: {err}"));
        }
        assert!(tx.try_send(0).unwrap_err().is_full(), "asked for {asked}");
        assert_eq!(rx.len(), real);
        assert!(rx.is_full());
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            (0..real as u64).collect::<Vec<_>>()
        );
        // Opened by name, the capacity comes from the channel.
        let opened = Sender::<u64>::open_with(&name, &Options::new().capacity(3)).unwrap();
        assert_eq!(opened.capacity(), real);
        let opened = Receiver::<u64>::open_with(&name, &Options::new().capacity(3)).unwrap();
        assert_eq!(opened.capacity(), real);
    }

    // Either end created alone rounds the same way.
    let name = unique_name("mpmc-capacity-one");
    let _cleanup = Cleanup(name.clone());
    let tx = Sender::<u64>::create(&name, 1).unwrap();
    assert_eq!(tx.capacity(), 2, "the queue needs at least two cells");
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert!(tx.try_send(3).unwrap_err().is_full());
    let rx = Receiver::<u64>::open(&name).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    drop((tx, rx));
    let rx = Receiver::<u64>::create(&name, 1).unwrap();
    assert_eq!(rx.capacity(), 2);
}

#[test]
fn capacity_zero_and_huge_capacities_are_invalid_capacity() {
    let name = unique_name("mpmc-invalid");
    let _cleanup = Cleanup(name.clone());
    let expect_invalid = |what: &str, result: Result<(), Error>, requested: usize| match result {
        Err(Error::InvalidCapacity {
            requested: got,
            reason,
        }) => assert_eq!(got, requested, "{what}: {reason}"),
        other => panic!("{what}: expected InvalidCapacity, got {other:?}"),
    };
    expect_invalid("channel, 0", mpmc::channel::<u64>(&name, 0).map(drop), 0);
    expect_invalid(
        "Receiver::create, 0",
        Receiver::<u64>::create(&name, 0).map(drop),
        0,
    );
    expect_invalid(
        "Sender::create, 0",
        Sender::<u64>::create(&name, 0).map(drop),
        0,
    );
    expect_invalid(
        "capacity usize::MAX",
        mpmc::channel_with::<u64>(&name, &Options::new().capacity(usize::MAX)).map(drop),
        usize::MAX,
    );
    expect_invalid(
        "2 TiB of cells",
        Receiver::<u64>::create_with(&name, &Options::new().capacity(1 << 40)).map(drop),
        1 << 40,
    );
    assert!(
        !segment_exists(&name),
        "a refused create leaves no segment behind"
    );
    assert!(matches!(
        Sender::<u64>::open(&name),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn len_is_empty_and_is_full_are_hints_both_ends_agree_on() {
    let name = unique_name("mpmc-hints");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 4).unwrap();
    let tx2 = tx.clone();
    for end in [
        (tx.len(), tx.is_empty(), tx.is_full()),
        (tx2.len(), tx2.is_empty(), tx2.is_full()),
        (rx.len(), rx.is_empty(), rx.is_full()),
    ] {
        assert_eq!(end, (0, true, false));
    }
    tx.send(1).unwrap();
    tx2.send(2).unwrap();
    assert_eq!((rx.len(), rx.is_empty(), rx.is_full()), (2, false, false));
    assert_eq!(
        (tx2.len(), tx2.is_empty(), tx2.is_full()),
        (2, false, false)
    );
    tx.send(3).unwrap();
    tx2.send(4).unwrap();
    // One queue, shared by every sender: full for all of them.
    for (len, empty, full) in [
        (tx.len(), tx.is_empty(), tx.is_full()),
        (tx2.len(), tx2.is_empty(), tx2.is_full()),
        (rx.len(), rx.is_empty(), rx.is_full()),
    ] {
        assert_eq!((len, empty, full), (4, false, true));
    }
    assert!(tx2.try_send(5).unwrap_err().is_full());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!((tx.len(), tx.is_full()), (3, false));
    assert_eq!(rx.try_iter().count(), 3);
    assert_eq!((rx.len(), rx.is_empty(), rx.is_full()), (0, true, false));
}

#[test]
fn stats_count_messages_refusals_and_list_every_endpoint_with_role_and_pid() {
    let name = unique_name("mpmc-stats");
    let _cleanup = Cleanup(name.clone());
    let me = std::process::id();
    let rx = Receiver::<u64>::create(&name, 8).unwrap();
    let tx = Sender::<u64>::open(&name).unwrap();
    let _tx_clone = tx.clone();
    let _rx_clone = rx.clone();
    let sender = Peer::spawn("send-then-hold", &[&name, "9", "3"]);
    let receiver = Peer::spawn("hold-receiver", &[&name]);
    wait_until(STATE_LIMIT, "the peers attached and sent", || {
        let stats = rx.stats();
        stats.sent == 3 && live(&stats, "receiver") == 2
    });
    for i in 0..5 {
        tx.try_send(i).unwrap();
    }
    for _ in 0..3 {
        assert!(tx.try_send(99).unwrap_err().is_full());
    }

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
    assert_eq!(stats.high_water, 8, "a refusal records a full channel");
    let pids = |role: &str| {
        let mut pids: Vec<u32> = stats
            .endpoints
            .iter()
            .filter(|e| e.role == role)
            .inspect(|e| assert!(e.alive, "{e:?}"))
            .map(|e| e.pid)
            .collect();
        pids.sort_unstable();
        pids
    };
    let mut senders = vec![me, sender.pid()];
    senders.sort_unstable();
    let mut receivers = vec![me, receiver.pid()];
    receivers.sort_unstable();
    assert_eq!(
        pids("sender"),
        senders,
        "clones are not endpoints: {stats:?}"
    );
    assert_eq!(pids("receiver"), receivers, "{stats:?}");
    assert_eq!(stats.endpoints.len(), 4, "{stats:?}");

    // Every end sees the same counters.
    let seen = tx.stats();
    assert_eq!(
        (seen.sent, seen.received, seen.len, seen.full),
        (8, 0, 8, 3)
    );
    let mut got: Vec<u64> = rx.try_iter().collect();
    assert_eq!(got.len(), 8);
    assert_eq!(&got[..3], [tag(9, 0), tag(9, 1), tag(9, 2)]);
    got.sort_unstable();
    assert_eq!(&got[..5], [0, 1, 2, 3, 4]);
    let stats = tx.stats();
    assert_eq!((stats.sent, stats.received, stats.len), (8, 8, 0));
    assert_eq!(stats.full, 3);
    sender.kill();
    receiver.kill();
}

#[test]
fn debug_output_names_the_channel_and_type() {
    let name = unique_name("mpmc-debug");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 8).unwrap();
    let (sender, receiver) = (format!("{tx:?}"), format!("{rx:?}"));
    for (text, end) in [(&sender, "Sender"), (&receiver, "Receiver")] {
        assert!(text.contains(&name), "{text}");
        assert!(text.contains(end), "{text}");
        assert!(text.contains("u64"), "{text}");
        assert!(text.contains('8'), "the capacity: {text}");
    }
    assert!(format!("{:?}", rx.iter()).contains(&name));
    assert!(format!("{:?}", rx.try_iter()).contains(&name));
    assert!(format!("{:?}", rx.into_iter()).contains(&name));
}

#[test]
fn opening_as_another_flavor_or_type_is_incompatible() {
    let name = unique_name("mpmc-incompatible");
    let _cleanup = Cleanup(name.clone());
    let (_tx, _rx) = mpmc::channel::<u64>(&name, 8).unwrap();
    let mentions_mpmc = |what: &str, result: Result<(), Error>| match result {
        Err(err @ Error::Incompatible { .. }) => {
            assert!(err.to_string().contains("shmchan::mpmc"), "{what}: {err}")
        }
        other => panic!("{what}: expected Incompatible, got {other:?}"),
    };
    mentions_mpmc(
        "as spsc",
        shmchan::spsc::Sender::<u64>::open(&name).map(drop),
    );
    mentions_mpmc(
        "as spsc",
        shmchan::spsc::Receiver::<u64>::open(&name).map(drop),
    );
    mentions_mpmc(
        "as mpsc",
        shmchan::mpsc::Sender::<u64>::open(&name).map(drop),
    );
    mentions_mpmc(
        "as mpsc",
        shmchan::mpsc::Receiver::<u64>::open(&name).map(drop),
    );
    mentions_mpmc("as bytes", shmchan::bytes::Sender::open(&name).map(drop));
    for result in [
        Sender::<u32>::open(&name).map(drop),
        Receiver::<[u64; 2]>::open(&name).map(drop),
        Sender::<i64>::open(&name).map(drop),
    ] {
        match result {
            Err(err @ Error::Incompatible { .. }) => {
                assert!(err.to_string().contains("u64"), "{err}")
            }
            other => panic!("a channel of u64 opened as another type: {other:?}"),
        }
    }

    // Other flavors' channels refuse an mpmc end.
    let mpsc_name = unique_name("mpsc-as-mpmc");
    let _cleanup2 = Cleanup(mpsc_name.clone());
    let (_mtx, _mrx) = shmchan::mpsc::channel::<u64>(&mpsc_name, 8).unwrap();
    let spsc_name = unique_name("spsc-as-mpmc");
    let _cleanup3 = Cleanup(spsc_name.clone());
    let (_stx, _srx) = shmchan::spsc::channel::<u64>(&spsc_name, 8).unwrap();
    for (other, module) in [(&mpsc_name, "shmchan::mpsc"), (&spsc_name, "shmchan::spsc")] {
        for result in [
            Sender::<u64>::open(other).map(drop),
            Receiver::<u64>::open(other).map(drop),
        ] {
            match result {
                Err(err @ Error::Incompatible { .. }) => {
                    assert!(err.to_string().contains(module), "{err}")
                }
                other => panic!("a {module} channel opened as mpmc: {other:?}"),
            }
        }
    }
    // The refusals took no role.
    assert_eq!(_rx.stats().endpoints.len(), 2);
}

/// Asserts `result` is `Busy` for `role`, naming `name` and a pid; returns
/// the pid.
fn expect_busy<E>(result: Result<E, Error>, name: &str, role: &str) -> u32 {
    match result {
        Err(err @ Error::Busy { .. }) => {
            let text = err.to_string();
            let Error::Busy {
                role: got_role,
                pid,
                name: given,
            } = err
            else {
                unreachable!()
            };
            assert_eq!((got_role, given.as_str()), (role, name));
            assert!(text.contains(&format!("process {pid}")), "{text}");
            assert!(text.contains(name), "{text}");
            pid
        }
        Err(other) => panic!("expected Busy, got {other:?}"),
        Ok(_) => panic!("expected Busy, but the open succeeded"),
    }
}

#[test]
fn the_sixty_fifth_attachment_of_a_side_is_busy_but_clones_are_free() {
    let name = unique_name("mpmc-busy");
    let _cleanup = Cleanup(name.clone());
    let me = std::process::id();
    let (tx, rx) = mpmc::channel::<u64>(&name, 64).unwrap();
    // `channel` attached one sender; 63 more attach by name.
    let mut opened: Vec<Sender<u64>> = (1..64)
        .map(|i| Sender::<u64>::open(&name).unwrap_or_else(|err| panic!("sender {i}: {err}")))
        .collect();
    assert_eq!(live(&rx.stats(), "sender"), 64);
    assert_eq!(expect_busy(Sender::<u64>::open(&name), &name, "sender"), me);
    // Clones share an attachment: as many as wanted.
    let clones: Vec<Sender<u64>> = (0..200).map(|_| tx.clone()).collect();
    assert_eq!(live(&rx.stats(), "sender"), 64);
    for (i, sender) in clones.iter().chain(&opened).take(64).enumerate() {
        sender.try_send(i as u64).unwrap();
    }
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        (0..64).collect::<Vec<_>>()
    );

    // An attachment given back can be taken again.
    drop(opened.pop());
    let again = Sender::<u64>::open(&name).unwrap();
    again.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(expect_busy(Sender::<u64>::open(&name), &name, "sender"), me);
    // Dropping clones gives nothing back.
    drop(clones);
    assert_eq!(expect_busy(Sender::<u64>::open(&name), &name, "sender"), me);

    // The same for receivers.
    let receivers: Vec<Receiver<u64>> = (1..64)
        .map(|i| Receiver::<u64>::open(&name).unwrap_or_else(|err| panic!("receiver {i}: {err}")))
        .collect();
    assert_eq!(
        expect_busy(Receiver::<u64>::open(&name), &name, "receiver"),
        me
    );
    let stats = rx.stats();
    assert_eq!((live(&stats, "sender"), live(&stats, "receiver")), (64, 64));
    assert_eq!(stats.endpoints.len(), 128);
    // Any of them receives.
    tx.send(5).unwrap();
    assert_eq!(receivers[40].recv_timeout(STATE_LIMIT), Ok(5));
    drop(receivers);
    let again = Receiver::<u64>::open(&name).unwrap();
    tx.send(6).unwrap();
    assert_eq!(again.recv_timeout(STATE_LIMIT), Ok(6));
}

#[test]
fn both_ends_are_clone_send_and_sync_and_shared_by_threads() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<Sender<u64>>();
    assert_send_sync_clone::<Receiver<u64>>();

    for capacity in [2, 16] {
        threads_share_both_ends(capacity);
    }
}

/// 4 producer threads and 3 consumer threads; half of each share one end
/// by reference, half own clones; every value received once, each
/// consumer's values of each producer in increasing order.
fn threads_share_both_ends(capacity: usize) {
    const PRODUCERS: u64 = 4;
    const CONSUMERS: u64 = 3;
    const EACH: u64 = 20_000;
    let name = unique_name("mpmc-threads");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, capacity).unwrap();
    let reports = within(WATCHDOG, "threads sharing both ends", move || {
        std::thread::scope(|s| {
            // Half the consumers share the receiver by reference (Sync),
            // half own a clone (Send).
            let consumers: Vec<_> = (0..CONSUMERS)
                .map(|c| {
                    let clone = rx.clone();
                    let shared = &rx;
                    s.spawn(move || {
                        let rx = if c % 2 == 0 { shared } else { &clone };
                        let mut report = Report {
                            consumer: c,
                            ..Report::default()
                        };
                        let mut order = Increasing::default();
                        loop {
                            match rx.recv_timeout(STATE_LIMIT) {
                                Ok(value) => {
                                    order.accept(value);
                                    report.add(value);
                                }
                                Err(RecvTimeoutError::Disconnected) => break,
                                Err(RecvTimeoutError::Timeout) => {
                                    panic!("a consumer waited {STATE_LIMIT:?}: {report:?}")
                                }
                            }
                        }
                        report
                    })
                })
                .collect();
            // The producers in a scope of their own, which ends before
            // `tx` is dropped.
            std::thread::scope(|inner| {
                for p in 0..PRODUCERS {
                    let clone = tx.clone();
                    let shared = &tx;
                    inner.spawn(move || {
                        let tx = if p % 2 == 0 { shared } else { &clone };
                        for seq in 0..EACH {
                            tx.send(tag(p, seq)).unwrap();
                        }
                    });
                }
            });
            // Every clone of the sender is dropped by now but `tx` itself:
            // once it goes, the consumers see the end.
            drop(tx);
            consumers
                .into_iter()
                .map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    let mut total = Report::default();
    for report in &reports {
        total.merge(report);
    }
    total.consumer = 0;
    assert_eq!(total, Report::expected(PRODUCERS, EACH), "{reports:?}");
    assert!(!segment_exists(&name), "the last endpoint removed the name");
}

// ---------------------------------------------------------------------------
// Disconnection.

#[test]
fn recv_waits_for_a_first_sender_instead_of_reporting_disconnection() {
    let name = unique_name("mpmc-first-sender");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::<u64>::create(&name, 8).unwrap();
    let rx2 = rx.clone();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    let mut buf = [0u64; 4];
    assert_eq!(rx.try_recv_batch(&mut buf), Err(TryRecvError::Empty));

    // Plain recvs block (two threads, one receiver) until a sender process
    // attaches and sends.
    let waiters: Vec<_> = [rx.clone(), rx2]
        .into_iter()
        .map(|rx| std::thread::spawn(move || rx.recv()))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "recv returned before any sender attached"
    );
    let peer = Peer::spawn("send-seq", &[&name, "3", "5"]);
    let mut got: Vec<u64> = within(STATE_LIMIT, "the first receives", move || {
        waiters
            .into_iter()
            .map(|w| w.join().unwrap().unwrap())
            .collect()
    });
    for _ in 0..3 {
        got.push(rx.recv_timeout(STATE_LIMIT).unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (0..5).map(|seq| tag(3, seq)).collect::<Vec<_>>());
    peer.finish(PEER_LIMIT);
    assert_eq!(
        rx.recv_timeout(STATE_LIMIT),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(rx.iter().next(), None);
}

#[test]
fn iteration_ends_once_every_sender_clone_and_process_is_gone() {
    const EACH: u64 = 2000;
    let name = unique_name("mpmc-iter-ends");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 16).unwrap();
    let peer = Peer::spawn("send-seq", &[&name, "0", &EACH.to_string()]);
    // The peer is attached (and blocked on the full queue) before `tx` goes.
    wait_until(STATE_LIMIT, "the peer attached", || {
        live(&rx.stats(), "sender") == 2
    });
    let threads: Vec<_> = (1..=2u64)
        .map(|id| {
            let clone = tx.clone();
            std::thread::spawn(move || {
                for seq in 0..EACH {
                    clone.send(tag(id, seq)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut order = Increasing::default();
                for value in &rx {
                    order.accept(value);
                    got.push(value);
                }
                assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
                got
            })
        })
        .collect();
    let mut all: Vec<u64> = within(
        WATCHDOG,
        "iterating until every sender is gone",
        move || {
            let mut all: Vec<u64> = consumers
                .into_iter()
                .flat_map(|c| c.join().unwrap())
                .collect();
            // The owning iterator ends at once too.
            all.extend(rx);
            all
        },
    );
    for thread in threads {
        thread.join().unwrap();
    }
    peer.finish(PEER_LIMIT);
    all.sort_unstable();
    let expected: Vec<u64> = (0..3)
        .flat_map(|id| (0..EACH).map(move |seq| tag(id, seq)))
        .collect();
    assert_eq!(all.len(), expected.len());
    assert!(all == expected, "each message exactly once");
    assert!(!segment_exists(&name), "the last endpoint removed the name");
}

#[test]
fn a_sender_attaching_later_revives_the_channel() {
    let name = unique_name("mpmc-revive");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 8).unwrap();
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    // A clone is still attached: merely empty.
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    tx2.send(2).unwrap();
    drop(tx2);
    assert_eq!(rx.recv(), Ok(2), "sent before leaving");
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert!(rx.try_recv().unwrap_err().is_disconnected());
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Disconnected));
    let mut buf = [0u64; 4];
    assert_eq!(rx.recv_batch(&mut buf), Err(RecvError));
    assert_eq!(rx.try_recv_batch(&mut buf), Err(TryRecvError::Disconnected));
    assert_eq!(rx.iter().next(), None);

    // A sender opened by name: while it is attached the channel is merely
    // empty.
    let tx = Sender::<u64>::open(&name).unwrap();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    tx.send(3).unwrap();
    assert_eq!(rx.recv(), Ok(3));
    drop(tx);
    assert_eq!(rx.recv(), Err(RecvError));

    // And a sender in another process. (Until it attaches, the channel
    // is disconnected: wait for its messages first.)
    let base = rx.stats().sent;
    let peer = Peer::spawn("send-seq", &[&name, "1", "3"]);
    wait_until(STATE_LIMIT, "the peer sent its messages", || {
        rx.stats().sent == base + 3
    });
    let got: Vec<u64> = (0..3)
        .map(|_| rx.recv_timeout(STATE_LIMIT).unwrap())
        .collect();
    assert_eq!(got, [tag(1, 0), tag(1, 1), tag(1, 2)]);
    peer.finish(PEER_LIMIT);
    assert_eq!(
        rx.recv_timeout(STATE_LIMIT),
        Err(RecvTimeoutError::Disconnected)
    );
}

/// With every receiver gone, a sender that never finds the queue full
/// never blocks, and looks at the receivers' slots only every few hundred
/// sends (per thread): `send` must fail within that many sends, not
/// necessarily at once. One that finds the queue full fails at once.
#[test]
fn send_fails_within_a_bounded_number_of_sends_once_every_receiver_is_dropped() {
    const CAPACITY: usize = 1024;
    let name = unique_name("mpmc-rx-dropped");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, CAPACITY).unwrap();
    let rx2 = rx.clone();
    let rx3 = Receiver::<u64>::open(&name).unwrap();
    drop((rx, rx2));
    // One receiver is still attached: sends go on, past many looks at the
    // receivers' slots.
    for i in 0..2000 {
        tx.send(i).unwrap();
        assert_eq!(rx3.recv(), Ok(i));
    }
    drop(rx3);
    let refused = (0..300 + CAPACITY as u64).find_map(|i| tx.send(10_000 + i).err());
    let SendError(value) = refused.expect("send never noticed that every receiver was gone");
    assert!(value >= 10_000);
    // Every kind of send, on every clone, fails within as many sends (the
    // look at the receivers is made every few hundred sends; disconnection
    // is not sticky, since a receiver attaching later revives the channel).
    let tx2 = tx.clone();
    for sender in [&tx, &tx2] {
        let bound = 300 + CAPACITY as u64;
        let refused = (0..bound).find_map(|i| sender.try_send(i).err());
        assert!(matches!(refused, Some(TrySendError::Disconnected(_))));
        let refused = (0..bound).find_map(|i| sender.send_timeout(i, SHORT).err());
        assert!(matches!(refused, Some(SendTimeoutError::Disconnected(_))));
        let refused = (0..bound).find_map(|i| sender.send_batch(&[i, i]).err());
        assert!(refused.is_some());
    }

    // A full queue is checked at once.
    let name = unique_name("mpmc-rx-dropped-full");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 4).unwrap();
    let tx2 = tx.clone();
    for i in 0..4 {
        tx.send(i).unwrap();
    }
    drop(rx);
    for sender in [&tx, &tx2] {
        assert!(matches!(sender.send(5), Err(SendError(5))));
        assert!(matches!(
            sender.try_send(6),
            Err(TrySendError::Disconnected(6))
        ));
        assert!(sender.try_send(6).unwrap_err().is_disconnected());
        assert!(matches!(
            sender.send_timeout(7, STATE_LIMIT),
            Err(SendTimeoutError::Disconnected(7))
        ));
        assert_eq!(sender.send_batch(&[1, 2, 3]), Err(SendError(0)));
        assert!(matches!(
            sender.try_send_batch(&[1, 2]),
            Err(TrySendError::Disconnected(()))
        ));
    }
    // The messages are still there for a receiver that comes later.
    let rx = Receiver::<u64>::open(&name).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    tx.send(8).unwrap();
    assert_eq!(rx.recv(), Ok(8));
    drop((tx, tx2, rx));
    assert!(!segment_exists(&name), "the last endpoint removed the name");
}

#[test]
fn send_fails_once_the_receiver_process_exits() {
    let name = unique_name("mpmc-rx-exits");
    let _cleanup = Cleanup(name.clone());
    let tx = Sender::<u64>::create(&name, 8).unwrap();
    let tx2 = tx.clone();
    let peer = Peer::spawn("recv-count", &[&name, "4"]);
    for seq in 0..2 {
        tx.send_timeout(seq, STATE_LIMIT).unwrap();
        tx2.send_timeout(100 + seq, STATE_LIMIT).unwrap();
    }
    peer.finish(PEER_LIMIT);
    assert_eq!(tx.stats().received, 4);
    let refused = within(STATE_LIMIT, "sending after the receiver left", move || {
        (0..300 + 8).find_map(|i| tx.send(1000 + i).err())
    });
    assert!(
        refused.is_some(),
        "send never noticed that the receiver was gone"
    );
    assert!(matches!(
        tx2.send_timeout(7, STATE_LIMIT),
        Err(SendTimeoutError::Disconnected(7))
    ));
}

#[test]
fn a_sender_created_before_any_receiver_fills_the_queue_then_waits() {
    let name = unique_name("mpmc-no-receiver-yet");
    let _cleanup = Cleanup(name.clone());
    let tx = Sender::<u64>::create(&name, 4).unwrap();
    for i in 0..4 {
        tx.try_send(i).unwrap();
    }
    assert!(matches!(tx.try_send(4), Err(TrySendError::Full(4))));
    assert!(matches!(
        tx.send_timeout(4, SHORT),
        Err(SendTimeoutError::Timeout(4))
    ));
    let rx = Receiver::<u64>::open(&name).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    tx.send(4).unwrap();
    assert_eq!(rx.recv(), Ok(4));
}

// ---------------------------------------------------------------------------
// Batches.

#[test]
fn batch_sends_and_receives_move_what_fits_in_order() {
    let name = unique_name("mpmc-batches");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 8).unwrap();
    let mut buf = [0u64; 16];
    assert_eq!(tx.send_batch(&[]), Ok(()));
    assert_eq!(tx.try_send_batch(&[]), Ok(0));
    assert_eq!(rx.try_recv_batch(&mut []), Ok(0));
    assert_eq!(rx.recv_batch(&mut []), Ok(0));
    assert_eq!(rx.try_recv_batch(&mut buf), Err(TryRecvError::Empty));

    assert_eq!(tx.try_send_batch(&[0, 1, 2, 3, 4]), Ok(5));
    let values: Vec<u64> = (5..15).collect();
    assert_eq!(tx.try_send_batch(&values), Ok(3), "as many as fit");
    assert!(matches!(
        tx.try_send_batch(&[8]),
        Err(TrySendError::Full(()))
    ));
    assert_eq!(rx.stats().full, 1, "a refused try_send_batch is counted");
    assert_eq!(rx.try_recv_batch(&mut buf[..3]), Ok(3));
    assert_eq!(buf[..3], [0, 1, 2]);
    assert_eq!(rx.recv_batch(&mut buf), Ok(5), "what is ready");
    assert_eq!(buf[..5], [3, 4, 5, 6, 7]);
    assert_eq!(rx.try_recv_batch(&mut buf), Err(TryRecvError::Empty));

    // The blocking form sends everything, waiting for room as it goes; two
    // receiving threads share the receiver.
    let sender = tx.clone();
    let worker = std::thread::spawn(move || {
        let rest: Vec<u64> = (8..5000).collect();
        sender.send_batch(&rest)
    });
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u64; 7];
                while let Ok(n) = rx.recv_batch(&mut buf) {
                    assert!((1..=7).contains(&n), "{n}");
                    // Each batch is in order.
                    assert!(buf[..n].windows(2).all(|w| w[0] < w[1]), "{buf:?}");
                    got.extend_from_slice(&buf[..n]);
                }
                got
            })
        })
        .collect();
    let got = within(WATCHDOG, "a send_batch into two recv_batch", move || {
        assert_eq!(worker.join().unwrap(), Ok(()));
        drop(tx);
        let mut got: Vec<u64> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        got.sort_unstable();
        got
    });
    assert_eq!(got, (8..5000).collect::<Vec<_>>());

    // A sender attaching later revives the channel; once it is gone, what
    // it sent is still delivered, then the batch calls report
    // disconnection.
    let tx = Sender::<u64>::open(&name).unwrap();
    assert_eq!(rx.try_recv_batch(&mut buf), Err(TryRecvError::Empty));
    tx.try_send_batch(&[1, 2]).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv_batch(&mut buf), Ok(2));
    assert_eq!(buf[..2], [1, 2]);
    assert_eq!(rx.try_recv_batch(&mut buf), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv_batch(&mut buf), Err(RecvError));
}

// ---------------------------------------------------------------------------
// FIFO.

#[test]
fn one_producer_and_one_consumer_see_strictly_increasing_values() {
    const COUNT: u64 = 200_000;
    for capacity in [2, 16] {
        let name = unique_name("mpmc-fifo");
        let _cleanup = Cleanup(name.clone());
        let rx = Receiver::<u64>::create(&name, capacity).unwrap();
        let peer = Peer::spawn("send-seq", &[&name, "0", &COUNT.to_string()]);
        let next = within(WATCHDOG, "one stream", move || {
            let mut next = 0;
            for value in &rx {
                assert_eq!(value, tag(0, next), "lost, duplicated or reordered");
                next += 1;
            }
            next
        });
        assert_eq!(next, COUNT);
        peer.finish(PEER_LIMIT);
    }
}

#[test]
fn one_producer_and_two_consumers_each_see_increasing_values() {
    const COUNT: u64 = 200_000;
    let name = unique_name("mpmc-fifo-two");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::<u64>::create(&name, 8).unwrap();
    let peer = Peer::spawn("send-seq", &[&name, "0", &COUNT.to_string()]);
    let streams = within(WATCHDOG, "one stream into two consumers", move || {
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for value in &rx {
                        if let Some(&last) = got.last() {
                            assert!(value > last, "{value} after {last}");
                        }
                        got.push(value);
                    }
                    got
                })
            })
            .collect();
        drop(rx);
        consumers
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    });
    peer.finish(PEER_LIMIT);
    eprintln!(
        "the consumers received {} and {}",
        streams[0].len(),
        streams[1].len()
    );
    let mut all: Vec<u64> = streams.concat();
    all.sort_unstable();
    assert!(
        all == (0..COUNT).map(|seq| tag(0, seq)).collect::<Vec<_>>(),
        "each message exactly once"
    );
}

// ---------------------------------------------------------------------------
// Two producer processes, two consumer processes.

/// `2 × threads` producers (two processes, `threads` threads each sharing
/// the process's sender) each send `each` distinct values; two consumer
/// processes (`threads` threads each sharing the process's receiver)
/// receive until disconnection, check each producer's values come in
/// increasing order, and report count, sum, xor and a sum of mixed values,
/// which must match what was sent.
///
/// The producers attach first, while only the test's idle receiver is
/// attached: the queue fills and they wait. Then the consumers attach,
/// while the test's sender keeps the channel connected. Only then does the
/// test leave, so the consumers' iteration cannot end in a gap between one
/// producer's exit and another's attach, and must end once both exit.
fn two_by_two(tag_: &str, threads: u64, each: u64, mode: &str, capacity: usize) {
    let name = unique_name(tag_);
    let _cleanup = Cleanup(name.clone());
    let report_name = unique_name("mpmc-reports");
    let _cleanup2 = Cleanup(report_name.clone());
    let reports = shmchan::mpsc::Receiver::<Report>::create(&report_name, 64).unwrap();
    // Keeps the report channel connected between one report and the next.
    let keep = shmchan::mpsc::Sender::<Report>::open(&report_name).unwrap();
    let (tx, rx) = mpmc::channel::<u64>(&name, capacity).unwrap();
    let producers: Vec<Peer> = (0..2)
        .map(|p| {
            let first = (p * threads).to_string();
            Peer::spawn(
                "produce",
                &[&name, &first, &threads.to_string(), &each.to_string(), mode],
            )
        })
        .collect();
    wait_until(PEER_LIMIT, "both producers attached", || {
        live(&rx.stats(), "sender") == 3
    });
    let consumers: Vec<Peer> = (0..2)
        .map(|c| {
            Peer::spawn(
                "consume",
                &[
                    &name,
                    &report_name,
                    &c.to_string(),
                    &threads.to_string(),
                    mode,
                ],
            )
        })
        .collect();
    wait_until(PEER_LIMIT, "both consumers attached", || {
        live(&rx.stats(), "receiver") == 3
    });
    drop((tx, rx));

    let got = within(WATCHDOG, "the 2 × 2 stream", move || {
        let mut got = Vec::new();
        for _ in 0..2 * threads {
            got.push(reports.recv_timeout(WATCHDOG).expect("a consumer's report"));
        }
        for peer in producers.into_iter().chain(consumers) {
            peer.finish(PEER_LIMIT);
        }
        drop(keep);
        got
    });
    let mut total = Report::default();
    for report in &got {
        total.merge(report);
    }
    eprintln!("reports: {got:?}");
    assert_eq!(
        total,
        Report::expected(2 * threads, each),
        "each message exactly once: {got:?}"
    );
    assert!(!segment_exists(&name), "the last endpoint removed the name");
}

#[test]
fn two_producer_processes_two_consumer_processes_each_message_exactly_once() {
    two_by_two("mpmc-2x2", 1, 500_000, "one", 1024);
}

#[test]
fn two_by_two_processes_with_two_threads_sharing_each_processs_endpoint() {
    two_by_two("mpmc-2x2-threads", 2, 250_000, "one", 1024);
}

#[test]
fn two_by_two_processes_sending_and_receiving_in_batches() {
    two_by_two("mpmc-2x2-batch", 2, 100_000, "batch", 256);
}

// ---------------------------------------------------------------------------
// Creating.

#[test]
fn create_refuses_a_live_name_and_sets_the_mode_exactly() {
    let name = unique_name("mpmc-create");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 8).unwrap();
    assert_eq!(common::segment_mode(&name), 0o600, "the default mode");
    for result in [
        mpmc::channel::<u64>(&name, 8).map(drop),
        Receiver::<u64>::create(&name, 8).map(drop),
        Sender::<u64>::create(&name, 8).map(drop),
    ] {
        match result {
            Err(err @ Error::AlreadyExists { .. }) => {
                assert!(err.to_string().contains(&name), "{err}")
            }
            other => panic!("create over a live channel: expected AlreadyExists, got {other:?}"),
        }
    }
    // The live channel is untouched.
    tx.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));
    drop((tx, rx));
    assert!(!segment_exists(&name));

    let options = Options::new().capacity(8).mode(0o640);
    let (_tx, _rx) = mpmc::channel_with::<u64>(&name, &options).unwrap();
    assert_eq!(common::segment_mode(&name), 0o640);
}

#[test]
fn two_by_two_processes_through_the_smallest_queue() {
    two_by_two("mpmc-2x2-tiny", 2, 50_000, "one", 2);
}

/// A message type with odd fields, for the round trip below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, shmchan::ShmSafe)]
#[repr(C)]
struct Odd {
    a: u8,
    b: [u8; 3],
    c: u32,
    pad: u64,
    d: u128,
}

/// Round trips of one type, around the queue several times, both ends
/// opened by name too.
fn round_trip<T: shmchan::ShmSafe + PartialEq + std::fmt::Debug>(make: impl Fn(u64) -> T) {
    let name = unique_name("mpmc-types");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<T>(&name, 4).unwrap();
    let tx2 = Sender::<T>::open(&name).unwrap();
    let rx2 = Receiver::<T>::open(&name).unwrap();
    for i in 0..20 {
        let (from, to) = if i % 2 == 0 { (&tx, &rx2) } else { (&tx2, &rx) };
        from.send(make(2 * i)).unwrap();
        from.send(make(2 * i + 1)).unwrap();
        assert_eq!(to.recv(), Ok(make(2 * i)));
        assert_eq!(to.try_recv(), Ok(make(2 * i + 1)));
    }
}

#[test]
fn messages_of_any_size_and_alignment_arrive_whole() {
    round_trip(|i| i as u8);
    round_trip(|i| [i as u8, !(i as u8), 0x5A]);
    round_trip(|i| u128::from(i) << 64 | 0xFFFF_0000_FFFF_0000_u128 | u128::from(i));
    round_trip(|i| core::array::from_fn::<u64, 64, _>(|k| i * 1000 + k as u64));
    round_trip(|i| Odd {
        a: i as u8,
        b: [1, 2, i as u8],
        c: i as u32 * 7,
        pad: !i,
        d: u128::MAX - u128::from(i),
    });
}
