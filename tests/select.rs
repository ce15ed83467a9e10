//! `Select` across processes: `ready` names the channel another process
//! fed, among channels of every flavor; a channel whose sender left or was
//! SIGKILLed is ready; a send becomes ready when another process makes
//! room; timeouts end the wait; removed operations are not reported; past
//! `futex_waitv`'s 128 words the wait still works (bounded polling); and a
//! stress run under a watchdog, in which a peer feeds four channels in a
//! random order with pauses that put the waiter to sleep, loses no wake-up.
//!
//! No timing is pass/fail: the watchdogs are ten times the promises.

mod common;

use common::{sleep_forever, unique_name, within, Cleanup, Peer, Rng};
use shmchan::{bytes, mpmc, mpsc, spsc, ReadyTimeoutError, Select, TryReadyError, TryRecvError};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);
/// A dead peer is promised to be noticed within a second.
const NOTICE: Duration = Duration::from_secs(10);

/// The channels of `four`: one of each flavor, named `name-k`.
fn names(name: &str) -> [String; 4] {
    [0, 1, 2, 3].map(|k| format!("{name}-{k}"))
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Waits `args[2]` ms, then sends one message on channel `args[1]`
        // of the set `args[0]`, and exits.
        "feed-one" => {
            let names = names(&args[0]);
            let k: usize = common::arg(args, 1);
            std::thread::sleep(Duration::from_millis(common::arg(args, 2)));
            match k {
                0 => spsc::Sender::<u64>::open(&names[0])
                    .unwrap()
                    .send(10)
                    .unwrap(),
                1 => mpsc::Sender::<u64>::open(&names[1])
                    .unwrap()
                    .send(11)
                    .unwrap(),
                2 => mpmc::Sender::<u32>::open(&names[2])
                    .unwrap()
                    .send(12)
                    .unwrap(),
                _ => bytes::Sender::open(&names[3]).unwrap().send(b"13").unwrap(),
            }
        }
        // Opens a sender of the mpmc channel `args[0]` and holds it until
        // killed.
        "hold-mpmc" => sleep_forever(mpmc::Sender::<u32>::open(&args[0]).unwrap()),
        // Receives `args[1]` messages from the spsc channel `args[0]`, one
        // each `args[2]` ms.
        "drain" => {
            let rx = spsc::Receiver::<u64>::open(&args[0]).unwrap();
            let count: u64 = common::arg(args, 1);
            for _ in 0..count {
                std::thread::sleep(Duration::from_millis(common::arg(args, 2)));
                rx.recv().unwrap();
            }
        }
        // Sends `args[1]` messages over the four spsc channels of the set
        // `args[0]`: message i on channel `rng % 4`, each channel's values
        // rising, with a pause now and then long enough for the receiver
        // to fall asleep.
        "stress" => {
            let names = names(&args[0]);
            let txs = names
                .each_ref()
                .map(|n| spsc::Sender::<u64>::open(n).unwrap());
            let count: u64 = common::arg(args, 1);
            let mut rng = Rng::new(common::arg(args, 2));
            for i in 0..count {
                txs[rng.below(4) as usize].send(i).unwrap();
                match rng.below(64) {
                    0 => std::thread::sleep(Duration::from_micros(rng.below(300))),
                    1..=4 => std::thread::yield_now(),
                    _ => {}
                }
            }
        }
        // Sends one message on the spsc channel `args[0]` after `args[1]` ms.
        "send-late" => {
            let tx = spsc::Sender::<u64>::open(&args[0]).unwrap();
            std::thread::sleep(Duration::from_millis(common::arg(args, 1)));
            tx.send(99).unwrap();
        }
        other => panic!("unknown role {other}"),
    });
}

/// A channel of each flavor, all created here; returns their receivers.
struct Four {
    _cleanup: Vec<Cleanup>,
    name: String,
    spsc: spsc::Receiver<u64>,
    mpsc: mpsc::Receiver<u64>,
    mpmc: mpmc::Receiver<u32>,
    bytes: bytes::Receiver,
}

impl Four {
    fn new(tag: &str) -> Self {
        let name = unique_name(tag);
        let n = names(&name);
        Self {
            _cleanup: n.iter().map(|n| Cleanup(n.clone())).collect(),
            spsc: spsc::Receiver::create(&n[0], 16).unwrap(),
            mpsc: mpsc::Receiver::create(&n[1], 16).unwrap(),
            mpmc: mpmc::Receiver::create(&n[2], 16).unwrap(),
            bytes: bytes::Receiver::create(&n[3], 1024).unwrap(),
            name,
        }
    }

    fn select(&self) -> (Select<'_>, [usize; 4]) {
        let mut sel = Select::new();
        let indices = [
            sel.recv(&self.spsc),
            sel.recv(&self.mpsc),
            sel.recv(&self.mpmc),
            sel.recv(&self.bytes),
        ];
        (sel, indices)
    }
}

#[test]
fn ready_names_the_channel_another_process_fed_among_every_flavor() {
    for k in 0..4 {
        let mut four = Four::new("select-feed");
        let (mut sel, indices) = four.select();
        assert_eq!(sel.try_ready(), Err(TryReadyError));
        // Late enough that the wait has gone to sleep on all four words.
        let peer = Peer::spawn("feed-one", &[&four.name, &k.to_string(), "50"]);
        let ready = sel.ready();
        assert_eq!(ready, indices[k], "fed channel {k}");
        drop(sel);
        match k {
            0 => assert_eq!(four.spsc.try_recv(), Ok(10)),
            1 => assert_eq!(four.mpsc.try_recv(), Ok(11)),
            2 => assert_eq!(four.mpmc.try_recv(), Ok(12)),
            _ => assert_eq!(&*four.bytes.try_recv().unwrap(), b"13"),
        }
        peer.finish(PATIENCE);
    }
}

#[cfg(feature = "serde")]
#[test]
fn a_serde_receiver_can_be_selected() {
    let name = unique_name("select-serde");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = shmchan::serde::channel::<String>(&name, 1024).unwrap();
    let other = unique_name("select-serde-other");
    let _cleanup_other = Cleanup(other.clone());
    let quiet = spsc::Receiver::<u64>::create(&other, 4).unwrap();
    let mut sel = Select::new();
    let _ = sel.recv(&quiet);
    let index = sel.recv(&rx);
    tx.send(&"hello".to_owned()).unwrap();
    assert_eq!(sel.ready(), index);
    drop(sel);
    assert_eq!(rx.try_recv().unwrap(), "hello");
}

#[test]
fn a_channel_whose_sender_left_or_died_is_ready() {
    // Left: the peer sends one message and exits; once it is drained, the
    // channel stays ready (a receive fails at once).
    let four = Four::new("select-left");
    Peer::spawn("feed-one", &[&four.name, "0", "0"]).finish(PATIENCE);
    let (mut sel, indices) = four.select();
    assert_eq!(sel.ready(), indices[0]);
    assert_eq!(four.spsc.try_recv(), Ok(10));
    assert_eq!(sel.ready(), indices[0]);
    assert_eq!(four.spsc.try_recv(), Err(TryRecvError::Disconnected));
    drop(sel);

    // Killed while the select sleeps.
    let four = Four::new("select-killed");
    let peer = Peer::spawn("hold-mpmc", &[&names(&four.name)[2]]);
    common::wait_until(PATIENCE, "the peer attaches", || {
        common::live(&four.mpmc.stats(), "sender") == 1
    });
    let (mut sel, indices) = four.select();
    assert_eq!(sel.try_ready(), Err(TryReadyError));
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        peer.kill();
    });
    let ready = within_scope(NOTICE, || sel.ready());
    assert_eq!(ready, indices[2]);
    killer.join().unwrap();
    assert_eq!(four.mpmc.try_recv(), Err(TryRecvError::Disconnected));
}

/// Runs `f` on this thread, failing the test if it takes longer than
/// `limit` (a watchdog thread aborts the process: the borrowed `Select`
/// cannot move to another thread).
fn within_scope<R>(limit: Duration, f: impl FnOnce() -> R) -> R {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(limit).is_err() {
            eprintln!("a Select did not return within {limit:?}: it hung");
            std::process::abort();
        }
    });
    let result = f();
    let _ = done.send(());
    watchdog.join().unwrap();
    result
}

#[test]
fn a_send_becomes_ready_when_another_process_makes_room() {
    let name = unique_name("select-room");
    let _cleanup = Cleanup(name.clone());
    let tx = spsc::Sender::<u64>::create(&name, 2).unwrap();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let other = unique_name("select-room-other");
    let _cleanup_other = Cleanup(other.clone());
    let quiet = spsc::Receiver::<u64>::create(&other, 4).unwrap();
    let mut sel = Select::new();
    let _ = sel.recv(&quiet);
    let send = sel.send(&tx);
    assert_eq!(sel.try_ready(), Err(TryReadyError));
    // Three receives, the first after 50 ms: the peer stays attached
    // until the send below has landed.
    let peer = Peer::spawn("drain", &[&name, "3", "50"]);
    assert_eq!(within_scope(NOTICE, || sel.ready()), send);
    drop(sel);
    tx.try_send(3).unwrap();
    peer.finish(PATIENCE);
}

#[test]
fn timeouts_end_the_wait_and_a_late_message_is_still_seen() {
    let name = unique_name("select-timeout");
    let _cleanup = Cleanup(name.clone());
    let rx = spsc::Receiver::<u64>::create(&name, 4).unwrap();
    let peer = Peer::spawn("send-late", &[&name, "300"]);
    let mut sel = Select::new();
    let index = sel.recv(&rx);
    let start = Instant::now();
    assert_eq!(
        sel.ready_timeout(Duration::from_millis(20)),
        Err(ReadyTimeoutError)
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(sel.ready_timeout(Duration::ZERO), Err(ReadyTimeoutError));
    // A huge timeout is no timeout.
    assert_eq!(sel.ready_timeout(Duration::MAX), Ok(index));
    drop(sel);
    assert_eq!(rx.try_recv(), Ok(99));
    peer.finish(PATIENCE);
}

#[test]
fn removed_operations_are_not_reported_and_indices_stay() {
    let four = Four::new("select-remove");
    Peer::spawn("feed-one", &[&four.name, "1", "0"]).finish(PATIENCE);
    Peer::spawn("feed-one", &[&four.name, "3", "0"]).finish(PATIENCE);
    let (mut sel, indices) = four.select();
    sel.remove(indices[1]);
    // The mpsc channel is ready (and disconnected), but removed.
    assert_eq!(sel.ready(), indices[3]);
    sel.remove(indices[3]);
    assert_eq!(sel.try_ready(), Err(TryReadyError));
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sel.remove(indices[3])));
    assert!(again.is_err(), "removing twice panics");
}

#[test]
fn an_empty_select_times_out_and_ready_refuses_to_wait_forever() {
    let mut sel = Select::new();
    assert_eq!(sel.try_ready(), Err(TryReadyError));
    assert_eq!(
        sel.ready_timeout(Duration::from_millis(1)),
        Err(ReadyTimeoutError)
    );
    let forever = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sel.ready()));
    assert!(forever.is_err());
}

#[test]
fn past_the_kernels_128_words_the_wait_polls_and_still_sees_the_message() {
    const CHANNELS: usize = 140;
    let base = unique_name("select-many");
    let names: Vec<String> = (0..CHANNELS).map(|k| format!("{base}-{k}")).collect();
    let _cleanup: Vec<Cleanup> = names.iter().map(|n| Cleanup(n.clone())).collect();
    let rxs: Vec<spsc::Receiver<u64>> = names
        .iter()
        .map(|n| spsc::Receiver::create(n, 2).unwrap())
        .collect();
    let mut fed = Vec::new();
    for target in [CHANNELS - 1, 0, 70] {
        let mut sel = Select::new();
        let indices: Vec<usize> = rxs.iter().map(|rx| sel.recv(rx)).collect();
        // Channels fed before are disconnected now, so ready: left out.
        for &k in &fed {
            sel.remove(indices[k]);
        }
        fed.push(target);
        let peer = Peer::spawn("send-late", &[&names[target], "50"]);
        assert_eq!(within_scope(NOTICE, || sel.ready()), indices[target]);
        drop(sel);
        assert_eq!(rxs[target].try_recv(), Ok(99));
        peer.finish(PATIENCE);
    }
}

#[test]
fn no_wake_up_is_lost_under_a_stream_that_keeps_pausing() {
    const COUNT: u64 = 200_000;
    let base = unique_name("select-stress");
    let n = names(&base);
    let _cleanup: Vec<Cleanup> = n.iter().map(|n| Cleanup(n.clone())).collect();
    let rxs = n
        .each_ref()
        .map(|n| spsc::Receiver::<u64>::create(n, 8).unwrap());
    let peer = Peer::spawn("stress", &[&base, &COUNT.to_string(), "17"]);
    let received = within(Duration::from_secs(120), "the stressed select", move || {
        let mut sel = Select::new();
        for rx in &rxs {
            sel.recv(rx);
        }
        let mut last = [None::<u64>; 4];
        let mut received = 0u64;
        let mut gone = [false; 4];
        while !gone.iter().all(|g| *g) {
            let k = sel.ready();
            match rxs[k].try_recv() {
                Ok(value) => {
                    assert!(last[k] < Some(value), "channel {k}: {value} after {last:?}");
                    last[k] = Some(value);
                    received += 1;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    if !gone[k] {
                        gone[k] = true;
                        sel.remove(k);
                    }
                }
            }
        }
        received
    });
    assert_eq!(received, COUNT);
    peer.finish(PATIENCE);
}
