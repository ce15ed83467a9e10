//! async across processes (feature `async`), on tokio's current-thread and
//! multi-thread runtimes and on a minimal executor (a thread that parks):
//! a million messages through `Stream` and `Sink`; pending receives
//! dropped thousands of times mid-stream losing nothing and leaving no
//! sleeper counted; a SIGKILLed peer ending a stream and failing a pending
//! send; hundreds of channels pending at once, served by one thread; the
//! byte and serde flavors.
//!
//! No timing is pass/fail: the watchdogs allow ten times the promises.
#![cfg(feature = "async")]

mod common;
#[path = "common/exec.rs"]
mod exec;

use common::shm::{read_u32, shm_file};
use common::{sleep_forever, unique_name, Cleanup, Peer, Rng};
use exec::{block_on, feed, next};
use shmchan::{bytes, mpmc, mpsc, spsc, RecvError, SendError};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(120);
const NOTICE: Duration = Duration::from_secs(10);
/// The sleeper count of an spsc segment's `not_empty` doorbell (see
/// `hostile.rs` for the layout).
const SPSC_NOT_EMPTY_SLEEPERS: u64 = 640 + 256 + 4;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Sends 0..count on the spsc channel `args[0]` through `into_sink`,
        // on a current-thread runtime.
        "sink" => {
            let count: u64 = common::arg(args, 1);
            let tx = spsc::Sender::<u64>::open(&args[0]).unwrap();
            current_thread().block_on(async move {
                let mut sink = tx.into_sink();
                for i in 0..count {
                    feed(&mut sink, i).await.unwrap();
                }
            });
        }
        // Sends 0..count with a pause now and then (so the receiver often
        // waits), blocking sends.
        "trickle" => {
            let count: u64 = common::arg(args, 1);
            let tx = spsc::Sender::<u64>::open(&args[0]).unwrap();
            let mut rng = Rng::new(5);
            for i in 0..count {
                tx.send(i).unwrap();
                if rng.below(8) == 0 {
                    std::thread::sleep(Duration::from_micros(rng.below(200)));
                }
            }
        }
        // Sends `count` messages, then holds the sender until killed.
        "send-then-hold" => {
            let count: u64 = common::arg(args, 1);
            let tx = mpsc::Sender::<u64>::open(&args[0]).unwrap();
            for i in 0..count {
                tx.send(i).unwrap();
            }
            sleep_forever(tx)
        }
        // Opens the receiver of `args[0]` and holds it, receiving nothing.
        "hold-receiver" => sleep_forever(mpmc::Receiver::<u64>::open(&args[0]).unwrap()),
        // Sends one message on each of the spsc channels `args[0]-k`, k in
        // 0..count, in a shuffled order.
        "one-each" => {
            let count: usize = common::arg(args, 1);
            let mut order: Vec<usize> = (0..count).collect();
            let mut rng = Rng::new(9);
            for i in (1..count).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            for k in order {
                let tx = spsc::Sender::<u64>::open(&format!("{}-{k}", args[0])).unwrap();
                tx.send(k as u64).unwrap();
            }
        }
        // Byte messages: sends `count` vectors of lengths 0..200, by sink.
        "bytes-sink" => {
            let count: usize = common::arg(args, 1);
            let tx = bytes::Sender::open(&args[0]).unwrap();
            block_on(async move {
                let mut sink = tx.sink();
                for i in 0..count {
                    feed(&mut sink, vec![i as u8; i % 200]).await.unwrap();
                }
            });
        }
        other => panic!("unknown role {other}"),
    });
}

/// Receives 0..count from `rx`'s stream, in order, then its end.
async fn expect_stream(rx: spsc::Receiver<u64>, count: u64) {
    let mut stream = rx.stream();
    for i in 0..count {
        assert_eq!(next(&mut stream).await, Some(i));
    }
    assert_eq!(next(&mut stream).await, None);
}

#[test]
fn a_million_messages_through_sink_and_stream_on_every_executor() {
    let runs: [(&str, u64); 3] = [
        ("multi-thread", 1_000_000),
        ("current-thread", 200_000),
        ("minimal", 200_000),
    ];
    for (executor, count) in runs {
        let name = unique_name("async-million");
        let _cleanup = Cleanup(name.clone());
        let rx = spsc::Receiver::<u64>::create(&name, 1024).unwrap();
        let peer = Peer::spawn("sink", &[&name, &count.to_string()]);
        match executor {
            "multi-thread" => multi_thread().block_on(expect_stream(rx, count)),
            "current-thread" => current_thread().block_on(expect_stream(rx, count)),
            _ => block_on(expect_stream(rx, count)),
        }
        peer.finish(PATIENCE);
    }
}

#[test]
fn dropping_pending_receives_loses_nothing_and_leaves_no_sleeper() {
    const COUNT: u64 = 50_000;
    let name = unique_name("async-cancel");
    let _cleanup = Cleanup(name.clone());
    let rx = spsc::Receiver::<u64>::create(&name, 64).unwrap();
    let file = shm_file(&name);
    let peer = Peer::spawn("trickle", &[&name, &COUNT.to_string()]);
    let cancelled = current_thread().block_on(async {
        let mut expected = 0;
        let mut cancelled = 0u64;
        loop {
            // A receive raced against a timer that often wins: the
            // pending receive is then dropped.
            tokio::select! {
                biased;
                _ = tokio::time::sleep(Duration::from_micros(1)) => cancelled += 1,
                got = rx.recv_async() => match got {
                    Ok(value) => {
                        assert_eq!(value, expected, "lost or duplicated");
                        expected += 1;
                    }
                    Err(RecvError) => break,
                },
            }
        }
        assert_eq!(expected, COUNT);
        cancelled
    });
    peer.finish(PATIENCE);
    assert!(cancelled > 1000, "only {cancelled} receives were cancelled");
    assert_eq!(read_u32(&file, SPSC_NOT_EMPTY_SLEEPERS), 0);
}

#[test]
fn a_killed_sender_ends_the_stream_and_a_killed_receiver_fails_the_send() {
    let name = unique_name("async-kill-tx");
    let _cleanup = Cleanup(name.clone());
    let rx = mpsc::Receiver::<u64>::create(&name, 16).unwrap();
    let peer = Peer::spawn("send-then-hold", &[&name, "10"]);
    multi_thread().block_on(async {
        let mut stream = rx.stream();
        for i in 0..10 {
            assert_eq!(next(&mut stream).await, Some(i));
        }
        let pending = tokio::spawn(async move {
            let mut stream = rx.into_stream();
            next(&mut stream).await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        peer.kill();
        let end = tokio::time::timeout(NOTICE, pending).await;
        assert_eq!(end.expect("the stream ended").unwrap(), None);
    });

    let name = unique_name("async-kill-rx");
    let _cleanup = Cleanup(name.clone());
    let tx = mpmc::Sender::<u64>::create(&name, 2).unwrap();
    let peer = Peer::spawn("hold-receiver", &[&name]);
    common::wait_until(PATIENCE, "the receiver attaches", || {
        common::live(&tx.stats(), "receiver") == 1
    });
    block_on(async {
        tx.send_async(1).await.unwrap();
        tx.send_async(2).await.unwrap();
        // Full: pending until the receiver dies.
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            peer.kill();
        });
        assert_eq!(tx.send_async(3).await, Err(SendError(3)));
        killer.join().unwrap();
    });
}

#[test]
fn hundreds_of_pending_channels_are_served_by_one_thread() {
    const CHANNELS: usize = 300;
    let base = unique_name("async-many");
    let names: Vec<String> = (0..CHANNELS).map(|k| format!("{base}-{k}")).collect();
    let _cleanup: Vec<Cleanup> = names.iter().map(|n| Cleanup(n.clone())).collect();
    let receivers: Vec<spsc::Receiver<u64>> = names
        .iter()
        .map(|n| spsc::Receiver::create(n, 2).unwrap())
        .collect();
    let runtime = multi_thread();
    let tasks: Vec<_> = receivers
        .into_iter()
        // `into_stream`: a task on a multi-thread runtime must be `Send`,
        // and a future borrowing a (non-`Sync`) spsc receiver is not.
        .map(|rx| runtime.spawn(async move { next(&mut rx.into_stream()).await }))
        .collect();
    // Every task pending: then the peer feeds each channel once.
    std::thread::sleep(Duration::from_millis(200));
    let peer = Peer::spawn("one-each", &[&base, &CHANNELS.to_string()]);
    runtime.block_on(async {
        for (k, task) in tasks.into_iter().enumerate() {
            let got = tokio::time::timeout(PATIENCE, task).await;
            assert_eq!(got.expect("served").unwrap(), Some(k as u64));
        }
    });
    peer.finish(PATIENCE);
    assert_eq!(waiter_threads(), 1, "one waiter thread serves them all");
}

/// Threads of this process named `shmchan-waiter`.
fn waiter_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|task| {
            let comm = task.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|name| name.trim() == "shmchan-waiter")
        })
        .count()
}

#[test]
fn byte_messages_through_a_sink_and_a_stream() {
    const COUNT: usize = 20_000;
    let name = unique_name("async-bytes");
    let _cleanup = Cleanup(name.clone());
    let rx = bytes::Receiver::create(&name, 4096).unwrap();
    let peer = Peer::spawn("bytes-sink", &[&name, &COUNT.to_string()]);
    current_thread().block_on(async {
        let mut stream = rx.stream();
        for i in 0..COUNT {
            assert_eq!(next(&mut stream).await, Some(vec![i as u8; i % 200]));
        }
        assert_eq!(next(&mut stream).await, None);
    });
    peer.finish(PATIENCE);
}

#[cfg(feature = "serde")]
#[test]
fn serde_values_through_send_async_and_recv_async() {
    let name = unique_name("async-serde");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = shmchan::serde::channel::<Vec<String>>(&name, 256).unwrap();
    multi_thread().block_on(async move {
        // On a thread of its own, with the minimal executor: a future that
        // borrows a serde sender is not `Send`, so not for `tokio::spawn`.
        let sender = std::thread::spawn(move || {
            block_on(async {
                for i in 0..2000 {
                    tx.send_async(vec![format!("{i}"); i % 5]).await.unwrap();
                }
            })
        });
        for i in 0..2000 {
            assert_eq!(rx.recv_async().await.unwrap(), vec![format!("{i}"); i % 5]);
        }
        sender.join().unwrap();
        assert!(matches!(
            rx.recv_async().await,
            Err(shmchan::serde::RecvError::Disconnected)
        ));
    });
}

/// A pending receive is counted on the doorbell (so a send rings, rather
/// than leaving it to the waiter thread's liveness look), and its count
/// goes when it completes; a send while it is pending rings: the futex
/// word moves.
#[test]
fn a_pending_receive_is_announced_and_the_send_rings() {
    const NOT_EMPTY_WORD: u64 = SPSC_NOT_EMPTY_SLEEPERS - 4;
    let name = unique_name("async-announce");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = spsc::channel::<u64>(&name, 4).unwrap();
    let file = shm_file(&name);
    let receiver = std::thread::spawn(move || block_on(rx.recv_async()));
    common::wait_until(PATIENCE, "the receive is pending", || {
        read_u32(&file, SPSC_NOT_EMPTY_SLEEPERS) == 1
    });
    let word = read_u32(&file, NOT_EMPTY_WORD);
    tx.send(42).unwrap();
    assert_ne!(read_u32(&file, NOT_EMPTY_WORD), word, "the send rang");
    assert_eq!(receiver.join().unwrap(), Ok(42));
    assert_eq!(read_u32(&file, SPSC_NOT_EMPTY_SLEEPERS), 0);
}
