//! Hostile shared memory: the tests scribble on a live segment through its
//! `/dev/shm` file (the same pages every endpoint maps) and check that the
//! endpoints stay sound: every call returns, with a value or an error, and
//! never panics or hangs; opening refuses what it cannot trust, with the
//! right error.
//!
//! Layout of an spsc segment of `u64` (checked against the library by
//! `layout_offsets_match_the_library`): the header at 0, the control words
//! at 512, the endpoint table at 576 (receiver, sender), ring 0 at 640:
//! head and high-water mark, then tail and refusals at +128, the doorbells
//! `not_empty` at +256 and `not_full` at +384 (futex word, then sleeper
//! count), the slots at +512.

mod common;

use common::hostile::{self, hostile_u32, hostile_u64, u32b, u64b, Cleanup, Tally, Write, TIMEOUT};
use common::shm::{
    read_bytes, read_u32, read_u64, shm_file, shm_path, write_bytes, write_u32, write_u64,
};
use common::{unique_name, wait_until, within, Peer, Rng};
use shmchan::spsc::{self, Receiver, Sender};
use shmchan::{Error, Options, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);

// Header fields (`segment::header::Header`, `repr(C)`).
const MAGIC: u64 = 0;
const VERSION: u64 = 8;
const FLAVOR: u64 = 12;
const CAPACITY: u64 = 16;
const ELEM_SIZE: u64 = 24;
const ELEM_ALIGN: u64 = 32;
const SCHEMA: u64 = 40;
const TOTAL_SIZE: u64 = 48;
const CREATED_NS: u64 = 56;
const CREATOR_PID: u64 = 64;
const BARRIER_MODE: u64 = 68;
const ENDPOINTS: u64 = 72;
const RINGS: u64 = 76;
const TYPE_NAME_LEN: u64 = 80;
const LAYOUT_LEN: u64 = 84;
const TYPE_NAME: u64 = 88;
const LAYOUT: u64 = 152;
const HEADER_REGION: u64 = 512;
// Control words (`segment::header::Control`).
const INIT: u64 = 512;
const UNLINKED: u64 = 516;
const INITIALIZED: u32 = 0x5EC0_1417;
// The endpoint table: one owner word (the holder's pid) per role; a slot is
// held while its lock is.
const TABLE: u64 = 576;
const RECEIVER_SLOT: u64 = TABLE;
const SENDER_SLOT: u64 = TABLE + 8;

/// Where ring 0 of an spsc segment of `u64` with `capacity` slots is.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    capacity: u64,
}

impl Geometry {
    const RING: u64 = 640; // round_up(576 + 2 * 8, 128)
    const ELEM: u64 = 8;

    fn head(self) -> u64 {
        Self::RING
    }
    fn high_water(self) -> u64 {
        Self::RING + 8
    }
    fn tail(self) -> u64 {
        Self::RING + 128
    }
    fn refusals(self) -> u64 {
        Self::RING + 136
    }
    /// The futex word; the sleeper count is 4 bytes after it.
    fn not_empty(self) -> u64 {
        Self::RING + 256
    }
    fn not_full(self) -> u64 {
        Self::RING + 384
    }
    fn slots(self) -> u64 {
        Self::RING + 512
    }
    fn slot_bytes(self) -> u64 {
        self.capacity * Self::ELEM
    }
    fn total(self) -> u64 {
        (self.slots() + self.slot_bytes()).next_multiple_of(128)
    }
}

/// One scribble on ring 0: an index, a counter, a doorbell word or some
/// slot bytes.
fn scribble_ring(file: &File, g: Geometry, rng: &mut Rng) {
    let word = |rng: &mut Rng, offset| {
        let value = hostile_u64(rng, read_u64(file, offset), g.capacity);
        write_u64(file, offset, value);
    };
    let bell = |rng: &mut Rng, offset| {
        let offset = offset + 4 * rng.below(2);
        let value = hostile_u32(rng, read_u32(file, offset));
        write_u32(file, offset, value);
    };
    match rng.below(10) {
        0 | 1 => word(rng, g.head()),
        2 | 3 => word(rng, g.tail()),
        4 => word(rng, g.high_water()),
        5 => word(rng, g.refusals()),
        6 => bell(rng, g.not_empty()),
        7 => bell(rng, g.not_full()),
        _ => {
            let start = rng.below(g.slot_bytes());
            let len = 1 + rng.below(16.min(g.slot_bytes() - start));
            let mut bytes = [0u8; 16];
            rng.bytes(&mut bytes[..len as usize]);
            write_bytes(file, g.slots() + start, &bytes[..len as usize]);
        }
    }
}

/// One random call on the sender, with what must hold whatever the memory
/// says.
fn poke_sender(tx: &Sender<u64>, rng: &mut Rng, tally: &mut Tally) {
    let value = rng.next();
    let capacity = tx.capacity();
    match rng.below(5) {
        0 => match tx.try_send(value) {
            Ok(()) => tally.ok += 1,
            Err(TrySendError::Full(back)) => {
                assert_eq!(back, value, "try_send hands back the message")
            }
            Err(TrySendError::Disconnected(back)) => {
                assert_eq!(back, value, "try_send hands back the message");
                tally.tx_dead = true;
            }
        },
        1 => {
            let values = [value; 40];
            let n = 1 + rng.below(values.len() as u64) as usize;
            match tx.try_send_batch(&values[..n]) {
                Ok(sent) => {
                    assert!(
                        (1..=n).contains(&sent),
                        "try_send_batch of {n} reported {sent} sent"
                    );
                    tally.ok += 1;
                }
                Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => tally.tx_dead = true,
            }
        }
        2 => match tx.send_timeout(value, TIMEOUT) {
            Ok(()) => tally.ok += 1,
            Err(SendTimeoutError::Timeout(back)) => assert_eq!(back, value),
            Err(SendTimeoutError::Disconnected(back)) => {
                assert_eq!(back, value);
                tally.tx_dead = true;
            }
        },
        3 => {
            let len = tx.len();
            assert!(len <= capacity, "len {len} exceeds capacity {capacity}");
            // Not compared with `len`: the peer and the scribbler move the
            // indices between the two reads.
            let _ = tx.is_empty();
            let _ = tx.is_full();
            let _ = format!("{tx:?}");
        }
        _ => {
            let stats = tx.stats();
            assert!(
                stats.len <= capacity as u64,
                "stats.len {} exceeds capacity",
                stats.len
            );
            assert_eq!(stats.capacity, capacity as u64);
        }
    }
}

/// One random call on the receiver, with what must hold whatever the
/// memory says.
fn poke_receiver(rx: &Receiver<u64>, rng: &mut Rng, tally: &mut Tally) {
    let capacity = rx.capacity();
    match rng.below(6) {
        0 => match rx.try_recv() {
            Ok(_) => tally.ok += 1,
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => tally.rx_dead = true,
        },
        1 => {
            let mut out = [0u64; 40];
            let n = 1 + rng.below(out.len() as u64) as usize;
            match rx.try_recv_batch(&mut out[..n]) {
                Ok(received) => {
                    assert!(
                        (1..=n).contains(&received),
                        "try_recv_batch into {n} reported {received}"
                    );
                    tally.ok += 1;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => tally.rx_dead = true,
            }
        }
        2 => match rx.recv_timeout(TIMEOUT) {
            Ok(_) => tally.ok += 1,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => tally.rx_dead = true,
        },
        3 => {
            let limit = rng.below(8) as usize;
            let taken = rx.try_iter().take(limit).count();
            assert!(taken <= limit);
        }
        4 => {
            let len = rx.len();
            assert!(len <= capacity, "len {len} exceeds capacity {capacity}");
            // Not compared with `len`: the peer and the scribbler move the
            // indices between the two reads.
            let _ = rx.is_empty();
            let _ = rx.is_full();
            let _ = format!("{rx:?}");
        }
        _ => {
            let stats = rx.stats();
            assert!(
                stats.len <= capacity as u64,
                "stats.len {} exceeds capacity",
                stats.len
            );
            assert_eq!(stats.capacity, capacity as u64);
        }
    }
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Creates the channel as its receiver, then idles holding it.
        "create-then-sleep" => {
            let rx = Receiver::<u64>::create(&args[0], 1024).unwrap();
            let _keep = rx;
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        // Sends through a channel the parent scribbles on, until its sender
        // reports disconnection (corruption found, or the receiver gone).
        // It must neither panic nor hang.
        "send-under-fire" => {
            let tx = Sender::<u64>::open(&args[0]).unwrap();
            let mut rng = Rng::with_env_seed(args[1].parse().unwrap());
            let mut tally = Tally::default();
            while !tally.tx_dead {
                poke_sender(&tx, &mut rng, &mut tally);
            }
        }
        other => panic!("unknown role {other}"),
    });
}

/// The offsets these tests scribble on are the library's: without this, a
/// layout change would turn the scribbling tests into no-ops.
#[test]
fn layout_offsets_match_the_library() {
    let name = unique_name("hostile-layout");
    let _cleanup = Cleanup(name.clone());
    let g = Geometry { capacity: 64 };
    let options = Options::new().capacity(64).spin(Duration::ZERO);
    let (tx, rx) = spsc::channel_with::<u64>(&name, &options).unwrap();
    let file = shm_file(&name);

    assert_eq!(file.metadata().unwrap().len(), g.total(), "segment size");
    assert_eq!(&read_bytes::<8>(&file, MAGIC), b"SHMCHAN\0");
    assert_eq!(read_u32(&file, VERSION), 2);
    assert_eq!(read_u64(&file, CAPACITY), 64);
    assert_eq!(read_u64(&file, ELEM_SIZE), 8);
    assert_eq!(read_u64(&file, ELEM_ALIGN), 8);
    assert_eq!(read_u64(&file, SCHEMA), <u64 as shmchan::ShmSafe>::SCHEMA);
    assert_eq!(read_u64(&file, TOTAL_SIZE), g.total());
    assert_eq!(read_u32(&file, CREATOR_PID), std::process::id());
    assert_eq!(read_u32(&file, ENDPOINTS), 2);
    assert_eq!(read_u32(&file, RINGS), 1);
    assert_eq!(read_u32(&file, TYPE_NAME_LEN), 3);
    assert_eq!(&read_bytes::<3>(&file, TYPE_NAME), b"u64");
    assert_eq!(read_u32(&file, INIT), INITIALIZED);
    assert_eq!(read_u32(&file, UNLINKED), 0);
    assert_eq!(read_u64(&file, RECEIVER_SLOT) as u32, std::process::id());
    assert_eq!(read_u64(&file, SENDER_SLOT) as u32, std::process::id());

    // Indices and slots.
    for i in 0..5 {
        tx.send(100 + i).unwrap();
    }
    assert_eq!(read_u64(&file, g.tail()), 5);
    for i in 0..5 {
        assert_eq!(read_u64(&file, g.slots() + 8 * i), 100 + i);
    }
    assert_eq!(rx.recv(), Ok(100));
    assert_eq!(read_u64(&file, g.head()), 1);
    assert_eq!(read_u64(&file, g.high_water()), 5);
    // A slot written through the file is what the receiver reads.
    write_u64(&file, g.slots() + 8, 0xFEED);
    assert_eq!(rx.recv(), Ok(0xFEED));
    while tx.try_send(0).is_ok() {}
    assert_eq!(read_u64(&file, g.refusals()), 1);
    while rx.try_recv().is_ok() {}

    // The doorbell: a receiver asleep in recv counts itself in `not_empty`'s
    // sleepers, and the send that wakes it bumps the futex word.
    let seq_before = read_u32(&file, g.not_empty());
    let sleeper = std::thread::spawn(move || rx.recv_timeout(PATIENCE));
    wait_until(PATIENCE, "the receiver sleeps on not_empty", || {
        read_u32(&file, g.not_empty() + 4) == 1
    });
    assert_eq!(read_u32(&file, g.not_full() + 4), 0);
    tx.send(7).unwrap();
    assert_eq!(sleeper.join().unwrap(), Ok(7));
    assert_ne!(
        read_u32(&file, g.not_empty()),
        seq_before,
        "the wake-up bumps the futex word"
    );
    assert_eq!(read_u32(&file, g.not_empty() + 4), 0);
}

/// One channel of a scribbling run: both ends in this process.
struct Victim {
    _cleanup: Cleanup,
    name: String,
    tx: Sender<u64>,
    rx: Receiver<u64>,
    file: File,
}

impl Victim {
    fn new(capacity: usize) -> Self {
        let name = unique_name("hostile-ring");
        let cleanup = Cleanup(name.clone());
        // A short spin: the 1 ms timeouts then spend their time asleep.
        let options = Options::new()
            .capacity(capacity)
            .spin(Duration::from_micros(20));
        let (tx, rx) = spsc::channel_with::<u64>(&name, &options).unwrap();
        let file = shm_file(&name);
        Self {
            _cleanup: cleanup,
            name,
            tx,
            rx,
            file,
        }
    }
}

fn scribble_in_process(seed: u64, rounds: u64) {
    const CAPACITY: u64 = 64;
    let g = Geometry { capacity: CAPACITY };
    let mut rng = Rng::with_env_seed(seed);
    let (corrupted, ok) = hostile::scribble_in_process(
        rounds,
        || Victim::new(CAPACITY as usize),
        |victim| victim.name.clone(),
        |victim, tally| {
            scribble_ring(&victim.file, g, &mut rng);
            for _ in 0..1 + rng.below(6) {
                if rng.below(2) == 0 {
                    poke_sender(&victim.tx, &mut rng, tally);
                } else {
                    poke_receiver(&victim.rx, &mut rng, tally);
                }
            }
            let stats = victim.rx.stats();
            assert_eq!(
                stats.endpoints.len(),
                2,
                "both ends stay attached: {:?}",
                stats.endpoints
            );
        },
    );
    eprintln!(
        "seed {seed:#x}: {rounds} rounds, {corrupted} corruptions detected, {ok} calls succeeded"
    );
}

#[test]
fn scribbled_indices_never_panic_or_hang() {
    within(Duration::from_secs(60), "the scribbling run", || {
        scribble_in_process(0x5EED_0001, 2000)
    });
}

#[test]
fn scribbled_indices_with_sender_in_another_process() {
    within(Duration::from_secs(60), "the scribbling run", || {
        const CAPACITY: u64 = 64;
        const GENERATIONS: u64 = 6;
        const ROUNDS: u64 = 300;
        let g = Geometry { capacity: CAPACITY };
        let mut rng = Rng::with_env_seed(0x5EED_0002);
        let mut corrupted = 0;
        for generation in 0..GENERATIONS {
            let name = unique_name("hostile-ring-peer");
            let _cleanup = Cleanup(name.clone());
            let options = Options::new()
                .capacity(CAPACITY as usize)
                .spin(Duration::from_micros(20));
            let rx = Receiver::<u64>::create_with(&name, &options).unwrap();
            let file = shm_file(&name);
            let seed = (0x5EED_0100 + generation).to_string();
            let mut child = Peer::spawn("send-under-fire", &[&name, &seed]);
            wait_until(PATIENCE, "the peer sends", || rx.stats().sent > 0);
            let detected = hostile::scribble_until_detected(ROUNDS, |tally| {
                scribble_ring(&file, g, &mut rng);
                for _ in 0..1 + rng.below(6) {
                    poke_receiver(&rx, &mut rng, tally);
                }
            });
            corrupted += u64::from(detected);
            // Gone: the peer must notice and exit normally, not panic or hang.
            drop(rx);
            let status = child.wait(PATIENCE);
            assert!(
                status.success(),
                "the sending peer failed under scribbling: {status}"
            );
        }
        hostile::assert_detected(corrupted);
    });
}

/// Counters and doorbell words are hints: scribbling on them may cost
/// wake-ups (bounded by the liveness interval) but never a message, a
/// duplicate, or a disconnection.
#[test]
fn scribbled_counters_and_doorbells_do_not_disturb_delivery() {
    const MESSAGES: u64 = 10_000;
    const CAPACITY: u64 = 64;
    let name = unique_name("hostile-doorbells");
    let _cleanup = Cleanup(name.clone());
    let g = Geometry { capacity: CAPACITY };
    // No spinning: both ends sleep on the futex words being scribbled on.
    let options = Options::new()
        .capacity(CAPACITY as usize)
        .spin(Duration::ZERO);
    let (tx, rx) = spsc::channel_with::<u64>(&name, &options).unwrap();
    let file = shm_file(&name);
    within(
        Duration::from_secs(120),
        "delivery under doorbell scribbling",
        move || {
            let receiver = std::thread::spawn(move || {
                for i in 0..MESSAGES {
                    match rx.recv_timeout(Duration::from_secs(5)) {
                        Ok(value) => assert_eq!(value, i, "lost, duplicated or reordered"),
                        Err(err) => panic!("message {i}: {err:?}"),
                    }
                }
                rx
            });
            let mut rng = Rng::with_env_seed(0x5EED_0003);
            for i in 0..MESSAGES {
                if i % 50 == 0 {
                    match rng.below(6) {
                        0 => write_u64(&file, g.high_water(), rng.next()),
                        1 => write_u64(&file, g.refusals(), rng.next()),
                        2 => write_u32(&file, g.not_empty(), rng.next() as u32),
                        3 => write_u32(&file, g.not_empty() + 4, hostile_u32(&mut rng, 0)),
                        4 => write_u32(&file, g.not_full(), rng.next() as u32),
                        _ => write_u32(&file, g.not_full() + 4, hostile_u32(&mut rng, 0)),
                    }
                }
                // Now and then `try_send`, which counts refusals, then `send`.
                let sent = i % 7 == 0 && tx.try_send(i).is_ok();
                if !sent {
                    if let Err(err) = tx.send_timeout(i, Duration::from_secs(5)) {
                        panic!("message {i}: {err:?}");
                    }
                }
            }
            let rx = receiver.join().unwrap();
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            let _ = tx.stats();
        },
    );
}

/// A fresh channel whose header the caller may corrupt; the receiver (the
/// creator) stays attached.
fn fresh(tag: &str) -> (Cleanup, String, Receiver<u64>, File) {
    let name = unique_name(tag);
    let cleanup = Cleanup(name.clone());
    let rx = Receiver::<u64>::create(&name, 1024).unwrap();
    let file = shm_file(&name);
    (cleanup, name, rx, file)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Incompatible,
    Corrupt,
    /// An unknown flavor number may be either.
    IncompatibleOrCorrupt,
    /// The field is informational: the open succeeds and the channel works.
    Opens,
}

/// A message through the freshly opened sender arrives at the creator.
fn round_trip(tx: &Sender<u64>, rx: &Receiver<u64>) {
    tx.try_send(0xC0FFEE)
        .expect("send through the opened channel");
    assert_eq!(rx.try_recv(), Ok(0xC0FFEE));
}

#[test]
fn scribbled_header_fields_refuse_open() {
    use Expect::{Corrupt, Incompatible, IncompatibleOrCorrupt, Opens};
    let g = Geometry { capacity: 1024 };
    let total = g.total();
    let schema = <u64 as shmchan::ShmSafe>::SCHEMA;
    let not_utf8 = vec![0xFFu8; 64];
    let braces = vec![b'{'; 256];
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<Write>, Expect)> = vec![
        ("magic", vec![(MAGIC, b"NOTSHMCH".to_vec())], Incompatible),
        ("magic zeroed", vec![(MAGIC, vec![0; 8])], Incompatible),
        ("version 0", vec![(VERSION, u32b(0))], Incompatible),
        ("version 1", vec![(VERSION, u32b(1))], Incompatible),
        ("version 3", vec![(VERSION, u32b(3))], Incompatible),
        ("version max", vec![(VERSION, u32b(u32::MAX))], Incompatible),
        ("flavor 0", vec![(FLAVOR, u32b(0))], IncompatibleOrCorrupt),
        ("flavor 2", vec![(FLAVOR, u32b(2))], IncompatibleOrCorrupt),
        ("flavor max", vec![(FLAVOR, u32b(u32::MAX))], IncompatibleOrCorrupt),
        ("elem_size 0", vec![(ELEM_SIZE, u64b(0))], Incompatible),
        ("elem_size 4", vec![(ELEM_SIZE, u64b(4))], Incompatible),
        ("elem_size 16", vec![(ELEM_SIZE, u64b(16))], Incompatible),
        ("elem_size max", vec![(ELEM_SIZE, u64b(u64::MAX))], Incompatible),
        ("elem_align 0", vec![(ELEM_ALIGN, u64b(0))], Incompatible),
        ("elem_align 3", vec![(ELEM_ALIGN, u64b(3))], Incompatible),
        ("elem_align 16", vec![(ELEM_ALIGN, u64b(16))], Incompatible),
        ("elem_align max", vec![(ELEM_ALIGN, u64b(u64::MAX))], Incompatible),
        ("schema", vec![(SCHEMA, u64b(schema ^ 1))], Incompatible),
        ("schema 0", vec![(SCHEMA, u64b(0))], Incompatible),
        ("capacity 0", vec![(CAPACITY, u64b(0))], Corrupt),
        ("capacity 3", vec![(CAPACITY, u64b(3))], Corrupt),
        ("capacity 1023", vec![(CAPACITY, u64b(1023))], Corrupt),
        ("capacity 512", vec![(CAPACITY, u64b(512))], Corrupt),
        ("capacity 2048", vec![(CAPACITY, u64b(2048))], Corrupt),
        ("capacity 1<<50", vec![(CAPACITY, u64b(1 << 50))], Corrupt),
        ("capacity 1<<63", vec![(CAPACITY, u64b(1 << 63))], Corrupt),
        ("capacity max", vec![(CAPACITY, u64b(u64::MAX))], Corrupt),
        // Self-consistent, but the file is smaller than the header claims.
        ("capacity 4096 with matching total_size",
            vec![(CAPACITY, u64b(4096)), (TOTAL_SIZE, u64b(Geometry { capacity: 4096 }.total()))], Corrupt),
        ("total_size 0", vec![(TOTAL_SIZE, u64b(0))], Corrupt),
        ("total_size -128", vec![(TOTAL_SIZE, u64b(total - 128))], Corrupt),
        ("total_size +128", vec![(TOTAL_SIZE, u64b(total + 128))], Corrupt),
        ("total_size max", vec![(TOTAL_SIZE, u64b(u64::MAX))], Corrupt),
        ("endpoints 0", vec![(ENDPOINTS, u32b(0))], Corrupt),
        ("endpoints 1", vec![(ENDPOINTS, u32b(1))], Corrupt),
        ("endpoints 3", vec![(ENDPOINTS, u32b(3))], Corrupt),
        ("endpoints max", vec![(ENDPOINTS, u32b(u32::MAX))], Corrupt),
        ("rings 0", vec![(RINGS, u32b(0))], Corrupt),
        ("rings 2", vec![(RINGS, u32b(2))], Corrupt),
        ("rings max", vec![(RINGS, u32b(u32::MAX))], Corrupt),
        ("barrier_mode 0", vec![(BARRIER_MODE, u32b(0))], Corrupt),
        ("barrier_mode 3", vec![(BARRIER_MODE, u32b(3))], Corrupt),
        ("barrier_mode max", vec![(BARRIER_MODE, u32b(u32::MAX))], Corrupt),
        // Informational fields: a huge length is clamped, never trusted.
        ("type_name_len max", vec![(TYPE_NAME_LEN, u32b(u32::MAX))], Opens),
        ("layout_len max", vec![(LAYOUT_LEN, u32b(u32::MAX))], Opens),
        ("texts not UTF-8, lengths max",
            vec![(TYPE_NAME, not_utf8.clone()), (LAYOUT, not_utf8.repeat(4)),
                 (TYPE_NAME_LEN, u32b(u32::MAX)), (LAYOUT_LEN, u32b(u32::MAX))], Opens),
        ("creator_pid and created_ns", vec![(CREATOR_PID, u32b(u32::MAX)), (CREATED_NS, u64b(u64::MAX))], Opens),
        // The texts are only read to explain a mismatch: make them explain one.
        ("schema mismatch, lengths max",
            vec![(SCHEMA, u64b(schema ^ 1)), (TYPE_NAME_LEN, u32b(u32::MAX)), (LAYOUT_LEN, u32b(u32::MAX))], Incompatible),
        ("schema mismatch, texts not UTF-8",
            vec![(SCHEMA, u64b(schema ^ 1)), (TYPE_NAME, not_utf8.clone()), (LAYOUT, not_utf8.repeat(4)),
                 (TYPE_NAME_LEN, u32b(u32::MAX)), (LAYOUT_LEN, u32b(u32::MAX))], Incompatible),
        ("schema mismatch, layout all braces",
            vec![(SCHEMA, u64b(schema ^ 1)), (LAYOUT, braces.clone()), (LAYOUT_LEN, u32b(256))], Incompatible),
        ("elem_size mismatch, struct-like layout",
            vec![(ELEM_SIZE, u64b(16)), (LAYOUT, b"X{}".to_vec()), (LAYOUT_LEN, u32b(3)),
                 (TYPE_NAME, b"\xE2\x82".to_vec()), (TYPE_NAME_LEN, u32b(2))], Incompatible),
    ];

    for (what, writes, expect) in cases {
        eprintln!("case: {what}");
        let (_cleanup, name, rx, file) = fresh("hostile-header");
        let original: [u8; HEADER_REGION as usize] = read_bytes(&file, 0);
        for (offset, bytes) in &writes {
            write_bytes(&file, *offset, bytes);
        }
        let result = Sender::<u64>::open(&name);
        let got = match &result {
            Ok(_) => Opens,
            Err(Error::Incompatible { .. }) => Incompatible,
            Err(Error::Corrupt { .. }) => Corrupt,
            Err(other) => panic!("{what}: expected {expect:?}, got {other:?}"),
        };
        let ok = got == expect
            || (expect == IncompatibleOrCorrupt && matches!(got, Incompatible | Corrupt));
        assert!(ok, "{what}: expected {expect:?}, got {result:?}");
        match result {
            Ok(tx) => round_trip(&tx, &rx),
            Err(err) => {
                let text = err.to_string();
                assert!(
                    text.contains(&name),
                    "{what}: the message should name the channel: {text}"
                );
                if what == "magic" {
                    assert!(text.contains("not a shmchan segment"), "{what}: {text}");
                }
                if what.starts_with("schema mismatch") || what.starts_with("elem_size mismatch") {
                    assert!(
                        text.contains("u64"),
                        "{what}: the message should name the expected type: {text}"
                    );
                }
            }
        }
        // A refused open leaves nothing behind: repaired, the channel opens.
        write_bytes(&file, 0, &original);
        let tx = Sender::<u64>::open(&name)
            .unwrap_or_else(|err| panic!("{what}: open after repair: {err}"));
        round_trip(&tx, &rx);
    }
}

#[test]
fn random_header_bytes_refuse_or_open_soundly() {
    within(Duration::from_secs(60), "random header scribbling", || {
        let (_cleanup, name, rx, file) = fresh("hostile-header-random");
        let original: [u8; HEADER_REGION as usize] = read_bytes(&file, 0);
        let mut rng = Rng::with_env_seed(0x5EED_0004);
        let (mut opened, mut refused) = (0u32, 0u32);
        for round in 0..500 {
            for _ in 0..1 + rng.below(3) {
                let start = rng.below(HEADER_REGION);
                let len = 1 + rng.below(64.min(HEADER_REGION - start));
                let mut bytes = [0u8; 64];
                if rng.below(4) == 0 {
                    bytes[..len as usize].fill(if rng.below(2) == 0 { 0 } else { 0xFF });
                } else {
                    rng.bytes(&mut bytes[..len as usize]);
                }
                write_bytes(&file, start, &bytes[..len as usize]);
            }
            match Sender::<u64>::open(&name) {
                Ok(tx) => {
                    opened += 1;
                    round_trip(&tx, &rx);
                }
                Err(Error::Incompatible { .. } | Error::Corrupt { .. }) => refused += 1,
                Err(err) => panic!("round {round}: unexpected error {err:?}"),
            }
            write_bytes(&file, 0, &original);
        }
        assert!(refused > 0, "random header bytes were never refused");
        eprintln!("{opened} opened, {refused} refused");
    });
}

#[test]
fn contradictory_ring_indices_refuse_attach() {
    let g = Geometry { capacity: 1024 };
    let (_cleanup, name, rx, file) = fresh("hostile-attach");
    for tail in [1025, 1 << 40, u64::MAX] {
        write_u64(&file, g.tail(), tail);
        match Sender::<u64>::open(&name) {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("tail {tail} with head 0: expected Corrupt, got {other:?}"),
        }
    }
    write_u64(&file, g.tail(), 0);
    write_u64(&file, g.head(), 5);
    match Sender::<u64>::open(&name) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("head ahead of tail: expected Corrupt, got {other:?}"),
    }
    write_u64(&file, g.head(), 0);
    // The refusals left the sender's role free.
    let tx = Sender::<u64>::open(&name).unwrap();
    round_trip(&tx, &rx);
}

#[test]
fn scribbled_control_words_do_not_hang_open() {
    let (_cleanup, name, rx, file) = fresh("hostile-control");

    // `unlinked` set on a segment the name still refers to: an opener must
    // not retry forever.
    write_u32(&file, UNLINKED, 1);
    let opener = name.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = Sender::<u64>::open(&opener).map(drop);
        let _ = done_tx.send(result);
    });
    let result = done_rx.recv_timeout(Duration::from_secs(10));
    // Let a hung opener finish before failing.
    write_u32(&file, UNLINKED, 0);
    match result {
        Ok(Ok(())) => panic!("opened a segment marked unlinked"),
        Ok(Err(_)) => {}
        Err(_) => {
            panic!("Sender::open kept retrying on a segment whose `unlinked` word was scribbled")
        }
    }

    // `init` cleared: the opener gives up after its grace period.
    write_u32(&file, INIT, 0);
    let opener = name.clone();
    let result = within(
        Duration::from_secs(10),
        "open of an uninitialized-looking segment",
        move || Sender::<u64>::open(&opener).map(drop),
    );
    write_u32(&file, INIT, INITIALIZED);
    assert!(
        matches!(result, Err(Error::Corrupt { .. })),
        "init cleared: {result:?}"
    );

    // A sender slot naming a process that does not exist is reclaimed.
    write_u64(&file, SENDER_SLOT, 12345 << 32 | 0x3FFF_FFFF);
    let tx = Sender::<u64>::open(&name).expect("a slot held by a nonexistent pid is reclaimed");
    round_trip(&tx, &rx);
}

/// A channel created by a peer process, which then idles holding its
/// receiver; ready once its role is taken.
fn created_by_peer(name: &str) -> Peer {
    let creator = Peer::spawn("create-then-sleep", &[name]);
    wait_until(PATIENCE, "the peer created the channel", || {
        matches!(Receiver::<u64>::open(name), Err(Error::Busy { .. }))
    });
    creator
}

/// The creator lives in a peer, so the truncated mapping is never touched
/// in this process (that would be SIGBUS).
#[test]
fn truncated_segment_is_refused() {
    // Shorter than its layout, but header and control words intact:
    // corrupt; and once its creator is dead, stale, so `create` replaces it.
    let name = unique_name("hostile-truncated");
    let _cleanup = Cleanup(name.clone());
    let creator = created_by_peer(&name);
    shm_file(&name).set_len(600).unwrap();
    let result = Sender::<u64>::open(&name).map(drop);
    assert!(
        matches!(result, Err(Error::Corrupt { .. })),
        "segment truncated to 600 bytes: {result:?}"
    );
    let result = Receiver::<u64>::create(&name, 1024).map(drop);
    assert!(
        matches!(result, Err(Error::AlreadyExists { .. })),
        "create over a truncated segment whose creator lives: {result:?}"
    );
    creator.kill();
    let rx = Receiver::<u64>::create(&name, 1024).expect("a stale truncated segment is replaced");
    let tx = Sender::<u64>::open(&name).unwrap();
    round_trip(&tx, &rx);
    drop((tx, rx));
    assert!(!common::segment_exists(&name));

    // Shorter than the header region: refused, whether it is called damaged
    // or foreign, and never mapped past its end.
    let name = unique_name("hostile-truncated-short");
    let _cleanup = Cleanup(name.clone());
    let _creator = created_by_peer(&name);
    shm_file(&name).set_len(100).unwrap();
    let result = Sender::<u64>::open(&name).map(drop);
    assert!(
        matches!(
            result,
            Err(Error::Corrupt { .. } | Error::Incompatible { .. })
        ),
        "segment truncated to 100 bytes: {result:?}"
    );
}

/// An object that is empty or all zeros cannot be told from another
/// program's: `open` waits its grace period, then refuses it as not a
/// shmchan segment; `create` refuses it with `AlreadyExists` and leaves it
/// alone (DESIGN §10: create removes only what it can prove is a dead
/// shmchan segment).
#[test]
fn empty_or_zeroed_object_is_refused_and_left_alone() {
    for size in [Geometry { capacity: 1024 }.total(), 0] {
        let name = unique_name("hostile-zeroed");
        let _cleanup = Cleanup(name.clone());
        let file = File::create_new(shm_path(&name)).unwrap();
        file.set_len(size).unwrap();
        match Sender::<u64>::open(&name) {
            Err(err @ Error::Incompatible { .. }) => {
                assert!(
                    err.to_string().contains("empty or all zeros"),
                    "size {size}: {err}"
                )
            }
            other => {
                panic!("zeroed object of {size} bytes: expected Incompatible, got {other:?}")
            }
        }
        match Receiver::<u64>::create(&name, 1024) {
            Err(err @ Error::AlreadyExists { .. }) => {
                assert!(err.to_string().contains("empty or all zeros"), "{err}")
            }
            other => panic!("create over a zeroed object of {size} bytes: {other:?}"),
        }
        assert!(common::segment_exists(&name), "the object was removed");
        assert_eq!(
            file.metadata().unwrap().len(),
            size,
            "the object was changed"
        );
    }
}

/// A creator that died after writing our magic but before initializing
/// leaves an object `create` can prove is a dead shmchan segment: `open`
/// waits its grace period, then says it was never initialized; `create`
/// replaces it.
#[test]
fn uninitialized_segment_is_refused_then_replaced() {
    let name = unique_name("hostile-uninit");
    let _cleanup = Cleanup(name.clone());
    let file = File::create_new(shm_path(&name)).unwrap();
    file.set_len(Geometry { capacity: 1024 }.total()).unwrap();
    write_bytes(&file, MAGIC, b"SHMCHAN\0");
    match Sender::<u64>::open(&name) {
        Err(err @ Error::Corrupt { .. }) => {
            assert!(err.to_string().contains("never initialized"), "{err}")
        }
        other => panic!("uninitialized segment: expected Corrupt, got {other:?}"),
    }
    let rx =
        Receiver::<u64>::create(&name, 1024).expect("an uninitialized stale segment is replaced");
    let tx = Sender::<u64>::open(&name).unwrap();
    round_trip(&tx, &rx);
    drop((tx, rx));
    assert!(!common::segment_exists(&name));
}

/// Makes `/dev/shm/<name>` an object that is not ours: `size` bytes of 0xAB.
fn foreign_object(name: &str, size: usize) -> File {
    let file = File::create_new(shm_path(name)).unwrap();
    file.write_all_at(&vec![0xAB; size], 0).unwrap();
    file
}

#[test]
fn foreign_object_is_incompatible_on_open() {
    let mut failures = Vec::new();
    for size in [4096, 100] {
        let name = unique_name("hostile-foreign-open");
        let _cleanup = Cleanup(name.clone());
        let _file = foreign_object(&name, size);
        match Sender::<u64>::open(&name) {
            Err(err @ Error::Incompatible { .. })
                if err.to_string().contains("not a shmchan segment") => {}
            other => failures.push(format!(
                "{size} bytes: expected Incompatible (not a shmchan segment), got {other:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "open of a foreign object:\n{}",
        failures.join("\n")
    );
}

#[test]
fn foreign_object_is_not_replaced_by_create() {
    let mut failures = Vec::new();
    for size in [4096, 100] {
        let name = unique_name("hostile-foreign-create");
        let _cleanup = Cleanup(name.clone());
        let file = foreign_object(&name, size);
        let result = Receiver::<u64>::create(&name, 1024);
        let still_there = std::fs::read(shm_path(&name)).ok();
        let inode = |meta: std::fs::Metadata| std::os::unix::fs::MetadataExt::ino(&meta);
        let same_inode = std::fs::metadata(shm_path(&name)).map(inode).ok()
            == Some(inode(file.metadata().unwrap()));
        let outcome = match &result {
            Ok(_) => "created over it".to_owned(),
            Err(err) => format!("{err:?}"),
        };
        drop(result);
        if still_there.as_deref() != Some(&vec![0xAB; size][..]) || !same_inode {
            failures.push(format!(
                "{size} bytes: create deleted or replaced someone else's object ({outcome})"
            ));
        } else if !outcome.starts_with("AlreadyExists") {
            failures.push(format!(
                "{size} bytes: expected AlreadyExists, got {outcome}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "create over a foreign object:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_lock_held_forever_bounds_open_and_drop() {
    // Another process (here, another open file description) holds the
    // segment's lock and never lets go: open must fail after its grace
    // period rather than hang, and dropping an endpoint must not hang.
    let name = unique_name("hostile-flock");
    let _cleanup = Cleanup(name.clone());
    let rx = spsc::Receiver::<u64>::create(&name, 8).unwrap();
    let holder = shm_file(&name);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&holder);
    // SAFETY: flock(2) on a descriptor we own; no memory is involved.
    let locked = unsafe { libc::flock(fd, libc::LOCK_EX) };
    assert_eq!(locked, 0, "lock the segment from outside");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let opened = spsc::Sender::<u64>::open(&name).map(drop);
        drop(rx);
        done_tx.send(opened).unwrap();
    });
    let opened = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("open or drop hung on a held lock");
    let err = opened.unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("held its lock"), "{err}");
    drop(holder);
}

/// A segment whose header claims four billion endpoint slots, in an object
/// large enough to hold millions of them, every one with an owner word:
/// `create` judges it by the most slots any segment has, not by what the
/// file could hold, and replaces it promptly (DESIGN §10: a hostile header
/// cannot make open or create loop for long).
#[test]
fn a_header_claiming_billions_of_slots_cannot_make_create_loop() {
    const SIZE: u64 = 64 << 20;
    let name = unique_name("hostile-huge-table");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::<u64>::create(&name, 1024).unwrap();
    let file = shm_file(&name);
    let header: [u8; HEADER_REGION as usize + 64] = read_bytes(&file, 0);
    drop(rx);
    assert!(!common::segment_exists(&name));
    // The same header, claiming u32::MAX slots, over 64 MiB of owner words
    // (pids that are not ours, with no lock held).
    let file = File::create_new(shm_path(&name)).unwrap();
    file.set_len(SIZE).unwrap();
    let words: Vec<u8> = (0..(1 << 20))
        .flat_map(|i: u64| (1000 + i % 30000).to_ne_bytes())
        .collect();
    let mut offset = TABLE;
    while offset < SIZE {
        let len = (words.len() as u64).min(SIZE - offset) as usize;
        write_bytes(&file, offset, &words[..len]);
        offset += len as u64;
    }
    write_bytes(&file, 0, &header);
    write_u32(&file, ENDPOINTS, u32::MAX);
    write_u64(&file, TOTAL_SIZE, SIZE);
    assert_eq!(read_u32(&file, INIT), INITIALIZED);
    let rx = within(PATIENCE, "create over a huge endpoint table", move || {
        Receiver::<u64>::create(&name, 1024)
    })
    .expect("a stale segment, whatever its header says, is replaced");
    drop(rx);
}
