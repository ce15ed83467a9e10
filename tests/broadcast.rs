//! `shmchan::broadcast` across processes: every receiver gets every
//! message in order (Block), a slow receiver is told exactly what it missed
//! and never sees a torn message (Overwrite), receivers join and leave
//! mid-stream, SIGKILLed receivers and senders, hostile memory, and the
//! ends working with `Select` and async.
//!
//! Messages are [`Frame`]s that carry a checksum of themselves: a copy torn
//! between two messages fails it.
//!
//! No timing is pass/fail: the library promises to notice a dead peer
//! within a second; the watchdogs here allow ten.

mod common;

#[path = "common/exec.rs"]
#[cfg(feature = "async")]
mod exec;

use common::hostile::{self, hostile_u32, hostile_u64, Tally};
use common::shm::{read_u32, read_u64, shm_file, write_u32, write_u64};
use common::{arg, unique_name, wait_until, within, Cleanup, Peer, Rng};
use shmchan::broadcast::{self, Overflow, RecvError, RecvTimeoutError, TryRecvError};
use shmchan::{Error, Options, SendTimeoutError, ShmSafe, TrySendError};
use std::fs::File;
use std::time::Duration;

/// How long a survivor may take to notice a dead peer (the contract is 1 s).
const NOTICE: Duration = Duration::from_secs(10);
/// How long a live peer may take to do its part.
const PATIENCE: Duration = Duration::from_secs(120);

/// A message that proves it arrived whole: `sum` is a hash of the other
/// words, which all derive from `seq`.
#[derive(Clone, Copy, Debug, PartialEq, ShmSafe)]
#[repr(C)]
struct Frame {
    seq: u64,
    data: [u64; 5],
    sum: u64,
}

impl Frame {
    fn new(seq: u64) -> Self {
        let data = core::array::from_fn(|i| seq.wrapping_mul(0x9E37_79B9_7F4A_7C15 + i as u64));
        Self {
            seq,
            data,
            sum: checksum(seq, &data),
        }
    }

    /// The frame's `seq`, if it is whole.
    fn check(&self) -> u64 {
        assert_eq!(
            self.sum,
            checksum(self.seq, &self.data),
            "a torn frame: {self:?}"
        );
        assert_eq!(*self, Frame::new(self.seq), "a frame of mixed messages");
        self.seq
    }
}

fn checksum(seq: u64, data: &[u64; 5]) -> u64 {
    data.iter().fold(seq ^ 0xCBF2_9CE4_8422_2325, |h, &w| {
        (h ^ w).wrapping_mul(0x0100_0000_01B3).rotate_left(17)
    })
}

/// What a receiver peer reports on the report channel: `[id, FINAL,
/// received, missed]` once it saw disconnection, `[id, ACK, received, 0]`
/// as it goes (overwrite mode).
const ACK: u64 = 0;
const FINAL: u64 = 1;

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let name = args[0].as_str();
        match role {
            // Receives every frame until disconnection, in order from 0,
            // alternating recv, recv_batch and try_recv; checks the count.
            "recv-all" => {
                let count: u64 = arg(args, 1);
                let rx = broadcast::Receiver::<Frame>::open(name).unwrap();
                let mut next = 0;
                let mut batch = [Frame::new(0); 16];
                loop {
                    let got = match next % 3 {
                        0 => rx.recv().map(|frame| vec![frame]),
                        1 => rx.recv_batch(&mut batch).map(|n| batch[..n].to_vec()),
                        _ => match rx.try_recv() {
                            Err(TryRecvError::Empty) => rx.recv().map(|frame| vec![frame]),
                            other => other.map(|frame| vec![frame]).map_err(|err| match err {
                                TryRecvError::Disconnected => RecvError::Disconnected,
                                TryRecvError::Lagged(n) => RecvError::Lagged(n),
                                TryRecvError::Empty => unreachable!(),
                            }),
                        },
                    };
                    match got {
                        Ok(frames) => {
                            for frame in frames {
                                assert_eq!(frame.check(), next, "out of order");
                                next += 1;
                            }
                        }
                        Err(RecvError::Disconnected) => break,
                        Err(RecvError::Lagged(n)) => panic!("lapped by {n} in block mode"),
                    }
                }
                assert_eq!(next, count, "every frame, once");
            }
            // Overwrite mode: receives until disconnection, accounting for
            // every frame as received or missed. "fast" acknowledges every
            // 8 frames on the report channel (the sender paces itself on
            // that, so a fast receiver is never lapped); "slow" dawdles,
            // and once stops until the sender is halfway.
            "recv-overwrite" => {
                let (id, count, speed): (u64, u64, &str) = (arg(args, 1), arg(args, 2), &args[3]);
                let report = shmchan::mpsc::Sender::<[u64; 4]>::open(&args[4]).unwrap();
                let rx = broadcast::Receiver::<Frame>::open(name).unwrap();
                report.send([id, ACK, 0, 0]).unwrap();
                let (mut next, mut received, mut missed) = (0u64, 0u64, 0u64);
                let mut batch = [Frame::new(0); 8];
                let mut calls = 0u64;
                loop {
                    // Single receives and batches (a batch that runs into
                    // a lag after its first frame leaves it to the next).
                    calls += 1;
                    let got = if calls % 2 == 0 {
                        rx.recv().map(|frame| vec![frame])
                    } else {
                        rx.recv_batch(&mut batch).map(|n| batch[..n].to_vec())
                    };
                    match got.map(Vec::into_iter) {
                        Ok(frames) => {
                            for frame in frames {
                                assert_eq!(frame.check(), next, "out of order");
                                next += 1;
                                received += 1;
                                if speed == "fast" && received % 8 == 0 {
                                    report.send([id, ACK, received, 0]).unwrap();
                                }
                                if speed == "slow" && received % 64 == 0 {
                                    std::thread::sleep(Duration::from_micros(300));
                                }
                                if speed == "slow" && received == 100 {
                                    common::peer_wait(PATIENCE, "the sender is halfway", || {
                                        rx.stats().sent >= count / 2
                                    });
                                }
                            }
                        }
                        Err(RecvError::Lagged(n)) => {
                            assert!(n > 0, "a lag of nothing");
                            missed += n;
                            next += n;
                        }
                        Err(RecvError::Disconnected) => break,
                    }
                }
                assert_eq!(next, count, "every frame received or counted missed");
                report.send([id, FINAL, received, missed]).unwrap();
            }
            // Joins, reads `count` consecutive frames, leaves; `rounds`
            // times.
            "join-leave" => {
                let (count, rounds): (u64, u64) = (arg(args, 1), arg(args, 2));
                for _ in 0..rounds {
                    let rx = broadcast::Receiver::<Frame>::open(name).unwrap();
                    let first = rx.recv().expect("a frame").check();
                    for i in 1..count {
                        assert_eq!(rx.recv().expect("a frame").check(), first + i, "a gap");
                    }
                    drop(rx);
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            // Sends frames 0..count, 50 ms apart, then leaves.
            "send-slowly" => {
                let count: u64 = arg(args, 1);
                let tx = broadcast::Sender::<Frame>::open(name).unwrap();
                for seq in 0..count {
                    std::thread::sleep(Duration::from_millis(50));
                    tx.send(Frame::new(seq)).unwrap();
                }
            }
            // Attaches a receiver and never reads.
            "hold" => {
                let rx = broadcast::Receiver::<Frame>::open(name).unwrap();
                common::sleep_forever(rx);
            }
            // Sends frames 0..count, then holds the sender (count 0: sends
            // for ever).
            "send-then-hold" => {
                let count: u64 = arg(args, 1);
                let tx = broadcast::Sender::<Frame>::open(name).unwrap();
                let mut seq = 0;
                while count == 0 || seq < count {
                    tx.send(Frame::new(seq)).unwrap();
                    seq += 1;
                }
                common::sleep_forever(tx);
            }
            other => panic!("unknown role {other}"),
        }
    });
}

fn fresh(tag: &str) -> (Cleanup, String) {
    let name = unique_name(tag);
    (Cleanup(name.clone()), name)
}

fn receivers_attached(tx: &broadcast::Sender<Frame>) -> usize {
    common::live(&tx.stats(), "receiver")
}

#[test]
fn four_receiver_processes_each_get_a_million_in_order() {
    const COUNT: u64 = 1_000_000;
    let (_cleanup, name) = fresh("bcast-million");
    let options = Options::new().capacity(256).receivers(4);
    let tx = broadcast::Sender::<Frame>::create_with(&name, &options).unwrap();
    let count = COUNT.to_string();
    let peers: Vec<Peer> = (0..4)
        .map(|_| Peer::spawn("recv-all", &[&name, &count]))
        .collect();
    wait_until(PATIENCE, "four receivers attached", || {
        receivers_attached(&tx) == 4
    });
    // Single sends and batches, alternately.
    let mut seq = 0;
    let mut batch = Vec::with_capacity(32);
    while seq < COUNT {
        if seq % 2 == 0 {
            tx.send(Frame::new(seq)).unwrap();
            seq += 1;
        } else {
            let n = (1 + seq % 31).min(COUNT - seq);
            batch.clear();
            batch.extend((seq..seq + n).map(Frame::new));
            tx.send_batch(&batch).unwrap();
            seq += n;
        }
    }
    drop(tx);
    for peer in peers {
        peer.finish(PATIENCE);
    }
}

#[test]
fn overwrite_a_slow_receiver_is_told_exactly_what_it_missed_and_fast_ones_miss_none() {
    const COUNT: u64 = 200_000;
    const CAPACITY: u64 = 64;
    let (_cleanup, name) = fresh("bcast-overwrite");
    let (_cleanup_report, report_name) = fresh("bcast-report");
    let reports = shmchan::mpsc::Receiver::<[u64; 4]>::create_with(
        &report_name,
        &Options::new().capacity(1024).shards(4),
    )
    .unwrap();
    let options = Options::new()
        .capacity(CAPACITY as usize)
        .overflow(Overflow::Overwrite);
    let tx = broadcast::Sender::<Frame>::create_with(&name, &options).unwrap();
    let count = COUNT.to_string();
    let speeds = ["fast", "fast", "slow"];
    let peers: Vec<Peer> = speeds
        .iter()
        .enumerate()
        .map(|(id, speed)| {
            Peer::spawn(
                "recv-overwrite",
                &[&name, &id.to_string(), &count, speed, &report_name],
            )
        })
        .collect();
    let mut acked = [0u64; 3];
    let mut hello = 0;
    let mut finals = [None; 3];
    let mut take = |report: [u64; 4], acked: &mut [u64; 3], hello: &mut usize| {
        let [id, kind, received, missed] = report;
        match kind {
            ACK if received == 0 => *hello += 1,
            ACK => acked[id as usize] = received,
            _ => finals[id as usize] = Some((received, missed)),
        }
    };
    while hello < speeds.len() {
        take(reports.recv().unwrap(), &mut acked, &mut hello);
    }
    for seq in 0..COUNT {
        // Never more than half a ring ahead of a fast receiver.
        while seq - acked[0].min(acked[1]) >= CAPACITY / 2 {
            take(
                reports.recv_timeout(PATIENCE).expect("an acknowledgement"),
                &mut acked,
                &mut hello,
            );
        }
        tx.send(Frame::new(seq)).unwrap();
    }
    drop(tx);
    for peer in peers {
        peer.finish(PATIENCE);
    }
    for report in reports.try_iter() {
        take(report, &mut acked, &mut hello);
    }
    for (id, speed) in speeds.iter().enumerate() {
        let (received, missed) = finals[id].expect("every receiver reported");
        assert_eq!(received + missed, COUNT, "receiver {id}");
        if *speed == "fast" {
            assert_eq!(missed, 0, "a fast receiver was lapped");
        } else {
            assert!(
                missed >= COUNT / 2 - 100 - CAPACITY,
                "the slow one missed {missed}"
            );
        }
    }
}

#[test]
fn receivers_join_and_leave_mid_stream() {
    const COUNT: u64 = 300_000;
    let (_cleanup, name) = fresh("bcast-join-leave");
    let options = Options::new().capacity(64).receivers(4);
    let tx = broadcast::Sender::<Frame>::create_with(&name, &options).unwrap();
    let count = COUNT.to_string();
    let steady = Peer::spawn("recv-all", &[&name, &count]);
    wait_until(PATIENCE, "the steady receiver attached", || {
        receivers_attached(&tx) == 1
    });
    let comers: Vec<Peer> = (0..2)
        .map(|_| Peer::spawn("join-leave", &[&name, "500", "20"]))
        .collect();
    for seq in 0..COUNT {
        tx.send(Frame::new(seq)).unwrap();
    }
    // The comers come and go while frames flow; one that is still there
    // when they stop gets disconnection mid-round, and fails: let them
    // finish first.
    for comer in comers {
        comer.finish(PATIENCE);
    }
    drop(tx);
    steady.finish(PATIENCE);
}

#[test]
fn a_receiver_starts_at_the_next_message_and_the_first_ever_at_the_oldest_kept() {
    let (_cleanup, name) = fresh("bcast-start");
    let tx = broadcast::Sender::<u64>::create(&name, 8).unwrap();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    // Nobody listened yet: the first receiver gets what the ring kept.
    let first = broadcast::Receiver::<u64>::open(&name).unwrap();
    tx.send(3).unwrap();
    let late = broadcast::Receiver::<u64>::open(&name).unwrap();
    tx.send(4).unwrap();
    assert_eq!(first.try_iter().collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(late.try_iter().collect::<Vec<_>>(), [4]);
    assert_eq!(late.try_recv(), Err(TryRecvError::Empty));

    // In overwrite mode the first receiver starts at the next message too.
    let (_cleanup, name) = fresh("bcast-start-overwrite");
    let options = Options::new().capacity(8).overflow(Overflow::Overwrite);
    let tx = broadcast::Sender::<u64>::create_with(&name, &options).unwrap();
    tx.send(1).unwrap();
    let rx = broadcast::Receiver::<u64>::open(&name).unwrap();
    tx.send(2).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2]);
}

#[test]
fn overwrite_lag_is_reported_then_the_oldest_kept_follows() {
    let (_cleanup, name) = fresh("bcast-lag");
    let options = Options::new().capacity(4).overflow(Overflow::Overwrite);
    let (tx, rx) = broadcast::channel_with::<u64>(&name, &options).unwrap();
    let other = broadcast::Receiver::<u64>::open(&name).unwrap();
    for i in 0..10 {
        // Overwrite mode never waits, however far behind the receivers are.
        assert_eq!(tx.try_send(i), Ok(()));
    }
    // The receivers are 10 behind a ring of 4, which keeps 6..10.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(6)));
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [6, 7, 8, 9]);
    assert_eq!(
        other.recv_timeout(Duration::from_secs(1)),
        Err(RecvTimeoutError::Lagged(6))
    );
    assert_eq!(other.recv(), Ok(6));
    // Iterators skip lags.
    for i in 10..30 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let rest: Vec<u64> = other.iter().collect();
    assert_eq!(rest, [26, 27, 28, 29], "after a lag, the oldest kept");
    assert_eq!(rx.recv(), Err(RecvError::Lagged(16)));
    assert_eq!(rx.iter().collect::<Vec<_>>(), [26, 27, 28, 29]);
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    let lag = TryRecvError::Lagged(3).to_string();
    assert!(lag.contains("missed 3"), "{lag}");
}

#[test]
fn block_mode_waits_for_the_slowest_receiver() {
    let (_cleanup, name) = fresh("bcast-block");
    let (tx, fast) = broadcast::channel::<u64>(&name, 4).unwrap();
    let slow = broadcast::Receiver::<u64>::open(&name).unwrap();
    for i in 0..4 {
        tx.send(i).unwrap();
    }
    assert_eq!(fast.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(tx.is_full(), "the slow receiver has read nothing");
    assert_eq!(tx.try_send(4), Err(TrySendError::Full(4)));
    assert_eq!(
        tx.send_timeout(4, Duration::from_millis(20)),
        Err(SendTimeoutError::Timeout(4))
    );
    assert_eq!(tx.stats().full, 1, "one try_send refused");
    assert_eq!(slow.recv(), Ok(0));
    assert_eq!(tx.try_send(4), Ok(()));
    assert_eq!(slow.len(), 4);
    assert_eq!(fast.len(), 1);
    // Dropping the slow receiver frees the sender at once.
    drop(slow);
    for i in 5..8 {
        assert_eq!(tx.try_send(i), Ok(()));
    }
    assert_eq!(tx.try_send(8), Err(TrySendError::Full(8)));
    assert_eq!(fast.try_iter().collect::<Vec<_>>(), [4, 5, 6, 7]);
}

/// A look at the sender's room while no receiver is attached (as
/// `is_full` or a `Select` takes) must not let it lap the next receiver.
#[test]
fn block_mode_holds_for_a_receiver_that_attaches_after_a_gap() {
    let (_cleanup, name) = fresh("bcast-gap");
    let (tx, rx) = broadcast::channel::<u64>(&name, 4).unwrap();
    tx.send(0).unwrap();
    drop(rx);
    assert!(!tx.is_full(), "nobody to wait for");
    assert_eq!(tx.try_send(1), Err(TrySendError::Disconnected(1)));
    let rx = broadcast::Receiver::<u64>::open(&name).unwrap();
    for i in 2..6 {
        assert_eq!(tx.try_send(i), Ok(()));
    }
    assert_eq!(tx.try_send(6), Err(TrySendError::Full(6)));
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 3, 4, 5]);
}

/// Batches much larger than the ring, with a receiver reading as they are
/// written: in order, nothing lost (Block) or every message accounted
/// for (Overwrite), and never a false alarm of corruption.
#[test]
fn batches_larger_than_the_ring_stream_to_a_concurrent_reader() {
    for overflow in [Overflow::Block, Overflow::Overwrite] {
        let (_cleanup, name) = fresh("bcast-big-batch");
        let options = Options::new().capacity(8).overflow(overflow);
        let (tx, rx) = broadcast::channel_with::<u64>(&name, &options).unwrap();
        let reader = std::thread::spawn(move || {
            let (mut next, mut got) = (0u64, 0u64);
            let mut out = [0u64; 5];
            loop {
                match rx.recv_batch(&mut out) {
                    Ok(n) => {
                        for &value in &out[..n] {
                            assert_eq!(value, next, "{overflow:?}: out of order");
                            next += 1;
                            got += 1;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        assert_eq!(overflow, Overflow::Overwrite, "lapped in Block mode");
                        next += missed;
                    }
                    Err(RecvError::Disconnected) => return (next, got),
                }
            }
        });
        let values: Vec<u64> = (0..100_000).collect();
        for chunk in values.chunks(1000) {
            tx.send_batch(chunk).unwrap();
        }
        drop(tx);
        let (next, got) = within(NOTICE, "the reader", move || reader.join().unwrap());
        assert_eq!(
            next, 100_000,
            "{overflow:?}: every message read or counted missed"
        );
        if overflow == Overflow::Block {
            assert_eq!(got, 100_000);
        }
    }
}

/// A sender that died inside a batch may leave whole messages it never
/// published, which receivers may already have read: its successor adopts
/// them instead of sending other messages under their numbers.
#[test]
fn a_new_sender_adopts_whole_messages_its_predecessor_left_unpublished() {
    let (_cleanup, name) = fresh("bcast-adopt");
    let (tx, rxs) = hostile_channel(&name, 8, Overflow::Block);
    tx.send(10).unwrap();
    drop(tx);
    // Message 1, written whole but not published (tail stays 1).
    let file = shm_file(&name);
    write_u64(&file, slot(1) + 8, 77);
    write_u64(&file, slot(1), 4); // 2m + 2: message 1, whole
    assert_eq!(read_u64(&file, TAIL), 1);
    let tx = broadcast::Sender::<u64>::open(&name).unwrap();
    assert_eq!(read_u64(&file, TAIL), 2, "adopted");
    tx.send(5).unwrap();
    for rx in &rxs {
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [10, 77, 5]);
    }
}

#[test]
fn a_killed_receiver_stops_holding_the_sender_back() {
    let (_cleanup, name) = fresh("bcast-kill-rx");
    let (tx, live) = broadcast::channel::<Frame>(&name, 8).unwrap();
    let holder = Peer::spawn("hold", &[&name]);
    wait_until(PATIENCE, "the holder attached", || {
        receivers_attached(&tx) == 2
    });
    for seq in 0..8 {
        tx.send(Frame::new(seq)).unwrap();
    }
    for seq in 0..8 {
        assert_eq!(live.recv().unwrap().check(), seq);
    }
    // Alive, the idle holder holds the sender back.
    assert_eq!(
        tx.send_timeout(Frame::new(8), Duration::from_millis(50)),
        Err(SendTimeoutError::Timeout(Frame::new(8)))
    );
    holder.kill();
    let tx = within(NOTICE, "a send after the idle receiver died", move || {
        tx.send(Frame::new(8)).unwrap();
        tx
    });
    assert_eq!(live.recv().unwrap().check(), 8);
    assert_eq!(receivers_attached(&tx), 1);
    // Its place is free again.
    let again = broadcast::Receiver::<Frame>::open(&name).unwrap();
    tx.send(Frame::new(9)).unwrap();
    assert_eq!(again.recv().unwrap().check(), 9);
}

#[test]
fn a_killed_sender_is_drained_then_disconnected() {
    // After everything it sent.
    let (_cleanup, name) = fresh("bcast-kill-tx");
    let options = Options::new().capacity(64).receivers(2);
    let rx = broadcast::Receiver::<Frame>::create_with(&name, &options).unwrap();
    let other = broadcast::Receiver::<Frame>::open(&name).unwrap();
    let sender = Peer::spawn("send-then-hold", &[&name, "5000"]);
    let read_all = |rx: broadcast::Receiver<Frame>| {
        std::thread::spawn(move || {
            let mut next = 0;
            loop {
                match rx.recv() {
                    Ok(frame) => {
                        assert_eq!(frame.check(), next);
                        next += 1;
                    }
                    Err(RecvError::Disconnected) => return (next, rx),
                    Err(err) => panic!("{err}"),
                }
            }
        })
    };
    let (a, b) = (read_all(rx), read_all(other));
    let probe = broadcast::Receiver::<Frame>::open(&name);
    assert!(
        matches!(
            probe,
            Err(Error::Busy {
                role: "receiver",
                ..
            })
        ),
        "two receiver places, both taken: {probe:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    sender.kill();
    let (a, b) = within(NOTICE, "receivers after the sender died", move || {
        (a.join().unwrap().0, b.join().unwrap().0)
    });
    assert_eq!((a, b), (5000, 5000));

    // Mid-stream: each receiver gets every frame published, in order.
    let (_cleanup, name) = fresh("bcast-kill-tx-mid");
    let rx = broadcast::Receiver::<Frame>::create_with(&name, &options).unwrap();
    let other = broadcast::Receiver::<Frame>::open(&name).unwrap();
    let sender = Peer::spawn("send-then-hold", &[&name, "0"]);
    let stats = rx.stats();
    let (a, b) = (read_all(rx), read_all(other));
    wait_until(PATIENCE, "frames flowed", || {
        common::segment_exists(&name)
            && shmchan::inspect::channel(&name).is_ok_and(|s| s.stats.sent > 10_000)
    });
    sender.kill();
    let ((a, rx), (b, _other)) = within(NOTICE, "receivers after the sender died", move || {
        (a.join().unwrap(), b.join().unwrap())
    });
    let sent = rx.stats().sent;
    assert!(stats.sent == 0 && sent > 10_000);
    assert_eq!((a, b), (sent, sent), "every published frame, to each");
}

#[test]
fn options_are_checked_and_a_full_table_is_busy() {
    let (_cleanup, name) = fresh("bcast-options");
    for receivers in [0, 65] {
        let err = broadcast::Sender::<u64>::create_with(
            &name,
            &Options::new().capacity(8).receivers(receivers),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidCapacity { requested, .. } if requested == receivers),
            "{err}"
        );
        assert!(err.to_string().contains("1 to 64"), "{err}");
    }
    let options = Options::new().capacity(8).receivers(3);
    let (tx, rx) = broadcast::channel_with::<u64>(&name, &options).unwrap();
    let more: Vec<_> = (0..2)
        .map(|_| broadcast::Receiver::<u64>::open(&name).unwrap())
        .collect();
    let err = broadcast::Receiver::<u64>::open(&name).unwrap_err();
    assert!(
        matches!(err, Error::Busy { role: "receiver", pid, .. } if pid == std::process::id()),
        "{err}"
    );
    let err = broadcast::Sender::<u64>::open(&name).unwrap_err();
    assert!(matches!(err, Error::Busy { role: "sender", .. }), "{err}");
    assert_eq!(tx.stats().endpoints.len(), 4);
    // Another flavor, or another type, is refused by name.
    let err = shmchan::spsc::Receiver::<u64>::open(&name).unwrap_err();
    assert!(
        matches!(err, Error::Incompatible { .. }) && err.to_string().contains("broadcast"),
        "{err}"
    );
    let err = broadcast::Receiver::<u32>::open(&name).unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    drop((tx, rx, more));
}

// ---- Hostile memory ----
//
// Layout of a broadcast segment of `u64` with 4 receivers (checked by
// `layout_offsets_match_the_library`): the header at 0, the endpoint table
// at 576 (receivers 0..4, then the sender), the ring's control block at 640
// (tail; policy and refusals at +128; the cursors at +256, one per 128
// bytes; the doorbells `not_empty` at +8448 and `not_full` at +8576; the
// receivers' tallies at +8704), the slots at +8960, each a sequence word and
// the message.

const TABLE: u64 = 576;
const RING: u64 = 640;
const TAIL: u64 = RING;
const POLICY: u64 = RING + 128;
const REFUSALS: u64 = RING + 136;
const NOT_EMPTY: u64 = RING + 8448;
const NOT_FULL: u64 = RING + 8576;
const TALLIES: u64 = RING + 8704;
const SLOTS: u64 = RING + 8960;

fn cursor(receiver: u64) -> u64 {
    RING + 256 + 128 * receiver
}

/// Slot `index`'s sequence word; the message is the next word.
fn slot(index: u64) -> u64 {
    SLOTS + 16 * index
}

fn hostile_channel(
    name: &str,
    capacity: usize,
    overflow: Overflow,
) -> (broadcast::Sender<u64>, Vec<broadcast::Receiver<u64>>) {
    let options = Options::new()
        .capacity(capacity)
        .receivers(4)
        .overflow(overflow)
        .spin(Duration::ZERO);
    let (tx, rx) = broadcast::channel_with::<u64>(name, &options).unwrap();
    let other = broadcast::Receiver::<u64>::open(name).unwrap();
    (tx, vec![rx, other])
}

#[test]
fn layout_offsets_match_the_library() {
    let (_cleanup, name) = fresh("bcast-layout");
    let (tx, rxs) = hostile_channel(&name, 8, Overflow::Block);
    let file = shm_file(&name);
    for i in 0..3 {
        tx.send(100 + i).unwrap();
    }
    assert_eq!(rxs[0].recv(), Ok(100));
    assert_eq!(read_u64(&file, TABLE) as u32, std::process::id());
    assert_eq!(read_u64(&file, TABLE + 8) as u32, std::process::id());
    assert_eq!(
        read_u64(&file, TABLE + 32) as u32,
        std::process::id(),
        "sender"
    );
    assert_eq!(read_u64(&file, TAIL), 3);
    assert_eq!(read_u64(&file, POLICY), 1, "Block");
    assert_eq!(read_u64(&file, cursor(0)), 1);
    assert_eq!(read_u64(&file, cursor(1)), 0);
    for i in 0..3 {
        assert_eq!(read_u64(&file, slot(i)), 2 * i + 2, "sequence word {i}");
        assert_eq!(read_u64(&file, slot(i) + 8), 100 + i, "message {i}");
    }
    assert_eq!(tx.try_send(0), Ok(()));
    while tx.try_send(0).is_ok() {}
    assert_eq!(read_u64(&file, REFUSALS), 1);
    let total = file.metadata().unwrap().len();
    assert_eq!(total, slot(8), "the slots end the segment");
    drop((tx, rxs));

    let (_cleanup, name) = fresh("bcast-layout-overwrite");
    let (_tx, _rxs) = hostile_channel(&name, 8, Overflow::Overwrite);
    assert_eq!(read_u64(&shm_file(&name), POLICY), 2, "Overwrite");
}

/// A policy word that is neither policy refuses `open` as corrupt.
#[test]
fn a_scribbled_policy_refuses_open() {
    let (_cleanup, name) = fresh("bcast-policy");
    let (_tx, _rxs) = hostile_channel(&name, 8, Overflow::Block);
    write_u64(&shm_file(&name), POLICY, 7);
    let err = broadcast::Receiver::<u64>::open(&name).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("overflow policy"), "{err}");
}

/// Sequence words that no state explains, and a tail far ahead, end the
/// receivers (disconnected), never with a panic or a hang.
#[test]
fn impossible_sequence_words_and_tails_disconnect_receivers() {
    let (_cleanup, name) = fresh("bcast-seq");
    let (tx, rxs) = hostile_channel(&name, 8, Overflow::Block);
    tx.send(1).unwrap();
    // Message 0's word names message 3, neither a lap nor published, while
    // tail says message 0 was published. (A word that says "not written
    // yet" is believed: the receiver then waits, on the slot.)
    write_u64(&shm_file(&name), slot(0), 2 * 3 + 2);
    assert_eq!(rxs[0].try_recv(), Err(TryRecvError::Disconnected));
    // The other receiver reads the same word: corrupt for it too.
    assert_eq!(
        rxs[1].recv_timeout(Duration::from_millis(10)),
        Err(RecvTimeoutError::Disconnected)
    );

    // A count past any a ring reaches: the next sender is refused, and
    // receivers end.
    let (_cleanup, name) = fresh("bcast-huge-tail");
    let (tx, rxs) = hostile_channel(&name, 8, Overflow::Block);
    drop(tx);
    write_u64(&shm_file(&name), TAIL, 1 << 63);
    let err = broadcast::Sender::<u64>::open(&name).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert_eq!(rxs[0].try_recv(), Err(TryRecvError::Disconnected));
    let late = broadcast::Receiver::<u64>::open(&name).unwrap();
    assert_eq!(late.try_recv(), Err(TryRecvError::Disconnected));
    drop(rxs);

    let (_cleanup, name) = fresh("bcast-tail");
    let (_tx, rxs) = hostile_channel(&name, 8, Overflow::Overwrite);
    write_u64(&shm_file(&name), TAIL, u64::MAX - 3);
    let rx = &rxs[0];
    within(NOTICE, "a receive under a hostile tail", {
        let name = name.clone();
        move || {
            let rx = broadcast::Receiver::<u64>::open(&name);
            // Whatever it says, it says it at once.
            if let Ok(rx) = rx {
                let _ = rx.recv_timeout(Duration::from_millis(10));
            }
        }
    });
    // Its slot's word says message 0 is not written yet, which a receiver
    // believes: it waits (Empty), and no call hangs or panics.
    assert!(rx.try_recv().is_err());
    assert!(rx.recv_timeout(Duration::from_millis(5)).is_err());
}

/// One random scribble on the ring's words.
fn scribble(file: &File, capacity: u64, rng: &mut Rng) {
    let word = |rng: &mut Rng, offset| {
        let value = hostile_u64(rng, read_u64(file, offset), capacity);
        write_u64(file, offset, value);
    };
    match rng.below(8) {
        0 => word(rng, TAIL),
        1 => {
            let at = cursor(rng.below(4));
            word(rng, at);
        }
        2 | 3 => {
            let at = slot(rng.below(capacity)) + 8 * rng.below(2);
            word(rng, at);
        }
        4 => word(rng, REFUSALS),
        5 => {
            let bell = [NOT_EMPTY, NOT_FULL][rng.below(2) as usize] + 4 * rng.below(2);
            write_u32(file, bell, hostile_u32(rng, read_u32(file, bell)));
        }
        6 => {
            let tally = TALLIES + 4 * rng.below(4);
            write_u32(file, tally, hostile_u32(rng, read_u32(file, tally)));
        }
        _ => {} // a round of calls on an intact ring
    }
}

struct Victim {
    name: String,
    _cleanup: Cleanup,
    tx: broadcast::Sender<u64>,
    rxs: Vec<broadcast::Receiver<u64>>,
}

fn poke(victim: &Victim, rng: &mut Rng, tally: &mut Tally) {
    let timeout = hostile::TIMEOUT;
    for _ in 0..4 {
        let value = rng.next();
        match rng.below(3) {
            0 => match victim.tx.try_send(value) {
                Ok(()) => tally.ok += 1,
                Err(TrySendError::Full(back)) => assert_eq!(back, value),
                Err(TrySendError::Disconnected(back)) => {
                    assert_eq!(back, value);
                    tally.tx_dead = true;
                }
            },
            1 => match victim.tx.send_timeout(value, timeout) {
                Ok(()) => tally.ok += 1,
                Err(SendTimeoutError::Timeout(back)) => assert_eq!(back, value),
                Err(SendTimeoutError::Disconnected(back)) => {
                    assert_eq!(back, value);
                    tally.tx_dead = true;
                }
            },
            _ => {
                match victim
                    .tx
                    .try_send_batch(&[value; 5][..1 + rng.below(5) as usize])
                {
                    Ok(_) => tally.ok += 1,
                    Err(TrySendError::Disconnected(())) => tally.tx_dead = true,
                    Err(TrySendError::Full(())) => {}
                }
            }
        }
        let rx = &victim.rxs[rng.below(2) as usize];
        match rng.below(3) {
            0 => match rx.try_recv() {
                Ok(_) => tally.ok += 1,
                Err(TryRecvError::Disconnected) => tally.rx_dead = true,
                Err(_) => {}
            },
            1 => match rx.recv_timeout(timeout) {
                Ok(_) => tally.ok += 1,
                Err(RecvTimeoutError::Disconnected) => tally.rx_dead = true,
                Err(_) => {}
            },
            _ => {
                let mut out = [0u64; 8];
                match rx.try_recv_batch(&mut out) {
                    Ok(n) => {
                        assert!((1..=8).contains(&n));
                        tally.ok += 1;
                    }
                    Err(TryRecvError::Disconnected) => tally.rx_dead = true,
                    Err(_) => {}
                }
            }
        }
        // Queries answer whatever the memory says.
        let _ = (rx.len(), rx.is_full(), victim.tx.len(), victim.tx.stats());
    }
}

#[test]
fn random_scribbles_never_panic_or_hang() {
    for overflow in [Overflow::Block, Overflow::Overwrite] {
        let mut rng = Rng::with_env_seed(15 + overflow as u64);
        let capacity = 8;
        within(Duration::from_secs(120), "the scribbling run", move || {
            hostile::scribble_in_process(
                2_000,
                || {
                    let (cleanup, name) = fresh("bcast-scribble");
                    let (tx, rxs) = hostile_channel(&name, capacity as usize, overflow);
                    Victim {
                        name,
                        _cleanup: cleanup,
                        tx,
                        rxs,
                    }
                },
                |victim| victim.name.clone(),
                |victim, tally| {
                    scribble(&shm_file(&victim.name), capacity, &mut rng);
                    poke(victim, &mut rng, tally);
                },
            )
        });
    }
}

// ---- Select and async ----

#[test]
fn select_and_async_take_broadcast_ends_across_processes() {
    // Room to send is readiness too; a sink sends.
    let (_cleanup, send_name) = fresh("bcast-select-send");
    let (tx, local) = broadcast::channel::<u64>(&send_name, 4).unwrap();
    let mut sends = shmchan::Select::new();
    let on_send = sends.send(&tx);
    assert_eq!(sends.try_ready(), Ok(on_send), "room to send");
    drop(sends);
    #[cfg(feature = "async")]
    exec::block_on(exec::feed(&mut tx.sink(), 7)).unwrap();
    #[cfg(not(feature = "async"))]
    tx.send(7).unwrap();
    assert_eq!(local.try_recv(), Ok(7));

    // Receiving from a sender in another process, which sends three frames
    // 50 ms apart: the first wakes a Select over this channel and an spsc
    // one, the second a `recv_async`, the third a stream.
    let (_cleanup, name) = fresh("bcast-select");
    let rx = broadcast::Receiver::<Frame>::create(&name, 4).unwrap();
    let (_cleanup_spsc, spsc_name) = fresh("bcast-select-spsc");
    let (_spsc_tx, spsc_rx) = shmchan::spsc::channel::<u64>(&spsc_name, 4).unwrap();
    let peer = Peer::spawn("send-slowly", &[&name, "3"]);
    let mut sel = shmchan::Select::new();
    sel.recv(&spsc_rx);
    let on_bcast = sel.recv(&rx);
    assert_eq!(sel.ready_timeout(NOTICE), Ok(on_bcast));
    drop(sel);
    assert_eq!(rx.try_recv().map(|frame| frame.check()), Ok(0));
    #[cfg(feature = "async")]
    {
        let second = exec::block_on(rx.recv_async()).map(|frame| frame.check());
        assert_eq!(second, Ok(1));
        let third = exec::block_on(exec::next(&mut rx.stream())).map(|frame| frame.check());
        assert_eq!(third, Some(2));
    }
    #[cfg(not(feature = "async"))]
    for seq in 1..3 {
        assert_eq!(rx.recv().map(|frame| frame.check()), Ok(seq));
    }
    peer.finish(PATIENCE);
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
}
