//! Zero heap allocations per message in steady state (DESIGN §7).
//!
//! A counting global allocator counts, per thread, the allocations made
//! while that thread has counting switched on; other threads (the test
//! harness, other tests running in parallel) do not disturb the count.

mod common;

use common::counting_alloc::{allocations_in, Counting};
use common::{expect_success, spawn_peer, unique_name};
use shmchan::{spsc, TryRecvError};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

const MESSAGES: u64 = 100_000;
const WARM_UP: u64 = 1000;

/// The counter works: without it, every test here would pass vacuously.
#[test]
fn the_counter_counts() {
    common::counting_alloc::check_the_counter();
}

common::counting_alloc::exercise_one_thread!(spsc);

#[test]
fn steady_state_in_one_thread_allocates_nothing() {
    let name = unique_name("alloc-one-thread");
    let (tx, rx) = spsc::channel::<u64>(&name, 1024).unwrap();
    exercise_one_thread(&tx, &rx, WARM_UP);
    let counts = exercise_one_thread(&tx, &rx, MESSAGES);
    common::counting_alloc::assert_none(&counts);
}

/// The receiver blocks (spinning, then sleeping) in another thread; each
/// thread counts its own allocations.
#[test]
fn steady_state_across_threads_allocates_nothing() {
    let name = unique_name("alloc-threads");
    // Small ring: the sender often finds it full and blocks too.
    let (tx, rx) = spsc::channel::<u64>(&name, 64).unwrap();
    let receiver = std::thread::spawn(move || {
        for i in 0..WARM_UP {
            assert_eq!(rx.recv(), Ok(i));
        }
        let (single, ()) = allocations_in(|| {
            for i in WARM_UP..WARM_UP + MESSAGES {
                if rx.recv() != Ok(i) {
                    panic!("recv out of order");
                }
            }
        });
        let (batched, ()) = allocations_in(|| {
            let mut out = [0u64; 16];
            let mut next = WARM_UP + MESSAGES;
            while next < WARM_UP + 2 * MESSAGES {
                let n = rx.recv_batch(&mut out).unwrap();
                for value in &out[..n] {
                    if *value != next {
                        panic!("recv_batch out of order");
                    }
                    next += 1;
                }
            }
        });
        (single, batched)
    });
    for i in 0..WARM_UP {
        tx.send(i).unwrap();
    }
    let (single, ()) = allocations_in(|| {
        for i in WARM_UP..WARM_UP + MESSAGES {
            tx.send(i).unwrap();
        }
    });
    let (batched, ()) = allocations_in(|| {
        let mut values = [0u64; 16];
        let mut next = WARM_UP + MESSAGES;
        while next < WARM_UP + 2 * MESSAGES {
            let want = (values.len() as u64).min(WARM_UP + 2 * MESSAGES - next) as usize;
            for (k, v) in values[..want].iter_mut().enumerate() {
                *v = next + k as u64;
            }
            tx.send_batch(&values[..want]).unwrap();
            next += want as u64;
        }
    });
    let (rx_single, rx_batched) = receiver.join().unwrap();
    assert_eq!(
        (single, batched, rx_single, rx_batched),
        (0, 0, 0, 0),
        "heap allocations (sender send, sender send_batch, receiver recv, receiver recv_batch)"
    );
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Every 20 ms, takes what is waiting; ends when the sender is gone.
        "drain-slowly" => {
            let rx = spsc::Receiver::<u64>::open(&args[0]).unwrap();
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
                    }
                }
            }
        }
        // Sends `count` messages in bursts of 50, 20 ms apart.
        "send-slowly" => {
            let count: u64 = args[1].parse().unwrap();
            let tx = spsc::Sender::<u64>::open(&args[0]).unwrap();
            for i in 0..count {
                tx.send(i).unwrap();
                if i % 50 == 49 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        other => panic!("unknown role {other}"),
    });
}

/// A sender that keeps finding the ring full, its receiver in another
/// process: blocking, sleeping and checking that the peer lives must not
/// allocate either.
#[test]
fn sender_blocked_by_peer_process_allocates_nothing() {
    const COUNT: u64 = 1000;
    const WARM_UP: u64 = 200;
    let name = unique_name("alloc-blocked-sender");
    let tx = spsc::Sender::<u64>::create(&name, 64).unwrap();
    let child = spawn_peer("drain-slowly", &[&name]);
    for i in 0..WARM_UP {
        tx.send(i).unwrap();
    }
    let (allocations, ()) = allocations_in(|| {
        for i in WARM_UP..WARM_UP + COUNT {
            tx.send(i).unwrap();
        }
    });
    drop(tx);
    expect_success(child, Duration::from_secs(20));
    assert_eq!(
        allocations, 0,
        "heap allocations while sending {COUNT} messages into a slowly drained ring"
    );
}

/// A receiver that keeps finding the ring empty, its sender in another
/// process.
#[test]
fn receiver_blocked_by_peer_process_allocates_nothing() {
    const COUNT: u64 = 1000;
    const WARM_UP: u64 = 200;
    let name = unique_name("alloc-blocked-receiver");
    let rx = spsc::Receiver::<u64>::create(&name, 64).unwrap();
    let child = spawn_peer("send-slowly", &[&name, &(WARM_UP + COUNT).to_string()]);
    for i in 0..WARM_UP {
        assert_eq!(rx.recv(), Ok(i));
    }
    let (allocations, ()) = allocations_in(|| {
        for i in WARM_UP..WARM_UP + COUNT {
            if rx.recv() != Ok(i) {
                panic!("recv out of order");
            }
        }
    });
    expect_success(child, Duration::from_secs(20));
    assert_eq!(
        allocations, 0,
        "heap allocations while receiving {COUNT} messages sent in slow bursts"
    );
}
