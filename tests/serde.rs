//! `shmchan::serde` across processes: a million messages of mixed shapes
//! (strings, vectors, maps, enums, options, nested structs) intact and in
//! order; every error it adds to the byte stream's (too large, another type
//! at open, bytes that do not decode, whether a hostile writer put them in
//! the ring or a peer encoded another shape of the type); a SIGKILLed
//! sender mid-stream; and property tests over random nested values. The
//! std contract (disconnection, timeouts, SIGKILL of either side, fork,
//! exec) runs for this flavor in `contract.rs`, as for every other.
//!
//! A serde channel's segment is a byte channel's (see `bytes_hostile.rs`):
//! ring 0 at 640, `head` there, `tail` at +128, the ring's bytes at +768,
//! records of an 8-byte header word (`len | 1 << 32`) and the payload
//! padded to 8 bytes.
#![cfg(feature = "serde")]

mod common;

use common::shm::{read_u64, shm_file, write_bytes, write_u64};
use common::{sleep_forever, unique_name, Cleanup, Peer, Rng};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use shmchan::serde::{
    self as chan, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use shmchan::{Error, Options};
use std::collections::BTreeMap;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(120);

// Ring 0 of a byte (and serde) channel.
const HEAD: u64 = 640;
const TAIL: u64 = 640 + 128;
const DATA: u64 = 640 + 768;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Fill {
    qty: u32,
    price: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Side {
    Buy,
    Sell,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    symbol: String,
    side: Side,
    fills: Vec<Fill>,
    note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Event {
    Order(Order),
    Cancel { id: u64, reason: String },
    Heartbeat,
    Book(BTreeMap<String, Vec<(u32, i64)>>),
    Blob(Vec<u8>),
}

/// Event `i` of a deterministic stream of every shape, a few bytes to a few
/// KiB long (one in a thousand 20 KiB, past the first guess of room).
fn event(i: u64) -> Event {
    let mut rng = Rng::new(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let text = |rng: &mut Rng, max: u64| -> String {
        let len = rng.below(max + 1) as usize;
        (0..len)
            .map(|k| char::from(b'A' + ((i as usize + k) % 26) as u8))
            .collect()
    };
    match i % 5 {
        0 => Event::Order(Order {
            id: i,
            symbol: text(&mut rng, 12),
            side: if rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            },
            fills: (0..rng.below(40))
                .map(|k| Fill {
                    qty: (i + k) as u32,
                    price: i as f64 + k as f64 / 8.0,
                })
                .collect(),
            note: (rng.below(3) == 0).then(|| format!("note {i} é ✓")),
        }),
        1 => Event::Cancel {
            id: i,
            reason: text(&mut rng, 200),
        },
        2 => Event::Heartbeat,
        3 => Event::Book(
            (0..rng.below(6))
                .map(|k| {
                    let levels = (0..rng.below(10))
                        .map(|l| (l as u32, i as i64 - l as i64 * 3))
                        .collect();
                    (format!("{}{k}", text(&mut rng, 4)), levels)
                })
                .collect(),
        ),
        _ => {
            let len = if i % 1000 == 4 {
                20 * 1024
            } else {
                rng.below(3000)
            };
            Event::Blob((0..len).map(|k| (i + k) as u8).collect())
        }
    }
}

/// The same name, another shape: what an old build of a peer sends.
mod v1 {
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Order {
        pub id: u64,
        pub side: u8,
    }
}

/// The shape this build expects.
mod v2 {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Order {
        pub id: u64,
        pub urgent: bool,
    }
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Sends event(0..count) on `args[0]`.
        "send-events" => {
            let count: u64 = common::arg(args, 1);
            let tx = Sender::<Event>::open(&args[0]).unwrap();
            for i in 0..count {
                tx.send(&event(i)).unwrap();
            }
        }
        // Sends event(0..count), then holds the sender until killed.
        "send-events-then-hold" => {
            let count: u64 = common::arg(args, 1);
            let tx = Sender::<Event>::open(&args[0]).unwrap();
            for i in 0..count {
                tx.send(&event(i)).unwrap();
            }
            sleep_forever(tx)
        }
        // Sends one old-shape `Order` whose `side` is no bool.
        "send-v1-order" => {
            let tx = Sender::<v1::Order>::open(&args[0]).unwrap();
            tx.send(&v1::Order { id: 5, side: 7 }).unwrap();
        }
        // Opens `args[0]` with the wrong type and checks the refusal.
        "open-as-order" => match Sender::<Order>::open(&args[0]) {
            Err(err @ Error::Incompatible { .. }) => {
                let text = err.to_string();
                assert!(text.contains("`Event`"), "{text}");
                assert!(text.contains("`Order`"), "{text}");
            }
            other => panic!("opened an Event channel as Order: {other:?}"),
        },
        other => panic!("unknown role {other}"),
    });
}

#[test]
fn a_million_mixed_messages_cross_processes_intact_and_in_order() {
    const COUNT: u64 = 1_000_000;
    let name = unique_name("serde-million");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::<Event>::create(&name, 64 * 1024).unwrap();
    let peer = Peer::spawn("send-events", &[&name, &COUNT.to_string()]);
    let mut next = 0;
    for got in &rx {
        assert_eq!(got, event(next), "message {next}");
        next += 1;
    }
    peer.finish(PATIENCE);
    assert_eq!(next, COUNT);
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received), (COUNT, COUNT));
}

#[test]
fn a_killed_sender_leaves_every_message_it_sent_then_disconnection() {
    const COUNT: u64 = 5_000;
    let name = unique_name("serde-kill");
    let _cleanup = Cleanup(name.clone());
    // Room for all of them: the peer sends everything, then is killed.
    let rx = Receiver::<Event>::create(&name, 16 << 20).unwrap();
    let peer = Peer::spawn("send-events-then-hold", &[&name, &COUNT.to_string()]);
    for i in 0..COUNT {
        assert_eq!(rx.recv().unwrap(), event(i), "message {i}");
    }
    peer.kill();
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
}

#[test]
fn an_encoding_longer_than_the_largest_message_is_refused_and_nothing_is_sent() {
    let name = unique_name("serde-large");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = chan::channel::<Event>(&name, 1024).unwrap();
    let max = tx.max_message_len();
    assert_eq!(max, 512 - 8);
    // A `Blob` of n bytes encodes as its variant (1 byte), n as a varint
    // (2 bytes here) and the bytes.
    let just_fits = Event::Blob(vec![7; max - 3]);
    let one_over = Event::Blob(vec![7; max - 2]);
    assert_eq!(postcard::to_allocvec(&just_fits).unwrap().len(), max);

    assert!(matches!(tx.send(&one_over), Err(SendError::TooLarge)));
    assert!(matches!(
        tx.try_send(&one_over),
        Err(TrySendError::TooLarge)
    ));
    assert!(matches!(
        tx.send_timeout(&one_over, Duration::from_millis(1)),
        Err(SendTimeoutError::TooLarge)
    ));
    let huge = Event::Blob(vec![0; 1 << 20]);
    let err = tx.send(&huge).unwrap_err();
    assert!(err.to_string().contains("max_message_len"), "{err}");
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));

    tx.send(&just_fits).unwrap();
    tx.send(&Event::Heartbeat).unwrap();
    assert_eq!(rx.recv().unwrap(), just_fits);
    assert_eq!(rx.recv().unwrap(), Event::Heartbeat);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
}

#[test]
fn try_send_takes_the_room_a_message_needs_not_the_room_it_guesses() {
    let name = unique_name("serde-room");
    let _cleanup = Cleanup(name.clone());
    // 256 bytes: two 112-byte records leave 32, room for two 16-byte
    // records though not for the sender's first guess.
    let (tx, rx) = chan::channel::<Event>(&name, 256).unwrap();
    let blob = Event::Blob(vec![1; 100]);
    tx.try_send(&blob).unwrap();
    tx.try_send(&blob).unwrap();
    tx.try_send(&Event::Heartbeat).unwrap();
    tx.try_send(&Event::Heartbeat).unwrap();
    assert!(matches!(
        tx.try_send(&Event::Heartbeat),
        Err(TrySendError::Full)
    ));
    assert!(matches!(
        tx.send_timeout(&Event::Heartbeat, Duration::ZERO),
        Err(SendTimeoutError::Timeout)
    ));
    let got: Vec<Event> = rx.try_iter().collect();
    assert_eq!(
        got,
        [blob.clone(), blob, Event::Heartbeat, Event::Heartbeat]
    );
}

#[test]
fn another_type_at_open_is_incompatible_naming_both() {
    let name = unique_name("serde-type");
    let _cleanup = Cleanup(name.clone());
    let _rx = Receiver::<Event>::create(&name, 4096).unwrap();
    Peer::spawn("open-as-order", &[&name]).finish(PATIENCE);

    // Names are the type's own, without module paths, generics included.
    let err = Sender::<Vec<Order>>::open(&name).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Incompatible { .. }), "{text}");
    assert!(
        text.contains("`Event`") && text.contains("`Vec<Order>`"),
        "{text}"
    );

    // Another flavor over the same name says which one it is.
    let err = shmchan::bytes::Sender::open(&name).unwrap_err();
    assert!(err.to_string().contains("shmchan::serde"), "{err}");
}

#[test]
fn a_serde_channel_opens_as_bytes_for_tools_that_carry_encodings() {
    // What the Zenoh bridge does: move encodings between two serde
    // channels of one type without decoding them.
    let (a, b) = (unique_name("serde-raw-a"), unique_name("serde-raw-b"));
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let tx = Sender::<Event>::create(&a, 1 << 16).unwrap();
    let rx = Receiver::<Event>::create(&b, 1 << 16).unwrap();
    let mut carrier_rx = shmchan::bytes::Receiver::open_serde(&a).unwrap();
    let carrier_tx = shmchan::bytes::Sender::open_serde(&b).unwrap();
    for i in 0..100 {
        tx.send(&event(i)).unwrap();
        carrier_tx.send(&carrier_rx.recv().unwrap()).unwrap();
        assert_eq!(rx.recv().unwrap(), event(i));
    }

    // The types, as the headers record them, compare as `open` does.
    let found = shmchan::inspect::channel(&a).unwrap().message_type();
    assert_eq!(found, shmchan::inspect::channel(&b).unwrap().message_type());
    let c = unique_name("serde-raw-c");
    let _cleanup_c = Cleanup(c.clone());
    let _orders = Receiver::<Vec<Order>>::create(&c, 4096).unwrap();
    let other = shmchan::inspect::channel(&c).unwrap().message_type();
    let err = other.expect(&c, &found).unwrap_err();
    let at_open = Sender::<Event>::open(&c).unwrap_err();
    assert_eq!(err.to_string(), at_open.to_string());

    // Only serde channels open so; a byte channel says what it is.
    let d = unique_name("serde-raw-d");
    let _cleanup_d = Cleanup(d.clone());
    let _bytes = shmchan::bytes::Receiver::create(&d, 4096).unwrap();
    let err = shmchan::bytes::Sender::open_serde(&d).unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
}

#[test]
fn schema_names_and_versions_are_checked_at_open() {
    let name = unique_name("serde-schema");
    let _cleanup = Cleanup(name.clone());
    let v2 = Options::new().capacity(4096).schema("orders", 2);
    let rx = Receiver::<v2::Order>::create_with(&name, &v2).unwrap();

    // An old build, same name, older version: refused at open.
    let v1 = Options::new().schema("orders", 1);
    let err = Sender::<v1::Order>::open_with(&name, &v1).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Incompatible { .. }), "{text}");
    assert!(
        text.contains("schema version 1") && text.contains("schema version 2"),
        "{text}"
    );
    // Without the option, the type's own name is checked, and differs.
    let err = Sender::<v2::Order>::open(&name).unwrap_err();
    assert!(err.to_string().contains("`orders`"), "{err}");

    // The same schema, whatever the Rust type is called here.
    let tx = Sender::<v2::Order>::open_with(&name, &Options::new().schema("orders", 2)).unwrap();
    tx.send(&v2::Order {
        id: 1,
        urgent: true,
    })
    .unwrap();
    assert_eq!(
        rx.recv().unwrap(),
        v2::Order {
            id: 1,
            urgent: true
        }
    );
}

#[test]
fn another_shape_under_the_same_name_is_a_decode_error_not_a_panic() {
    let name = unique_name("serde-shape");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::<v2::Order>::create(&name, 4096).unwrap();
    Peer::spawn("send-v1-order", &[&name]).finish(PATIENCE);
    match rx.recv() {
        Err(RecvError::Decode(err)) => {
            assert_eq!(err.len(), 2);
            let text = err.to_string();
            assert!(text.contains("does not decode as `Order`"), "{text}");
            assert!(text.contains("Options::schema"), "{text}");
        }
        other => panic!("an old-shape Order decoded: {other:?}"),
    }
    // The message was skipped, and the sender has gone.
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
}

/// Appends a record of `payload` at the ring's tail, as a writer with no
/// endpoint would, and returns the new tail.
fn inject(file: &std::fs::File, capacity: u64, payload: &[u8]) -> u64 {
    let tail = read_u64(file, TAIL);
    let at = DATA + (tail % capacity);
    let record = 8 + (payload.len() as u64).div_ceil(8) * 8;
    assert!(tail % capacity + record <= capacity, "the test wraps");
    write_u64(file, at, payload.len() as u64 | 1 << 32);
    write_bytes(file, at + 8, payload);
    write_u64(file, TAIL, tail + record);
    tail + record
}

#[test]
fn hostile_bytes_in_the_ring_are_decode_errors_and_are_skipped() {
    const CAPACITY: u64 = 1 << 16;
    let name = unique_name("serde-hostile");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::<Event>::create(&name, CAPACITY as usize).unwrap();
    let file = shm_file(&name);

    // Chosen garbage: an unknown variant; a `Blob` claiming 2^60 bytes; a
    // `Cancel` whose reason is not UTF-8; an `Order` cut short; nothing.
    let garbage: [&[u8]; 5] = [
        &[9],
        &[4, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10],
        &[1, 3, 2, 0xff, 0xfe],
        &[0, 3, 1, b'A'],
        &[],
    ];
    for bytes in garbage {
        inject(&file, CAPACITY, bytes);
        match rx.try_recv() {
            Err(TryRecvError::Decode(err)) => {
                assert_eq!(err.len(), bytes.len());
                assert!(err.to_string().contains("`Event`"), "{err}");
            }
            other => panic!("{bytes:?} decoded: {other:?}"),
        }
        assert_eq!(read_u64(&file, HEAD), read_u64(&file, TAIL), "not skipped");
    }

    // Random bytes: each one decodes to something or is a `Decode` error,
    // and is consumed either way.
    let mut rng = Rng::with_env_seed(11);
    let mut decoded = 0;
    for _ in 0..5_000 {
        if read_u64(&file, TAIL) % CAPACITY > CAPACITY - 256 {
            break;
        }
        let mut bytes = vec![0; rng.below(64) as usize];
        rng.bytes(&mut bytes);
        inject(&file, CAPACITY, &bytes);
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(_) => decoded += 1,
            Err(RecvTimeoutError::Decode(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
        assert_eq!(read_u64(&file, HEAD), read_u64(&file, TAIL));
    }
    assert!(decoded < 5_000, "garbage never failed to decode");

    // A garbage record between two good ones: iteration skips it, and the
    // good ones arrive. (The sender attaches at the tail the test left.)
    let tx = Sender::<Event>::open(&name).unwrap();
    tx.send(&event(0)).unwrap();
    drop(tx);
    inject(&file, CAPACITY, &[9, 9, 9]);
    let tx = Sender::<Event>::open(&name).unwrap();
    tx.send(&event(1)).unwrap();
    drop(tx);
    let got: Vec<Event> = rx.iter().collect();
    assert_eq!(got, [event(0), event(1)]);
}

#[test]
fn a_value_serde_cannot_encode_is_an_error_and_nothing_is_sent() {
    /// A sequence of unknown length, which postcard cannot encode.
    struct Unsized;
    impl Serialize for Unsized {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = s.serialize_seq(None)?;
            seq.serialize_element(&1u8)?;
            seq.end()
        }
    }
    impl<'de> Deserialize<'de> for Unsized {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Vec::<u8>::deserialize(d).map(|_| Unsized)
        }
    }
    let name = unique_name("serde-encode");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = chan::channel::<Unsized>(&name, 4096).unwrap();
    let err = tx.send(&Unsized).unwrap_err();
    assert!(matches!(err, SendError::Encode(_)), "{err}");
    assert!(err.to_string().contains("cannot be encoded"), "{err}");
    assert!(matches!(
        tx.try_send(&Unsized),
        Err(TrySendError::Encode(_))
    ));
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
}

fn fill() -> impl Strategy<Value = Fill> {
    (any::<u32>(), -1e12..1e12f64).prop_map(|(qty, price)| Fill { qty, price })
}

fn order() -> impl Strategy<Value = Order> {
    (
        any::<u64>(),
        ".{0,16}",
        any::<bool>(),
        prop::collection::vec(fill(), 0..20),
        prop::option::of(".{0,40}"),
    )
        .prop_map(|(id, symbol, buy, fills, note)| Order {
            id,
            symbol,
            side: if buy { Side::Buy } else { Side::Sell },
            fills,
            note,
        })
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        order().prop_map(Event::Order),
        (any::<u64>(), ".{0,64}").prop_map(|(id, reason)| Event::Cancel { id, reason }),
        Just(Event::Heartbeat),
        prop::collection::btree_map(
            ".{0,8}",
            prop::collection::vec((any::<u32>(), any::<i64>()), 0..8),
            0..6
        )
        .prop_map(Event::Book),
        prop::collection::vec(any::<u8>(), 0..2000).prop_map(Event::Blob),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of values arrives as sent, through a ring small enough
    /// that records wrap and the sender waits for room.
    #[test]
    fn random_nested_values_arrive_as_sent(events in prop::collection::vec(any_event(), 1..200)) {
        let name = unique_name("serde-prop");
        let _cleanup = Cleanup(name.clone());
        let (tx, rx) = chan::channel::<Event>(&name, 8192).unwrap();
        let sent = events.clone();
        let sender = std::thread::spawn(move || {
            for event in &sent {
                tx.send(event).unwrap();
            }
        });
        let got: Vec<Event> = rx.iter().collect();
        sender.join().unwrap();
        prop_assert_eq!(got, events);
    }

    /// Any value's encoding in the ring is postcard's own.
    #[test]
    fn the_ring_holds_postcards_encoding(event in any_event()) {
        let name = unique_name("serde-enc");
        let _cleanup = Cleanup(name.clone());
        let (tx, _rx) = chan::channel::<Event>(&name, 8192).unwrap();
        tx.send(&event).unwrap();
        let file = shm_file(&name);
        let expected = postcard::to_allocvec(&event).unwrap();
        let len = read_u64(&file, DATA) as u32 as usize;
        prop_assert_eq!(len, expected.len());
        let mut found = vec![0; len];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut found, DATA + 8).unwrap();
        prop_assert_eq!(found, expected);
    }
}
