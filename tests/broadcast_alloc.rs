//! Zero heap allocations per message in steady state (DESIGN §7) for
//! `shmchan::broadcast`: every per-message operation in one thread, with a
//! second receiver attached; and a sender held back by a slow receiver in
//! another process (spinning, sleeping and probing the receivers'
//! liveness). A counting global allocator counts, per thread, the
//! allocations made while that thread has counting switched on.

mod common;

use common::counting_alloc::{allocations_in, Counting};
use common::{expect_success, spawn_peer, unique_name};
use shmchan::broadcast::{self, Receiver, Sender, TryRecvError};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

const MESSAGES: u64 = 100_000;
const WARM_UP: u64 = 1000;
/// Messages the blocked sender sends while its slow receiver drains.
const BLOCKED: u64 = 1000;

common::counting_alloc::exercise_one_thread!(broadcast, errors: shmchan::broadcast);

/// The counter works: without it, every test here would pass vacuously.
#[test]
fn the_counter_counts() {
    common::counting_alloc::check_the_counter();
}

#[test]
fn steady_state_in_one_thread_allocates_nothing() {
    let name = unique_name("broadcast-alloc-one-thread");
    let (tx, rx) = broadcast::channel::<u64>(&name, 1024).unwrap();
    exercise_one_thread(&tx, &rx, WARM_UP);
    let counts = exercise_one_thread(&tx, &rx, MESSAGES);
    common::counting_alloc::assert_none(&counts);
}

/// The sender keeps finding the slowest receiver a ring behind, that
/// receiver in another process.
#[test]
fn sender_blocked_by_a_slow_receiver_process_allocates_nothing() {
    let name = unique_name("broadcast-alloc-blocked-sender");
    let tx = Sender::<u64>::create(&name, 64).unwrap();
    let child = spawn_peer("drain-slowly", &[&name]);
    for i in 0..200 {
        tx.send(i).unwrap();
    }
    let (allocations, ()) = allocations_in(|| {
        for i in 200..200 + BLOCKED {
            if tx.send(i).is_err() {
                panic!("send failed");
            }
        }
    });
    drop(tx);
    expect_success(child, Duration::from_secs(20));
    assert_eq!(
        allocations, 0,
        "heap allocations while sending {BLOCKED} messages to a slow receiver"
    );
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Every 20 ms, takes what is waiting; ends when the sender is gone.
        "drain-slowly" => {
            let rx = Receiver::<u64>::open(&args[0]).unwrap();
            let mut expected = 0u64;
            loop {
                std::thread::sleep(Duration::from_millis(20));
                loop {
                    match rx.try_recv() {
                        Ok(value) => {
                            assert_eq!(value, expected);
                            expected += 1;
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return,
                        Err(TryRecvError::Lagged(n)) => panic!("lapped by {n} in block mode"),
                    }
                }
            }
        }
        other => panic!("unknown role {other}"),
    });
}
