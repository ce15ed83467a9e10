//! Hostile shared memory, mpsc: the tests scribble on a live segment through
//! its `/dev/shm` file (the same pages every endpoint maps) and check that
//! the endpoints stay sound: every call returns, with a value or an error
//! (`Disconnected`, `Error::Corrupt`, `Error::Incompatible`), and never
//! panics or hangs.
//!
//! Layout of an mpsc segment of `u64` with `S` shards of capacity `C`
//! (checked against the library by `layout_offsets_match_the_library`):
//! the header at 0, the control words at 512, the endpoint table at 576 (8
//! bytes a slot: the receiver's, then one per shard), the shared block at
//! `round_up(576 + 8 (S + 1), 128)` with the receiver's `not_empty`
//! doorbell (futex word, then sleeper count), then the shards, each
//! `round_up(384 + 8 C, 128)` bytes: head and high-water mark, tail and
//! refusals at +128, the shard's `not_full` doorbell at +256, the slots at
//! +384.

mod common;

use common::hostile::{
    self, dead_words, hostile_u32, hostile_u64, tagged, u32b, u64b, Cleanup, Tally, Write,
};
use common::shm::write_u64;
use common::shm::{read_bytes, read_u32, read_u64, shm_file, write_bytes, write_u32};
use common::{sleep_forever, unique_name, wait_until, within, Peer, Rng};
use shmchan::mpsc::{
    self, Error, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use shmchan::Options;
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
/// The endpoint table: one owner word (the holder's pid) per slot,
/// the receiver's first.
const TABLE: u64 = 576;
const ELEM: u64 = 8;

/// Where things are in an mpsc segment of `u64`.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    shards: u64,
    capacity: u64,
}

impl Geometry {
    /// Slot 0 is the receiver's, slot `1 + s` shard `s`'s sender's.
    fn endpoint(self, slot: u64) -> u64 {
        TABLE + 8 * slot
    }
    fn shared(self) -> u64 {
        (TABLE + 8 * (self.shards + 1)).next_multiple_of(128)
    }
    /// The receiver's doorbell: futex word; the sleeper count is at +4.
    fn not_empty(self) -> u64 {
        self.shared()
    }
    fn rings(self) -> u64 {
        self.shared() + 128
    }
    fn stride(self) -> u64 {
        (384 + self.capacity * ELEM).next_multiple_of(128)
    }
    fn ring(self, shard: u64) -> u64 {
        self.rings() + shard * self.stride()
    }
    fn head(self, shard: u64) -> u64 {
        self.ring(shard)
    }
    fn high_water(self, shard: u64) -> u64 {
        self.ring(shard) + 8
    }
    fn tail(self, shard: u64) -> u64 {
        self.ring(shard) + 128
    }
    fn refusals(self, shard: u64) -> u64 {
        self.ring(shard) + 136
    }
    /// The shard's sender's doorbell: futex word; sleeper count at +4.
    fn not_full(self, shard: u64) -> u64 {
        self.ring(shard) + 256
    }
    fn slots(self, shard: u64) -> u64 {
        self.ring(shard) + 384
    }
    fn total(self) -> u64 {
        self.rings() + self.shards * self.stride()
    }
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let name = args[0].as_str();
        match role {
            // Sends 0..count, then idles holding its shard.
            "send-then-hold" => {
                let count: u64 = args[1].parse().unwrap();
                let tx = Sender::<u64>::open(name).unwrap();
                for i in 0..count {
                    tx.send(i).unwrap();
                }
                sleep_forever(tx);
            }
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
            // Pokes a sender of a channel the parent scribbles on, until it
            // reports disconnection (corruption found, or the receiver
            // gone). It must neither panic nor hang.
            "send-under-fire" => {
                let tx = Sender::<u64>::open(name).unwrap();
                let mut rng = Rng::with_env_seed(args[1].parse().unwrap());
                let mut tally = Tally::default();
                while !tally.tx_dead {
                    poke_sender(&tx, &mut rng, &mut tally);
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
    let name = unique_name("mpsc-hostile-layout");
    let _cleanup = Cleanup(name.clone());
    let g = Geometry {
        shards: 4,
        capacity: 64,
    };
    let me = std::process::id();
    let options = Options::new().capacity(64).shards(4).spin(Duration::ZERO);
    let (tx, rx) = mpsc::channel_with::<u64>(&name, &options).unwrap();
    let tx2 = tx.try_clone().unwrap();
    let file = shm_file(&name);

    // DESIGN §7: the header and the fixed control blocks, plus
    // `capacity * size_of::<T>()` for each shard.
    let size = file.metadata().unwrap().len();
    assert_eq!(size, g.total(), "segment size");
    assert_eq!(
        size,
        g.shared() + 128 + g.shards * (384 + g.capacity * ELEM),
        "segment size: header, control blocks and the shards' slots, nothing more"
    );
    assert_eq!(g.shared(), 640);
    assert_eq!(
        Geometry {
            shards: 16,
            capacity: 1
        }
        .shared(),
        768
    );

    assert_eq!(&read_bytes::<8>(&file, MAGIC), b"SHMCHAN\0");
    assert_eq!(read_u32(&file, VERSION), 2);
    assert_eq!(read_u32(&file, FLAVOR), 2, "mpsc");
    assert_eq!(read_u64(&file, CAPACITY), 64);
    assert_eq!(read_u64(&file, ELEM_SIZE), 8);
    assert_eq!(read_u64(&file, ELEM_ALIGN), 8);
    assert_eq!(read_u64(&file, SCHEMA), <u64 as shmchan::ShmSafe>::SCHEMA);
    assert_eq!(read_u64(&file, TOTAL_SIZE), g.total());
    assert_eq!(read_u32(&file, CREATOR_PID), me);
    assert_eq!(read_u32(&file, ENDPOINTS), 5);
    assert_eq!(read_u32(&file, RINGS), 4);
    assert_eq!(read_u32(&file, TYPE_NAME_LEN), 3);
    assert_eq!(&read_bytes::<3>(&file, TYPE_NAME), b"u64");
    assert_eq!(read_u32(&file, INIT), INITIALIZED);
    assert_eq!(read_u32(&file, UNLINKED), 0);
    assert_eq!(
        read_u32(&file, ATTACHED_EVER),
        3,
        "receiver and sender bits"
    );

    // The endpoint table: receiver, then one slot per shard, in order.
    let receiver_word = read_u64(&file, g.endpoint(0));
    assert_eq!(receiver_word as u32, me);
    assert_eq!(receiver_word >> 32, 0, "the word is the pid alone");
    assert_eq!(read_u64(&file, g.endpoint(1)), receiver_word, "tx: shard 0");
    assert_eq!(
        read_u64(&file, g.endpoint(2)),
        receiver_word,
        "tx2: shard 1"
    );
    assert_eq!(read_u64(&file, g.endpoint(3)), 0);
    assert_eq!(read_u64(&file, g.endpoint(4)), 0);

    // Indices and slots, per shard.
    for i in 0..5 {
        tx.send(100 + i).unwrap();
    }
    for i in 0..3 {
        tx2.send(200 + i).unwrap();
    }
    assert_eq!(read_u64(&file, g.tail(0)), 5);
    assert_eq!(read_u64(&file, g.tail(1)), 3);
    assert_eq!(read_u64(&file, g.tail(2)), 0);
    for i in 0..5 {
        assert_eq!(read_u64(&file, g.slots(0) + 8 * i), 100 + i);
    }
    for i in 0..3 {
        assert_eq!(read_u64(&file, g.slots(1) + 8 * i), 200 + i);
    }
    let mut got: Vec<u64> = rx.try_iter().collect();
    got.sort_unstable();
    assert_eq!(got, [100, 101, 102, 103, 104, 200, 201, 202]);
    assert_eq!(read_u64(&file, g.head(0)), 5);
    assert_eq!(read_u64(&file, g.head(1)), 3);
    assert_eq!(read_u64(&file, g.high_water(0)), 5);
    assert_eq!(read_u64(&file, g.high_water(1)), 3);

    // A slot written through the file is what the receiver reads.
    tx.send(7).unwrap();
    write_u64(&file, g.slots(0) + 8 * 5, 0xFEED);
    assert_eq!(rx.recv(), Ok(0xFEED));

    // Refusals are counted in the shard's own words.
    while tx.try_send(0).is_ok() {}
    assert_eq!(read_u64(&file, g.refusals(0)), 1);
    assert_eq!(read_u64(&file, g.refusals(1)), 0);
    assert_eq!(rx.try_iter().count(), 64);

    // The receiver asleep in recv counts itself in the shared doorbell, and
    // the send that wakes it bumps the futex word.
    let seq_before = read_u32(&file, g.not_empty());
    let sleeper = std::thread::spawn(move || {
        let result = rx.recv_timeout(PATIENCE);
        (rx, result)
    });
    wait_until(PATIENCE, "the receiver sleeps on not_empty", || {
        read_u32(&file, g.not_empty() + 4) == 1
    });
    for shard in 0..g.shards {
        assert_eq!(read_u32(&file, g.not_full(shard) + 4), 0);
    }
    tx2.send(9).unwrap();
    let (rx, result) = sleeper.join().unwrap();
    assert_eq!(result, Ok(9));
    assert_ne!(
        read_u32(&file, g.not_empty()),
        seq_before,
        "the wake-up bumps the futex word"
    );
    assert_eq!(read_u32(&file, g.not_empty() + 4), 0);

    // A sender asleep on its full ring counts itself in its shard's doorbell.
    for i in 0..64 {
        tx2.try_send(i).unwrap();
    }
    let seq_before = read_u32(&file, g.not_full(1));
    let blocked = std::thread::spawn(move || {
        let result = tx2.send_timeout(64, PATIENCE);
        (tx2, result)
    });
    wait_until(PATIENCE, "the sender sleeps on its not_full", || {
        read_u32(&file, g.not_full(1) + 4) == 1
    });
    assert_eq!(read_u32(&file, g.not_full(0) + 4), 0);
    assert_eq!(rx.recv(), Ok(0));
    let (tx2, result) = blocked.join().unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert_ne!(read_u32(&file, g.not_full(1)), seq_before);
    assert_eq!(read_u32(&file, g.not_full(1) + 4), 0);
    assert_eq!(rx.try_iter().count(), 64);

    // A sleeper count left behind by a predecessor (killed asleep) is
    // forgotten by the endpoint that takes its role or shard over.
    drop(rx);
    write_u32(&file, g.not_empty() + 4, 7);
    let rx = Receiver::<u64>::open(&name).unwrap();
    assert_eq!(read_u32(&file, g.not_empty() + 4), 0);
    drop(tx2);
    write_u32(&file, g.not_full(1) + 4, 5);
    let tx2 = tx.try_clone().unwrap();
    assert_eq!(
        read_u32(&file, g.not_full(1) + 4),
        0,
        "the clone took shard 1"
    );
    assert_eq!(read_u64(&file, g.endpoint(2)), receiver_word);
    tx2.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));
}

// ---------------------------------------------------------------------------
// Indices.

/// A channel of `u64` with 4 shards of 64, senders on shards 0 and 1.
struct Victim {
    _cleanup: Cleanup,
    name: String,
    g: Geometry,
    rx: Receiver<u64>,
    senders: Vec<Sender<u64>>,
    file: File,
}

impl Victim {
    fn new(tag: &str, senders: usize) -> Self {
        let name = unique_name(tag);
        let cleanup = Cleanup(name.clone());
        let g = Geometry {
            shards: 4,
            capacity: 16,
        };
        // A short spin: the 1 ms timeouts then spend their time asleep.
        let options = Options::new()
            .capacity(g.capacity as usize)
            .shards(g.shards as usize)
            .spin(Duration::from_micros(20));
        let rx = Receiver::<u64>::create_with(&name, &options).unwrap();
        let senders = (0..senders)
            .map(|_| Sender::<u64>::open_with(&name, &options).unwrap())
            .collect();
        let file = shm_file(&name);
        Self {
            _cleanup: cleanup,
            name,
            g,
            rx,
            senders,
            file,
        }
    }
}

#[test]
fn a_tail_far_ahead_of_the_head_makes_the_receiver_report_disconnection() {
    within(Duration::from_secs(60), "the tail scribble", || {
        let v = Victim::new("mpsc-hostile-tail", 2);
        v.senders[0].send(1).unwrap();
        v.senders[1].send(2).unwrap();
        write_u64(&v.file, v.g.tail(0), 1 << 40);
        let mut got = Vec::new();
        loop {
            match v.rx.try_recv() {
                Ok(value) => got.push(value),
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => panic!("a corrupt shard was taken for an empty one"),
            }
            assert!(got.len() <= 2, "{got:?}");
        }
        // Corruption is sticky, for every kind of receive, and nothing
        // blocks on it.
        assert_eq!(v.rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(v.rx.recv(), Err(RecvError));
        assert_eq!(
            v.rx.recv_timeout(PATIENCE),
            Err(RecvTimeoutError::Disconnected)
        );
        let mut buf = [0u64; 8];
        assert_eq!(
            v.rx.try_recv_batch(&mut buf),
            Err(TryRecvError::Disconnected)
        );
        assert_eq!(v.rx.recv_batch(&mut buf), Err(RecvError));
        assert_eq!(v.rx.iter().count(), 0);
        // Repairing the word does not revive it.
        write_u64(&v.file, v.g.tail(0), 1);
        assert_eq!(v.rx.try_recv(), Err(TryRecvError::Disconnected));
        // The hints stay within bounds.
        let most = (v.g.shards * v.g.capacity) as usize;
        assert!(v.rx.len() <= most);
        assert!(v.rx.stats().len <= most as u64);
        let _ = (v.rx.is_full(), v.rx.is_empty(), format!("{:?}", v.rx));
        // The channel still goes away cleanly.
        let name = v.name.clone();
        drop(v);
        assert!(!common::segment_exists(&name));
    });
}

#[test]
fn a_head_beyond_the_tail_makes_the_sender_report_disconnection() {
    within(Duration::from_secs(60), "the head scribble", || {
        let v = Victim::new("mpsc-hostile-head", 2);
        let tx = &v.senders[0];
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        write_u64(&v.file, v.g.head(0), 1 << 50);
        // The sender trusts its cached head until the ring looks full; then
        // it reads the head and finds it impossible.
        let mut sent = 3;
        let value = loop {
            match tx.try_send(sent) {
                Ok(()) => sent += 1,
                Err(TrySendError::Disconnected(value)) => break value,
                Err(TrySendError::Full(_)) => panic!("a corrupt head was taken for a full ring"),
            }
            assert!(sent <= v.g.capacity, "sent {sent} into a ring of 16");
        };
        assert_eq!(value, sent, "the message is handed back");
        assert!(matches!(tx.send(5), Err(SendError(5))));
        assert!(matches!(
            tx.send_timeout(6, PATIENCE),
            Err(SendTimeoutError::Disconnected(6))
        ));
        assert_eq!(tx.send_batch(&[1, 2]), Err(SendError(0)));
        assert!(matches!(
            tx.try_send_batch(&[1]),
            Err(TrySendError::Disconnected(()))
        ));
        assert!(tx.len() <= tx.capacity());
        let _ = (tx.is_full(), tx.stats());
        // The other sender's shard is untouched, and the receiver takes
        // what both published.
        v.senders[1].send(tagged(1, 0)).unwrap();
        let got: Vec<u64> = v.rx.try_iter().collect();
        assert!(got.contains(&tagged(1, 0)), "{got:?}");
        assert!(got.len() as u64 <= sent + 1, "{got:?}");
    });
}

#[test]
fn contradictory_indices_of_a_free_shard_refuse_attach_until_repaired() {
    within(
        Duration::from_secs(60),
        "attaching to scribbled shards",
        || {
            let v = Victim::new("mpsc-hostile-attach", 1);
            // Shard 1 is the first free one: the next sender takes it.
            for (head, tail) in [(0, 17), (0, 1 << 40), (0, u64::MAX), (5, 0), (1 << 50, 3)] {
                write_u64(&v.file, v.g.head(1), head);
                write_u64(&v.file, v.g.tail(1), tail);
                match Sender::<u64>::open(&v.name) {
                    Err(Error::Corrupt { detail, .. }) => {
                        assert!(detail.contains("ring 1"), "{detail}")
                    }
                    other => panic!("head {head}, tail {tail}: expected Corrupt, got {other:?}"),
                }
                assert!(matches!(
                    v.senders[0].try_clone(),
                    Err(Error::Corrupt { .. })
                ));
            }
            write_u64(&v.file, v.g.head(1), 0);
            write_u64(&v.file, v.g.tail(1), 0);
            // Refused, the opener left the shard free.
            let tx = Sender::<u64>::open(&v.name).unwrap();
            tx.send(7).unwrap();
            assert_eq!(v.rx.recv_timeout(PATIENCE), Ok(7));

            // A new receiver attaches every shard: one contradictory shard
            // refuses it.
            let Victim {
                _cleanup,
                name,
                g,
                rx,
                senders,
                file,
            } = v;
            drop(rx);
            write_u64(&file, g.tail(3), 1 << 40);
            match Receiver::<u64>::open(&name) {
                Err(Error::Corrupt { detail, .. }) => {
                    assert!(detail.contains("ring 3"), "{detail}")
                }
                other => {
                    panic!("a receiver over a scribbled shard: expected Corrupt, got {other:?}")
                }
            }
            write_u64(&file, g.tail(3), 0);
            let rx = Receiver::<u64>::open(&name).unwrap();
            tx.send(8).unwrap();
            senders[0].send(9).unwrap();
            let mut got: Vec<u64> = (0..2).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
            got.sort_unstable();
            assert_eq!(got, [8, 9]);
        },
    );
}

#[test]
fn plausible_indices_are_taken_at_face_value_but_bounded() {
    within(Duration::from_secs(60), "in-range scribbles", || {
        let v = Victim::new("mpsc-hostile-plausible", 1);
        // A free shard claims 3 messages that nobody sent: the receiver
        // takes them (any bytes are a valid u64), and no more.
        write_u64(&v.file, v.g.tail(2), 3);
        write_u64(&v.file, v.g.slots(2), 0xABCD);
        let got: Vec<u64> = v.rx.try_iter().collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.contains(&0xABCD), "{got:?}");
        assert_eq!(v.rx.try_recv(), Err(TryRecvError::Empty));
        // The channel keeps working.
        v.senders[0].send(5).unwrap();
        assert_eq!(v.rx.recv_timeout(PATIENCE), Ok(5));
    });
}

// ---------------------------------------------------------------------------
// The header.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// `Error::Corrupt` or `Error::Incompatible`.
    Refused,
    /// Self-consistent: refused, or opened and sound.
    RefusedOrSound,
}

#[test]
fn scribbled_shard_and_endpoint_counts_refuse_open() {
    use Expect::{Refused, RefusedOrSound};
    let default = Geometry {
        shards: 16,
        capacity: 1024,
    };
    let layout_for = |shards: u64| {
        Geometry {
            shards,
            capacity: 1024,
        }
        .total()
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<Write>, Expect)> = vec![
        ("rings 0", vec![(RINGS, u32b(0))], Refused),
        ("rings 1", vec![(RINGS, u32b(1))], Refused),
        ("rings 15", vec![(RINGS, u32b(15))], Refused),
        ("rings 17", vec![(RINGS, u32b(17))], Refused),
        ("rings 1024", vec![(RINGS, u32b(1024))], Refused),
        ("rings 1025", vec![(RINGS, u32b(1025))], Refused),
        ("rings max", vec![(RINGS, u32b(u32::MAX))], Refused),
        ("endpoints 0", vec![(ENDPOINTS, u32b(0))], Refused),
        ("endpoints 16", vec![(ENDPOINTS, u32b(16))], Refused),
        ("endpoints 18", vec![(ENDPOINTS, u32b(18))], Refused),
        ("endpoints max", vec![(ENDPOINTS, u32b(u32::MAX))], Refused),
        ("rings 0, endpoints 1", vec![(RINGS, u32b(0)), (ENDPOINTS, u32b(1))], Refused),
        ("rings 1025, endpoints 1026", vec![(RINGS, u32b(1025)), (ENDPOINTS, u32b(1026))], Refused),
        ("rings max, endpoints 0", vec![(RINGS, u32b(u32::MAX)), (ENDPOINTS, u32b(0))], Refused),
        // Consistent counts, but the file is smaller than they need.
        ("rings 1024, endpoints 1025",
            vec![(RINGS, u32b(1024)), (ENDPOINTS, u32b(1025))], Refused),
        ("rings 1024, endpoints 1025, total_size to match",
            vec![(RINGS, u32b(1024)), (ENDPOINTS, u32b(1025)), (TOTAL_SIZE, u64b(layout_for(1024)))], Refused),
        ("rings 17, endpoints 18, total_size to match",
            vec![(RINGS, u32b(17)), (ENDPOINTS, u32b(18)), (TOTAL_SIZE, u64b(layout_for(17)))], Refused),
        // Consistent counts of a smaller channel that fits in the file: an
        // opener may believe it, and must stay sound.
        ("rings 3, endpoints 4",
            vec![(RINGS, u32b(3)), (ENDPOINTS, u32b(4))], Refused),
        ("rings 3, endpoints 4, total_size to match",
            vec![(RINGS, u32b(3)), (ENDPOINTS, u32b(4)), (TOTAL_SIZE, u64b(layout_for(3)))], RefusedOrSound),
        ("rings 1, endpoints 2, total_size to match",
            vec![(RINGS, u32b(1)), (ENDPOINTS, u32b(2)), (TOTAL_SIZE, u64b(layout_for(1)))], RefusedOrSound),
        ("flavor spsc", vec![(FLAVOR, u32b(1))], Refused),
        ("flavor mpmc", vec![(FLAVOR, u32b(3))], Refused),
        ("flavor max", vec![(FLAVOR, u32b(u32::MAX))], Refused),
        ("capacity 512", vec![(CAPACITY, u64b(512))], Refused),
        ("total_size +128", vec![(TOTAL_SIZE, u64b(default.total() + 128))], Refused),
    ];

    within(
        Duration::from_secs(120),
        "opening scribbled headers",
        move || {
            for (what, writes, expect) in cases {
                let name = unique_name("mpsc-hostile-header");
                let _cleanup = Cleanup(name.clone());
                let rx = Receiver::<u64>::create(&name, 1024).unwrap();
                let file = shm_file(&name);
                let original: [u8; HEADER_REGION as usize] = read_bytes(&file, 0);
                for (offset, bytes) in &writes {
                    write_bytes(&file, *offset, bytes);
                }
                let opened = Sender::<u64>::open(&name);
                let refused = |result: &Result<Sender<u64>, Error>| {
                    matches!(
                        result,
                        Err(Error::Corrupt { .. } | Error::Incompatible { .. })
                    )
                };
                match (&opened, expect) {
                    (result, _) if refused(result) => {
                        let text = result.as_ref().unwrap_err().to_string();
                        assert!(text.contains(&name), "{what}: {text}");
                    }
                    (Ok(tx), RefusedOrSound) => {
                        eprintln!("{what}: opened, believing {} shards", tx.shards());
                        // Whatever it believes, every call returns.
                        for i in 0..100 {
                            let _ = tx.try_send(i);
                        }
                        let _ = (tx.len(), tx.is_full(), tx.stats(), tx.shards());
                        assert!(tx.len() <= tx.capacity());
                    }
                    (other, _) => panic!("{what}: expected {expect:?}, got {other:?}"),
                }
                let opened_ok = opened.is_ok();
                drop(opened);
                // A receiver opening it is refused the same way (a valid header
                // would be Busy: the receiver is held).
                match Receiver::<u64>::open(&name) {
                    Err(Error::Corrupt { .. } | Error::Incompatible { .. }) => {}
                    Err(Error::Busy { .. }) if expect == RefusedOrSound => {}
                    other => panic!("{what}: a receiver: expected a refusal, got {other:?}"),
                }
                // Repaired, it opens: a refusal left nothing behind. (An opener
                // that believed a smaller layout wrote its indices and doorbells
                // into other words, so then anything may follow but unsoundness.)
                write_bytes(&file, 0, &original);
                if opened_ok {
                    let _ = Sender::<u64>::open(&name).map(|tx| tx.try_send(1));
                    let _ = (rx.try_recv(), rx.len(), rx.stats());
                } else {
                    let tx = Sender::<u64>::open(&name)
                        .unwrap_or_else(|err| panic!("{what}: open after repair: {err}"));
                    tx.send(0xC0FFEE).unwrap();
                    assert_eq!(rx.recv_timeout(PATIENCE), Ok(0xC0FFEE), "{what}");
                }
            }
        },
    );
}

// ---------------------------------------------------------------------------
// The endpoint table.

#[test]
fn dead_owner_words_in_sender_slots_do_not_keep_the_receiver_waiting() {
    let name = unique_name("mpsc-hostile-owners");
    let _cleanup = Cleanup(name.clone());
    let g = Geometry {
        shards: 16,
        capacity: 8,
    };
    let (tx, rx) = mpsc::channel::<u64>(&name, 8).unwrap();
    let file = shm_file(&name);
    let words = dead_words(read_u64(&file, g.endpoint(0)));
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    for slot in 1..=g.shards {
        write_u64(&file, g.endpoint(slot), words[slot as usize % words.len()]);
    }
    within(
        NOTICE + NOTICE,
        "receiving past dead owner words",
        move || {
            assert_eq!(rx.recv(), Ok(1));
            assert_eq!(rx.recv(), Ok(2));
            // The words name no live process: once probed, the senders are gone.
            assert_eq!(rx.recv_timeout(NOTICE), Err(RecvTimeoutError::Disconnected));
            assert_eq!(rx.recv(), Err(RecvError));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
            let stats = rx.stats();
            assert!(
                stats
                    .endpoints
                    .iter()
                    .all(|e| e.role == "receiver" || !e.alive),
                "{stats:?}"
            );
        },
    );
}

#[test]
fn a_receiver_blocked_in_recv_ignores_dead_owner_words_once_the_real_sender_dies() {
    let name = unique_name("mpsc-hostile-owners-blocked");
    let _cleanup = Cleanup(name.clone());
    let g = Geometry {
        shards: 16,
        capacity: 8,
    };
    let options = Options::new().capacity(8).spin(Duration::ZERO);
    let rx = Receiver::<u64>::create_with(&name, &options).unwrap();
    let file = shm_file(&name);
    let words = dead_words(read_u64(&file, g.endpoint(0)));
    let mut peer = Peer::spawn("send-then-hold", &[&name, "1"]);
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(0));
    assert_eq!(
        read_u64(&file, g.endpoint(1)) as u32,
        peer.pid(),
        "the peer holds shard 0"
    );
    let waiter = std::thread::spawn(move || rx.recv());
    for slot in 2..=g.shards {
        write_u64(&file, g.endpoint(slot), words[slot as usize % words.len()]);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !waiter.is_finished(),
        "recv returned while a live sender was attached"
    );
    peer.kill_and_reap();
    let result = within(
        NOTICE + NOTICE,
        "recv after the only live sender died",
        move || waiter.join().unwrap(),
    );
    assert_eq!(result, Err(RecvError));
}

#[test]
fn sender_slots_holding_dead_owner_words_are_taken_over() {
    let name = unique_name("mpsc-hostile-takeover");
    let _cleanup = Cleanup(name.clone());
    let g = Geometry {
        shards: 16,
        capacity: 8,
    };
    let rx = Receiver::<u64>::create(&name, 8).unwrap();
    let file = shm_file(&name);
    let me = read_u64(&file, g.endpoint(0));
    let words = dead_words(me);
    for slot in 1..=g.shards {
        write_u64(&file, g.endpoint(slot), words[slot as usize % words.len()]);
    }
    let senders: Vec<Sender<u64>> = (0..g.shards)
        .map(|i| {
            Sender::<u64>::open(&name)
                .unwrap_or_else(|err| panic!("sender {i} over a dead owner word: {err}"))
        })
        .collect();
    for slot in 1..=g.shards {
        assert_eq!(read_u64(&file, g.endpoint(slot)), me);
    }
    match Sender::<u64>::open(&name) {
        Err(Error::Busy { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("a 17th sender: expected Busy, got {other:?}"),
    }
    for (i, tx) in senders.iter().enumerate() {
        tx.send(i as u64).unwrap();
    }
    let mut got: Vec<u64> = rx.try_iter().collect();
    got.sort_unstable();
    assert_eq!(got, (0..16).collect::<Vec<_>>());
}

/// A word scribbled over a live receiver's slot neither kills it (it still
/// holds its slot's lock: a sender blocked on it stays blocked until it
/// makes room) nor keeps it alive once it is gone (the word names no lock
/// holder, so the sender then reaps it and fails).
#[test]
fn a_scribbled_owner_word_neither_kills_a_live_receiver_nor_outlives_it() {
    let name = unique_name("mpsc-hostile-receiver-word");
    let _cleanup = Cleanup(name.clone());
    let g = Geometry {
        shards: 16,
        capacity: 4,
    };
    let options = Options::new().capacity(4).spin(Duration::ZERO);
    let (tx, rx) = mpsc::channel_with::<u64>(&name, &options).unwrap();
    let file = shm_file(&name);
    let words = dead_words(read_u64(&file, g.endpoint(0)));
    for i in 0..4 {
        tx.try_send(i).unwrap();
    }
    write_u64(&file, g.endpoint(0), words[0]);
    assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
    let blocked = std::thread::spawn(move || (tx.send(4), tx));
    assert_eq!(rx.recv(), Ok(0));
    let (result, tx) = within(NOTICE, "a send blocked on a live receiver", move || {
        blocked.join().unwrap()
    });
    assert_eq!(result, Ok(()));
    let stats = tx.stats();
    assert!(
        stats
            .endpoints
            .iter()
            .any(|e| e.role == "receiver" && e.alive),
        "the scribbled receiver lives: {stats:?}"
    );
    drop(rx);
    assert_eq!(
        read_u64(&file, g.endpoint(0)),
        words[0],
        "not ours to clear"
    );
    let result = within(NOTICE + NOTICE, "a send to a dropped receiver", move || {
        tx.send(99)
    });
    assert!(matches!(result, Err(SendError(99))), "{result:?}");
}

// ---------------------------------------------------------------------------
// Doorbells.

/// Doorbell words and counters are hints: scribbling on them may cost
/// wake-ups (bounded by the liveness interval) but never a message, a
/// duplicate, or a disconnection. One sender in another process and one
/// here, nobody spinning: everyone sleeps on the words being scribbled on.
///
/// (A sleeper count scribbled to `u32::MAX` hides the sleepers that come
/// after it until it is scribbled again: each of their waits then lasts a
/// liveness interval, 100 ms, so this test may take seconds.)
#[test]
fn scribbled_doorbells_and_counters_do_not_disturb_delivery() {
    const MESSAGES: u64 = 3000;
    let name = unique_name("mpsc-hostile-doorbells");
    let _cleanup = Cleanup(name.clone());
    let g = Geometry {
        shards: 4,
        capacity: 16,
    };
    let options = Options::new().capacity(16).shards(4).spin(Duration::ZERO);
    let rx = Receiver::<u64>::create_with(&name, &options).unwrap();
    let tx = Sender::<u64>::open_with(&name, &options).unwrap();
    let file = shm_file(&name);
    let peer = Peer::spawn("send-sleepy", &[&name, "1", &MESSAGES.to_string()]);
    // Both attached before either can leave: otherwise the channel would be
    // (rightly) disconnected between one sender's exit and the other's
    // attach.
    wait_until(PATIENCE, "the peer attached", || {
        rx.stats()
            .endpoints
            .iter()
            .filter(|e| e.role == "sender")
            .count()
            == 2
    });
    within(
        Duration::from_secs(240),
        "delivery under doorbell scribbling",
        move || {
            let sender = std::thread::spawn(move || {
                let mut rng = Rng::with_env_seed(0x5EED_0D00);
                for seq in 0..MESSAGES {
                    if seq % 100 == 0 {
                        let shard = rng.below(g.shards);
                        match rng.below(6) {
                            0 => write_u32(&file, g.not_empty(), rng.next() as u32),
                            1 => write_u32(&file, g.not_empty() + 4, hostile_u32(&mut rng, 1)),
                            2 => write_u32(&file, g.not_full(shard), rng.next() as u32),
                            3 => write_u32(&file, g.not_full(shard) + 4, hostile_u32(&mut rng, 0)),
                            4 => write_u64(&file, g.high_water(shard), rng.next()),
                            _ => write_u64(&file, g.refusals(shard), rng.next()),
                        }
                    }
                    // Now and then `try_send`, which counts refusals.
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
        },
    );
}

// ---------------------------------------------------------------------------
// Random scribbling.

common::hostile::pokes!(mpsc, batch: 40, most: |end| end.capacity() * end.shards());

/// One scribble: a shard's index, counter, doorbell word or slot bytes, the
/// shared doorbell, or (with `owners`) an endpoint word, given a dead owner
/// or zero.
fn scribble(file: &File, g: Geometry, rng: &mut Rng, owners: Option<&[u64]>) {
    let shard = rng.below(g.shards);
    let word = |rng: &mut Rng, offset| {
        let value = hostile_u64(rng, read_u64(file, offset), g.capacity);
        write_u64(file, offset, value);
    };
    let bell = |rng: &mut Rng, offset| {
        let offset = offset + 4 * rng.below(2);
        let value = hostile_u32(rng, read_u32(file, offset));
        write_u32(file, offset, value);
    };
    match rng.below(if owners.is_some() { 12 } else { 11 }) {
        0 | 1 => word(rng, g.head(shard)),
        2 | 3 => word(rng, g.tail(shard)),
        4 => word(rng, g.high_water(shard)),
        5 => word(rng, g.refusals(shard)),
        6 => bell(rng, g.not_full(shard)),
        7 => bell(rng, g.not_empty()),
        8..=10 => {
            let bytes_len = g.capacity * ELEM;
            let start = rng.below(bytes_len);
            let len = 1 + rng.below(16.min(bytes_len - start));
            let mut bytes = [0u8; 16];
            rng.bytes(&mut bytes[..len as usize]);
            write_bytes(file, g.slots(shard) + start, &bytes[..len as usize]);
        }
        _ => {
            let owners = owners.unwrap();
            let slot = rng.below(g.shards + 1);
            let value = if rng.below(3) == 0 {
                0
            } else {
                owners[rng.below(owners.len() as u64) as usize]
            };
            write_u64(file, g.endpoint(slot), value);
        }
    }
}

#[test]
fn random_scribbles_never_panic_or_hang() {
    within(Duration::from_secs(180), "the scribbling run", || {
        const ROUNDS: u64 = 1500;
        let mut rng = Rng::with_env_seed(0x5EED_0E01);
        let mut owners = None;
        let (corrupted, ok) = hostile::scribble_in_process(
            ROUNDS,
            || Victim::new("mpsc-hostile-random", 3),
            |victim| victim.name.clone(),
            |victim, tally| {
                // Owner words of this process, taken from the first victim.
                let owners = owners.get_or_insert_with(|| {
                    dead_words(read_u64(&victim.file, victim.g.endpoint(0)))
                });
                scribble(&victim.file, victim.g, &mut rng, Some(owners));
                for _ in 0..1 + rng.below(6) {
                    let pick = rng.below(victim.senders.len() as u64 + 1) as usize;
                    match victim.senders.get(pick) {
                        Some(tx) => poke_sender(tx, &mut rng, tally),
                        None => poke_receiver(&victim.rx, &mut rng, tally),
                    }
                }
            },
        );
        eprintln!("{ROUNDS} rounds, {corrupted} corruptions detected, {ok} calls succeeded");
    });
}

#[test]
fn random_scribbles_with_senders_in_other_processes() {
    within(Duration::from_secs(180), "the scribbling run", || {
        const GENERATIONS: u64 = 4;
        const ROUNDS: u64 = 300;
        let mut rng = Rng::with_env_seed(0x5EED_0E02);
        let mut corrupted = 0;
        for generation in 0..GENERATIONS {
            let name = unique_name("mpsc-hostile-peers");
            let _cleanup = Cleanup(name.clone());
            let g = Geometry {
                shards: 4,
                capacity: 16,
            };
            let options = Options::new()
                .capacity(16)
                .shards(4)
                .spin(Duration::from_micros(20));
            let rx = Receiver::<u64>::create_with(&name, &options).unwrap();
            let file = shm_file(&name);
            let peers: Vec<Peer> = (0..2)
                .map(|i| {
                    let seed = (0x5EED_0200 + 2 * generation + i).to_string();
                    Peer::spawn("send-under-fire", &[&name, &seed])
                })
                .collect();
            wait_until(PATIENCE, "both peers send", || {
                rx.stats()
                    .endpoints
                    .iter()
                    .filter(|e| e.role == "sender")
                    .count()
                    == 2
            });
            let detected = hostile::scribble_until_detected(ROUNDS, |tally| {
                scribble(&file, g, &mut rng, None);
                for _ in 0..1 + rng.below(6) {
                    poke_receiver(&rx, &mut rng, tally);
                }
            });
            corrupted += u64::from(detected);
            // Gone: the peers must notice and exit normally, not panic or hang.
            drop(rx);
            for mut peer in peers {
                let status = peer.wait(PATIENCE);
                assert!(
                    status.success(),
                    "a sending peer failed under scribbling: {status}"
                );
            }
        }
        hostile::assert_detected(corrupted);
    });
}

// The control words shared with spsc (`init`, `unlinked`, the lock) are
// scribbled on by tests/hostile.rs.
