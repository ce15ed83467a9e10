//! SIGKILL, not drop, with mpsc: a sender process killed anywhere in its
//! code loses none of the messages it had published, the receiver reports
//! disconnection once every sender is gone (killed or not), the other
//! senders carry on meanwhile, and the dead sender's shard can be taken by a
//! new one. A killed receiver unblocks its senders, and its role can be
//! opened again with what was left in the rings.
//!
//! No timing is pass/fail: the library promises to notice a dead peer
//! within 1 s; the tests wait up to 10 s, which still fails if detection
//! is broken.

mod common;

use common::{arg, sigkill, sleep_forever, unique_name, wait_until, within, Cleanup, Peer};
use shmchan::mpsc::{
    Error, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use shmchan::Options;
use std::time::Duration;

/// How long a survivor may take to notice a dead peer before the test fails
/// (the contract is 1 s).
const NOTICE: Duration = Duration::from_secs(10);
/// How long a live peer may take to do its part.
const PATIENCE: Duration = Duration::from_secs(30);

/// A message that says who sent it and its place in that sender's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, shmchan::ShmSafe)]
#[repr(C)]
struct Msg {
    sender: u64,
    seq: u64,
    check: u64,
}

impl Msg {
    fn new(sender: u64, seq: u64) -> Self {
        Self {
            sender,
            seq,
            check: !(sender << 48 ^ seq),
        }
    }
}

/// Checks that each sender's messages arrive exactly once, in order, with
/// no gap: what a killed sender published is a prefix of what it sent.
#[derive(Debug)]
struct Order {
    next: Vec<u64>,
}

impl Order {
    fn new(senders: usize) -> Self {
        Self::starting_at(vec![0; senders])
    }

    fn starting_at(next: Vec<u64>) -> Self {
        Self { next }
    }

    fn accept(&mut self, m: &Msg) {
        assert_eq!(*m, Msg::new(m.sender, m.seq), "a torn message");
        let next = self
            .next
            .get_mut(m.sender as usize)
            .unwrap_or_else(|| panic!("a message from an unknown sender: {m:?}"));
        assert_eq!(
            m.seq, *next,
            "sender {}: a message was lost, duplicated or reordered",
            m.sender
        );
        *next += 1;
    }

    fn total(&self) -> u64 {
        self.next.iter().sum()
    }
}

/// Receives until the channel reports disconnection, failing if neither a
/// message nor disconnection comes within [`NOTICE`].
fn drain_until_disconnected(rx: &Receiver<Msg>, order: &mut Order, what: &str) {
    loop {
        match rx.recv_timeout(NOTICE) {
            Ok(m) => order.accept(&m),
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => panic!(
                "recv_timeout({NOTICE:?}) timed out {what}; it should report Disconnected \
                 (received so far: {:?})",
                order.next
            ),
        }
    }
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

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let name = args[0].as_str();
        match role {
            // Sends Msg(id, 0, 1, 2, ...) until the receiver is gone (or it
            // is killed). With "sleepy", it never spins: blocked on a full
            // ring, it sleeps on the futex.
            "stream-forever" => {
                let id: u64 = arg(args, 1);
                let spin = match args.get(2).map(String::as_str) {
                    Some("sleepy") => Duration::ZERO,
                    _ => Options::DEFAULT_SPIN,
                };
                let tx = Sender::<Msg>::open_with(name, &Options::new().spin(spin)).unwrap();
                let mut seq = 0u64;
                while tx.send(Msg::new(id, seq)).is_ok() {
                    seq += 1;
                }
            }
            // Sends Msg(id, 0, 1, 2, ...) in bursts of 100, 1 ms apart,
            // until the file args[2] exists; then leaves.
            "stream-paced-until-file" => {
                let id: u64 = arg(args, 1);
                let stop = std::path::Path::new(&args[2]);
                let tx = Sender::<Msg>::open(name).unwrap();
                let mut seq = 0u64;
                while !stop.exists() {
                    for _ in 0..100 {
                        tx.send(Msg::new(id, seq)).unwrap();
                        seq += 1;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            // Sends Msg(id, 0..count), then idles holding its shard.
            "send-then-sleep" => {
                let (id, count): (u64, u64) = (arg(args, 1), arg(args, 2));
                let tx = Sender::<Msg>::open(name).unwrap();
                for seq in 0..count {
                    tx.send(Msg::new(id, seq)).unwrap();
                }
                sleep_forever(tx);
            }
            // Opens a sender, retrying while the channel is Busy if args[4]
            // is "retry" (a killed holder may not look dead yet), and sends
            // Msg(id, start..end).
            "open-send-range" => {
                let (id, start, end): (u64, u64, u64) = (arg(args, 1), arg(args, 2), arg(args, 3));
                let retry = args[4] == "retry";
                let give_up = std::time::Instant::now() + PATIENCE;
                let tx = loop {
                    match Sender::<Msg>::open(name) {
                        Ok(tx) => break tx,
                        Err(Error::Busy { .. }) if retry && std::time::Instant::now() < give_up => {
                            std::thread::sleep(Duration::from_millis(1))
                        }
                        Err(err) => panic!("open after the old sender was killed: {err}"),
                    }
                };
                for seq in start..end {
                    tx.send(Msg::new(id, seq)).unwrap();
                }
            }
            // Opens the receiver, receives `count` messages, then idles
            // holding the receiver.
            "recv-then-sleep" => {
                let count: u64 = arg(args, 1);
                let rx = Receiver::<Msg>::open(name).unwrap();
                for _ in 0..count {
                    rx.recv().unwrap();
                }
                sleep_forever(rx);
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// One sender process streams; it is SIGKILLed mid-stream; the receiver
/// gets a gap-free prefix of its stream, then disconnection.
fn receiver_drains_a_killed_sender_then_disconnects(reap_before_disconnect: bool) {
    const BEFORE_KILL: u64 = 50_000;
    let name = unique_name("mpsc-kill-sender");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::<Msg>::create(&name, 1024).unwrap();
    let mut peer = Peer::spawn("stream-forever", &[&name, "0"]);

    let mut order = Order::new(1);
    while order.next[0] < BEFORE_KILL {
        match rx.recv_timeout(PATIENCE) {
            Ok(m) => order.accept(&m),
            Err(err) => panic!("the streaming peer stopped at {:?}: {err:?}", order.next),
        }
    }
    if reap_before_disconnect {
        peer.kill_and_reap();
    } else {
        peer.kill_unreaped();
    }

    drain_until_disconnected(&rx, &mut order, "after the only sender was SIGKILLed");
    if !reap_before_disconnect {
        assert_eq!(
            proc_state(peer.pid()),
            Some('Z'),
            "the disconnection should have been noticed while the peer was a zombie"
        );
        peer.reap();
    }

    // Everything it published was received.
    let stats = rx.stats();
    assert_eq!(
        (stats.sent, stats.received, stats.len),
        (order.total(), order.total(), 0)
    );
    assert!(order.total() >= BEFORE_KILL);
    // Disconnection is sticky, for every kind of receive.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    let mut buf = [Msg::new(0, 0); 8];
    assert_eq!(rx.try_recv_batch(&mut buf), Err(TryRecvError::Disconnected));
    let rx = within(NOTICE, "a plain recv after the sender died", move || {
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.recv_batch(&mut buf), Err(RecvError));
        assert_eq!(rx.iter().next(), None);
        rx
    });
    // The dead sender's slot does not keep the name alive.
    drop(rx);
    assert!(
        !common::segment_exists(&name),
        "the name should be unlinked once the last live endpoint is gone"
    );
}

#[test]
fn receiver_gets_a_killed_senders_published_prefix_then_disconnection() {
    receiver_drains_a_killed_sender_then_disconnects(true);
}

#[test]
fn receiver_gets_a_killed_senders_published_prefix_then_disconnection_while_it_is_a_zombie() {
    receiver_drains_a_killed_sender_then_disconnects(false);
}

#[test]
fn every_sender_process_killed_at_once() {
    const SENDERS: usize = 3;
    const BEFORE_KILL: u64 = 10_000;
    let name = unique_name("mpsc-kill-all");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::<Msg>::create(&name, 256).unwrap();
    let mut peers: Vec<Peer> = (0..SENDERS)
        .map(|id| Peer::spawn("stream-forever", &[&name, &id.to_string()]))
        .collect();
    let mut order = Order::new(SENDERS);
    while order.next.iter().any(|&n| n < BEFORE_KILL) {
        match rx.recv_timeout(PATIENCE) {
            Ok(m) => order.accept(&m),
            Err(err) => panic!("the streams stopped at {:?}: {err:?}", order.next),
        }
    }
    for peer in &peers {
        peer.kill_unreaped();
    }
    drain_until_disconnected(&rx, &mut order, "after every sender was SIGKILLed");
    for peer in &mut peers {
        peer.reap();
    }
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received), (order.total(), order.total()));
    assert!(
        stats.endpoints.iter().all(|e| e.role == "receiver"),
        "the dead senders' slots were cleared: {stats:?}"
    );
    drop(rx);
    assert!(!common::segment_exists(&name));
}

#[test]
fn killing_one_of_two_sender_processes_leaves_the_other_working() {
    let name = unique_name("mpsc-kill-one");
    let _cleanup = Cleanup(name.clone());
    let stop = std::env::temp_dir().join(format!("{}.stop", unique_name("mpsc-kill-one")));
    let stop_arg = stop.to_str().unwrap().to_owned();
    let rx = Receiver::<Msg>::create(&name, 256).unwrap();
    let mut doomed = Peer::spawn("stream-forever", &[&name, "0"]);
    let survivor = Peer::spawn("stream-paced-until-file", &[&name, "1", &stop_arg]);
    let doomed_pid = doomed.pid();

    let mut order = Order::new(2);
    while order.next[0] < 20_000 || order.next[1] < 1_000 {
        match rx.recv_timeout(PATIENCE) {
            Ok(m) => order.accept(&m),
            Err(err) => panic!("the streams stopped at {:?}: {err:?}", order.next),
        }
    }
    doomed.kill_and_reap();

    // The survivor keeps sending and the receiver keeps receiving: what the
    // dead one published, in order, and the survivor's stream, with no
    // disconnection. 30,000 messages at 100 per ms take over 300 ms, so the
    // receiver has had its liveness probes meanwhile.
    let survivor_at_kill = order.next[1];
    while order.next[1] < survivor_at_kill + 30_000 {
        match rx.recv_timeout(NOTICE) {
            Ok(m) => order.accept(&m),
            Err(err) => panic!(
                "{err:?} while the second sender is alive and sending (received {:?})",
                order.next
            ),
        }
    }
    let stats = rx.stats();
    assert!(
        !stats
            .endpoints
            .iter()
            .any(|e| e.pid == doomed_pid && e.alive),
        "the killed sender is reported alive: {stats:?}"
    );
    assert!(
        stats
            .endpoints
            .iter()
            .any(|e| e.pid == survivor.pid() && e.alive),
        "{stats:?}"
    );

    // Only once the survivor leaves too is the channel disconnected.
    std::fs::write(&stop, b"").unwrap();
    drain_until_disconnected(&rx, &mut order, "after both senders were gone");
    survivor.finish(PATIENCE);
    let _ = std::fs::remove_file(&stop);
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received), (order.total(), order.total()));
}

/// The only shard's sender is killed; a new sender process takes the shard,
/// and the receiver gets the dead sender's messages, then the new one's.
#[test]
fn a_killed_senders_shard_is_reused_by_a_new_sender_process() {
    const OLD: u64 = 100;
    let name = unique_name("mpsc-kill-reuse");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(1024).shards(1);
    let rx = Receiver::<Msg>::create_with(&name, &options).unwrap();
    let mut old = Peer::spawn("send-then-sleep", &[&name, "0", &OLD.to_string()]);
    wait_until(PATIENCE, "the old sender sent its messages", || {
        rx.len() == OLD as usize
    });
    match Sender::<Msg>::open(&name) {
        Err(Error::Busy { role, pid, .. }) => assert_eq!((role, pid), ("sender", old.pid())),
        other => panic!("the only shard is held: expected Busy, got {other:?}"),
    }

    old.kill_and_reap();
    // No Busy: the new process must get the shard on its first try.
    let new = Peer::spawn(
        "open-send-range",
        &[
            &name,
            "0",
            &OLD.to_string(),
            &(2 * OLD).to_string(),
            "strict",
        ],
    );
    let mut order = Order::new(1);
    for _ in 0..2 * OLD {
        order.accept(&rx.recv_timeout(PATIENCE).unwrap());
    }
    new.finish(PATIENCE);
    drain_until_disconnected(&rx, &mut order, "after the new sender exited");
    assert_eq!(order.next, [2 * OLD]);
}

/// As above, but the old sender is killed while asleep in `send` on its full
/// ring, and the new one opens while the old is still an unreaped zombie.
#[test]
fn a_shard_whose_sender_was_killed_blocked_in_send_is_reused_while_it_is_a_zombie() {
    const CAPACITY: u64 = 64;
    let name = unique_name("mpsc-kill-reuse-zombie");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(CAPACITY as usize).shards(1);
    let rx = Receiver::<Msg>::create_with(&name, &options).unwrap();
    let mut old = Peer::spawn("stream-forever", &[&name, "0", "sleepy"]);
    wait_until(PATIENCE, "the old sender filled its ring", || rx.is_full());
    // Give it time to go to sleep on the futex (it never spins).
    std::thread::sleep(Duration::from_millis(100));
    old.kill_unreaped();

    // The kill lands asynchronously: until the old sender is a zombie it
    // may still look alive, so the new one retries while Busy.
    let new = Peer::spawn(
        "open-send-range",
        &[&name, "0", &CAPACITY.to_string(), "200", "retry"],
    );
    let mut order = Order::new(1);
    for _ in 0..200 {
        order.accept(&rx.recv_timeout(PATIENCE).unwrap());
    }
    new.finish(PATIENCE);
    assert_eq!(
        proc_state(old.pid()),
        Some('Z'),
        "the killed sender should still be an unreaped zombie"
    );
    drain_until_disconnected(&rx, &mut order, "after the new sender exited");
    assert_eq!(order.next, [200]);
    old.reap();
}

/// The receiver process is killed while the senders' rings are full: a
/// sender blocked in `send` gets its message back, the other notices too,
/// and a new receiver takes over what the rings hold; the senders then
/// carry on with it.
#[test]
fn a_killed_receiver_unblocks_full_senders_and_a_new_receiver_takes_over() {
    const CAPACITY: u64 = 16;
    let name = unique_name("mpsc-kill-receiver");
    let _cleanup = Cleanup(name.clone());
    // Never spin: the kill lands on senders asleep on their futex words.
    let options = Options::new()
        .capacity(CAPACITY as usize)
        .spin(Duration::ZERO);
    let tx = Sender::<Msg>::create_with(&name, &options).unwrap();
    let tx2 = tx.try_clone().unwrap();
    let mut peer = Peer::spawn("recv-then-sleep", &[&name, "3"]);
    for seq in 0..3 {
        tx.send_timeout(Msg::new(0, seq), PATIENCE).unwrap();
    }
    wait_until(PATIENCE, "the peer received 3 messages", || {
        tx.stats().received == 3
    });

    // Fill both rings; the peer takes no more.
    let mut next = 3;
    while tx.try_send(Msg::new(0, next)).is_ok() {
        next += 1;
    }
    assert_eq!(next, 3 + CAPACITY, "the ring holds exactly its capacity");
    for seq in 0..CAPACITY {
        tx2.try_send(Msg::new(1, seq)).unwrap();
    }
    assert!(matches!(
        tx2.try_send(Msg::new(1, CAPACITY)),
        Err(TrySendError::Full(_))
    ));

    let pid = peer.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        sigkill(pid);
    });
    let message = Msg::new(0, next);
    let (tx, result) = within(
        NOTICE + NOTICE,
        "a send blocked on a full ring",
        move || {
            let result = tx.send(message);
            (tx, result)
        },
    );
    assert!(
        matches!(result, Err(SendError(back)) if back == message),
        "send must hand back the unsent message once the receiver is killed: {result:?}"
    );
    match tx2.send_timeout(Msg::new(1, CAPACITY), NOTICE) {
        Err(SendTimeoutError::Disconnected(back)) => assert_eq!(back, Msg::new(1, CAPACITY)),
        other => panic!("the other sender should see the receiver dead: {other:?}"),
    }
    assert!(matches!(
        tx2.try_send(Msg::new(1, CAPACITY)),
        Err(TrySendError::Disconnected(_))
    ));
    killer.join().unwrap();
    peer.reap();

    // A new receiver takes the role and finds both rings as they were.
    let rx = Receiver::<Msg>::open(&name).expect("a killed receiver's role can be opened again");
    assert_eq!(rx.len(), 2 * CAPACITY as usize);
    let mut order = Order::starting_at(vec![3, 0]);
    for _ in 0..2 * CAPACITY {
        order.accept(&rx.recv_timeout(PATIENCE).unwrap());
    }
    assert_eq!(order.next, [3 + CAPACITY, CAPACITY]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "both senders live");

    // The senders carry on with the new receiver.
    tx.send(message).unwrap();
    tx2.send(Msg::new(1, CAPACITY)).unwrap();
    order.accept(&rx.recv_timeout(PATIENCE).unwrap());
    order.accept(&rx.recv_timeout(PATIENCE).unwrap());
    drop((tx, tx2));
    drain_until_disconnected(&rx, &mut order, "after both senders dropped");
    drop(rx);
    assert!(!common::segment_exists(&name));
}

/// A receiver asleep in a plain `recv` (never spinning) wakes up to the
/// death of an idle sender.
#[test]
fn a_sleeping_receiver_in_plain_recv_sees_an_idle_sender_killed() {
    let name = unique_name("mpsc-kill-idle");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(64).spin(Duration::ZERO);
    let rx = Receiver::<Msg>::create_with(&name, &options).unwrap();
    let mut peer = Peer::spawn("send-then-sleep", &[&name, "0", "5"]);
    let mut order = Order::new(1);
    for _ in 0..5 {
        order.accept(&rx.recv_timeout(PATIENCE).unwrap());
    }
    let pid = peer.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        sigkill(pid);
    });
    let result = within(
        NOTICE + NOTICE,
        "recv after the idle sender was killed",
        move || rx.recv(),
    );
    assert_eq!(result, Err(RecvError));
    killer.join().unwrap();
    peer.reap();
}

/// A sender whose ring never fills never blocks; its periodic liveness
/// check still tells it that the receiver died.
#[test]
fn a_sender_that_never_blocks_notices_the_receiver_killed() {
    let name = unique_name("mpsc-kill-never-full");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new().capacity(1 << 16);
    let tx = Sender::<Msg>::create_with(&name, &options).unwrap();
    let mut peer = Peer::spawn("recv-then-sleep", &[&name, "1"]);
    tx.send(Msg::new(0, 0)).unwrap();
    wait_until(PATIENCE, "the peer received the first message", || {
        tx.stats().received == 1
    });
    peer.kill_and_reap();
    // 20,000 sends, a millisecond apart, never fill 65,536 slots.
    let refused = within(
        Duration::from_secs(120),
        "sending after the kill",
        move || {
            let refused = (1..20_000u64).find_map(|seq| {
                std::thread::sleep(Duration::from_millis(1));
                tx.send(Msg::new(0, seq)).err()
            });
            assert!(tx.len() < tx.capacity(), "the ring never filled");
            refused
        },
    );
    let SendError(value) = refused.expect("the sender never noticed its receiver died");
    assert_eq!(value.sender, 0);
}
