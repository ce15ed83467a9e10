//! Model checks of the ring and the wait protocol under loom.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.
//! The code under test is the code the flavors run: `ring::spsc` over heap
//! memory, and `wait::block_on` with the futex emulated by a loom mutex and
//! condition variable (see `wait::futex`). A lost wake-up makes a waiter
//! sleep forever, which loom reports as a deadlock.

use crate::primitive::{AtomicU32, Ordering};
use crate::ring::spsc::{Consumer, HeapRing, PopError, Producer, PushError};
use crate::wait::{block_on, Barrier, Blocked, Doorbell, Wait};
use core::time::Duration;
use loom::sync::Arc;
use loom::thread;
use std::time::Instant;

/// Never spins; sleeps without a deadline.
const FOREVER: Wait = Wait {
    spin: Duration::ZERO,
    deadline: None,
};

/// A model checker that explores every interleaving with at most `n`
/// preemptions. The models with three or four threads, each looping, are
/// too large to explore exhaustively (hours); a bound of 3 keeps each to
/// seconds, and the bugs these protocols could have (a lost wake-up, a
/// stale read acted upon, a double claim) need fewer preemptions than that
/// to show.
fn bounded(n: usize) -> loom::model::Builder {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(n);
    // Spinning threads make long executions; each is still finite.
    model.max_branches = 100_000;
    model
}

/// One ring with its two doorbells and a "sender gone" flag, shared by the
/// model's threads the way a segment is shared by processes.
struct Channel {
    ring: HeapRing<u64>,
    not_empty: Doorbell,
    not_full: Doorbell,
    sender_gone: AtomicU32,
}

impl Channel {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            ring: HeapRing::new(capacity),
            not_empty: Doorbell::default(),
            not_full: Doorbell::default(),
            sender_gone: AtomicU32::new(0),
        })
    }

    fn producer(&self) -> Producer<u64> {
        // SAFETY: each model execution makes one producer, dropped before
        // the `Arc` that owns the ring.
        unsafe { Producer::attach(self.ring.view()).unwrap() }
    }

    fn consumer(&self) -> Consumer<u64> {
        // SAFETY: as for `producer`, one consumer.
        unsafe { Consumer::attach(self.ring.view()).unwrap() }
    }
}

/// Sends `value` as `Sender::send` does: push, ring if someone sleeps.
fn send(channel: &Channel, producer: &Producer<u64>, value: u64) {
    let poll = |_| match producer.push(value) {
        Ok(()) => Some(()),
        Err(PushError::Full) => None,
        Err(PushError::Corrupt) => panic!("corrupt ring"),
    };
    assert_eq!(
        block_on(&channel.not_full, Barrier::fence(), FOREVER, poll, || None),
        Blocked::Done(())
    );
    channel.not_empty.notify(Barrier::fence());
}

/// Receives as `Receiver::recv` does: `None` once the sender is gone and
/// the ring is empty.
fn recv(channel: &Channel, consumer: &Consumer<u64>) -> Option<u64> {
    let poll = |_| match consumer.pop() {
        Ok(value) => Some(Some(value)),
        // Acquire: pairs with the sender's Release store of the flag.
        Err(PopError::Empty) if channel.sender_gone.load(Ordering::Acquire) != 0 => {
            Some(consumer.pop().ok())
        }
        Err(PopError::Empty) => None,
        Err(PopError::Corrupt) => panic!("corrupt ring"),
    };
    let Blocked::Done(result) =
        block_on(&channel.not_empty, Barrier::fence(), FOREVER, poll, || None)
    else {
        unreachable!("no deadline")
    };
    if result.is_some() {
        channel.not_full.notify(Barrier::fence());
    }
    result
}

#[test]
fn ring_is_fifo_across_the_wrap_without_races() {
    loom::model(|| {
        let channel = Channel::new(2);
        let tx = channel.producer();
        let rx = channel.consumer();
        let sender = thread::spawn(move || {
            for value in 0..3 {
                while tx.push(value) == Err(PushError::Full) {
                    thread::yield_now();
                }
            }
        });
        for expected in 0..3 {
            loop {
                match rx.pop() {
                    Ok(value) => break assert_eq!(value, expected),
                    Err(PopError::Empty) => thread::yield_now(),
                    Err(PopError::Corrupt) => panic!("corrupt ring"),
                }
            }
        }
        sender.join().unwrap();
        drop(channel);
    });
}

#[test]
fn batches_publish_and_release_whole() {
    loom::model(|| {
        let channel = Channel::new(2);
        let tx = channel.producer();
        let rx = channel.consumer();
        let sender = thread::spawn(move || {
            let values = [10, 11, 12];
            let mut sent = 0;
            while sent < values.len() {
                sent += tx.push_slice(&values[sent..]).unwrap();
                thread::yield_now();
            }
        });
        let mut seen = Vec::new();
        let mut out = [0u64; 2];
        while seen.len() < 3 {
            let n = rx.pop_into(&mut out).unwrap();
            seen.extend_from_slice(&out[..n]);
            thread::yield_now();
        }
        assert_eq!(seen, [10, 11, 12]);
        sender.join().unwrap();
    });
}

#[test]
fn sleeping_receiver_is_woken_by_a_send() {
    loom::model(|| {
        let channel = Channel::new(2);
        let tx = channel.producer();
        let rx = channel.consumer();
        let peer = channel.clone();
        let sender = thread::spawn(move || send(&peer, &tx, 7));
        assert_eq!(recv(&channel, &rx), Some(7));
        sender.join().unwrap();
    });
}

#[test]
fn sleeping_sender_is_woken_by_a_receive() {
    loom::model(|| {
        let channel = Channel::new(1);
        let tx = channel.producer();
        let rx = channel.consumer();
        tx.push(1).unwrap();
        let peer = channel.clone();
        // The ring is full: this send sleeps until the receive below.
        let sender = thread::spawn(move || send(&peer, &tx, 2));
        assert_eq!(recv(&channel, &rx), Some(1));
        sender.join().unwrap();
        assert_eq!(rx.pop(), Ok(2));
    });
}

#[test]
fn disconnect_wakes_a_sleeping_receiver_after_the_last_message() {
    // Unbounded, the search outgrew ten minutes once waiters and
    // publishers also swap `signalled`; four preemptions take a second.
    bounded(4).check(|| {
        let channel = Channel::new(2);
        let tx = channel.producer();
        let rx = channel.consumer();
        let peer = channel.clone();
        let sender = thread::spawn(move || {
            send(&peer, &tx, 5);
            // As a sender's drop does: mark gone, then ring unconditionally.
            // Release: pairs with the receiver's Acquire load of the flag.
            peer.sender_gone.store(1, Ordering::Release);
            peer.not_empty.ring();
        });
        assert_eq!(recv(&channel, &rx), Some(5));
        assert_eq!(recv(&channel, &rx), None);
        sender.join().unwrap();
    });
}

#[test]
fn a_timeout_racing_a_send_loses_nothing() {
    loom::model(|| {
        let channel = Channel::new(2);
        let tx = channel.producer();
        let rx = channel.consumer();
        let peer = channel.clone();
        let sender = thread::spawn(move || send(&peer, &tx, 9));
        // A finite deadline: the model's timer fires as soon as the waiter
        // sleeps, and `check_peer` then gives up, as a deadline would.
        let wait = Wait {
            spin: Duration::ZERO,
            deadline: Some(Instant::now() + Duration::from_secs(3600)),
        };
        let poll = |_| rx.pop().ok();
        let outcome = block_on(&channel.not_empty, Barrier::fence(), wait, poll, || Some(0));
        sender.join().unwrap();
        match outcome {
            Blocked::Done(9) => assert_eq!(rx.pop(), Err(PopError::Empty)),
            // Timed out: the message must still be there.
            Blocked::Done(0) => assert_eq!(rx.pop(), Ok(9)),
            other => panic!("unexpected {other:?}"),
        }
    });
}

mod bytes {
    //! The byte ring's publish/release protocol, wrap marker included.

    use crate::ring::bytes::{Consumer, HeapRing, PeekError, Producer, ReserveError};
    use loom::sync::Arc;
    use loom::thread;

    /// Sends a record of `len` payload bytes whose first word is `tag`,
    /// spinning while there is no room.
    fn send(tx: &Producer, len: usize, tag: u64) {
        let reservation = loop {
            match tx.reserve(len) {
                Ok(reservation) => break reservation,
                Err(ReserveError::Full) => thread::yield_now(),
                Err(err) => panic!("{err:?}"),
            }
        };
        // SAFETY: the reservation is the producer's until committed.
        tx.payload_word(&reservation)
            .with_mut(|word| unsafe { word.write(tag) });
        tx.commit(reservation, len);
    }

    /// Receives the next record: its length and first payload word.
    fn recv(rx: &Consumer) -> (usize, u64) {
        let record = loop {
            match rx.peek() {
                Ok(record) => break record,
                Err(PeekError::Empty) => thread::yield_now(),
                Err(PeekError::Corrupt) => panic!("corrupt ring"),
            }
        };
        // SAFETY: the record is published and not yet released.
        let tag = rx.payload_word(&record).with(|word| unsafe { word.read() });
        rx.release(record);
        (record.len(), tag)
    }

    /// DESIGN §9: a sender waiting for `n` contiguous bytes must be woken
    /// by the release that frees them, not only when the ring empties. Here
    /// the ring never empties: the receiver releases one record of two and
    /// then waits for the sender's message.
    #[test]
    fn a_sender_waiting_for_contiguous_room_is_woken_by_the_release_that_makes_it() {
        use crate::wait::{block_on, Barrier, Blocked, Doorbell, Wait};
        use core::time::Duration;

        struct Shared {
            ring: HeapRing,
            not_empty: Doorbell,
            not_full: Doorbell,
        }
        const FOREVER: Wait = Wait {
            spin: Duration::ZERO,
            deadline: None,
        };

        loom::model(|| {
            let shared = Arc::new(Shared {
                ring: HeapRing::new(64),
                not_empty: Doorbell::default(),
                not_full: Doorbell::default(),
            });
            // SAFETY: one producer and one consumer per execution, both
            // dropped before the last `Arc` of the ring.
            let (tx, rx) = unsafe {
                (
                    Producer::attach(shared.ring.view()).unwrap(),
                    Consumer::attach(shared.ring.view()).unwrap(),
                )
            };
            send(&tx, 24, 1); // bytes 0..32
            send(&tx, 16, 2); // bytes 32..56
            let peer = shared.clone();
            let sender = thread::spawn(move || {
                // 16 bytes need a 24-byte record: 8 bytes are left before the
                // end, so it needs 8 + 24 = 32 free: the first release.
                let poll = |_| match tx.reserve(16) {
                    Ok(reservation) => Some(reservation),
                    Err(ReserveError::Full) => None,
                    Err(err) => panic!("{err:?}"),
                };
                let Blocked::Done(reservation) =
                    block_on(&peer.not_full, Barrier::fence(), FOREVER, poll, || None)
                else {
                    unreachable!("no deadline")
                };
                // SAFETY: the reservation is the producer's until committed.
                tx.payload_word(&reservation)
                    .with_mut(|word| unsafe { word.write(3) });
                tx.commit(reservation, 16);
                peer.not_empty.notify(Barrier::fence());
            });
            assert_eq!(recv(&rx), (24, 1));
            shared.not_full.notify(Barrier::fence());
            assert_eq!(recv(&rx), (16, 2));
            sender.join().unwrap();
            assert_eq!(recv(&rx), (16, 3));
        });
    }

    #[test]
    fn records_and_the_wrap_marker_publish_and_release_whole() {
        loom::model(|| {
            let ring = Arc::new(HeapRing::new(64));
            // SAFETY: one producer and one consumer per execution, both
            // dropped before the last `Arc` of the ring.
            let (tx, rx) = unsafe {
                (
                    Producer::attach(ring.view()).unwrap(),
                    Consumer::attach(ring.view()).unwrap(),
                )
            };
            let keep = ring.clone();
            let sender = thread::spawn(move || {
                send(&tx, 24, 1); // bytes 0..32
                send(&tx, 16, 2); // bytes 32..56

                // 8 bytes left before the end: a wrap marker at 56, then the
                // record at 0..24, once the first record is released.
                send(&tx, 16, 3);
                drop(keep);
            });
            assert_eq!(recv(&rx), (24, 1));
            assert_eq!(recv(&rx), (16, 2));
            assert_eq!(recv(&rx), (16, 3));
            sender.join().unwrap();
        });
    }
}

mod mpsc {
    //! The mpsc doorbell: many senders, each with a ring of its own, ring
    //! one doorbell on which the one receiver sleeps.

    use super::FOREVER;
    use crate::ring::spsc::{Consumer, HeapRing, Producer};
    use crate::wait::{block_on, Barrier, Blocked, Doorbell};
    use loom::sync::Arc;
    use loom::thread;

    struct Shards {
        rings: [HeapRing<u64>; 2],
        not_empty: Doorbell,
    }

    /// Two senders publish one message each into their own shard and ring
    /// the shared doorbell; the receiver, polling both shards, must not
    /// sleep through either (a lost wake-up is a deadlock here).
    #[test]
    fn a_receiver_asleep_on_the_shared_doorbell_is_woken_by_either_sender() {
        super::bounded(3).check(|| {
            let shards = Arc::new(Shards {
                rings: [HeapRing::new(2), HeapRing::new(2)],
                not_empty: Doorbell::default(),
            });
            let senders: Vec<_> = (0..2)
                .map(|i| {
                    let shards = shards.clone();
                    thread::spawn(move || {
                        // SAFETY: one producer per ring, dropped before the
                        // last `Arc` of the rings.
                        let tx = unsafe { Producer::attach(shards.rings[i].view()).unwrap() };
                        tx.push(10 + i as u64).unwrap();
                        shards.not_empty.notify(Barrier::fence());
                    })
                })
                .collect();
            // SAFETY: one consumer per ring, dropped before `shards`.
            let rx: Vec<Consumer<u64>> = shards
                .rings
                .iter()
                .map(|ring| unsafe { Consumer::attach(ring.view()).unwrap() })
                .collect();
            let mut got = Vec::new();
            while got.len() < 2 {
                let poll = |_| rx.iter().find_map(|shard| shard.pop().ok());
                let Blocked::Done(value) =
                    block_on(&shards.not_empty, Barrier::fence(), FOREVER, poll, || None)
                else {
                    unreachable!("no deadline")
                };
                got.push(value);
            }
            got.sort_unstable();
            assert_eq!(got, [10, 11]);
            for sender in senders {
                sender.join().unwrap();
            }
        });
    }
}

mod mpmc {
    //! Vyukov's queue with claims in the cells: two producers and two
    //! consumers over a queue of two cells, so that both the full and the
    //! empty edge are crossed; and the wake-ups of many sleepers.

    use super::FOREVER;
    use crate::primitive::{AtomicU32, Ordering};
    use crate::ring::mpmc::{HeapQueue, PopError, PushError, Queue};
    use crate::wait::{block_on_tallied, Barrier, Blocked, Doorbell};
    use loom::sync::Arc;
    use loom::thread;

    struct Shared {
        queue: HeapQueue<u64>,
        not_empty: Doorbell,
        not_full: Doorbell,
        tally: [AtomicU32; 66],
    }

    impl Shared {
        fn new(capacity: usize) -> Arc<Self> {
            Arc::new(Self {
                queue: HeapQueue::new(capacity),
                not_empty: Doorbell::default(),
                not_full: Doorbell::default(),
                tally: core::array::from_fn(|_| AtomicU32::new(0)),
            })
        }

        fn view(&self) -> Queue<u64> {
            // SAFETY: every view is dropped before the last `Arc`.
            unsafe { self.queue.view() }
        }
    }

    /// Sends as `mpmc::Sender::send` does, as claimer `who`.
    fn send(shared: &Shared, queue: &Queue<u64>, who: u8, value: u64) {
        let poll = |_| match queue.push(value, who) {
            Ok(()) => Some(()),
            Err(PushError::Full(_)) => None,
            Err(PushError::Corrupt) => panic!("corrupt queue"),
        };
        let tally = &shared.tally[who as usize];
        assert_eq!(
            block_on_tallied(
                &shared.not_full,
                tally,
                Barrier::fence(),
                FOREVER,
                poll,
                || None
            ),
            Blocked::Done(())
        );
        shared.not_empty.notify(Barrier::fence());
    }

    /// Receives as `mpmc::Receiver::recv` does, as claimer `who`.
    fn recv(shared: &Shared, queue: &Queue<u64>, who: u8) -> u64 {
        let poll = |_| match queue.pop(who) {
            Ok(value) => Some(value),
            Err(PopError::Empty(_)) => None,
            Err(PopError::Corrupt) => panic!("corrupt queue"),
        };
        let tally = &shared.tally[who as usize];
        let Blocked::Done(value) = block_on_tallied(
            &shared.not_empty,
            tally,
            Barrier::fence(),
            FOREVER,
            poll,
            || None,
        ) else {
            unreachable!("no deadline")
        };
        shared.not_full.notify(Barrier::fence());
        value
    }

    /// Two producers race for two cells with three messages, so one of
    /// them meets the full edge (and sleeps there); one consumer drains. Each message arrives
    /// once, and each producer's in its order.
    #[test]
    fn two_producers_through_the_full_edge() {
        super::bounded(2).check(|| {
            let shared = Shared::new(2);
            let producers: Vec<_> = [vec![1u64, 2], vec![10]]
                .into_iter()
                .enumerate()
                .map(|(who, values)| {
                    let shared = shared.clone();
                    thread::spawn(move || {
                        let queue = shared.view();
                        for value in values {
                            send(&shared, &queue, who as u8, value);
                        }
                    })
                })
                .collect();
            let queue = shared.view();
            let got: Vec<u64> = (0..3).map(|_| recv(&shared, &queue, 64)).collect();
            for producer in producers {
                producer.join().unwrap();
            }
            let first = got.iter().position(|&v| v == 1).unwrap();
            let second = got.iter().position(|&v| v == 2).unwrap();
            assert!(first < second, "{got:?}");
            let mut sorted = got.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [1, 2, 10]);
            assert_eq!(queue.pop(64), Err(PopError::Empty(None)));
        });
    }

    /// Two consumers race for what one producer sends through two cells,
    /// meeting (and sleeping at) the empty edge: each message is taken once, and each
    /// consumer sees its share in order.
    #[test]
    fn two_consumers_through_the_empty_edge() {
        super::bounded(2).check(|| {
            let shared = Shared::new(2);
            let consumers: Vec<_> = [(64u8, 2usize), (65, 1)]
                .into_iter()
                .map(|(who, count)| {
                    let shared = shared.clone();
                    thread::spawn(move || {
                        let queue = shared.view();
                        (0..count)
                            .map(|_| recv(&shared, &queue, who))
                            .collect::<Vec<u64>>()
                    })
                })
                .collect();
            let queue = shared.view();
            for value in 1..=3 {
                send(&shared, &queue, 0, value);
            }
            let taken: Vec<Vec<u64>> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
            for got in &taken {
                assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
            }
            let mut all = taken.concat();
            all.sort_unstable();
            assert_eq!(all, [1, 2, 3]);
        });
    }

    /// Two producers and two consumers at once, one message each, over two
    /// cells: every claim races another of its kind.
    #[test]
    fn two_producers_two_consumers_each_message_exactly_once() {
        super::bounded(2).check(|| {
            let shared = Shared::new(2);
            let producers: Vec<_> = [1u64, 2]
                .into_iter()
                .enumerate()
                .map(|(who, value)| {
                    let shared = shared.clone();
                    thread::spawn(move || send(&shared, &shared.view(), who as u8, value))
                })
                .collect();
            let peer = shared.clone();
            let consumer = thread::spawn(move || recv(&peer, &peer.view(), 65));
            let mine = recv(&shared, &shared.view(), 64);
            let theirs = consumer.join().unwrap();
            for producer in producers {
                producer.join().unwrap();
            }
            let mut all = [mine, theirs];
            all.sort_unstable();
            assert_eq!(all, [1, 2]);
        });
    }

    /// Two consumers asleep on `not_empty`, one producer sending two
    /// messages: both consumers are woken and each gets one (a lost
    /// wake-up is a deadlock in the model).
    #[test]
    fn sleeping_consumers_are_all_woken() {
        super::bounded(3).check(|| {
            let shared = Shared::new(2);
            let consumers: Vec<_> = [2u8, 3]
                .into_iter()
                .map(|who| {
                    let shared = shared.clone();
                    thread::spawn(move || recv(&shared, &shared.view(), who))
                })
                .collect();
            let queue = shared.view();
            send(&shared, &queue, 0, 7);
            send(&shared, &queue, 0, 8);
            let mut got: Vec<u64> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
            got.sort_unstable();
            assert_eq!(got, [7, 8]);
            // Every waiter left: the count and the tallies are back to zero.
            assert!(shared.tally.iter().all(|t| t.load(Ordering::Relaxed) == 0));
        });
    }

    /// A producer asleep on a full queue is woken by the consumer that
    /// frees a cell.
    #[test]
    fn a_producer_asleep_on_a_full_queue_is_woken_by_a_receive() {
        loom::model(|| {
            let shared = Shared::new(2);
            let queue = shared.view();
            queue.push(1, 0).unwrap();
            queue.push(2, 0).unwrap();
            let peer = shared.clone();
            let producer = thread::spawn(move || send(&peer, &peer.view(), 1, 3));
            assert_eq!(recv(&shared, &queue, 2), 1);
            producer.join().unwrap();
            assert_eq!(queue.pop(2), Ok(2));
            assert_eq!(queue.pop(2), Ok(3));
        });
    }

    /// A claim left by a dead producer: two survivors race to free it while
    /// a consumer waits behind it; it is freed once, and the message
    /// published after the hole is delivered exactly once.
    #[test]
    fn a_dead_claim_is_freed_once_and_what_follows_is_delivered() {
        loom::model(|| {
            let shared = Shared::new(2);
            let queue = shared.view();
            // Producer 5 claims position 0 and dies before writing it;
            // producer 0 then publishes position 1.
            queue.claim_free(5).unwrap();
            queue.push(1, 0).unwrap();
            let Err(PopError::Empty(Some(stuck))) = queue.pop(2) else {
                panic!("the consumer should find position 0 claimed")
            };
            assert_eq!(stuck.who, 5);
            let rescuers: Vec<_> = (0..2)
                .map(|_| {
                    let shared = shared.clone();
                    thread::spawn(move || shared.view().recover(stuck))
                })
                .collect();
            let value = loop {
                match queue.pop(2) {
                    Ok(value) => break value,
                    Err(PopError::Empty(_)) => thread::yield_now(),
                    Err(PopError::Corrupt) => panic!("corrupt queue"),
                }
            };
            let freed: usize = rescuers
                .into_iter()
                .map(|r| r.join().unwrap() as usize)
                .sum();
            assert_eq!(freed, 1);
            assert_eq!(value, 1);
            assert_eq!(queue.pop(2), Err(PopError::Empty(None)));
        });
    }
}
