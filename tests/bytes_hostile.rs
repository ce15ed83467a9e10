//! Hostile shared memory against the byte stream: the tests write into a
//! live byte channel's segment through its `/dev/shm` file (the pages every
//! endpoint maps) — record lengths and kinds, wrap markers where they do
//! not belong, positions, counters, doorbells — and check that the
//! endpoints stay sound: every call returns, with a message no longer than
//! `max_message_len()` or an error, and never panics, hangs or reads out of
//! bounds (DESIGN §3, §5).
//!
//! Layout of a byte channel's segment (checked against the library by
//! `layout_offsets_match_the_library`): the header as for spsc, the
//! endpoint table at 576 (receiver, sender), ring 0 at 640: `head` and the
//! high-water mark, `tail` and refusals at +128, the doorbells `not_empty`
//! at +256 and `not_full` at +384 (futex word, then sleeper count), the
//! sent and received counters at +512 and +640, the ring's bytes at +768.
//! A record is an 8-byte header word, `len | kind << 32` (kind 1 a
//! message, 2 a wrap marker), then the payload padded to 8 bytes.

mod common;

use common::hostile::{self, Tally, TIMEOUT};
use common::shm::{read_u32, read_u64, shm_file, write_u32, write_u64};
use common::{unique_name, wait_until, within, Cleanup, Peer, Rng};
use shmchan::bytes::{
    self, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender, TryRecvError,
    TrySendError,
};
use shmchan::{Error, Options};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);

// Header fields.
const FLAVOR: u64 = 12;
const CAPACITY: u64 = 16;
const ELEM_SIZE: u64 = 24;
const ELEM_ALIGN: u64 = 32;
const TOTAL_SIZE: u64 = 48;
const TYPE_NAME_LEN: u64 = 80;
const TYPE_NAME: u64 = 88;
const FLAVOR_BYTES: u32 = 4;
// The endpoint table.
const RECEIVER_SLOT: u64 = 576;
const SENDER_SLOT: u64 = 584;
// Ring 0.
const RING: u64 = 640;
const HEAD: u64 = RING;
const HIGH_WATER: u64 = RING + 8;
const TAIL: u64 = RING + 128;
const REFUSALS: u64 = RING + 136;
const NOT_EMPTY: u64 = RING + 256;
const NOT_FULL: u64 = RING + 384;
const SENT: u64 = RING + 512;
const RECEIVED: u64 = RING + 640;
const DATA: u64 = RING + 768;

const MESSAGE: u32 = 1;
const WRAP: u32 = 2;

fn header(kind: u32, len: u32) -> u64 {
    u64::from(kind) << 32 | u64::from(len)
}

/// A byte channel with both ends in this process, and its file.
struct Victim {
    _cleanup: Cleanup,
    name: String,
    tx: Sender,
    rx: Receiver,
    file: File,
}

impl Victim {
    fn new(capacity: usize) -> Self {
        let name = unique_name("bytes-hostile");
        let cleanup = Cleanup(name.clone());
        // A short spin: the 1 ms timeouts then spend their time asleep.
        let options = Options::new()
            .capacity(capacity)
            .spin(Duration::from_micros(20));
        let (tx, rx) = bytes::channel_with(&name, &options).unwrap();
        let file = shm_file(&name);
        Self {
            _cleanup: cleanup,
            name,
            tx,
            rx,
            file,
        }
    }

    /// Moves both positions to `offset` in the ring (a multiple of 8),
    /// with empty messages (8 bytes each).
    fn move_to(&mut self, offset: u64) {
        let capacity = self.tx.capacity() as u64;
        while read_u64(&self.file, TAIL) % capacity != offset {
            self.tx.try_send(b"").unwrap();
            assert_eq!(self.rx.try_recv().unwrap().len(), 0);
        }
    }

    fn head(&self) -> u64 {
        read_u64(&self.file, HEAD)
    }

    /// The file offset of ring position `position`.
    fn at(&self, position: u64) -> u64 {
        DATA + position % self.tx.capacity() as u64
    }
}

/// The offsets these tests write at are the library's: without this, a
/// layout change would turn every test here into a no-op.
#[test]
fn layout_offsets_match_the_library() {
    let name = unique_name("bytes-hostile-layout");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(64).spin(Duration::ZERO);
    let (tx, mut rx) = bytes::channel_with(&name, &options).unwrap();
    let file = shm_file(&name);
    let total = (DATA + 64).next_multiple_of(128);
    assert_eq!(file.metadata().unwrap().len(), total, "segment size");
    assert_eq!(read_u64(&file, TOTAL_SIZE), total);
    assert_eq!(read_u32(&file, FLAVOR), FLAVOR_BYTES);
    assert_eq!(read_u64(&file, CAPACITY), 64);
    assert_eq!(read_u64(&file, ELEM_SIZE), 1);
    assert_eq!(read_u64(&file, ELEM_ALIGN), 8);
    assert_eq!(read_u32(&file, TYPE_NAME_LEN), 5);
    let mut type_name = [0u8; 5];
    file.read_exact_at(&mut type_name, TYPE_NAME).unwrap();
    assert_eq!(&type_name, b"bytes");
    assert_eq!(read_u64(&file, RECEIVER_SLOT) as u32, std::process::id());
    assert_eq!(read_u64(&file, SENDER_SLOT) as u32, std::process::id());

    // A record: header word, payload, positions, counters.
    tx.send(b"hello").unwrap();
    assert_eq!(read_u64(&file, DATA), header(MESSAGE, 5));
    let mut payload = [0u8; 5];
    file.read_exact_at(&mut payload, DATA + 8).unwrap();
    assert_eq!(&payload, b"hello");
    assert_eq!(read_u64(&file, TAIL), 16);
    assert_eq!(read_u64(&file, SENT), 1);
    assert_eq!(&*rx.recv().unwrap(), b"hello");
    assert_eq!(read_u64(&file, HEAD), 16);
    assert_eq!(read_u64(&file, HIGH_WATER), 16);
    assert_eq!(read_u64(&file, RECEIVED), 1);
    // A payload written through the file is what the receiver reads.
    tx.send(b"abc").unwrap(); // 16..32
    file.write_all_at(b"xyz", DATA + 24).unwrap();
    assert_eq!(&*rx.recv().unwrap(), b"xyz");
    // A wrap marker: at 48, 16 bytes before the end, a 24-byte record
    // does not fit; the marker covers the rest and the record goes to 0.
    tx.send(&[1; 8]).unwrap(); // 32..48
    assert_eq!(rx.recv().unwrap().len(), 8);
    tx.send(&[2; 16]).unwrap();
    assert_eq!(read_u64(&file, DATA + 48), header(WRAP, 16));
    assert_eq!(read_u64(&file, DATA), header(MESSAGE, 16));
    assert_eq!(read_u64(&file, TAIL), 64 + 24);
    assert_eq!(&*rx.recv().unwrap(), &[2; 16]);
    assert_eq!(read_u64(&file, HEAD), 64 + 24);
    // Refusals.
    while tx.try_send(&[0; 24]).is_ok() {}
    assert_eq!(read_u64(&file, REFUSALS), 1);
    while rx.try_recv().is_ok() {}

    // The doorbell: a receiver asleep counts itself in `not_empty`'s
    // sleepers, and the send that wakes it bumps the futex word.
    let seq = read_u32(&file, NOT_EMPTY);
    let sleeper = std::thread::spawn(move || rx.recv_timeout(PATIENCE).map(|m| m.to_vec()));
    wait_until(PATIENCE, "the receiver sleeps on not_empty", || {
        read_u32(&file, NOT_EMPTY + 4) == 1
    });
    assert_eq!(read_u32(&file, NOT_FULL + 4), 0);
    tx.send(b"wake").unwrap();
    assert_eq!(sleeper.join().unwrap(), Ok(b"wake".to_vec()));
    assert_ne!(
        read_u32(&file, NOT_EMPTY),
        seq,
        "the wake-up bumps the futex word"
    );
    assert_eq!(read_u32(&file, NOT_EMPTY + 4), 0);
}

/// Everything a receiver that found its ring corrupt may do: report the
/// end (`Disconnected`), from every receiving call, at once, and go away
/// cleanly.
fn assert_receiver_refuses(what: &str, mut victim: Victim) {
    let rx = &mut victim.rx;
    assert_eq!(
        rx.try_recv().map(|m| m.len()),
        Err(TryRecvError::Disconnected),
        "{what}: try_recv"
    );
    assert_eq!(
        rx.try_recv().map(|m| m.len()),
        Err(TryRecvError::Disconnected),
        "{what}: try_recv again"
    );
    assert_eq!(
        rx.recv_timeout(PATIENCE).map(|m| m.len()),
        Err(RecvTimeoutError::Disconnected),
        "{what}: recv_timeout"
    );
    assert_eq!(rx.recv().map(|m| m.len()), Err(RecvError), "{what}: recv");
    let mut buf = Vec::new();
    assert_eq!(rx.recv_into(&mut buf), Err(RecvError), "{what}: recv_into");
    assert_eq!(rx.try_iter().next(), None, "{what}: try_iter");
    assert_eq!(rx.iter().next(), None, "{what}: iter");
    let _ = (rx.len(), rx.is_empty(), rx.stats(), format!("{rx:?}"));
    let name = victim.name.clone();
    drop(victim);
    assert!(
        !common::segment_exists(&name),
        "{what}: a corrupted channel is still unlinked when its ends drop"
    );
}

/// One corrupted record: `prepare` publishes records and scribbles; the
/// receiver must then refuse.
fn corrupt_case(what: &'static str, prepare: impl FnOnce(&mut Victim) + Send + 'static) {
    within(PATIENCE, what, move || {
        let mut victim = Victim::new(256);
        prepare(&mut victim);
        assert_receiver_refuses(what, victim);
    });
}

#[test]
fn corrupt_record_lengths_are_errors() {
    // Enough published (144 bytes) that only the length check can refuse.
    corrupt_case("length max_message_len + 1", |v| {
        v.tx.send(&[1; 120]).unwrap();
        v.tx.send(&[2; 8]).unwrap();
        write_u64(&v.file, DATA, header(MESSAGE, 121));
    });
    corrupt_case("length u32::MAX", |v| {
        v.tx.send(&[1; 120]).unwrap();
        v.tx.send(&[2; 8]).unwrap();
        write_u64(&v.file, DATA, header(MESSAGE, u32::MAX));
    });
    corrupt_case("length beyond the published bytes", |v| {
        v.tx.send(&[1; 8]).unwrap(); // a 16-byte record
        write_u64(&v.file, DATA, header(MESSAGE, 16));
    });
    corrupt_case("record crossing the ring's end", |v| {
        v.move_to(240);
        v.tx.send(&[1; 8]).unwrap(); // 240..256
        v.tx.send(&[2; 8]).unwrap(); // 0..16
        let at = v.at(240);
        write_u64(&v.file, at, header(MESSAGE, 16)); // 24 bytes from 240
    });
}

#[test]
fn corrupt_record_kinds_are_errors() {
    for (what, word) in [
        ("an all-zero header", 0),
        ("kind 0 with a length", header(0, 8)),
        ("kind 3", header(3, 8)),
        ("kind u32::MAX", header(u32::MAX, 8)),
        (
            "kind with the high bit set",
            header(0x8000_0000 | MESSAGE, 8),
        ),
        ("all ones", u64::MAX),
    ] {
        corrupt_case(what, move |v| {
            v.tx.send(&[1; 8]).unwrap();
            v.tx.send(&[2; 8]).unwrap();
            write_u64(&v.file, DATA, word);
        });
    }
    // An empty message is a message, not a marker: an all-zero header
    // after a real empty message is still refused.
    corrupt_case("an all-zero header after an empty message", |v| {
        v.tx.send(b"").unwrap(); // 0..8
        v.tx.send(&[1; 8]).unwrap(); // 8..24
        assert_eq!(v.rx.try_recv().unwrap().len(), 0);
        write_u64(&v.file, DATA + 8, 0);
    });
}

#[test]
fn wrap_markers_in_the_wrong_place_are_errors() {
    corrupt_case("a marker at the ring's start", |v| {
        v.tx.send(&[1; 8]).unwrap();
        write_u64(&v.file, DATA, header(WRAP, 256));
    });
    corrupt_case("a marker with nothing published after it", |v| {
        v.move_to(240);
        v.tx.send(&[1; 8]).unwrap(); // 240..256
        let at = v.at(240);
        write_u64(&v.file, at, header(WRAP, 16));
    });
    corrupt_case("a marker that skips into unpublished bytes", |v| {
        v.move_to(128);
        v.tx.send(&[1; 8]).unwrap(); // 128..144
        v.tx.send(&[2; 8]).unwrap(); // 144..160
        let at = v.at(128);
        write_u64(&v.file, at, header(WRAP, 128));
    });
    // A real wrap: marker at 240, a 24-byte record at 0.
    let real_wrap = |v: &mut Victim| {
        v.move_to(240);
        v.tx.send(&[1; 16]).unwrap();
        assert_eq!(read_u64(&v.file, v.at(240)), header(WRAP, 16));
    };
    corrupt_case("a marker followed by a marker", move |v| {
        real_wrap(v);
        write_u64(&v.file, DATA, header(WRAP, 256));
    });
    corrupt_case("a marker followed by a zero header", move |v| {
        real_wrap(v);
        write_u64(&v.file, DATA, 0);
    });
    corrupt_case(
        "a marker followed by a record longer than published",
        move |v| {
            real_wrap(v);
            write_u64(&v.file, DATA, header(MESSAGE, 24));
        },
    );
    corrupt_case("a marker followed by a record too long", move |v| {
        real_wrap(v);
        write_u64(&v.file, DATA, header(MESSAGE, 121));
    });
}

/// A wrap marker where the next record would have fit, here in front of
/// published records, hiding them. The ring's contract (src/ring/bytes.rs,
/// module notes) says a marker must stand where the record after it could
/// not fit and that anything else is `Corrupt`; the receiver must not
/// silently drop the records the marker covers.
///
/// Known failure: `Consumer::peek` does not make that check, and cannot as
/// things stand, because the producer itself writes such markers: a claim
/// that had to wrap, committed short enough to have fitted before the end,
/// keeps its marker (`Producer::commit`). Either the producer places a
/// short commit that fits before the end there (copying at most the bytes
/// to the end) and the consumer checks, or the contract drops the promise.
#[test]
fn a_wrap_marker_over_published_records_is_sound() {
    // A marker written over records that fit before the end looks exactly
    // like what a wrapping claim committed short leaves (legal), so the
    // receiver may skip to the record after it; it must deliver only whole
    // published records, in order, or refuse the ring.
    within(PATIENCE, "a marker over published records", || {
        let mut v = Victim::new(256);
        v.move_to(192);
        v.tx.send(&[1; 8]).unwrap(); // 192..208
        v.tx.send(&[2; 8]).unwrap(); // 208..224
        v.tx.send(&[3; 24]).unwrap(); // 224..256
        v.tx.send(&[4; 8]).unwrap(); // 0..16
        let at = v.at(192);
        write_u64(&v.file, at, header(WRAP, 64));
        match v.rx.try_recv().map(|m| m.to_vec()) {
            Ok(message) => assert_eq!(message, [4; 8], "only the record after the marker"),
            Err(TryRecvError::Disconnected) => {}
            Err(TryRecvError::Empty) => panic!("the record after the marker vanished"),
        }
    });
}

/// A real wrap marker whose length half was changed: the receiver ignores
/// it or refuses the ring, but never delivers something else.
#[test]
fn a_wrap_marker_with_a_scribbled_length_is_harmless_or_an_error() {
    for len in [0, 8, 17, 256, u32::MAX] {
        within(PATIENCE, "a scribbled marker length", move || {
            let mut v = Victim::new(256);
            v.move_to(240);
            v.tx.send(&[1; 16]).unwrap();
            let at = v.at(240);
            write_u64(&v.file, at, header(WRAP, len));
            match v.rx.try_recv().map(|m| m.to_vec()) {
                Ok(message) => assert_eq!(message, [1; 16], "marker length {len}"),
                Err(TryRecvError::Disconnected) => {}
                Err(TryRecvError::Empty) => panic!("marker length {len}: the record vanished"),
            }
        });
    }
}

#[test]
fn corrupt_positions_are_errors() {
    corrupt_case("a misaligned tail", |v| {
        v.tx.send(&[1; 8]).unwrap();
        let head = v.head();
        write_u64(&v.file, TAIL, head + 3);
    });
    corrupt_case("a tail more than a ring ahead", |v| {
        v.tx.send(&[1; 8]).unwrap();
        let head = v.head();
        write_u64(&v.file, TAIL, head + 256 + 8);
    });
    corrupt_case("a tail behind the head", |v| {
        v.move_to(64);
        v.tx.send(&[1; 8]).unwrap();
        write_u64(&v.file, TAIL, 56);
    });
    corrupt_case("a tail of u64::MAX", |v| {
        v.tx.send(&[1; 8]).unwrap();
        write_u64(&v.file, TAIL, u64::MAX);
    });
}

/// The sender reads only the receiver's `head`: scribbled, every sending
/// call fails with `Disconnected`, at once.
#[test]
fn a_corrupt_head_fails_every_send() {
    /// A head to write, given the tail.
    type Head = fn(u64) -> u64;
    let cases: [(&str, Head); 4] = [
        ("misaligned", |tail| tail - 253),
        ("ahead of the tail", |tail| tail + 8),
        ("more than a ring behind", |tail| tail - 256 - 8),
        ("u64::MAX", |_| u64::MAX),
    ];
    for (what, head) in cases {
        within(PATIENCE, what, move || {
            let mut v = Victim::new(256);
            v.move_to(40);
            // Full: the sender reads `head` on every try from now on.
            while v.tx.try_send(&[1; 8]).is_ok() {}
            let tail = read_u64(&v.file, TAIL);
            write_u64(&v.file, HEAD, head(tail));
            let tx = &mut v.tx;
            assert_eq!(
                tx.try_send(&[2; 8]),
                Err(TrySendError::Disconnected),
                "{what}: try_send"
            );
            assert_eq!(
                tx.send(&[2; 8]),
                Err(SendError::Disconnected),
                "{what}: send"
            );
            assert_eq!(
                tx.send_timeout(&[2; 8], PATIENCE),
                Err(SendTimeoutError::Disconnected),
                "{what}: send_timeout"
            );
            assert_eq!(
                tx.try_claim(8).map(|g| g.len()),
                Err(TrySendError::Disconnected),
                "{what}: try_claim"
            );
            assert_eq!(
                tx.claim(8).map(|g| g.len()),
                Err(SendError::Disconnected),
                "{what}: claim"
            );
            // Too large is still too large.
            assert_eq!(
                tx.try_send(&[0; 121]),
                Err(TrySendError::TooLarge),
                "{what}"
            );
            let _ = (tx.len(), tx.is_empty(), tx.stats());
        });
    }
}

#[test]
fn contradictory_positions_refuse_attach() {
    let name = unique_name("bytes-hostile-attach");
    let _cleanup = Cleanup(name.clone());
    let mut rx = Receiver::create(&name, 256).unwrap();
    let file = shm_file(&name);
    for tail in [3, 257, 1 << 40, u64::MAX] {
        write_u64(&file, TAIL, tail);
        match Sender::open(&name) {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("tail {tail} with head 0: expected Corrupt, got {other:?}"),
        }
    }
    write_u64(&file, TAIL, 0);
    write_u64(&file, HEAD, 8);
    match Sender::open(&name) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("head ahead of tail: expected Corrupt, got {other:?}"),
    }
    // Misaligned by the same amount: their difference is a multiple of 8,
    // but records would be written over the last bytes of their neighbours.
    write_u64(&file, HEAD, 4);
    write_u64(&file, TAIL, 4);
    match Sender::open(&name) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("head = tail = 4: expected Corrupt, got {other:?}"),
    }
    write_u64(&file, HEAD, 0);
    write_u64(&file, TAIL, 0);
    // The refusals left the sender's role free.
    let tx = Sender::open(&name).unwrap();
    tx.send(b"repaired").unwrap();
    assert_eq!(&*rx.recv().unwrap(), b"repaired");
}

/// Counters are hints: scribbled, `len()` must still not claim more
/// messages than the ring can hold (each takes at least 8 bytes), as
/// spsc's `len()` never exceeds its capacity.
#[test]
fn scribbled_counters_keep_len_within_the_ring() {
    let v = Victim::new(256);
    v.tx.send(b"one").unwrap();
    for (sent, received) in [(u64::MAX, 0), (1 << 40, 1), (1000, 0)] {
        write_u64(&v.file, SENT, sent);
        write_u64(&v.file, RECEIVED, received);
        let bound = v.tx.capacity() / 8;
        for (end, len, stats_len) in [
            ("sender", v.tx.len(), v.tx.stats().len),
            ("receiver", v.rx.len(), v.rx.stats().len),
        ] {
            assert!(
                len <= bound && stats_len <= bound as u64,
                "sent {sent}, received {received}: the {end}'s len() is {len}, stats().len {stats_len}; \
                 a 256-byte ring holds at most {bound} messages"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Random scribbling.

/// One scribble on ring 0: a position, a counter, a doorbell word, a
/// header-like word or random bytes in the ring.
fn scribble(file: &File, capacity: u64, rng: &mut Rng) {
    let near = |rng: &mut Rng, current: u64| match rng.below(6) {
        0 => rng.next(),
        1 => 0,
        2 => u64::MAX - rng.below(3),
        3 => current
            .wrapping_add(8 * rng.below(capacity / 4))
            .wrapping_sub(capacity),
        4 => current.wrapping_add(rng.below(16)).wrapping_sub(8),
        _ => current.wrapping_add(capacity + 8),
    };
    match rng.below(14) {
        0 | 1 => write_u64(file, HEAD, near(rng, read_u64(file, HEAD))),
        2 | 3 => write_u64(file, TAIL, near(rng, read_u64(file, TAIL))),
        4 => write_u64(file, HIGH_WATER, rng.next()),
        5 => write_u64(file, REFUSALS, rng.next()),
        6 => write_u64(
            file,
            if rng.below(2) == 0 { SENT } else { RECEIVED },
            rng.next(),
        ),
        7 => {
            let bell = if rng.below(2) == 0 {
                NOT_EMPTY
            } else {
                NOT_FULL
            };
            write_u32(file, bell + 4 * rng.below(2), rng.next() as u32);
        }
        8..=11 => {
            // A header-like word at a record boundary.
            let at = 8 * rng.below(capacity / 8);
            let kind = match rng.below(5) {
                0 => 0,
                1 | 2 => MESSAGE,
                3 => WRAP,
                _ => rng.next() as u32,
            };
            let len = match rng.below(4) {
                0 => rng.next() as u32,
                1 => (capacity / 2 - 8) as u32 + rng.below(3) as u32,
                _ => rng.below(capacity) as u32,
            };
            write_u64(file, DATA + at, header(kind, len));
        }
        _ => {
            let start = rng.below(capacity);
            let len = 1 + rng.below(16.min(capacity - start));
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            file.write_all_at(&bytes, DATA + start).unwrap();
        }
    }
}

fn poke_sender(tx: &mut Sender, rng: &mut Rng, tally: &mut Tally) {
    let max = tx.max_message_len();
    let len = rng.below(max as u64 + 3) as usize;
    let payload = vec![0x5A; len];
    let refused = |err: TrySendError, tally: &mut Tally| match err {
        TrySendError::Full => assert!(len <= max),
        TrySendError::TooLarge => assert!(len > max, "{len} bytes refused as too large"),
        TrySendError::Disconnected => tally.tx_dead = true,
    };
    match rng.below(5) {
        0 => match tx.try_send(&payload) {
            Ok(()) => tally.ok += 1,
            Err(err) => refused(err, tally),
        },
        1 => match tx.send_timeout(&payload, TIMEOUT) {
            Ok(()) => tally.ok += 1,
            Err(SendTimeoutError::Timeout) => assert!(len <= max),
            Err(SendTimeoutError::TooLarge) => assert!(len > max),
            Err(SendTimeoutError::Disconnected) => tally.tx_dead = true,
        },
        2 => match tx.try_claim(len) {
            Ok(mut grant) => {
                assert_eq!(grant.len(), len);
                grant.fill(0xA5);
                if rng.below(3) != 0 {
                    let n = rng.below(len as u64 + 2) as usize;
                    grant.commit(n);
                }
                tally.ok += 1;
            }
            Err(err) => refused(err, tally),
        },
        3 => {
            let _ = (tx.len(), tx.is_empty(), format!("{tx:?}"));
        }
        _ => {
            let stats = tx.stats();
            assert_eq!(stats.capacity, tx.capacity() as u64);
        }
    }
}

fn poke_receiver(rx: &mut Receiver, rng: &mut Rng, tally: &mut Tally) {
    let max = rx.capacity() / 2 - 8;
    // Every delivered message lies inside the ring: read all of it.
    let seen = |message: &[u8]| {
        assert!(
            message.len() <= max,
            "a message of {} bytes from a ring whose max is {max}",
            message.len()
        );
        std::hint::black_box(message.iter().fold(0u8, |a, b| a ^ b));
    };
    match rng.below(5) {
        0 => match rx.try_recv() {
            Ok(message) => {
                seen(&message);
                tally.ok += 1;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => tally.rx_dead = true,
        },
        1 => match rx.recv_timeout(TIMEOUT) {
            Ok(message) => {
                seen(&message);
                tally.ok += 1;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => tally.rx_dead = true,
        },
        2 => {
            for message in rx.try_iter().take(rng.below(6) as usize) {
                seen(&message);
            }
        }
        3 => {
            let _ = (rx.len(), rx.is_empty(), format!("{rx:?}"));
        }
        _ => {
            let stats = rx.stats();
            assert_eq!(stats.capacity, rx.capacity() as u64);
        }
    }
}

#[test]
fn random_scribbles_never_panic_or_hang() {
    within(Duration::from_secs(60), "the scribbling run", || {
        const CAPACITY: u64 = 128;
        let mut rng = Rng::new(0xB7E5_0001);
        let (corrupted, ok) = hostile::scribble_in_process(
            3000,
            || Victim::new(CAPACITY as usize),
            |victim| victim.name.clone(),
            |victim, tally| {
                scribble(&victim.file, CAPACITY, &mut rng);
                for _ in 0..1 + rng.below(6) {
                    if rng.below(2) == 0 {
                        poke_sender(&mut victim.tx, &mut rng, tally);
                    } else {
                        poke_receiver(&mut victim.rx, &mut rng, tally);
                    }
                }
                assert_eq!(
                    victim.rx.stats().endpoints.len(),
                    2,
                    "both ends stay attached"
                );
            },
        );
        eprintln!("{corrupted} corruptions detected, {ok} calls succeeded");
    });
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Sends through a channel the parent scribbles on, until its sender
        // reports disconnection. It must neither panic nor hang.
        "send-under-fire" => {
            let mut tx = Sender::open(&args[0]).unwrap();
            let mut rng = Rng::new(args[1].parse().unwrap());
            let mut tally = Tally::default();
            while !tally.tx_dead {
                poke_sender(&mut tx, &mut rng, &mut tally);
            }
        }
        // Sends message i as `[i as u8; i % 50]`, `count` of them.
        "send-count" => {
            let tx = Sender::open(&args[0]).unwrap();
            let count: u64 = args[1].parse().unwrap();
            for i in 0..count {
                tx.send(&vec![i as u8; (i % 50) as usize]).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    });
}

#[test]
fn random_scribbles_with_the_sender_in_another_process() {
    within(Duration::from_secs(60), "the scribbling run", || {
        const CAPACITY: u64 = 128;
        let mut rng = Rng::new(0xB7E5_0002);
        let mut corrupted = 0;
        for generation in 0..5u64 {
            let name = unique_name("bytes-hostile-peer");
            let _cleanup = Cleanup(name.clone());
            let options = Options::new()
                .capacity(CAPACITY as usize)
                .spin(Duration::from_micros(20));
            let mut rx = Receiver::create_with(&name, &options).unwrap();
            let file = shm_file(&name);
            let seed = (0xB7E5_0100 + generation).to_string();
            let mut child = Peer::spawn("send-under-fire", &[&name, &seed]);
            wait_until(PATIENCE, "the peer sends", || rx.stats().sent > 0);
            let detected = hostile::scribble_until_detected(300, |tally| {
                scribble(&file, CAPACITY, &mut rng);
                for _ in 0..1 + rng.below(6) {
                    poke_receiver(&mut rx, &mut rng, tally);
                }
            });
            corrupted += u64::from(detected);
            // Gone: the peer must notice and exit normally.
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

/// Counters and doorbell words are hints: scribbled, they may cost
/// wake-ups (bounded by the liveness interval) but never a message.
#[test]
fn scribbled_hints_lose_no_message() {
    const COUNT: u64 = 3000;
    let name = unique_name("bytes-hostile-hints");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(256).spin(Duration::from_micros(20));
    let rx = Receiver::create_with(&name, &options).unwrap();
    let file = shm_file(&name);
    let mut child = Peer::spawn("send-count", &[&name, &COUNT.to_string()]);
    within(
        Duration::from_secs(60),
        "receiving under scribbled hints",
        move || {
            let mut rx = rx;
            let mut rng = Rng::new(0xB7E5_0003);
            for i in 0..COUNT {
                if i % 50 == 0 {
                    let word = [HIGH_WATER, REFUSALS, SENT, RECEIVED][rng.below(4) as usize];
                    write_u64(&file, word, rng.next());
                    let bell = if rng.below(2) == 0 {
                        NOT_EMPTY
                    } else {
                        NOT_FULL
                    };
                    write_u32(&file, bell + 4 * rng.below(2), rng.next() as u32);
                }
                let message = rx
                    .recv_timeout(PATIENCE)
                    .unwrap_or_else(|e| panic!("message {i}: {e:?}"));
                assert_eq!(
                    &*message,
                    &vec![i as u8; (i % 50) as usize][..],
                    "message {i}"
                );
            }
            assert_eq!(
                rx.recv_timeout(PATIENCE).map(|m| m.len()),
                Err(RecvTimeoutError::Disconnected)
            );
        },
    );
    let status = child.wait(PATIENCE);
    assert!(status.success(), "the sending peer failed: {status}");
}

/// Positions are counters that may be anywhere, a hostile creator's choice
/// included: near `u64::MAX` they must wrap around, not overflow.
#[test]
fn positions_near_the_end_of_the_counter_wrap_soundly() {
    let name = unique_name("bytes-hostile-u64-max");
    let _cleanup = Cleanup(name.clone());
    let creator = Receiver::create(&name, 64).unwrap();
    let file = shm_file(&name);
    let start = u64::MAX - 7;
    write_u64(&file, HEAD, start);
    write_u64(&file, TAIL, start);
    // Both ends attach after the scribble, so both start from it.
    let tx = Sender::open(&name).unwrap();
    drop(creator); // the sender keeps the name
    let mut rx = Receiver::open(&name).unwrap();
    // 16-byte records from offset 56: the first wraps at once, and the
    // positions pass u64::MAX on the way.
    for round in 0..20u8 {
        tx.send(&[round; 8]).unwrap();
        assert_eq!(&*rx.recv().unwrap(), &[round; 8]);
    }
}
