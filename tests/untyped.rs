//! Untyped endpoints: typed channels reached as bytes, across processes,
//! keeping the std contract, refusing what they cannot reach, and sound
//! against scribbled indices.

mod common;

use common::shm::{shm_file, write_u64};
use common::{unique_name, Cleanup, Peer};
use shmchan::untyped;
use shmchan::{Error, RecvTimeoutError, SendTimeoutError, ShmSafe, TryRecvError};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, ShmSafe)]
#[repr(C)]
struct Tick {
    seq: u64,
    px: f64,
    check: u32,
    side: u32,
}

fn tick(seq: u64) -> Tick {
    Tick {
        seq,
        px: seq as f64 / 4.0,
        check: (seq as u32).wrapping_mul(2_654_435_761),
        side: (seq % 2) as u32,
    }
}

const COUNT: u64 = 200_000;
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        "send-ticks" => {
            let tx = shmchan::spsc::Sender::<Tick>::create(&args[0], 256).unwrap();
            (0..COUNT).for_each(|seq| tx.send(tick(seq)).unwrap());
        }
        "receive-ticks" => {
            let rx = shmchan::mpsc::Receiver::<Tick>::create(&args[0], 256).unwrap();
            for seq in 0..COUNT {
                assert_eq!(rx.recv().unwrap(), tick(seq), "lost, torn or reordered");
            }
        }
        other => panic!("unknown role {other}"),
    });
}

#[test]
fn typed_messages_cross_untyped_ends_between_processes() {
    // A typed spsc sender process, an untyped receiver and sender here
    // (what a bridge does), a typed mpsc receiver process.
    let (a, b) = (unique_name("untyped-a"), unique_name("untyped-b"));
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let producer = Peer::spawn("send-ticks", &[&a]);
    let consumer = Peer::spawn("receive-ticks", &[&b]);
    // Each peer creates its channel; open them once they are there.
    let (mut rx, mut tx) = (None, None);
    common::wait_until(PATIENCE, "both peers create their channels", || {
        rx = rx.take().or_else(|| untyped::Receiver::open(&a).ok());
        tx = tx.take().or_else(|| untyped::Sender::open(&b).ok());
        rx.is_some() && tx.is_some()
    });
    let (rx, tx) = (rx.unwrap(), tx.unwrap());
    assert_eq!(
        rx.message_type(),
        &shmchan::inspect::MessageType::of::<Tick>()
    );
    assert_eq!(tx.message_type(), rx.message_type());
    let mut bytes = [0u8; 24];
    for _ in 0..COUNT {
        rx.recv_timeout(&mut bytes, PATIENCE).unwrap();
        tx.send_timeout(&bytes, PATIENCE).unwrap();
    }
    producer.finish(PATIENCE);
    consumer.finish(PATIENCE);
    // The producer is gone and everything was taken: disconnected at once.
    assert_eq!(rx.try_recv(&mut bytes), Err(TryRecvError::Disconnected));
}

#[test]
fn untyped_ends_keep_the_disconnection_rule() {
    let name = unique_name("untyped-rule");
    let _cleanup = Cleanup(name.clone());
    let typed = shmchan::spsc::Sender::<u64>::create(&name, 4).unwrap();
    let rx = untyped::Receiver::open(&name).unwrap();
    let mut out = [0u8; 8];
    assert_eq!(rx.try_recv(&mut out), Err(TryRecvError::Empty));
    typed.send(5).unwrap();
    drop(typed);
    rx.recv_timeout(&mut out, PATIENCE).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 5);
    assert_eq!(
        rx.recv_timeout(&mut out, Duration::ZERO),
        Err(RecvTimeoutError::Disconnected)
    );

    let tx = untyped::Sender::open(&name).unwrap();
    tx.send_timeout(&9u64.to_ne_bytes(), PATIENCE).unwrap();
    rx.recv_timeout(&mut out, PATIENCE).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 9);
    for i in 0..4u64 {
        tx.try_send(&i.to_ne_bytes()).unwrap();
    }
    assert_eq!(
        tx.send_timeout(&[0; 8], Duration::from_millis(20)),
        Err(SendTimeoutError::Timeout(()))
    );
    drop(rx);
    assert_eq!(
        tx.send_timeout(&[0; 8], Duration::ZERO),
        Err(SendTimeoutError::Disconnected(()))
    );
}

#[test]
fn byte_channels_are_refused_saying_why() {
    let name = unique_name("untyped-bytes");
    let _cleanup = Cleanup(name.clone());
    let _rx = shmchan::bytes::Receiver::create(&name, 4096).unwrap();
    for err in [
        untyped::Sender::open(&name).err().unwrap(),
        untyped::Receiver::open(&name).err().unwrap(),
    ] {
        assert!(matches!(err, Error::Incompatible { .. }), "{err}");
        assert!(err.to_string().contains("bytes channel"), "{err}");
    }
    let missing = unique_name("untyped-missing");
    assert!(matches!(
        untyped::Receiver::open(&missing),
        Err(Error::NotFound { .. })
    ));
}

/// Aligned to 16, so that an mpmc cell keeps its value 16 bytes in.
#[derive(Clone, Copy, Debug, PartialEq, ShmSafe)]
#[repr(C)]
struct Wide {
    id: u128,
    seq: u64,
    check: u64,
}

fn wide(seq: u64) -> Wide {
    Wide {
        id: u128::from(seq) << 64 | 0xABCD,
        seq,
        check: seq.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    }
}

#[test]
fn mpmc_channels_are_reached_with_their_cell_layout() {
    let (a, b) = (unique_name("untyped-mpmc-a"), unique_name("untyped-mpmc-b"));
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let typed_tx = shmchan::mpmc::Sender::<Wide>::create(&a, 16).unwrap();
    let typed_rx = shmchan::mpmc::Receiver::<Wide>::create(&b, 16).unwrap();
    let rx = untyped::Receiver::open(&a).unwrap();
    let tx = untyped::Sender::open(&b).unwrap();
    let mut bytes = [0u8; 32];
    for round in 0..50u64 {
        // A few at a time, so the cells wrap many times.
        (0..10).for_each(|i| typed_tx.send(wide(round * 10 + i)).unwrap());
        for _ in 0..10 {
            rx.recv_timeout(&mut bytes, PATIENCE).unwrap();
            tx.send_timeout(&bytes, PATIENCE).unwrap();
        }
        for i in 0..10 {
            assert_eq!(typed_rx.recv().unwrap(), wide(round * 10 + i));
        }
    }
    assert_eq!(rx.try_recv(&mut bytes), Err(TryRecvError::Empty));
}

#[test]
#[should_panic(expected = "is 8 bytes")]
fn a_message_of_another_length_is_a_panic_not_a_partial_send() {
    let name = unique_name("untyped-len");
    let _cleanup = Cleanup(name.clone());
    let _rx = shmchan::spsc::Receiver::<u64>::create(&name, 4).unwrap();
    let tx = untyped::Sender::open(&name).unwrap();
    let _ = tx.try_send(&[1, 2, 3]);
}

#[test]
fn scribbled_indices_disconnect_untyped_ends_without_harm() {
    // spsc ring 0: head at 640, tail at 768 (as tests/hostile.rs lays out).
    let name = unique_name("untyped-hostile");
    let _cleanup = Cleanup(name.clone());
    let typed = shmchan::spsc::Sender::<u64>::create(&name, 64).unwrap();
    let rx = untyped::Receiver::open(&name).unwrap();
    typed.send(1).unwrap();
    let file = shm_file(&name);
    write_u64(&file, 640 + 128, 1 << 40);
    let mut out = [0u8; 8];
    assert_eq!(
        rx.recv_timeout(&mut out, Duration::from_millis(50)),
        Err(RecvTimeoutError::Disconnected),
        "a tail beyond the ring is corruption"
    );
    assert_eq!(rx.try_recv(&mut out), Err(TryRecvError::Disconnected));
}

#[test]
fn broadcast_channels_are_reached_too_and_lags_are_counted() {
    // Typed sender, untyped receiver; untyped sender, typed receivers.
    let (a, b) = (unique_name("untyped-bc-a"), unique_name("untyped-bc-b"));
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let options = shmchan::Options::new().capacity(8).receivers(2);
    let typed_tx = shmchan::broadcast::Sender::<Tick>::create_with(&a, &options).unwrap();
    let rx = untyped::Receiver::open(&a).unwrap();
    let typed_rx = shmchan::broadcast::Receiver::<Tick>::create_with(&b, &options).unwrap();
    let tx = untyped::Sender::open(&b).unwrap();
    let mut bytes = [0u8; 24];
    for seq in 0..100 {
        typed_tx.send(tick(seq)).unwrap();
        rx.recv_timeout(&mut bytes, PATIENCE).unwrap();
        tx.send_timeout(&bytes, PATIENCE).unwrap();
        assert_eq!(typed_rx.recv().unwrap(), tick(seq));
    }
    assert_eq!(rx.lagged(), 0);

    // Overwrite: a receiver lapped by the sender skips to the oldest
    // message kept, and counts what it missed.
    let c = unique_name("untyped-bc-c");
    let _cleanup_c = Cleanup(c.clone());
    let overwrite = options.overflow(shmchan::broadcast::Overflow::Overwrite);
    let typed_tx = shmchan::broadcast::Sender::<Tick>::create_with(&c, &overwrite).unwrap();
    let rx = untyped::Receiver::open(&c).unwrap();
    (0..20).for_each(|seq| typed_tx.send(tick(seq)).unwrap());
    let mut got = Vec::new();
    while rx.try_recv(&mut bytes).is_ok() {
        got.push(shmchan::from_bytes::<Tick>(&bytes).unwrap().seq);
    }
    assert_eq!(got, (12..20).collect::<Vec<_>>(), "the newest ring's worth");
    assert_eq!(rx.lagged(), 12);
}
