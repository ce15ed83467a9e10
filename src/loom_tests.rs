//! Model checks of the endpoint layer, the rings and the wait protocol
//! under loom.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.
//!
//! The code under test is the code the flavors run: [`Endpoint`]'s rule
//! (`send`, `recv`, their `try_` forms, the peer watch), attaching through
//! [`roster::join`] and [`Endpoint::start`] and detaching through
//! [`Endpoint::leave`], over the flavors' own ends (`RingTx`/`RingRx`,
//! `ShardsRx`, `QueueEnd`) laid over heap memory instead of a segment. The
//! futex is emulated by a loom mutex and condition variable (see
//! `wait::futex`), the slot locks by a model of the kernel's lock table
//! (see `endpoint::locks`). A lost wake-up makes a waiter sleep forever,
//! which loom reports as a deadlock.
//!
//! Under loom there is no time: an untimed wait sleeps until woken, a timed
//! one returns at once, and every liveness probe is due.

use crate::endpoint::link::{Link, Place};
use crate::endpoint::locks::{LockTable, Locks};
use crate::endpoint::roster::{self, EndpointSlot, Roster, Side};
use crate::endpoint::rule::{Endpoint, OpWatch};
use crate::error::{RecvTimeoutError, TryRecvError, TrySendError};
use crate::ring::spsc::{Consumer, HeapRing, PopError, Producer, PushError};
use crate::spsc::{RingRx, RingTx};
use crate::wait::{block_on_any, Barrier, Doorbell, Wait, Watch};
use core::ops::Range;
use core::time::Duration;
use loom::sync::Arc;
use loom::thread;

/// A model checker that explores every interleaving with at most `n`
/// preemptions. The models with three or four threads, each looping, are
/// too large to explore exhaustively (hours); a small bound keeps each to
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

/// The parts of a segment every flavor has: the roster, the endpoint table
/// with each side's slots, and the kernel's table of slot locks.
struct Table {
    roster: Roster,
    slots: Box<[EndpointSlot]>,
    sides: [Range<usize>; 2],
    locks: Arc<LockTable>,
}

impl Table {
    /// A table whose receivers have `sides[0]`, senders `sides[1]`.
    fn new(sides: [Range<usize>; 2]) -> Self {
        let len = sides[0].end.max(sides[1].end);
        Self {
            roster: Roster::default(),
            slots: (0..len).map(|_| EndpointSlot::default()).collect(),
            sides,
            locks: LockTable::new(len),
        }
    }

    /// Takes `slot` through the open file description `holder` (whose
    /// number is also the word it writes), as a segment's join does, and
    /// makes its link. Returns whether the slot's last holder had died.
    fn join(&self, slot: usize, holder: u32) -> (Link, bool) {
        let locks = Locks::of(&self.locks, holder);
        let word = u64::from(holder);
        let joined = roster::join(&self.slots, slot..slot + 1, &locks, word).expect("slot free");
        let side = if self.sides[Side::Sender as usize].contains(&slot) {
            Side::Sender
        } else {
            Side::Receiver
        };
        let place = Place {
            roster: &self.roster,
            table: &self.slots,
            slots: self.sides.clone(),
            side,
            slot,
            word,
            locks,
        };
        // SAFETY: every model keeps the table (in an `Arc`) alive for longer
        // than the links it makes, and `locks` holds the slot's lock.
        let link = unsafe { Link::new(place, Barrier::fence(), Duration::ZERO) };
        (link, joined.took_over)
    }

    /// What the kernel does when `holder`'s process dies: its locks go,
    /// the words it wrote stay.
    fn die(&self, holder: u32) {
        self.locks.release_all(holder);
    }
}

/// The lock holders (and slot words) of the models' endpoints.
const RECEIVER: u32 = 1;
const SENDER: u32 = 2;

/// An spsc channel in heap memory: slot 0 the receiver's, slot 1 the
/// sender's, as in a segment.
struct Spsc {
    table: Table,
    ring: HeapRing<u64>,
    not_empty: Doorbell,
    not_full: Doorbell,
}

impl Spsc {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            table: Table::new([0..1, 1..2]),
            ring: HeapRing::new(capacity),
            not_empty: Doorbell::default(),
            not_full: Doorbell::default(),
        })
    }

    fn sender(&self) -> Endpoint<RingTx<u64>> {
        let (link, died) = self.table.join(1, SENDER);
        // SAFETY: one producer per model execution, dropped before the
        // `Arc` that owns the ring and the doorbells.
        let end = unsafe {
            RingTx::new(
                Producer::attach(self.ring.view()).unwrap(),
                &self.not_empty,
                &self.not_full,
                Barrier::fence(),
                1,
            )
        };
        Endpoint::start(link, end, 1, died)
    }

    fn receiver(&self) -> Endpoint<RingRx<u64>> {
        let (link, died) = self.table.join(0, RECEIVER);
        // SAFETY: as for `sender`, one consumer.
        let end = unsafe {
            RingRx::new(
                Consumer::attach(self.ring.view()).unwrap(),
                &self.not_empty,
                &self.not_full,
                Barrier::fence(),
                0,
            )
        };
        Endpoint::start(link, end, 0, died)
    }
}

#[test]
fn ring_is_fifo_across_the_wrap_without_races() {
    loom::model(|| {
        let ring = Arc::new(HeapRing::<u64>::new(2));
        // SAFETY: one producer and one consumer, dropped before the ring.
        let (tx, rx) = unsafe {
            (
                Producer::attach(ring.view()).unwrap(),
                Consumer::attach(ring.view()).unwrap(),
            )
        };
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
    });
}

#[test]
fn batches_publish_and_release_whole() {
    loom::model(|| {
        let ring = Arc::new(HeapRing::<u64>::new(2));
        // SAFETY: as above.
        let (tx, rx) = unsafe {
            (
                Producer::attach(ring.view()).unwrap(),
                Consumer::attach(ring.view()).unwrap(),
            )
        };
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
fn a_receiver_asleep_is_woken_by_a_send() {
    loom::model(|| {
        let channel = Spsc::new(2);
        let rx = channel.receiver();
        let peer = channel.clone();
        let sender = thread::spawn(move || {
            let tx = peer.sender();
            tx.send(7, None).unwrap();
        });
        assert_eq!(rx.recv(None), Ok(7));
        sender.join().unwrap();
    });
}

#[test]
fn a_sender_asleep_on_a_full_ring_is_woken_by_a_receive() {
    loom::model(|| {
        let channel = Spsc::new(1);
        let rx = channel.receiver();
        let tx = channel.sender();
        tx.send(1, None).unwrap();
        // The ring is full: this send sleeps until the receive below.
        let sender = thread::spawn(move || tx.send(2, None).unwrap());
        assert_eq!(rx.recv(None), Ok(1));
        sender.join().unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
    });
}

/// std's contract: the receiver gets everything sent before the sender
/// left, then learns it left, even while asleep when that happens.
#[test]
fn the_last_message_then_the_senders_departure_reach_a_sleeping_receiver() {
    // Unbounded, the search outgrows ten minutes; four preemptions take
    // seconds.
    bounded(4).check(|| {
        let channel = Spsc::new(2);
        let rx = channel.receiver();
        let peer = channel.clone();
        let sender = thread::spawn(move || {
            let tx = peer.sender();
            tx.send(5, None).unwrap();
            tx.leave();
        });
        assert_eq!(rx.recv(None), Ok(5));
        assert_eq!(rx.recv(None), Err(RecvTimeoutError::Disconnected));
        sender.join().unwrap();
    });
}

/// Disconnection at once: the first send after the receiver left fails and
/// hands the message back; none before it is lost (each either fails or is
/// in the ring).
#[test]
fn the_first_send_after_the_receiver_left_fails() {
    loom::model(|| {
        let channel = Spsc::new(2);
        let rx = channel.receiver();
        let tx = channel.sender();
        let receiver = thread::spawn(move || rx.leave());
        let racing = tx.try_send(1);
        assert!(
            matches!(racing, Ok(()) | Err(TrySendError::Disconnected(1))),
            "{racing:?}"
        );
        receiver.join().unwrap();
        assert_eq!(tx.try_send(2), Err(TrySendError::Disconnected(2)));
        assert!(tx.send(3, None).is_err());
    });
}

/// A sender killed after publishing: its lock is gone, its word is not. A
/// receiver polling with `try_recv` gets what it published, then reaps its
/// slot and reports disconnection.
#[test]
fn a_dead_senders_messages_are_delivered_then_its_slot_is_reaped() {
    loom::model(|| {
        let channel = Spsc::new(2);
        let rx = channel.receiver();
        let peer = channel.clone();
        let sender = thread::spawn(move || {
            let tx = peer.sender();
            tx.send(7, None).unwrap();
            // Killed: no leave.
            peer.table.die(SENDER);
        });
        let mut got = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(value) => got.push(value),
                Err(TryRecvError::Empty) => thread::yield_now(),
                Err(TryRecvError::Disconnected) => break,
            }
        }
        sender.join().unwrap();
        assert_eq!(got, [7]);
        assert_eq!(
            channel.table.slots[1].word(),
            0,
            "the dead sender's slot is free"
        );
    });
}

/// A receive that gives up on its deadline loses nothing: the message
/// racing it is either received or still in the ring.
#[test]
fn a_receive_that_times_out_loses_nothing() {
    loom::model(|| {
        let channel = Spsc::new(2);
        let rx = channel.receiver();
        let tx = channel.sender();
        let sender = thread::spawn(move || tx.send(9, None).unwrap());
        let outcome = rx.recv(Some(Duration::ZERO));
        sender.join().unwrap();
        match outcome {
            Ok(9) => assert_eq!(rx.try_recv(), Err(TryRecvError::Empty)),
            Err(RecvTimeoutError::Timeout) => assert_eq!(rx.try_recv(), Ok(9)),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// Waiting on two channels at once (`Select`): the waiter announces itself
/// on both doorbells, re-checks both, then sleeps on both words in one
/// wait; a send on either, at any point of that, wakes it or is seen by
/// the re-check.
#[test]
fn a_waiter_on_two_channels_is_woken_by_a_send_on_either() {
    loom::model(|| {
        let (a, b) = (Spsc::new(1), Spsc::new(1));
        let (rx_a, rx_b) = (a.receiver(), b.receiver());
        let peer = b.clone();
        let sender = thread::spawn(move || {
            let tx = peer.sender();
            tx.send(3, None).unwrap();
        });
        let ops: [&dyn Watch; 2] = [&OpWatch(&rx_a), &OpWatch(&rx_b)];
        let wait = Wait {
            spin: Duration::ZERO,
            deadline: None,
        };
        assert_eq!(block_on_any(&ops, 0, wait), Some(1));
        assert_eq!(rx_b.try_recv(), Ok(3));
        sender.join().unwrap();
        // The waiter left both counts as it found them.
        assert_eq!((a.not_empty.sleepers(), b.not_empty.sleepers()), (0, 0));
    });
}

/// A channel whose sender leaves while the waiter sleeps on it and another
/// is ready: it would fail at once, so it is ready.
#[test]
fn a_waiter_on_two_channels_sees_a_sender_leave() {
    loom::model(|| {
        let (a, b) = (Spsc::new(1), Spsc::new(1));
        let (rx_a, rx_b) = (a.receiver(), b.receiver());
        let tx_b = b.sender();
        let sender = thread::spawn(move || tx_b.leave());
        let ops: [&dyn Watch; 2] = [&OpWatch(&rx_a), &OpWatch(&rx_b)];
        let wait = Wait {
            spin: Duration::ZERO,
            deadline: None,
        };
        assert_eq!(block_on_any(&ops, 0, wait), Some(1));
        assert_eq!(rx_b.try_recv(), Err(TryRecvError::Disconnected));
        sender.join().unwrap();
    });
}

/// A sender waiting for room on one channel and a message on another: the
/// receive on the full one frees room and wakes it.
#[test]
fn a_waiter_for_room_and_a_message_is_woken_by_a_receive() {
    loom::model(|| {
        let (a, b) = (Spsc::new(1), Spsc::new(1));
        let (rx_a, tx_a) = (a.receiver(), a.sender());
        let rx_b = b.receiver();
        tx_a.send(1, None).unwrap();
        let receiver = thread::spawn(move || {
            assert_eq!(rx_a.recv(None), Ok(1));
            rx_a
        });
        let ops: [&dyn Watch; 2] = [&OpWatch(&rx_b), &OpWatch(&tx_a)];
        let wait = Wait {
            spin: Duration::ZERO,
            deadline: None,
        };
        assert_eq!(block_on_any(&ops, 0, wait), Some(1));
        assert_eq!(tx_a.try_send(2), Ok(()));
        let rx_a = receiver.join().unwrap();
        assert_eq!(rx_a.try_recv(), Ok(2));
    });
}

mod bytes {
    //! The byte ring's publish/release protocol, wrap marker included.

    use crate::ring::bytes::{Consumer, HeapRing, PeekError, Producer, ReserveError};
    use crate::wait::{block_on, Barrier, Blocked, Doorbell, Wait};
    use core::time::Duration;
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
                let Blocked::Done(reservation) = block_on(
                    &peer.not_full,
                    None,
                    Barrier::fence(),
                    FOREVER,
                    poll,
                    || None,
                ) else {
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
    //! The mpsc receiver over two shards, each a sender's ring, sleeping on
    //! the one doorbell both senders ring.

    use super::{Table, RECEIVER};
    use crate::endpoint::rule::Endpoint;
    use crate::error::RecvTimeoutError;
    use crate::mpsc::ShardsRx;
    use crate::ring::spsc::{Consumer, HeapRing, Producer};
    use crate::spsc::RingTx;
    use crate::wait::{block_on_any, Barrier, Doorbell, Wait, Watch};
    use loom::sync::Arc;
    use loom::thread;

    struct Shards {
        table: Table,
        rings: [HeapRing<u64>; 2],
        not_full: [Doorbell; 2],
        not_empty: Doorbell,
    }

    impl Shards {
        fn sender(&self, shard: usize) -> Endpoint<RingTx<u64>> {
            let slot = 1 + shard;
            let (link, died) = self.table.join(slot, 10 + shard as u32);
            // SAFETY: one producer per ring, dropped before the last `Arc`
            // of the rings and doorbells.
            let end = unsafe {
                RingTx::new(
                    Producer::attach(self.rings[shard].view()).unwrap(),
                    &self.not_empty,
                    &self.not_full[shard],
                    Barrier::fence(),
                    slot,
                )
            };
            Endpoint::start(link, end, slot, died)
        }

        fn receiver(&self) -> Endpoint<ShardsRx<u64>> {
            let (link, died) = self.table.join(0, RECEIVER);
            // SAFETY: the receiver is each ring's one consumer; all are
            // dropped before the last `Arc`.
            let end = unsafe {
                let consumers = self
                    .rings
                    .iter()
                    .map(|ring| Consumer::attach(ring.view()).unwrap())
                    .collect();
                ShardsRx::over(consumers, &self.not_full, &self.not_empty)
            };
            Endpoint::start(link, end, 0, died)
        }
    }

    /// Two senders, both attached, publish one message each into their own
    /// shard, ring the shared doorbell and leave; the receiver must sleep
    /// through neither message nor the last departure.
    #[test]
    fn a_receiver_asleep_on_the_shared_doorbell_gets_both_senders_and_their_departure() {
        super::bounded(2).check(|| {
            let shards = Arc::new(Shards {
                table: Table::new([0..1, 1..3]),
                rings: [HeapRing::new(2), HeapRing::new(2)],
                not_full: [Doorbell::default(), Doorbell::default()],
                not_empty: Doorbell::default(),
            });
            let rx = shards.receiver();
            let senders: Vec<_> = (0..2)
                .map(|shard| {
                    let tx = shards.sender(shard);
                    thread::spawn(move || {
                        tx.send(10 + shard as u64, None).unwrap();
                        tx.leave();
                    })
                })
                .collect();
            let mut got = vec![rx.recv(None).unwrap(), rx.recv(None).unwrap()];
            got.sort_unstable();
            assert_eq!(got, [10, 11]);
            assert_eq!(rx.recv(None), Err(RecvTimeoutError::Disconnected));
            for sender in senders {
                sender.join().unwrap();
            }
        });
    }
}

mod mpmc {
    //! Vyukov's queue with claims in the cells, through the mpmc ends: two
    //! producers and two consumers over a queue of two cells, so that both
    //! the full and the empty edge are crossed; the wake-ups of many
    //! sleepers; a dead claim; the last receiver's departure.

    use super::Table;
    use crate::endpoint::roster::Side;
    use crate::endpoint::rule::Endpoint;
    use crate::error::{RecvTimeoutError, TrySendError};
    use crate::mpmc::{HeapMpmc, QueueEnd};
    use loom::sync::Arc;
    use loom::thread;

    /// Slots per side in the models' tables (64 in a segment): every look
    /// at a side reads all of its slots, and the model explores each read.
    const PER_SIDE: usize = 2;

    struct Queue {
        table: Table,
        heap: HeapMpmc<u64>,
    }

    impl Queue {
        fn new(capacity: usize) -> Arc<Self> {
            Arc::new(Self {
                table: Table::new([PER_SIDE..2 * PER_SIDE, 0..PER_SIDE]),
                heap: HeapMpmc::new(capacity),
            })
        }

        /// The endpoint in `slot` (senders' first), held by `holder`.
        fn endpoint(&self, slot: usize, holder: u32) -> Endpoint<QueueEnd<u64>> {
            let (link, died) = self.table.join(slot, holder);
            let side = if slot < PER_SIDE {
                Side::Sender
            } else {
                Side::Receiver
            };
            // SAFETY: every end is dropped before the last `Arc` of the heap.
            let end = unsafe { self.heap.end(slot as u8, side, PER_SIDE) };
            Endpoint::start(link, end, slot, died)
        }

        fn sender(&self, n: usize) -> Endpoint<QueueEnd<u64>> {
            self.endpoint(n, 100 + n as u32)
        }

        fn receiver(&self, n: usize) -> Endpoint<QueueEnd<u64>> {
            self.endpoint(PER_SIDE + n, 200 + n as u32)
        }
    }

    /// Two producers race for two cells with three messages, so one of
    /// them meets the full edge (and sleeps there); one consumer drains.
    /// Each message arrives once, and each producer's in its order.
    #[test]
    fn two_producers_through_the_full_edge() {
        super::bounded(1).check(|| {
            let queue = Queue::new(2);
            let rx = queue.receiver(0);
            let producers: Vec<_> = [vec![1u64, 2], vec![10]]
                .into_iter()
                .enumerate()
                .map(|(n, values)| {
                    let queue = queue.clone();
                    thread::spawn(move || {
                        let tx = queue.sender(n);
                        for value in values {
                            tx.send(value, None).unwrap();
                        }
                    })
                })
                .collect();
            let got: Vec<u64> = (0..3).map(|_| rx.recv(None).unwrap()).collect();
            for producer in producers {
                producer.join().unwrap();
            }
            let first = got.iter().position(|&v| v == 1).unwrap();
            let second = got.iter().position(|&v| v == 2).unwrap();
            assert!(first < second, "{got:?}");
            let mut sorted = got.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [1, 2, 10]);
        });
    }

    /// Two consumers race for what one producer sends through two cells,
    /// meeting (and sleeping at) the empty edge: each message is taken
    /// once, and each consumer sees its share in order.
    #[test]
    fn two_consumers_through_the_empty_edge() {
        super::bounded(1).check(|| {
            let queue = Queue::new(2);
            let tx = queue.sender(0);
            let consumers: Vec<_> = [2usize, 1]
                .into_iter()
                .enumerate()
                .map(|(n, count)| {
                    let queue = queue.clone();
                    thread::spawn(move || {
                        let rx = queue.receiver(n);
                        (0..count)
                            .map(|_| rx.recv(None).unwrap())
                            .collect::<Vec<u64>>()
                    })
                })
                .collect();
            for value in 1..=3 {
                tx.send(value, None).unwrap();
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

    /// Two consumers asleep on `not_empty`, one producer sending two
    /// messages: both consumers are woken and each gets one (a lost
    /// wake-up is a deadlock in the model), and every count of sleepers is
    /// back to zero.
    #[test]
    fn sleeping_consumers_are_all_woken() {
        super::bounded(1).check(|| {
            let queue = Queue::new(2);
            let tx = queue.sender(0);
            let consumers: Vec<_> = (0..2)
                .map(|n| {
                    let queue = queue.clone();
                    thread::spawn(move || queue.receiver(n).recv(None).unwrap())
                })
                .collect();
            tx.send(7, None).unwrap();
            tx.send(8, None).unwrap();
            let mut got: Vec<u64> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
            got.sort_unstable();
            assert_eq!(got, [7, 8]);
            assert_eq!(queue.heap.sleepers(), 0);
        });
    }

    /// A producer asleep on a full queue is woken by the consumer that
    /// frees a cell.
    #[test]
    fn a_producer_asleep_on_a_full_queue_is_woken_by_a_receive() {
        super::bounded(3).check(|| {
            let queue = Queue::new(2);
            let rx = queue.receiver(0);
            let tx = queue.sender(0);
            tx.send(1, None).unwrap();
            tx.send(2, None).unwrap();
            let producer = thread::spawn(move || tx.send(3, None).unwrap());
            assert_eq!(rx.recv(None), Ok(1));
            producer.join().unwrap();
            assert_eq!(rx.try_recv(), Ok(2));
            assert_eq!(rx.try_recv(), Ok(3));
        });
    }

    /// The receivers leave one after the other while a sender sends: once
    /// the last has left, the next send fails at once, and nothing a
    /// receiver took is taken twice.
    #[test]
    fn the_first_send_after_the_last_receiver_left_fails() {
        super::bounded(2).check(|| {
            let queue = Queue::new(2);
            let tx = queue.sender(0);
            let first = queue.receiver(0);
            let last = queue.receiver(1);
            first.leave();
            let leaving = thread::spawn(move || last.leave());
            let racing = tx.try_send(1);
            assert!(
                matches!(racing, Ok(()) | Err(TrySendError::Disconnected(1))),
                "{racing:?}"
            );
            leaving.join().unwrap();
            assert_eq!(tx.try_send(2), Err(TrySendError::Disconnected(2)));
        });
    }

    /// One thread of a receiving attachment finds the senders gone and
    /// caches it; another acts on that finding. It must still see what the
    /// sender published before it left (SYNC POINT of `Link`'s cache: with
    /// a Relaxed cache, the receiving thread may report disconnection with
    /// the message still in the queue, and this model fails).
    #[test]
    fn a_finding_cached_by_one_thread_is_safe_for_another_to_act_on() {
        super::bounded(2).check(|| {
            let queue = Queue::new(2);
            let rx = Arc::new(queue.receiver(0));
            let tx = queue.sender(0);
            let sender = thread::spawn(move || {
                tx.send(1, None).unwrap();
                tx.leave();
            });
            let watcher = {
                let rx = rx.clone();
                thread::spawn(move || {
                    rx.link.peer_gone();
                })
            };
            assert_eq!(rx.recv(None), Ok(1), "disconnected with the message queued");
            assert_eq!(rx.recv(None), Err(RecvTimeoutError::Disconnected));
            sender.join().unwrap();
            watcher.join().unwrap();
        });
    }

    /// A claim left by a dead producer (killed between claim and publish):
    /// the consumer behind it reaps the producer's slot, which frees the
    /// cell, and gets what was published after it.
    #[test]
    fn a_dead_claim_is_freed_and_what_follows_is_delivered() {
        loom::model(|| {
            let queue = Queue::new(2);
            let rx = queue.receiver(0);
            let live = queue.sender(1);
            let peer = queue.clone();
            let dying = thread::spawn(move || {
                let tx = peer.sender(0);
                // SAFETY: a view of the heap queue, dropped at once.
                let claimed = unsafe { peer.heap.end(0, Side::Sender, PER_SIDE) };
                claimed.claim_only();
                // Killed between claim and publish: no leave.
                peer.table.die(100);
                drop(tx);
            });
            dying.join().unwrap();
            live.send(5, None).unwrap();
            let value = loop {
                match rx.try_recv() {
                    Ok(value) => break value,
                    Err(_) => thread::yield_now(),
                }
            };
            assert_eq!(value, 5);
            assert_eq!(
                queue.table.slots[0].word(),
                0,
                "the dead producer was reaped"
            );
        });
    }
}

mod broadcast {
    //! The broadcast ring through its ends: the block hand-off (the sender
    //! waits for the slowest receiver, and a receiver that joins while it
    //! works from an old scan is never lapped), and the overwrite seqlock
    //! (a receiver racing an overwrite never returns a torn message).

    use super::{Table, RECEIVER, SENDER};
    use crate::broadcast::{BroadcastRx, BroadcastTx, Control, Overflow};
    use crate::endpoint::roster::Side;
    use crate::endpoint::rule::{Endpoint, Miss, Push};
    use crate::error::RecvTimeoutError;
    use crate::primitive::AtomicU64;
    use crate::ring::broadcast::{slot_words, Consumer, PopError, Producer, Ring};
    use crate::wait::Barrier;
    use core::ptr::NonNull;
    use loom::sync::Arc;
    use loom::thread;

    /// A message whose two words must always match: a torn copy shows.
    type Msg = [u64; 2];

    struct Bcast {
        table: Table,
        receivers: usize,
        control: Box<Control>,
        words: Box<[AtomicU64]>,
        capacity: u64,
        overflow: Overflow,
    }

    impl Bcast {
        fn new(capacity: usize, receivers: usize, overflow: Overflow) -> Arc<Self> {
            let control = Box::<Control>::default();
            control.ring().init(overflow);
            Arc::new(Self {
                table: Table::new([0..receivers, receivers..receivers + 1]),
                receivers,
                control,
                words: (0..capacity * slot_words(size_of::<Msg>()))
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                capacity: capacity as u64,
                overflow,
            })
        }

        fn ring(&self) -> Ring<Msg> {
            // SAFETY: the boxes hold the control block and every slot; each
            // model drops its ends before the last `Arc`.
            unsafe {
                Ring::new(
                    NonNull::from(self.control.ring()),
                    NonNull::from(&*self.words).cast(),
                    self.capacity,
                )
            }
        }

        fn sender(&self) -> Endpoint<BroadcastTx<Msg>> {
            let slot = self.receivers;
            let (link, died) = self.table.join(slot, SENDER);
            // SAFETY: one producer per model; the table, roster and control
            // block outlive the end (see `ring`).
            let end = unsafe {
                BroadcastTx::new(
                    Producer::attach(self.ring(), self.overflow).unwrap(),
                    &self.control,
                    &self.table.slots[..self.receivers],
                    &self.table.roster,
                    Barrier::fence(),
                )
            };
            Endpoint::start(link, end, slot, died)
        }

        fn receiver(&self, slot: usize) -> Endpoint<BroadcastRx<Msg>> {
            let (link, died) = self.table.join(slot, RECEIVER + 10 + slot as u32);
            let first = self.overflow == Overflow::Block && self.control.ring().claim_backlog();
            // SAFETY: cursor `slot` is this receiver's alone; as above.
            let end = unsafe {
                BroadcastRx::new(
                    Consumer::attach(self.ring(), slot, first),
                    &self.control,
                    self.receivers,
                    self.overflow,
                    Barrier::fence(),
                    slot,
                )
            };
            Endpoint::start(link, end, slot, died)
        }
    }

    fn recv(rx: &Endpoint<BroadcastRx<Msg>>) -> Result<Result<Msg, u64>, RecvTimeoutError> {
        rx.take_until(None, || rx.end.pop())
    }

    /// Block mode, a ring of one, through the endpoints' blocking calls:
    /// the sender sleeps until the receiver has read the slot it needs,
    /// and the receiver, asleep or not, gets every message whole, then the
    /// sender's departure.
    #[test]
    fn the_sender_waits_for_the_receiver_and_every_message_arrives() {
        super::bounded(2).check(|| {
            let channel = Bcast::new(1, 1, Overflow::Block);
            let rx = channel.receiver(0);
            let tx = channel.sender();
            let sender = thread::spawn(move || {
                for i in 1..=2 {
                    tx.send([i, i], None).unwrap();
                }
                tx.leave();
            });
            for i in 1..=2 {
                assert_eq!(recv(&rx), Ok(Ok([i, i])));
            }
            assert_eq!(recv(&rx), Err(RecvTimeoutError::Disconnected));
            sender.join().unwrap();
        });
    }

    /// Block mode, through the ends (the sender's real cursor scan over
    /// the endpoint table): a receiver that joins while the sender works
    /// from a scan that did not see it is never lapped, and reads every
    /// message from where it started.
    #[test]
    fn a_receiver_joining_mid_stream_is_never_lapped() {
        super::bounded(2).check(|| {
            let channel = Bcast::new(1, 2, Overflow::Block);
            let first = channel.receiver(0);
            let tx = channel.sender();
            let peer = channel.clone();
            let joiner = thread::spawn(move || {
                let late = peer.receiver(1);
                let mut last = None;
                // What it may read without waiting: nothing may be lost.
                while let Ok(read) = late.end.pop() {
                    let [a, b] = read.expect("a block-mode receiver is never lapped");
                    assert_eq!(a, b, "torn");
                    assert!(last.is_none_or(|l| a == l + 1), "a gap after {last:?}: {a}");
                    last = Some(a);
                }
                late.leave();
            });
            let sender = thread::spawn(move || {
                for i in 1..=2 {
                    // Full while a receiver has not read the slot.
                    while tx.end.push([i, i]).is_err() {
                        thread::yield_now();
                    }
                }
            });
            // The first receiver reads message 1, which lets the sender
            // take its slot for message 2 (after a scan for the joiner).
            loop {
                match first.end.pop() {
                    Ok(read) => {
                        assert_eq!(read, Ok([1, 1]));
                        break;
                    }
                    Err(Miss::Edge(())) => thread::yield_now(),
                    Err(Miss::Corrupt) => panic!("corrupt"),
                }
            }
            joiner.join().unwrap();
            sender.join().unwrap();
        });
    }

    /// Overwrite mode, a ring of one, the ring itself: the producer
    /// overwrites the slot the consumer is copying; the consumer returns
    /// whole messages in order, or how many it missed, never a torn one,
    /// and accounts for every message.
    #[test]
    fn an_overwrite_racing_a_read_never_tears() {
        super::bounded(3).check(|| {
            let channel = Bcast::new(1, 1, Overflow::Overwrite);
            // SAFETY: consumer 0 is this model's only one.
            let consumer = unsafe { Consumer::attach(channel.ring(), 0, false) };
            let peer = channel.clone();
            let sender = thread::spawn(move || {
                // SAFETY: the model's only producer; `peer` keeps the ring.
                let producer =
                    unsafe { Producer::attach(peer.ring(), Overflow::Overwrite) }.unwrap();
                let never = || 0;
                for i in 1..=2 {
                    producer.push(&[i, i], &never).unwrap();
                }
            });
            let mut next = 1;
            while next <= 2 {
                match consumer.pop() {
                    Ok(Ok([a, b])) => {
                        assert_eq!(a, b, "torn");
                        assert_eq!(a, next, "out of order");
                        next += 1;
                    }
                    Ok(Err(missed)) => {
                        assert!(missed > 0);
                        next += missed;
                    }
                    Err(PopError::Empty) => thread::yield_now(),
                    Err(PopError::Corrupt) => panic!("a legal race read as corrupt"),
                }
            }
            assert_eq!(next, 3, "every message received or counted missed");
            sender.join().unwrap();
        });
    }
}
