//! Hostile shared memory, mpmc: the tests scribble on a live segment through
//! its `/dev/shm` file (the same pages every endpoint maps) and check that
//! the endpoints stay sound: every call returns, with a value or an error
//! (`Disconnected`, `Error::Corrupt`, `Error::Incompatible`), and never
//! panics, hangs, or hands out a message twice.
//!
//! Layout of an mpmc segment of `u64` with capacity `C` (checked against
//! the library by `layout_offsets_match_the_library`): the header at 0, the
//! control words at 512, the endpoint table at 576 (128 slots of 8 bytes:
//! senders in slots 0..64, receivers in 64..128), no shared block, so the
//! ring at `round_up(576 + 1024, 128)` = 1664: its control block (`head`
//! at +0, `tail` at +128, the `not_empty` doorbell at +256 and `not_full`
//! at +384, each a futex word and a sleeper count, the refusals and the
//! high-water mark at +512, one sleeper tally per slot at +640), then the
//! cells at +1152, 16 bytes each: a sequence word, then the value.
//!
//! A cell's sequence word holds a position in its low 56 bits; bit 63 says
//! it is claimed, and bits 56..63 by which slot. For position `p` it is `p`
//! (free), `busy(p, producer)`, `p + 1` (published), `busy(p + 1,
//! consumer)`, then `p + C` (free for the next lap).

mod common;

use common::hostile::{self, dead_words, hostile_u32, tagged, u32b, u64b, Cleanup, Tally, Write};
use common::shm::write_u64;
use common::shm::{read_bytes, read_u32, read_u64, shm_file, shm_path, write_bytes, write_u32};
use common::{unique_name, wait_until, within, Peer, Rng};
use shmchan::mpmc::{
    self, Error, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use shmchan::Options;
use std::collections::HashSet;
use std::fs::File;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(30);
/// How long an endpoint may take to notice a dead or vanished peer (the
/// contract is 1 s).
const NOTICE: Duration = Duration::from_secs(10);

// Header fields (`segment::header::Header`, `repr(C)`).
const MAGIC: u64 = 0;
const VERSION: u64 = 8;
const FLAVOR: u64 = 12;
const CAPACITY: u64 = 16;
const ELEM_SIZE: u64 = 24;
const ELEM_ALIGN: u64 = 32;
const SCHEMA: u64 = 40;
const TOTAL_SIZE: u64 = 48;
const CREATOR_PID: u64 = 64;
const BARRIER_MODE: u64 = 68;
const ENDPOINTS: u64 = 72;
const RINGS: u64 = 76;
const TYPE_NAME_LEN: u64 = 80;
const TYPE_NAME: u64 = 88;
const HEADER_REGION: u64 = 512;
// Control words (`segment::header::Control`).
const INIT: u64 = 512;
const UNLINKED: u64 = 516;
const ATTACHED_EVER: u64 = 520;
const INITIALIZED: u32 = 0x5EC0_1417;
/// The endpoint table: one owner word (the holder's pid) per slot; a slot is
/// held while its lock is.
const TABLE: u64 = 576;
const SLOTS: u64 = 128;
const RECEIVER_SLOTS: u64 = 64;
// The ring (`mpmc::Control`, then the cells).
const RING: u64 = 1664;
const HEAD: u64 = RING;
const TAIL: u64 = RING + 128;
/// Futex word; the sleeper count is at +4.
const NOT_EMPTY: u64 = RING + 256;
const NOT_FULL: u64 = RING + 384;
const REFUSALS: u64 = RING + 512;
const HIGH_WATER: u64 = RING + 520;
const TALLIES: u64 = RING + 640;
const CELLS: u64 = RING + 1152;
const CELL: u64 = 16;
const POSITION_MASK: u64 = (1 << 56) - 1;

fn slot_word(slot: u64) -> u64 {
    TABLE + 8 * slot
}

fn tally(slot: u64) -> u64 {
    TALLIES + 4 * slot
}

/// Cell `index`'s sequence word; its value is at +8.
fn cell(index: u64) -> u64 {
    CELLS + CELL * index
}

/// A claim by the endpoint in `slot` for `value`.
fn busy(value: u64, slot: u64) -> u64 {
    (value & POSITION_MASK) | 1 << 63 | (slot & 0x7F) << 56
}

/// Bytes in a segment of `u64` with `capacity` cells.
fn total(capacity: u64) -> u64 {
    RING + (1152 + CELL * capacity).next_multiple_of(128)
}

/// A value to write over a 64-bit word whose value is `current`: garbage,
/// extremes, and values near the truth, which pass the range checks and
/// reach deeper code. (Unlike `common::hostile::hostile_u64`, it also flips
/// the slot and claim bits of a cell's word.)
fn hostile_u64(rng: &mut Rng, current: u64, capacity: u64) -> u64 {
    match rng.below(9) {
        0 => rng.next(),
        1 => 0,
        2 => u64::MAX - rng.below(3),
        3 => 1 << rng.below(64),
        4 | 5 => current
            .wrapping_add(rng.below(2 * capacity + 3))
            .wrapping_sub(capacity + 1),
        6 => current.wrapping_add(capacity + 1),
        7 => current ^ 1 << (56 + rng.below(8)),
        _ => current.wrapping_sub(1),
    }
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let name = args[0].as_str();
        match role {
            // Never spinning, sends tagged(id, 0..count) with send_timeout
            // (a lost wake-up costs a liveness interval, never the stream).
            "send-sleepy" => {
                let id: u64 = args[1].parse().unwrap();
                let count: u64 = args[2].parse().unwrap();
                let options = Options::new().spin(Duration::ZERO);
                let tx = Sender::<u64>::open_with(name, &options).unwrap();
                for seq in 0..count {
                    if let Err(err) = tx.send_timeout(tagged(id, seq), PATIENCE) {
                        panic!("message {seq}: {err:?}");
                    }
                }
            }
            // Pokes a sender or a receiver (args[2]) of a channel the
            // parent scribbles on, until it reports disconnection or the
            // file args[3] exists. It must neither panic nor hang.
            "poke-under-fire" => {
                let mut rng = Rng::with_env_seed(args[1].parse().unwrap());
                let stop = std::path::Path::new(&args[3]);
                let mut tally = Tally::default();
                if args[2] == "sender" {
                    let tx = Sender::<u64>::open(name).unwrap();
                    while !tally.tx_dead && !stop.exists() {
                        poke_sender(&tx, &mut rng, &mut tally);
                    }
                } else {
                    let rx = Receiver::<u64>::open(name).unwrap();
                    while !tally.rx_dead && !stop.exists() {
                        poke_receiver(&rx, &mut rng, &mut tally);
                    }
                }
            }
            other => panic!("unknown role {other}"),
        }
    });
}

// ---------------------------------------------------------------------------
// The layout.

/// The offsets these tests scribble on are the library's: without this, a
/// layout change would turn the scribbling tests into no-ops.
#[test]
fn layout_offsets_match_the_library() {
    const C: u64 = 64;
    let name = unique_name("mpmc-hostile-layout");
    let _cleanup = Cleanup(name.clone());
    let me = std::process::id();
    let options = Options::new().capacity(C as usize).spin(Duration::ZERO);
    let (tx, rx) = mpmc::channel_with::<u64>(&name, &options).unwrap();
    let tx2 = Sender::<u64>::open_with(&name, &options).unwrap();
    let _rx_clone = rx.clone();
    let file = shm_file(&name);

    assert_eq!(file.metadata().unwrap().len(), total(C), "segment size");
    assert_eq!(&read_bytes::<8>(&file, MAGIC), b"SHMCHAN\0");
    assert_eq!(read_u32(&file, VERSION), 2);
    assert_eq!(read_u32(&file, FLAVOR), 3, "mpmc");
    assert_eq!(read_u64(&file, CAPACITY), C);
    assert_eq!(read_u64(&file, ELEM_SIZE), 8);
    assert_eq!(read_u64(&file, ELEM_ALIGN), 8);
    assert_eq!(read_u64(&file, SCHEMA), <u64 as shmchan::ShmSafe>::SCHEMA);
    assert_eq!(read_u64(&file, TOTAL_SIZE), total(C));
    assert_eq!(read_u32(&file, CREATOR_PID), me);
    assert_eq!(read_u32(&file, ENDPOINTS), SLOTS as u32);
    assert_eq!(read_u32(&file, RINGS), 1);
    assert_eq!(read_u32(&file, TYPE_NAME_LEN), 3);
    assert_eq!(&read_bytes::<3>(&file, TYPE_NAME), b"u64");
    assert_eq!(read_u32(&file, INIT), INITIALIZED);
    assert_eq!(read_u32(&file, UNLINKED), 0);
    assert_eq!(
        read_u32(&file, ATTACHED_EVER),
        3,
        "receiver and sender bits"
    );

    // The endpoint table: the receiver (created first) in slot 64, the
    // senders in 0 and 1; clones take no slot.
    let my_word = read_u64(&file, slot_word(RECEIVER_SLOTS));
    assert_eq!(my_word as u32, me);
    assert_eq!(my_word >> 32, 0, "the word is the pid alone");
    assert_eq!(read_u64(&file, slot_word(0)), my_word, "tx");
    assert_eq!(read_u64(&file, slot_word(1)), my_word, "tx2");
    for slot in (2..RECEIVER_SLOTS).chain(RECEIVER_SLOTS + 1..SLOTS) {
        assert_eq!(read_u64(&file, slot_word(slot)), 0, "slot {slot}");
    }

    // A fresh queue: cell i free for position i.
    for i in 0..C {
        assert_eq!(read_u64(&file, cell(i)), i, "cell {i}");
    }
    for i in 0..5 {
        tx.send(100 + i).unwrap();
    }
    assert_eq!((read_u64(&file, HEAD), read_u64(&file, TAIL)), (0, 5));
    for i in 0..5 {
        assert_eq!(read_u64(&file, cell(i)), i + 1, "published");
        assert_eq!(read_u64(&file, cell(i) + 8), 100 + i, "the value");
    }
    assert_eq!(read_u64(&file, cell(5)), 5);
    for i in 0..3 {
        assert_eq!(rx.recv(), Ok(100 + i));
    }
    assert_eq!((read_u64(&file, HEAD), read_u64(&file, TAIL)), (3, 5));
    for i in 0..3 {
        assert_eq!(read_u64(&file, cell(i)), i + C, "freed for the next lap");
    }
    // A value written through the file is what the receiver reads.
    write_u64(&file, cell(3) + 8, 0xFEED);
    assert_eq!(rx.recv(), Ok(0xFEED));
    assert_eq!(rx.recv(), Ok(104));

    // Refusals and the high-water mark.
    while tx.try_send(7).is_ok() {}
    assert!(tx2.try_send(7).is_err());
    assert_eq!(read_u64(&file, REFUSALS), 2);
    assert_eq!(read_u64(&file, HIGH_WATER), C);
    assert_eq!(rx.stats().full, 2);
    assert_eq!(rx.try_iter().count(), C as usize);

    // Receivers asleep in recv count themselves in `not_empty`, and each
    // in its endpoint's tally; the send that wakes them bumps the futex
    // word.
    let seq_before = read_u32(&file, NOT_EMPTY);
    let rx2 = Receiver::<u64>::open_with(&name, &options).unwrap();
    assert_eq!(read_u64(&file, slot_word(RECEIVER_SLOTS + 1)), my_word);
    let sleepers: Vec<_> = [rx.clone(), rx2.clone()]
        .into_iter()
        .map(|rx| std::thread::spawn(move || rx.recv_timeout(PATIENCE)))
        .collect();
    wait_until(PATIENCE, "both receivers sleep on not_empty", || {
        read_u32(&file, NOT_EMPTY + 4) == 2
    });
    assert_eq!(read_u32(&file, tally(RECEIVER_SLOTS)), 1);
    assert_eq!(read_u32(&file, tally(RECEIVER_SLOTS + 1)), 1);
    assert_eq!(read_u32(&file, NOT_FULL + 4), 0);
    tx.send(1).unwrap();
    tx2.send(2).unwrap();
    let mut got: Vec<u64> = sleepers
        .into_iter()
        .map(|s| s.join().unwrap().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
    assert_ne!(
        read_u32(&file, NOT_EMPTY),
        seq_before,
        "the wake-up bumps the futex word"
    );
    assert_eq!(read_u32(&file, NOT_EMPTY + 4), 0);
    assert_eq!(read_u32(&file, tally(RECEIVER_SLOTS)), 0);
    assert_eq!(read_u32(&file, tally(RECEIVER_SLOTS + 1)), 0);

    // A sender asleep on the full queue counts itself in `not_full`, and in
    // its slot's tally.
    for i in 0..C {
        tx.try_send(i).unwrap();
    }
    let seq_before = read_u32(&file, NOT_FULL);
    let blocked = std::thread::spawn(move || {
        let result = tx2.send_timeout(C, PATIENCE);
        (tx2, result)
    });
    wait_until(PATIENCE, "the sender sleeps on not_full", || {
        read_u32(&file, NOT_FULL + 4) == 1
    });
    assert_eq!(read_u32(&file, tally(1)), 1);
    assert_eq!(read_u32(&file, tally(0)), 0);
    assert_eq!(rx.recv(), Ok(0));
    let (tx2, result) = blocked.join().unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert_ne!(read_u32(&file, NOT_FULL), seq_before);
    assert_eq!(read_u32(&file, NOT_FULL + 4), 0);
    assert_eq!(read_u32(&file, tally(1)), 0);
    assert_eq!(rx.try_iter().count(), C as usize);

    // A tally left behind by a slot's predecessor (killed asleep) is taken
    // off its doorbell's count by the endpoint that takes the slot over.
    drop(tx2);
    assert_eq!(read_u64(&file, slot_word(1)), 0, "dropped: slot 1 free");
    write_u32(&file, tally(1), 3);
    write_u32(&file, NOT_FULL + 4, 5);
    let tx2 = Sender::<u64>::open(&name).unwrap();
    assert_eq!(read_u64(&file, slot_word(1)), my_word, "slot 1 again");
    assert_eq!(read_u32(&file, tally(1)), 0);
    assert_eq!(
        read_u32(&file, NOT_FULL + 4),
        2,
        "5 counted, 3 of them the predecessor's"
    );
    write_u32(&file, NOT_FULL + 4, 0);
    tx2.send(9).unwrap();
    assert_eq!(rx2.recv(), Ok(9));
}

/// DESIGN §7: the segment is the header and the fixed control blocks, plus
/// one sequence word beside each message, nothing more.
#[test]
fn segment_size_is_the_header_plus_a_sequence_word_per_cell() {
    for capacity in [8u64, 1024, 4096] {
        let name = unique_name("mpmc-hostile-size");
        let _cleanup = Cleanup(name.clone());
        let (_tx, _rx) = mpmc::channel::<u64>(&name, capacity as usize).unwrap();
        let size = std::fs::metadata(shm_path(&name)).unwrap().len();
        assert_eq!(size, RING + 1152 + capacity * (8 + 8), "u64 × {capacity}");
    }
    // (The ring is rounded up to 128 bytes: 8 cells of 40 bytes are 320.)
    for capacity in [8u64, 256] {
        let name = unique_name("mpmc-hostile-size");
        let _cleanup = Cleanup(name.clone());
        let (_tx, _rx) = mpmc::channel::<[u64; 4]>(&name, capacity as usize).unwrap();
        let size = std::fs::metadata(shm_path(&name)).unwrap().len();
        let cells = (1152 + capacity * (8 + 32)).next_multiple_of(128);
        assert_eq!(size, RING + cells, "[u64; 4] × {capacity}");
    }
    // The smallest queue, two cells, rounded up to the ring alignment.
    let name = unique_name("mpmc-hostile-size");
    let _cleanup = Cleanup(name.clone());
    let (_tx, _rx) = mpmc::channel::<u64>(&name, 1).unwrap();
    let size = std::fs::metadata(shm_path(&name)).unwrap().len();
    assert_eq!(size, RING + (1152 + 2 * 16u64).next_multiple_of(128));
}

// ---------------------------------------------------------------------------
// The hints.

/// A channel of `u64` with capacity 8: senders in slots 0 and 1 (and a
/// clone), receivers in slots 64 and 65.
struct Victim {
    _cleanup: Cleanup,
    name: String,
    senders: Vec<Sender<u64>>,
    receivers: Vec<Receiver<u64>>,
    file: File,
}

const VICTIM_CAPACITY: u64 = 8;

impl Victim {
    fn new(tag: &str) -> Self {
        let name = unique_name(tag);
        let cleanup = Cleanup(name.clone());
        // A short spin: the 1 ms timeouts then spend their time asleep.
        let options = Options::new()
            .capacity(VICTIM_CAPACITY as usize)
            .spin(Duration::from_micros(20));
        let (tx, rx) = mpmc::channel_with::<u64>(&name, &options).unwrap();
        let tx2 = Sender::<u64>::open_with(&name, &options).unwrap();
        let rx2 = Receiver::<u64>::open_with(&name, &options).unwrap();
        let file = shm_file(&name);
        Self {
            _cleanup: cleanup,
            name,
            senders: vec![tx.clone(), tx, tx2],
            receivers: vec![rx, rx2],
            file,
        }
    }
}

/// Every value sent, and every value received, in a run of calls on a
/// scribbled channel: what is received must have been sent, once.
#[derive(Debug, Default)]
struct Ledger {
    next: u64,
    sent: HashSet<u64>,
    received: HashSet<u64>,
    tx_dead: bool,
    rx_dead: bool,
}

impl Ledger {
    fn value(&mut self) -> u64 {
        self.next += 1;
        0xA000_0000 + self.next
    }

    fn got(&mut self, value: u64) {
        assert!(
            self.sent.contains(&value),
            "received {value:#x}, which was never sent"
        );
        assert!(self.received.insert(value), "received {value:#x} twice");
    }

    /// One bounded call of each kind on `tx` and on `rx`.
    fn exercise(&mut self, tx: &Sender<u64>, rx: &Receiver<u64>) {
        let capacity = tx.capacity();
        for _ in 0..2 * capacity {
            let value = self.value();
            match tx.try_send(value) {
                Ok(()) => {
                    self.sent.insert(value);
                }
                Err(TrySendError::Full(back)) => assert_eq!(back, value),
                Err(TrySendError::Disconnected(back)) => {
                    assert_eq!(back, value);
                    self.tx_dead = true;
                }
            }
        }
        let value = self.value();
        match tx.send_timeout(value, Duration::from_millis(1)) {
            Ok(()) => {
                self.sent.insert(value);
            }
            Err(SendTimeoutError::Timeout(back)) => assert_eq!(back, value),
            Err(SendTimeoutError::Disconnected(back)) => {
                assert_eq!(back, value);
                self.tx_dead = true;
            }
        }
        let batch: Vec<u64> = (0..3).map(|_| self.value()).collect();
        match tx.try_send_batch(&batch) {
            Ok(n) => {
                assert!((1..=3).contains(&n), "{n}");
                self.sent.extend(&batch[..n]);
            }
            Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => self.tx_dead = true,
        }
        for _ in 0..2 * capacity {
            match rx.try_recv() {
                Ok(value) => self.got(value),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.rx_dead = true,
            }
        }
        match rx.recv_timeout(Duration::from_millis(1)) {
            Ok(value) => self.got(value),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.rx_dead = true,
        }
        let mut out = [0u64; 5];
        match rx.try_recv_batch(&mut out) {
            Ok(n) => {
                assert!((1..=5).contains(&n), "{n}");
                for &value in &out[..n] {
                    self.got(value);
                }
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => self.rx_dead = true,
        }
        for len in [tx.len(), rx.len(), rx.stats().len as usize] {
            assert!(len <= capacity, "len {len} exceeds capacity {capacity}");
        }
        let _ = (tx.is_full(), rx.is_empty(), format!("{tx:?} {rx:?}"));
    }
}

#[test]
fn hints_set_to_any_value_never_panic_and_never_deliver_twice() {
    within(Duration::from_secs(240), "scribbling on the hints", || {
        let mut rng = Rng::with_env_seed(0x5EED_0F01);
        let mut outcomes = [0u32; 4];
        for case in 0..120u64 {
            let v = Victim::new("mpmc-hostile-hints");
            let mut ledger = Ledger::default();
            // Something in flight, and the hints somewhere past 0.
            for _ in 0..rng.below(20) {
                let len = v.receivers[0].len();
                if len == VICTIM_CAPACITY as usize || (len > 0 && rng.below(2) == 0) {
                    ledger.got(v.receivers[0].recv().unwrap());
                }
                let value = ledger.value();
                v.senders[0].send(value).unwrap();
                ledger.sent.insert(value);
            }
            let head = read_u64(&v.file, HEAD);
            let tail = read_u64(&v.file, TAIL);
            let pick = |rng: &mut Rng, current: u64| match case % 8 {
                0 => {
                    [0, 1, u64::MAX, u64::MAX - 1, 1 << 40, 1 << 55, 1 << 63][case as usize / 8 % 7]
                }
                1 => current.wrapping_add(1 << 56),
                2 => current.wrapping_sub(VICTIM_CAPACITY),
                3 => current.wrapping_add(VICTIM_CAPACITY + rng.below(3)),
                4 => current.wrapping_sub(1),
                5 => current.wrapping_add(1),
                6 => rng.next(),
                _ => hostile_u64(rng, current, VICTIM_CAPACITY),
            };
            match case / 8 % 3 {
                0 => write_u64(&v.file, HEAD, pick(&mut rng, head)),
                1 => write_u64(&v.file, TAIL, pick(&mut rng, tail)),
                _ => {
                    write_u64(&v.file, HEAD, pick(&mut rng, head));
                    write_u64(&v.file, TAIL, pick(&mut rng, tail));
                }
            }
            for round in 0..3 {
                let tx = &v.senders[round % 3];
                let rx = &v.receivers[round % 2];
                ledger.exercise(tx, rx);
            }
            outcomes[usize::from(ledger.tx_dead) + 2 * usize::from(ledger.rx_dead)] += 1;
            let name = v.name.clone();
            drop(v);
            assert!(
                !common::segment_exists(&name),
                "a scribbled channel is still unlinked when its ends drop"
            );
        }
        eprintln!("(both working, senders dead, receivers dead, both dead): {outcomes:?}");
        assert!(
            outcomes[1] + outcomes[3] > 0,
            "a corrupt tail was never noticed"
        );
        assert!(
            outcomes[2] + outcomes[3] > 0,
            "a corrupt head was never noticed"
        );
    });
}

#[test]
fn a_tail_far_ahead_makes_senders_report_disconnection_not_receivers() {
    within(Duration::from_secs(60), "the tail scribble", || {
        let v = Victim::new("mpmc-hostile-tail");
        let tx = &v.senders[0];
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        write_u64(&v.file, TAIL, 1 << 40);
        assert!(matches!(tx.try_send(5), Err(TrySendError::Disconnected(5))));
        // Sticky for every kind of send, on every clone of the endpoint;
        // nothing blocks on it.
        assert!(matches!(v.senders[1].send(6), Err(SendError(6))));
        assert!(matches!(
            tx.send_timeout(7, PATIENCE),
            Err(SendTimeoutError::Disconnected(7))
        ));
        assert_eq!(tx.send_batch(&[1, 2]), Err(SendError(0)));
        assert!(matches!(
            tx.try_send_batch(&[1]),
            Err(TrySendError::Disconnected(()))
        ));
        // The other sender finds the tail corrupt too.
        assert!(matches!(v.senders[2].send(8), Err(SendError(8))));
        // Repairing the word does not revive them.
        write_u64(&v.file, TAIL, 3);
        assert!(matches!(tx.try_send(9), Err(TrySendError::Disconnected(9))));
        // The receivers do not use the tail: they take what was published,
        // then find the channel empty.
        let rx = &v.receivers[0];
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        // A sender attached after the repair works.
        let fresh = Sender::<u64>::open(&v.name).unwrap();
        fresh.send(10).unwrap();
        assert_eq!(v.receivers[1].recv_timeout(PATIENCE), Ok(10));
    });
}

#[test]
fn a_head_far_ahead_makes_receivers_report_disconnection_and_nothing_blocks_on_it() {
    within(Duration::from_secs(60), "the head scribble", || {
        let v = Victim::new("mpmc-hostile-head");
        let rx = &v.receivers[0];
        v.senders[0].send(1).unwrap();
        write_u64(&v.file, HEAD, 1 << 40);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        // Sticky, for every kind of receive; a plain recv does not block.
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(
            rx.recv_timeout(PATIENCE),
            Err(RecvTimeoutError::Disconnected)
        );
        let mut buf = [0u64; 8];
        assert_eq!(rx.try_recv_batch(&mut buf), Err(TryRecvError::Disconnected));
        assert_eq!(rx.recv_batch(&mut buf), Err(RecvError));
        assert_eq!(rx.iter().count(), 0);
        assert_eq!(v.receivers[1].recv(), Err(RecvError));
        // Senders do not use the head: they fill the queue, then it is full.
        let tx = &v.senders[0];
        let mut sent = 1;
        while tx.try_send(sent).is_ok() {
            sent += 1;
            assert!(sent <= VICTIM_CAPACITY, "sent {sent} into a queue of 8");
        }
        assert!(matches!(
            tx.send_timeout(99, Duration::from_millis(20)),
            Err(SendTimeoutError::Timeout(99))
        ));
        let most = VICTIM_CAPACITY as usize;
        assert!(tx.len() <= most && rx.len() <= most && rx.stats().len <= most as u64);
    });
}

// ---------------------------------------------------------------------------
// Cell words.

#[test]
fn a_cell_word_that_no_state_explains_is_corrupt() {
    within(Duration::from_secs(60), "cell scribbles", || {
        // At the head: the receivers report disconnection.
        let v = Victim::new("mpmc-hostile-cell-head");
        v.senders[0].send(1).unwrap();
        write_u64(&v.file, cell(0), 12345);
        assert_eq!(v.receivers[0].try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(v.receivers[1].recv(), Err(RecvError));
        // At the tail: the senders do.
        let v = Victim::new("mpmc-hostile-cell-tail");
        write_u64(&v.file, cell(0), 999);
        assert!(matches!(
            v.senders[0].try_send(1),
            Err(TrySendError::Disconnected(1))
        ));
        assert!(matches!(v.senders[2].send(2), Err(SendError(2))));
        // A word a lap ahead of where it should be, at the head.
        let v = Victim::new("mpmc-hostile-cell-lap");
        v.senders[0].send(1).unwrap();
        write_u64(&v.file, cell(0), 1 + 2 * VICTIM_CAPACITY);
        assert_eq!(
            v.receivers[0].recv_timeout(PATIENCE),
            Err(RecvTimeoutError::Disconnected)
        );
    });
}

#[test]
fn a_claim_naming_a_vacant_slot_is_freed_at_once_and_one_naming_a_live_one_waits() {
    within(Duration::from_secs(60), "forged claims", || {
        let v = Victim::new("mpmc-hostile-claims");
        let (tx, rx) = (&v.senders[0], &v.receivers[0]);
        tx.send(1).unwrap();
        // Position 1 claimed by sender slot 7, which nobody holds: freed by
        // the first receiver that waits on it, and skipped.
        write_u64(&v.file, cell(1), busy(1, 7));
        write_u64(&v.file, TAIL, 2);
        tx.send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(3), "the vacant slot's claim is skipped");
        assert_eq!(read_u64(&v.file, cell(1)), 1 + VICTIM_CAPACITY);

        // Position 3 claimed by sender slot 0, which this process holds:
        // a live producer writing, so the receivers wait (bounded by their
        // timeouts), and take what follows once it publishes.
        write_u64(&v.file, cell(3), busy(3, 0));
        write_u64(&v.file, TAIL, 4);
        tx.send(5).unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            v.receivers[1].recv_timeout(Duration::from_millis(300)),
            Err(RecvTimeoutError::Timeout)
        );
        write_u64(&v.file, cell(3) + 8, 4);
        write_u64(&v.file, cell(3), 4);
        assert_eq!(rx.try_recv(), Ok(4));
        assert_eq!(rx.try_recv(), Ok(5));

        // A cell being read by receiver slot 100 (vacant), the queue full
        // behind it: the next send frees it and goes on.
        let position = read_u64(&v.file, TAIL);
        tx.send(6).unwrap();
        let index = position % VICTIM_CAPACITY;
        write_u64(&v.file, cell(index), busy(position + 1, 100));
        write_u64(&v.file, HEAD, position + 1);
        for i in 1..VICTIM_CAPACITY {
            tx.try_send(6 + i).unwrap();
        }
        tx.try_send(6 + VICTIM_CAPACITY).unwrap();
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            (7..=6 + VICTIM_CAPACITY).collect::<Vec<_>>()
        );
    });
}

// ---------------------------------------------------------------------------
// The header.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Incompatible,
    Corrupt,
    /// Opens, and works.
    Sound,
}

#[test]
fn scribbled_header_fields_refuse_open() {
    use Expect::{Corrupt, Incompatible, Sound};
    const C: u64 = 1024;
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<Write>, Expect)> = vec![
        ("magic", vec![(MAGIC, b"SHMCHAM\0".to_vec())], Incompatible),
        ("version 1", vec![(VERSION, u32b(1))], Incompatible),
        ("version 3", vec![(VERSION, u32b(3))], Incompatible),
        ("flavor spsc", vec![(FLAVOR, u32b(1))], Incompatible),
        ("flavor mpsc", vec![(FLAVOR, u32b(2))], Incompatible),
        ("flavor bytes", vec![(FLAVOR, u32b(4))], Incompatible),
        ("flavor 0", vec![(FLAVOR, u32b(0))], Corrupt),
        ("flavor max", vec![(FLAVOR, u32b(u32::MAX))], Corrupt),
        ("elem_size 16", vec![(ELEM_SIZE, u64b(16))], Incompatible),
        ("elem_align 16", vec![(ELEM_ALIGN, u64b(16))], Incompatible),
        ("schema", vec![(SCHEMA, u64b(0x1234))], Incompatible),
        ("capacity 0", vec![(CAPACITY, u64b(0))], Corrupt),
        ("capacity 3", vec![(CAPACITY, u64b(3))], Corrupt),
        ("capacity 512", vec![(CAPACITY, u64b(512))], Corrupt),
        ("capacity 2048", vec![(CAPACITY, u64b(2048))], Corrupt),
        ("capacity 2^40", vec![(CAPACITY, u64b(1 << 40))], Corrupt),
        ("capacity 2^63", vec![(CAPACITY, u64b(1 << 63))], Corrupt),
        ("capacity max", vec![(CAPACITY, u64b(u64::MAX))], Corrupt),
        ("capacity 512, total_size to match",
            vec![(CAPACITY, u64b(512)), (TOTAL_SIZE, u64b(total(512)))], Corrupt),
        ("endpoints 0", vec![(ENDPOINTS, u32b(0))], Corrupt),
        ("endpoints 64", vec![(ENDPOINTS, u32b(64))], Corrupt),
        ("endpoints 127", vec![(ENDPOINTS, u32b(127))], Corrupt),
        ("endpoints 129", vec![(ENDPOINTS, u32b(129))], Corrupt),
        ("endpoints max", vec![(ENDPOINTS, u32b(u32::MAX))], Corrupt),
        ("rings 0", vec![(RINGS, u32b(0))], Corrupt),
        ("rings 2", vec![(RINGS, u32b(2))], Corrupt),
        ("rings max", vec![(RINGS, u32b(u32::MAX))], Corrupt),
        ("total_size +128", vec![(TOTAL_SIZE, u64b(total(C) + 128))], Corrupt),
        ("total_size 0", vec![(TOTAL_SIZE, u64b(0))], Corrupt),
        ("barrier mode", vec![(BARRIER_MODE, u32b(0xBAD))], Corrupt),
        // Only text: the type is checked by schema, size and alignment.
        ("type name", vec![(TYPE_NAME_LEN, u32b(u32::MAX)), (TYPE_NAME, b"\xFF\xFEzz".to_vec())], Sound),
    ];

    within(
        Duration::from_secs(120),
        "opening scribbled headers",
        move || {
            for (what, writes, expect) in cases {
                let name = unique_name("mpmc-hostile-header");
                let _cleanup = Cleanup(name.clone());
                let rx = Receiver::<u64>::create(&name, C as usize).unwrap();
                let file = shm_file(&name);
                let original: [u8; HEADER_REGION as usize] = read_bytes(&file, 0);
                for (offset, bytes) in &writes {
                    write_bytes(&file, *offset, bytes);
                }
                let check = |end: &str, result: Result<(), Error>| match (result, expect) {
                    (Err(err @ Error::Incompatible { .. }), Incompatible)
                    | (Err(err @ Error::Corrupt { .. }), Corrupt) => {
                        let text = err.to_string();
                        assert!(text.contains(&name), "{what}, {end}: {text}");
                    }
                    (Ok(()), Sound) => {}
                    (other, _) => panic!("{what}, {end}: expected {expect:?}, got {other:?}"),
                };
                check(
                    "sender",
                    Sender::<u64>::open(&name).map(|tx| {
                        tx.send(1).unwrap();
                        assert_eq!(rx.recv_timeout(PATIENCE), Ok(1));
                    }),
                );
                check("receiver", Receiver::<u64>::open(&name).map(drop));
                // Repaired, it opens: a refusal left nothing behind.
                write_bytes(&file, 0, &original);
                let tx = Sender::<u64>::open(&name)
                    .unwrap_or_else(|err| panic!("{what}: open after repair: {err}"));
                tx.send(0xC0FFEE).unwrap();
                assert_eq!(rx.recv_timeout(PATIENCE), Ok(0xC0FFEE), "{what}");
                let stats = rx.stats();
                assert_eq!(stats.endpoints.len(), 2, "{what}: {stats:?}");
            }
        },
    );
}

/// Capacity 1 is a power of two, and a queue of 1 cell lays out like one of
/// 2 (the ring is rounded up to 128 bytes): only the flavor's own check
/// refuses it.
#[test]
fn a_header_capacity_of_one_is_corrupt() {
    let name = unique_name("mpmc-hostile-capacity-one");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 2).unwrap();
    let file = shm_file(&name);
    write_u64(&file, CAPACITY, 1);
    for result in [
        Sender::<u64>::open(&name).map(drop),
        Receiver::<u64>::open(&name).map(drop),
    ] {
        match result {
            Err(Error::Corrupt { detail, .. }) => assert!(detail.contains("capacity"), "{detail}"),
            other => panic!("capacity 1: expected Corrupt, got {other:?}"),
        }
    }
    // The refused opens took no slot.
    assert_eq!(rx.stats().endpoints.len(), 2);
    write_u64(&file, CAPACITY, 2);
    tx.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));
}

// ---------------------------------------------------------------------------
// The endpoint table.

#[test]
fn dead_owner_words_in_the_sender_slots_end_the_receivers_wait() {
    let name = unique_name("mpmc-hostile-owners");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 8).unwrap();
    let rx2 = rx.clone();
    let file = shm_file(&name);
    let words = dead_words(read_u64(&file, slot_word(RECEIVER_SLOTS)));
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    for slot in 0..RECEIVER_SLOTS {
        write_u64(&file, slot_word(slot), words[slot as usize % words.len()]);
    }
    // (Kept here: the segment goes when its last endpoint does.)
    let keep = Receiver::<u64>::open(&name).unwrap();
    within(
        NOTICE + NOTICE,
        "receiving past dead owner words",
        move || {
            assert_eq!(rx.recv(), Ok(1));
            assert_eq!(rx2.recv(), Ok(2));
            // The words name no live process: once probed, the senders are gone.
            assert_eq!(rx.recv_timeout(NOTICE), Err(RecvTimeoutError::Disconnected));
            assert_eq!(rx2.recv(), Err(RecvError));
            let stats = rx.stats();
            assert!(
                stats.endpoints.iter().all(|e| e.role == "receiver"),
                "the dead words were cleared: {stats:?}"
            );
        },
    );
    // And a new sender can attach, in any of the slots.
    let tx = Sender::<u64>::open(&name).unwrap();
    tx.send(3).unwrap();
    assert_eq!(keep.recv_timeout(PATIENCE), Ok(3));
}

/// Words scribbled over live receivers' slots neither kill them (they
/// still hold their slots' locks: a sender blocked on them stays blocked
/// until one makes room) nor keep them alive once they are gone (the words
/// name no lock holder, so the sender then reaps them and fails).
#[test]
fn scribbled_owner_words_neither_kill_live_receivers_nor_outlive_them() {
    let name = unique_name("mpmc-hostile-receiver-words");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(4).spin(Duration::ZERO);
    let (tx, rx) = mpmc::channel_with::<u64>(&name, &options).unwrap();
    let rx2 = Receiver::<u64>::open(&name).unwrap();
    let file = shm_file(&name);
    let words = dead_words(read_u64(&file, slot_word(0)));
    for i in 0..4 {
        tx.try_send(i).unwrap();
    }
    write_u64(&file, slot_word(RECEIVER_SLOTS), words[0]);
    write_u64(&file, slot_word(RECEIVER_SLOTS + 1), words[3]);
    assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
    let sender = tx.clone();
    let blocked = std::thread::spawn(move || sender.send(4));
    assert_eq!(rx2.recv(), Ok(0));
    let result = within(NOTICE, "a send blocked on live receivers", move || {
        blocked.join().unwrap()
    });
    assert_eq!(result, Ok(()));
    let stats = tx.stats();
    let alive = stats
        .endpoints
        .iter()
        .filter(|e| e.role == "receiver" && e.alive)
        .count();
    assert_eq!(alive, 2, "the scribbled receivers live: {stats:?}");
    drop((rx, rx2));
    let result = within(NOTICE + NOTICE, "a send to dropped receivers", move || {
        tx.send(99)
    });
    assert!(matches!(result, Err(SendError(99))), "{result:?}");
}

/// A word scribbled into a free slot does not make it look held: only a
/// lock does. With every sender slot held by a live sender, one more is
/// `Busy`; a live sender whose word was zeroed looks gone to the receiver
/// (a hostile writer may make a channel report disconnection) but sends on,
/// and leaves a word that is not its own alone when dropped.
#[test]
fn scribbled_words_do_not_fake_holders_and_a_full_table_is_busy() {
    let name = unique_name("mpmc-hostile-live-words");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 8).unwrap();
    let file = shm_file(&name);
    let me = read_u64(&file, slot_word(0));
    for slot in 1..RECEIVER_SLOTS {
        write_u64(&file, slot_word(slot), me);
    }
    let taken_over = Sender::<u64>::open(&name).expect("words without a lock are leftovers");
    assert_eq!(read_u64(&file, slot_word(1)), me);
    drop(taken_over);
    for slot in 1..RECEIVER_SLOTS {
        write_u64(&file, slot_word(slot), 0);
    }
    let others: Vec<Sender<u64>> = (1..RECEIVER_SLOTS)
        .map(|_| Sender::<u64>::open(&name).unwrap())
        .collect();
    match Sender::<u64>::open(&name) {
        Err(Error::Busy { role, pid, .. }) => {
            assert_eq!((role, pid), ("sender", std::process::id()))
        }
        other => panic!("every sender slot held: expected Busy, got {other:?}"),
    }
    drop(others);

    // The live sender's own word zeroed: to the receiver, every sender is
    // gone once the queue is empty; the sender itself goes on sending, and
    // leaves the slot alone when dropped.
    tx.send(1).unwrap();
    write_u64(&file, slot_word(0), 0);
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv_timeout(NOTICE), Err(RecvTimeoutError::Disconnected));
    tx.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2), "delivered, if late");
    let intruder = 0x7FFF_FFF0u64;
    write_u64(&file, slot_word(0), intruder);
    drop(tx);
    assert_eq!(read_u64(&file, slot_word(0)), intruder, "not ours to clear");
}

// ---------------------------------------------------------------------------
// Doorbells.

/// Doorbell words, sleeper tallies and counters are hints: scribbling on
/// them may cost wake-ups (bounded by the liveness interval) but never a
/// message, a duplicate, or a disconnection. One sender in another process
/// and one here, one receiver, nobody spinning: everyone sleeps on the
/// words being scribbled on.
///
/// (A sleeper count scribbled low hides the sleepers that come after it
/// until it is scribbled again: each of their waits then lasts a liveness
/// interval, 100 ms, so this test may take seconds.)
#[test]
fn scribbled_doorbells_tallies_and_counters_do_not_disturb_delivery() {
    const MESSAGES: u64 = 3000;
    let name = unique_name("mpmc-hostile-doorbells");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(16).spin(Duration::ZERO);
    let rx = Receiver::<u64>::create_with(&name, &options).unwrap();
    let tx = Sender::<u64>::open_with(&name, &options).unwrap();
    let file = shm_file(&name);
    let peer = Peer::spawn("send-sleepy", &[&name, "1", &MESSAGES.to_string()]);
    // Both attached before either can leave.
    wait_until(PATIENCE, "the peer attached", || {
        rx.stats()
            .endpoints
            .iter()
            .filter(|e| e.role == "sender")
            .count()
            == 2
    });
    within(
        Duration::from_secs(300),
        "delivery under doorbell scribbling",
        move || {
            let sender = std::thread::spawn(move || {
                let mut rng = Rng::with_env_seed(0x5EED_0F0D);
                for seq in 0..MESSAGES {
                    if seq % 50 == 0 {
                        match rng.below(8) {
                            0 => write_u32(&file, NOT_EMPTY, rng.next() as u32),
                            1 => write_u32(&file, NOT_EMPTY + 4, hostile_u32(&mut rng, 1)),
                            2 => write_u32(&file, NOT_FULL, rng.next() as u32),
                            3 => write_u32(&file, NOT_FULL + 4, hostile_u32(&mut rng, 0)),
                            4 => {
                                let slot = rng.below(SLOTS);
                                write_u32(&file, tally(slot), hostile_u32(&mut rng, 0));
                            }
                            5 => write_u64(&file, HIGH_WATER, rng.next()),
                            6 => write_u64(&file, REFUSALS, rng.next()),
                            // A sane count now and then, as a real one would be.
                            _ => write_u32(&file, NOT_EMPTY + 4, 0),
                        }
                    }
                    let sent = seq % 7 == 0 && tx.try_send(tagged(0, seq)).is_ok();
                    if !sent {
                        if let Err(err) = tx.send_timeout(tagged(0, seq), PATIENCE) {
                            panic!("message {seq}: {err:?}");
                        }
                    }
                }
            });
            let mut next = [0u64; 2];
            while next != [MESSAGES; 2] {
                match rx.recv_timeout(PATIENCE) {
                    Ok(value) => {
                        let (id, seq) = ((value >> 32) as usize, value & 0xFFFF_FFFF);
                        assert!(id < 2, "a message from nowhere: {value:#x}");
                        assert_eq!(seq, next[id], "sender {id}: lost, duplicated or reordered");
                        next[id] += 1;
                    }
                    Err(err) => panic!("after {next:?}: {err:?}"),
                }
            }
            sender.join().unwrap();
            peer.finish(PATIENCE);
            assert_eq!(rx.recv_timeout(NOTICE), Err(RecvTimeoutError::Disconnected));
            let _ = rx.stats();
        },
    );
}

// ---------------------------------------------------------------------------
// Random scribbling.

common::hostile::pokes!(mpmc, batch: 20, most: |end| end.capacity());

/// One scribble: a hint, a cell's word (garbage, near the truth, or a
/// claim by any slot) or value, a doorbell word, a tally, a counter, or
/// (with `owners`) an endpoint word, given a dead owner or zero.
fn scribble(file: &File, capacity: u64, rng: &mut Rng, owners: Option<&[u64]>) {
    let word = |rng: &mut Rng, offset| {
        let value = hostile_u64(rng, read_u64(file, offset), capacity);
        write_u64(file, offset, value);
    };
    let bell = |rng: &mut Rng, offset| {
        let offset = offset + 4 * rng.below(2);
        let value = hostile_u32(rng, read_u32(file, offset));
        write_u32(file, offset, value);
    };
    let index = rng.below(capacity);
    match rng.below(if owners.is_some() { 15 } else { 14 }) {
        0 => word(rng, HEAD),
        1 => word(rng, TAIL),
        2 | 3 => word(rng, cell(index)),
        4 | 5 => {
            // A claim by some slot, for a position near the cell's own.
            let current = read_u64(file, cell(index)) & POSITION_MASK;
            let value = current.wrapping_add(rng.below(3)).wrapping_sub(1);
            write_u64(file, cell(index), busy(value, rng.below(SLOTS)));
        }
        6 => {
            // Published, or freed, a lap off.
            let current = read_u64(file, cell(index)) & POSITION_MASK;
            let value = current
                .wrapping_add(capacity * rng.below(3))
                .wrapping_sub(capacity);
            write_u64(file, cell(index), value & POSITION_MASK);
        }
        7 => write_u64(file, cell(index) + 8, rng.next()),
        8 => bell(rng, NOT_EMPTY),
        9 => bell(rng, NOT_FULL),
        10 => {
            let slot = rng.below(SLOTS);
            write_u32(file, tally(slot), hostile_u32(rng, 0));
        }
        11 => word(rng, REFUSALS),
        12 => word(rng, HIGH_WATER),
        13 => {
            // Back to a plausible, consistent state now and then: head and
            // tail at the position of cell 0's word.
            let at = read_u64(file, cell(0)) & POSITION_MASK;
            write_u64(file, HEAD, at);
            write_u64(file, TAIL, at);
        }
        _ => {
            let owners = owners.unwrap();
            let slot = rng.below(SLOTS);
            let value = if rng.below(3) == 0 {
                0
            } else {
                owners[rng.below(owners.len() as u64) as usize]
            };
            write_u64(file, slot_word(slot), value);
        }
    }
}

#[test]
fn random_scribbles_never_panic_or_hang() {
    within(Duration::from_secs(240), "the scribbling run", || {
        const ROUNDS: u64 = 2000;
        let mut rng = Rng::with_env_seed(0x5EED_0F02);
        let mut owners = None;
        let (corrupted, ok) = hostile::scribble_in_process(
            ROUNDS,
            || Victim::new("mpmc-hostile-random"),
            |victim| victim.name.clone(),
            |victim, tally| {
                // Owner words of this process, taken from the first victim.
                let owners =
                    owners.get_or_insert_with(|| dead_words(read_u64(&victim.file, slot_word(0))));
                scribble(&victim.file, VICTIM_CAPACITY, &mut rng, Some(owners));
                for _ in 0..1 + rng.below(6) {
                    let pick = rng.below(5) as usize;
                    match victim.senders.get(pick) {
                        Some(tx) => poke_sender(tx, &mut rng, tally),
                        None => poke_receiver(&victim.receivers[pick - 3], &mut rng, tally),
                    }
                }
            },
        );
        eprintln!("{ROUNDS} rounds, {corrupted} corruptions detected, {ok} calls succeeded");
    });
}

#[test]
fn random_scribbles_with_senders_and_receivers_in_other_processes() {
    within(Duration::from_secs(240), "the scribbling run", || {
        const GENERATIONS: u64 = 4;
        const ROUNDS: u64 = 300;
        let mut rng = Rng::with_env_seed(0x5EED_0F03);
        let mut corrupted = 0;
        for generation in 0..GENERATIONS {
            let name = unique_name("mpmc-hostile-peers");
            let _cleanup = Cleanup(name.clone());
            let stop = std::env::temp_dir().join(format!("{name}.stop"));
            let stop_arg = stop.to_str().unwrap().to_owned();
            let options = Options::new()
                .capacity(VICTIM_CAPACITY as usize)
                .spin(Duration::from_micros(20));
            let (tx, rx) = mpmc::channel_with::<u64>(&name, &options).unwrap();
            let file = shm_file(&name);
            let peers: Vec<Peer> = ["sender", "receiver", "sender", "receiver"]
                .iter()
                .enumerate()
                .map(|(i, role)| {
                    let seed = (0x5EED_0300 + 4 * generation + i as u64).to_string();
                    Peer::spawn("poke-under-fire", &[&name, &seed, role, &stop_arg])
                })
                .collect();
            wait_until(PATIENCE, "the peers attached", || {
                rx.stats().endpoints.len() == 6
            });
            let detected = hostile::scribble_until_detected(ROUNDS, |tally| {
                scribble(&file, VICTIM_CAPACITY, &mut rng, None);
                for _ in 0..1 + rng.below(6) {
                    if rng.below(2) == 0 {
                        poke_receiver(&rx, &mut rng, tally);
                    } else {
                        poke_sender(&tx, &mut rng, tally);
                    }
                }
            });
            corrupted += u64::from(detected);
            // Done: the peers must stop and exit normally, not panic or hang.
            std::fs::write(&stop, b"").unwrap();
            drop((tx, rx));
            for mut peer in peers {
                let status = peer.wait(PATIENCE);
                assert!(status.success(), "a peer failed under scribbling: {status}");
            }
            let _ = std::fs::remove_file(&stop);
        }
        hostile::assert_detected(corrupted);
    });
}

/// A queue whose positions are about to wrap (the 56 bits kept in a cell's
/// word, and the 64-bit counters themselves) works as any other: a state a
/// long-lived channel reaches, set up here by writing the hints and every
/// cell's word for the lap in progress.
#[test]
fn positions_about_to_wrap_work_like_any_other() {
    for start in [POSITION_MASK - 5, u64::MAX - 5, (1 << 62) + 3] {
        let name = unique_name("mpmc-hostile-wrap");
        let _cleanup = Cleanup(name.clone());
        let (tx, rx) = mpmc::channel::<u64>(&name, VICTIM_CAPACITY as usize).unwrap();
        let rx2 = rx.clone();
        let file = shm_file(&name);
        write_u64(&file, HEAD, start);
        write_u64(&file, TAIL, start);
        for k in 0..VICTIM_CAPACITY {
            let position = start.wrapping_add(k);
            write_u64(
                &file,
                cell(position % VICTIM_CAPACITY),
                position & POSITION_MASK,
            );
        }
        let mut next = 0u64;
        for lap in 0..5 {
            for k in 0..VICTIM_CAPACITY {
                tx.try_send(lap * 100 + k)
                    .unwrap_or_else(|err| panic!("{start:#x}: {err}"));
            }
            assert!(tx.try_send(0).unwrap_err().is_full(), "{start:#x}");
            assert_eq!(rx.len(), VICTIM_CAPACITY as usize);
            for k in 0..VICTIM_CAPACITY {
                let from = if k % 2 == 0 { &rx } else { &rx2 };
                assert_eq!(from.try_recv(), Ok(lap * 100 + k), "{start:#x}");
                next += 1;
            }
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        }
        let stats = rx.stats();
        assert_eq!(stats.sent.wrapping_sub(start), next, "{start:#x}");
        assert_eq!(stats.received, stats.sent);
        // Blocking calls, across the wrap, between threads.
        let worker = std::thread::spawn(move || {
            for i in 0..1000 {
                tx.send(i).unwrap();
            }
        });
        let got: Vec<u64> = (0..1000).map(|_| rx2.recv().unwrap()).collect();
        worker.join().unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>(), "{start:#x}");
        assert_eq!(rx.recv(), Err(RecvError));
    }
}

/// The hints lag their claims: a tail hint behind the head hint (a
/// producer that claimed and published, but has not moved `tail` yet, while
/// a consumer already took the message and moved `head`) reads as empty,
/// never as full.
#[test]
fn a_tail_hint_behind_the_head_hint_reads_as_empty() {
    let name = unique_name("mpmc-hostile-lagging-tail");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, 8).unwrap();
    let file = shm_file(&name);
    tx.send(1).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!((read_u64(&file, HEAD), read_u64(&file, TAIL)), (1, 1));
    write_u64(&file, TAIL, 0);
    for (len, full, empty) in [
        (tx.len(), tx.is_full(), tx.is_empty()),
        (rx.len(), rx.is_full(), rx.is_empty()),
    ] {
        assert_eq!((len, full, empty), (0, false, true));
    }
    assert_eq!(rx.stats().len, 0);
    // Hints set anywhere stay within the capacity.
    write_u64(&file, TAIL, u64::MAX / 2);
    assert_eq!(rx.len(), 8);
    write_u64(&file, TAIL, 1);
    tx.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
}

/// A waiter's own tally, scribbled to zero while it sleeps, is not wrapped
/// round when it wakes (it would then count four billion sleepers, and
/// every publish would ring).
#[test]
fn a_tally_scribbled_to_zero_under_a_sleeper_does_not_wrap() {
    let name = unique_name("mpmc-hostile-tally-wrap");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(8).spin(Duration::ZERO);
    let (tx, rx) = mpmc::channel_with::<u64>(&name, &options).unwrap();
    let file = shm_file(&name);
    let waiter = std::thread::spawn(move || (rx.recv(), rx));
    common::wait_until(PATIENCE, "the receiver sleeps", || {
        read_u32(&file, tally(RECEIVER_SLOTS)) == 1
    });
    write_u32(&file, tally(RECEIVER_SLOTS), 0);
    write_u32(&file, NOT_EMPTY + 4, 0);
    tx.send(5).unwrap();
    let (got, _rx) = within(NOTICE, "the sleeper waking", move || waiter.join().unwrap());
    assert_eq!(got, Ok(5));
    assert_eq!(read_u32(&file, tally(RECEIVER_SLOTS)), 0, "tally wrapped");
    assert_eq!(read_u32(&file, NOT_EMPTY + 4), 0, "sleeper count wrapped");
}
