//! Zero heap allocations per message in steady state (DESIGN §7), for the
//! mpsc and mpmc flavors: every per-message operation in one thread, many
//! senders (and, for mpmc, receivers) in threads, and an endpoint blocked
//! on a peer process (spinning, sleeping and probing the peer's liveness).
//!
//! A counting global allocator counts, per thread, the allocations made
//! while that thread has counting switched on; other threads (the test
//! harness, other tests running in parallel) do not disturb the count.
//! The two flavors have the same API, so one macro writes the tests of
//! both.

mod common;

use common::counting_alloc::{allocations_in, assert_none, Counting};
use common::{expect_success, spawn_peer, unique_name};
use shmchan::TryRecvError;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

const MESSAGES: u64 = 100_000;
const WARM_UP: u64 = 1000;
/// Messages a blocked endpoint handles while its peer process is slow.
const BLOCKED: u64 = 1000;

/// The counter works: without it, every test here would pass vacuously.
#[test]
fn the_counter_counts() {
    common::counting_alloc::check_the_counter();
}

macro_rules! allocation_tests {
    ($flavor:ident) => {
        mod $flavor {
            use super::*;
            use shmchan::$flavor::{Receiver, Sender};

            crate::common::counting_alloc::exercise_one_thread!($flavor);

            #[test]
            fn steady_state_in_one_thread_allocates_nothing() {
                let name = unique_name(concat!(stringify!($flavor), "-alloc-one-thread"));
                let (tx, rx) = shmchan::$flavor::channel::<u64>(&name, 1024).unwrap();
                exercise_one_thread(&tx, &rx, WARM_UP);
                assert_none(&exercise_one_thread(&tx, &rx, MESSAGES));
            }

            /// Two sender threads, each with its own handle (for mpsc its
            /// own shard), and the receiver in this thread; a small ring,
            /// so senders block on a full ring and the receiver on an
            /// empty one. Each thread counts its own allocations.
            #[test]
            fn steady_state_across_threads_allocates_nothing() {
                const SENDERS: u64 = 2;
                let name = unique_name(concat!(stringify!($flavor), "-alloc-threads"));
                let (tx, rx) = shmchan::$flavor::channel::<u64>(&name, 64).unwrap();
                let senders: Vec<_> = (0..SENDERS)
                    .map(|k| {
                        let tx = Sender::<u64>::open(&name).unwrap();
                        std::thread::spawn(move || {
                            for i in 0..WARM_UP {
                                tx.send(k << 32 | i).unwrap();
                            }
                            let (single, ()) = allocations_in(|| {
                                for i in WARM_UP..WARM_UP + MESSAGES {
                                    if tx.send(k << 32 | i).is_err() {
                                        panic!("send failed");
                                    }
                                }
                            });
                            let (batched, ()) = allocations_in(|| {
                                let mut values = [0u64; 16];
                                let mut next = WARM_UP + MESSAGES;
                                while next < WARM_UP + 2 * MESSAGES {
                                    for (j, v) in values.iter_mut().enumerate() {
                                        *v = k << 32 | (next + j as u64);
                                    }
                                    if tx.send_batch(&values).is_err() {
                                        panic!("send_batch failed");
                                    }
                                    next += values.len() as u64;
                                }
                            });
                            (single, batched)
                        })
                    })
                    .collect();
                drop(tx);
                // Per sender, what it sent next: each one's messages arrive
                // in order.
                let mut next = [0u64; SENDERS as usize];
                let mut take = |value: u64| {
                    let (k, i) = ((value >> 32) as usize, value & 0xFFFF_FFFF);
                    if k >= next.len() || i != next[k] {
                        panic!("message {value:#x} out of order");
                    }
                    next[k] += 1;
                };
                for _ in 0..SENDERS * WARM_UP {
                    take(rx.recv().unwrap());
                }
                let total = SENDERS * 2 * MESSAGES;
                let (received, ()) = allocations_in(|| {
                    let mut out = [0u64; 16];
                    let mut got = 0;
                    while got < total {
                        if got % 2 == 0 {
                            take(rx.recv().unwrap());
                            got += 1;
                        } else {
                            let n = rx.recv_batch(&mut out).unwrap();
                            out[..n].iter().for_each(|&v| take(v));
                            got += n as u64;
                        }
                    }
                });
                let mut counts = vec![("receiver recv + recv_batch", received)];
                for sender in senders {
                    let (single, batched) = sender.join().unwrap();
                    counts.push(("sender send", single));
                    counts.push(("sender send_batch", batched));
                }
                assert_none(&counts);
                assert_eq!(next, [WARM_UP + 2 * MESSAGES; SENDERS as usize]);
            }

            /// A sender that keeps finding the ring full, its receiver in
            /// another process: blocking, sleeping and checking that the
            /// peer lives must not allocate either.
            #[test]
            fn sender_blocked_by_peer_process_allocates_nothing() {
                let name = unique_name(concat!(stringify!($flavor), "-alloc-blocked-sender"));
                let tx = Sender::<u64>::create(&name, 64).unwrap();
                let child = spawn_peer(concat!(stringify!($flavor), "-drain-slowly"), &[&name]);
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
                    "heap allocations while sending {BLOCKED} messages into a slowly drained ring"
                );
            }

            /// A receiver that keeps finding the ring empty, its sender in
            /// another process.
            #[test]
            fn receiver_blocked_by_peer_process_allocates_nothing() {
                let name = unique_name(concat!(stringify!($flavor), "-alloc-blocked-receiver"));
                let rx = Receiver::<u64>::create(&name, 64).unwrap();
                let count = (200 + BLOCKED).to_string();
                let child = spawn_peer(
                    concat!(stringify!($flavor), "-send-slowly"),
                    &[&name, &count],
                );
                for i in 0..200 {
                    assert_eq!(rx.recv(), Ok(i));
                }
                let (allocations, ()) = allocations_in(|| {
                    for i in 200..200 + BLOCKED {
                        if rx.recv() != Ok(i) {
                            panic!("recv out of order");
                        }
                    }
                });
                expect_success(child, Duration::from_secs(20));
                assert_eq!(
                    allocations, 0,
                    "heap allocations while receiving {BLOCKED} messages sent in slow bursts"
                );
            }

            /// The peer roles of this flavor.
            pub fn peer(role: &str, args: &[String]) -> bool {
                match role.strip_prefix(concat!(stringify!($flavor), "-")) {
                    // Every 20 ms, takes what is waiting; ends when the
                    // sender is gone.
                    Some("drain-slowly") => {
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
                                    Err(TryRecvError::Disconnected) => return true,
                                }
                            }
                        }
                    }
                    // Sends `count` messages in bursts of 50, 20 ms apart.
                    Some("send-slowly") => {
                        let count: u64 = args[1].parse().unwrap();
                        let tx = Sender::<u64>::open(&args[0]).unwrap();
                        for i in 0..count {
                            tx.send(i).unwrap();
                            if i % 50 == 49 {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                        true
                    }
                    _ => false,
                }
            }
        }
    };
}

allocation_tests!(mpsc);
allocation_tests!(mpmc);

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        if !mpsc::peer(role, args) && !mpmc::peer(role, args) {
            panic!("unknown role {role}");
        }
    });
}
