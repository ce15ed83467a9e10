//! SIGKILL, not drop: a peer process killed anywhere in its code must be
//! noticed by the survivor (a blocked `recv`/`send` returns the disconnected
//! error), must lose none of the messages it had published, and must leave
//! its role free for a new endpoint. A killed process that has not been
//! reaped yet (a zombie) counts as dead.
//!
//! No timing is pass/fail here: the library promises to notice a dead peer
//! within 1 s; the tests wait up to 5 s, which still fails if detection is
//! broken.

mod common;

use common::{sigkill, sleep_forever, unique_name, wait_until, Cleanup, Peer};
use shmchan::{
    spsc, Error, Options, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError,
};
use std::time::Duration;

/// How long a survivor may take to notice a dead peer before the test fails
/// (the contract is 1 s).
const NOTICE: Duration = Duration::from_secs(5);
/// How long a live peer may take to do its part.
const PATIENCE: Duration = Duration::from_secs(20);

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Sends 0, 1, 2, ... until the receiver is gone (or it is killed).
        "stream-forever" => {
            let tx = spsc::Sender::<u64>::open(&args[0]).unwrap();
            let mut next = 0u64;
            while tx.send(next).is_ok() {
                next += 1;
            }
        }
        // Sends 0..count, then idles holding the sender.
        "send-then-sleep" => {
            let count: u64 = args[1].parse().unwrap();
            let tx = spsc::Sender::<u64>::open(&args[0]).unwrap();
            for i in 0..count {
                tx.send(i).unwrap();
            }
            sleep_forever(tx);
        }
        // Receives 0..count, then idles holding the receiver.
        "recv-then-sleep" => {
            let count: u64 = args[1].parse().unwrap();
            let rx = spsc::Receiver::<u64>::open(&args[0]).unwrap();
            for i in 0..count {
                assert_eq!(rx.recv(), Ok(i));
            }
            sleep_forever(rx);
        }
        // Receives 0, 1, 2, ... in order until the sender is gone.
        "recv-forever" => {
            let rx = spsc::Receiver::<u64>::open(&args[0]).unwrap();
            for (expected, value) in (0u64..).zip(&rx) {
                assert_eq!(value, expected, "out of order in the receiving peer");
            }
        }
        other => panic!("unknown role {other}"),
    });
}

/// The state letter of `/proc/<pid>/stat`.
fn proc_state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.rsplit_once(')')?
        .1
        .split_ascii_whitespace()
        .next()?
        .chars()
        .next()
}

/// The receiver drains what the killed sender published, in order, then
/// reports disconnection.
fn receiver_drains_then_disconnects(reap_before_disconnect: bool) {
    const BEFORE_KILL: u64 = 100_000;
    let name = unique_name("kill-streaming-sender");
    let _cleanup = Cleanup(name.clone());
    let rx = spsc::Receiver::<u64>::create(&name, 1024).unwrap();
    let mut peer = Peer::spawn("stream-forever", &[&name]);

    let mut next = 0u64;
    while next < BEFORE_KILL {
        match rx.recv_timeout(PATIENCE) {
            Ok(value) => assert_eq!(value, next, "out of order before the kill"),
            Err(err) => panic!("the streaming peer stopped after {next} messages: {err:?}"),
        }
        next += 1;
    }

    if reap_before_disconnect {
        peer.kill_and_reap();
    } else {
        peer.kill_unreaped();
    }

    // Everything the sender had published is still delivered, in order,
    // once, and then the channel reports disconnection.
    loop {
        match rx.recv_timeout(NOTICE) {
            Ok(value) => {
                assert_eq!(
                    value, next,
                    "a message was lost or duplicated after the kill"
                );
                next += 1;
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!(
                "recv_timeout({NOTICE:?}) timed out after the sender was SIGKILLed \
                 (reaped: {reap_before_disconnect}); it should report Disconnected"
            ),
        }
    }

    if !reap_before_disconnect {
        // The disconnection was noticed while the peer was still a zombie.
        assert_eq!(
            proc_state(peer.pid()),
            Some('Z'),
            "the killed peer should still be an unreaped zombie"
        );
        peer.reap();
    }

    let stats = rx.stats();
    assert_eq!(
        stats.sent, next,
        "the sender published {} messages, {next} were received",
        stats.sent
    );
    assert_eq!(stats.received, next);
    assert_eq!(rx.len(), 0);
    // Disconnection is sticky.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv_timeout(NOTICE), Err(RecvTimeoutError::Disconnected));
    let mut out = [0u64; 8];
    assert_eq!(rx.try_recv_batch(&mut out), Err(TryRecvError::Disconnected));

    // The dead sender's slot does not keep the name alive.
    drop(rx);
    assert!(
        !common::segment_exists(&name),
        "the name should be unlinked once the last live endpoint is gone"
    );
}

#[test]
fn receiver_drains_then_disconnects_after_sender_killed() {
    receiver_drains_then_disconnects(true);
}

#[test]
fn receiver_drains_then_disconnects_after_sender_killed_while_zombie() {
    receiver_drains_then_disconnects(false);
}

/// The sender, blocked on a full ring, returns the message once the
/// receiver is killed.
fn sender_blocked_on_full_ring(blocking_send: bool) {
    const CAPACITY: u64 = 16;
    let name = unique_name("kill-receiver-under-full-ring");
    let _cleanup = Cleanup(name.clone());
    // Sleep at once when blocked: the kill lands on a sender asleep on the futex.
    let options = Options::new()
        .capacity(CAPACITY as usize)
        .spin(Duration::ZERO);
    let tx = spsc::Sender::<u64>::create_with(&name, &options).unwrap();
    let mut peer = Peer::spawn("recv-then-sleep", &[&name, "3"]);
    for i in 0..3 {
        tx.send_timeout(i, PATIENCE)
            .expect("room for the first messages");
    }
    wait_until(PATIENCE, "the peer received its 3 messages", || {
        tx.stats().received == 3
    });

    // Fill the ring; the peer takes no more.
    let mut next = 3u64;
    loop {
        match tx.try_send(next) {
            Ok(()) => next += 1,
            Err(TrySendError::Full(value)) => {
                assert_eq!(value, next);
                break;
            }
            Err(TrySendError::Disconnected(_)) => {
                panic!("the receiver is alive; the ring should be full, not disconnected")
            }
        }
    }
    assert_eq!(
        next,
        3 + CAPACITY,
        "the ring should hold exactly its capacity"
    );
    assert!(tx.is_full());

    let pid = peer.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        sigkill(pid);
    });

    const MESSAGE: u64 = 0xDEAD_BEEF;
    if blocking_send {
        // Plain `send`, with a watchdog so that a hang fails the test.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = tx.send(MESSAGE);
            let _ = done_tx.send(result.map_err(|err| err.into_inner()));
        });
        match done_rx.recv_timeout(NOTICE + Duration::from_secs(5)) {
            Ok(Err(value)) => assert_eq!(value, MESSAGE, "send must hand back the unsent message"),
            Ok(Ok(())) => panic!("send succeeded into a full ring whose receiver was killed"),
            Err(_) => panic!("send still blocked after the receiver was SIGKILLed"),
        }
    } else {
        match tx.send_timeout(MESSAGE, NOTICE) {
            Err(SendTimeoutError::Disconnected(value)) => assert_eq!(value, MESSAGE),
            Err(SendTimeoutError::Timeout(_)) => {
                panic!("send_timeout({NOTICE:?}) timed out after the receiver was SIGKILLed; it should report Disconnected")
            }
            Ok(()) => panic!("send succeeded into a full ring whose receiver was killed"),
        }
        // Disconnection is sticky, for every kind of send.
        assert!(matches!(tx.try_send(1), Err(TrySendError::Disconnected(1))));
        assert!(matches!(tx.send(2), Err(err) if err.into_inner() == 2));
        assert!(matches!(
            tx.try_send_batch(&[1, 2, 3]),
            Err(TrySendError::Disconnected(()))
        ));
        assert!(tx.send_batch(&[1, 2, 3]).is_err());
    }
    killer.join().unwrap();
    peer.reap();
}

#[test]
fn sender_blocked_on_full_ring_sees_receiver_killed() {
    sender_blocked_on_full_ring(false);
}

#[test]
fn sender_blocked_in_plain_send_sees_receiver_killed() {
    sender_blocked_on_full_ring(true);
}

/// A killed sender's role can be taken again; the receiver gets the dead
/// sender's messages, then the new one's.
fn new_sender_after_kill(reap: bool) {
    const OLD: u64 = 100;
    let name = unique_name("kill-sender-reopen");
    let _cleanup = Cleanup(name.clone());
    let rx = spsc::Receiver::<u64>::create(&name, 1024).unwrap();
    let mut peer = Peer::spawn("send-then-sleep", &[&name, &OLD.to_string()]);
    wait_until(PATIENCE, "the peer sent its messages", || {
        rx.len() == OLD as usize
    });

    match spsc::Sender::<u64>::open(&name) {
        Err(Error::Busy { role, pid, .. }) => {
            assert_eq!(role, "sender");
            assert_eq!(
                pid,
                peer.pid(),
                "Busy should name the process holding the sender"
            );
        }
        other => panic!("opening a held sender should be Busy, got {other:?}"),
    }

    let tx = if reap {
        peer.kill_and_reap();
        spsc::Sender::<u64>::open(&name)
            .expect("a reaped sender's slot should be reclaimed at once")
    } else {
        peer.kill_unreaped();
        // The kill takes effect asynchronously; until the peer is a zombie it
        // may still look alive, so only Busy is allowed meanwhile.
        let mut opened = None;
        wait_until(NOTICE, "the zombie sender's slot is reclaimed", || {
            match spsc::Sender::<u64>::open(&name) {
                Ok(tx) => {
                    opened = Some(tx);
                    true
                }
                Err(Error::Busy { .. }) => false,
                Err(err) => panic!("reopening after the kill failed: {err}"),
            }
        });
        assert_eq!(
            proc_state(peer.pid()),
            Some('Z'),
            "the killed peer should still be an unreaped zombie"
        );
        opened.unwrap()
    };

    for i in OLD..2 * OLD {
        tx.send_timeout(i, PATIENCE).unwrap();
    }
    for i in 0..2 * OLD {
        assert_eq!(
            rx.recv_timeout(PATIENCE),
            Ok(i),
            "the old sender's messages, then the new one's"
        );
    }
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "the new sender is alive"
    );
    drop(tx);
    assert_eq!(rx.recv_timeout(NOTICE), Err(RecvTimeoutError::Disconnected));
    if !reap {
        peer.reap();
    }
    drop(rx);
    assert!(
        !common::segment_exists(&name),
        "the name should be unlinked once the last live endpoint is gone"
    );
}

#[test]
fn new_sender_can_open_after_old_one_killed() {
    new_sender_after_kill(true);
}

#[test]
fn new_sender_can_open_while_old_one_is_a_zombie() {
    new_sender_after_kill(false);
}

#[test]
fn receiver_killed_mid_stream_new_receiver_resumes() {
    const CAPACITY: u64 = 256;
    const BEFORE_KILL: u64 = 50_000;
    let name = unique_name("kill-receiver-mid-stream");
    let _cleanup = Cleanup(name.clone());
    let tx = spsc::Sender::<u64>::create(&name, CAPACITY as usize).unwrap();
    let mut peer = Peer::spawn("recv-forever", &[&name]);

    let mut next = 0u64;
    while next < BEFORE_KILL {
        match tx.send_timeout(next, PATIENCE) {
            Ok(()) => next += 1,
            Err(err) => panic!("streaming to the peer stopped after {next} messages: {err:?}"),
        }
    }
    // Killed while receiving: it exits by SIGKILL, not by an order panic.
    peer.kill_and_reap();

    // The sender fills what room is left, then notices the dead receiver.
    loop {
        match tx.send_timeout(next, NOTICE) {
            Ok(()) => next += 1,
            Err(SendTimeoutError::Disconnected(value)) => {
                assert_eq!(value, next, "the unsent message is handed back");
                break;
            }
            Err(SendTimeoutError::Timeout(_)) => {
                panic!(
                    "send_timeout({NOTICE:?}) timed out on a full ring whose receiver was killed"
                )
            }
        }
        assert!(
            next <= BEFORE_KILL + CAPACITY,
            "sent more than the ring holds after the receiver died"
        );
    }

    // A new receiver takes over where the dead one stopped.
    let rx =
        spsc::Receiver::<u64>::open(&name).expect("a killed receiver's role can be opened again");
    let head = rx.stats().received;
    assert!(
        head <= next && next - head <= CAPACITY,
        "the new receiver starts at {head}, the sender is at {next}"
    );
    assert_eq!(rx.len() as u64, next - head);
    for expected in head..next {
        assert_eq!(
            rx.recv_timeout(PATIENCE),
            Ok(expected),
            "what the dead receiver left, in order"
        );
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    // The stream continues through the new receiver.
    for i in next..next + 1000 {
        tx.send_timeout(i, PATIENCE)
            .expect("the sender revives with the new receiver");
        assert_eq!(rx.recv_timeout(PATIENCE), Ok(i));
    }
    drop(tx);
    assert_eq!(rx.recv_timeout(NOTICE), Err(RecvTimeoutError::Disconnected));
    drop(rx);
    assert!(
        !common::segment_exists(&name),
        "the name should be unlinked once the last live endpoint is gone"
    );
}

/// A receiver asleep on the futex (no spinning) wakes up to the death of
/// an idle sender.
fn receiver_asleep_when_idle_sender_killed(plain_recv: bool) {
    let name = unique_name("kill-idle-sender");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(64).spin(Duration::ZERO);
    let rx = spsc::Receiver::<u64>::create_with(&name, &options).unwrap();
    let mut peer = Peer::spawn("send-then-sleep", &[&name, "5"]);
    for i in 0..5 {
        assert_eq!(rx.recv_timeout(PATIENCE), Ok(i));
    }

    let pid = peer.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        sigkill(pid);
    });

    if plain_recv {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(rx.recv());
        });
        match done_rx.recv_timeout(NOTICE + Duration::from_secs(5)) {
            Ok(result) => assert_eq!(result, Err(shmchan::RecvError)),
            Err(_) => panic!("recv still blocked after the idle sender was SIGKILLed"),
        }
    } else {
        match rx.recv_timeout(NOTICE) {
            Err(RecvTimeoutError::Disconnected) => {}
            other => panic!("recv_timeout after the idle sender was SIGKILLed: expected Disconnected, got {other:?}"),
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            rx.iter().next(),
            None,
            "iteration ends once the sender is dead"
        );
    }
    killer.join().unwrap();
    peer.reap();
}

#[test]
fn sleeping_receiver_sees_idle_sender_killed() {
    receiver_asleep_when_idle_sender_killed(false);
}

#[test]
fn sleeping_receiver_in_plain_recv_sees_idle_sender_killed() {
    receiver_asleep_when_idle_sender_killed(true);
}

#[test]
fn sender_that_never_blocks_notices_receiver_killed() {
    // A ring so large that it never fills: the sender never blocks, so only
    // its periodic liveness check can tell it the receiver died.
    let name = unique_name("kill-never-full");
    let options = Options::new().capacity(1 << 16);
    let tx = spsc::Sender::<u64>::create_with(&name, &options).unwrap();
    let mut peer = Peer::spawn("recv-then-sleep", &[&name, "1"]);
    tx.send(0).unwrap();
    wait_until(PATIENCE, "the peer received the first message", || {
        tx.stats().received == 1
    });
    peer.kill_and_reap();
    // 5000 sends, a millisecond apart, never fill 65536 slots.
    let refused = (1..5000u64).find_map(|i| {
        std::thread::sleep(Duration::from_millis(1));
        tx.send(i).err()
    });
    let shmchan::SendError(value) = refused.expect("the sender never noticed its receiver died");
    assert!(value < 5000);
    assert!(tx.len() < tx.capacity(), "the ring never filled");
}
