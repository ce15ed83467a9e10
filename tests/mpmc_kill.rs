//! SIGKILL, not drop, with mpmc: a process killed anywhere in its code,
//! even between claiming a cell and publishing (or freeing) it, does not
//! stall the survivors; a killed producer loses nothing it published, a
//! killed consumer at most the message it had in hand; every producer
//! killed ends the consumers' wait; every consumer killed ends a blocked
//! send; a dead endpoint's slot is taken over by a new process, which frees
//! what the dead one left claimed.
//!
//! A kill cannot be aimed at the few instructions between a claim and its
//! publish, so the streaming tests repeat it at random moments, with 4 KiB
//! messages (whose copy into or out of the cell is that window); the
//! claim left by a dead process is also forged, through the segment's
//! `/dev/shm` file, in `a_claim_forged_for_a_dead_process_*`.
//!
//! No timing is pass/fail: the library promises to notice a dead peer
//! within 1 s (and to free a dead claimer's cell within about 0.2 s); the
//! tests wait up to 10 s, which still fails if detection is broken.

mod common;

use common::shm::{read_u32, read_u64, shm_file, write_u64};
use common::{
    arg, live, sigkill, sleep_forever, unique_name, wait_until, within, Cleanup, Peer, Rng,
};
use shmchan::mpmc::{
    self, Error, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use shmchan::Options;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a survivor may take to notice a dead peer, or to free a dead
/// claimer's cell, before the test fails (the contract is 1 s).
const NOTICE: Duration = Duration::from_secs(10);
/// How long a live peer may take to do its part.
const PATIENCE: Duration = Duration::from_secs(30);
/// The watchdog of a whole streaming round.
const ROUND_LIMIT: Duration = Duration::from_secs(120);
/// How many times an aimed kill stops its target, at most, to catch it
/// inside a claim (which takes a few hundred tries at most, usually).
const TRIES: u32 = 3000;

/// A 4 KiB message that says who sent it and its place in that sender's
/// stream; `check` and `last` (the first and the last word) must agree.
#[derive(Clone, Copy, PartialEq, Eq, shmchan::ShmSafe)]
#[repr(C)]
struct Big {
    id: u64,
    seq: u64,
    check: u64,
    /// `pad[0]` is 1 on a producer's last message.
    pad: [u64; 508],
    last: u64,
}

impl std::fmt::Debug for Big {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Big({}, {}, check {:#x}, last {:#x})",
            self.id, self.seq, self.check, self.last
        )
    }
}

fn fingerprint(id: u64, seq: u64) -> u64 {
    (id.rotate_left(40) ^ seq).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5A5A_F00D
}

impl Big {
    fn new(id: u64, seq: u64) -> Self {
        let check = fingerprint(id, seq);
        Self {
            id,
            seq,
            check,
            pad: [0; 508],
            last: check,
        }
    }

    /// Whole and from one of `producers`: its first and last words match.
    fn assert_valid(&self, producers: u64) {
        assert!(
            self.id < producers
                && self.check == fingerprint(self.id, self.seq)
                && self.last == self.check,
            "a torn or corrupted message: {self:?}"
        );
    }

    fn is_final(&self) -> bool {
        self.pad[0] == 1
    }
}

/// Message `seq` of producer `id`, as one word.
fn tag(id: u64, seq: u64) -> u64 {
    id << 40 | seq
}

fn untag(value: u64) -> (u64, u64) {
    (value >> 40, value & ((1 << 40) - 1))
}

/// The state letter of `/proc/<pid>/stat`.
fn proc_state(pid: u32) -> Option<char> {
    proc_stat_field(pid, 3).and_then(|field| field.chars().next())
}

/// Field `n` (1-based, as in proc(5)) of `/proc/<pid>/stat`.
fn proc_stat_field(pid: u32, n: usize) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.rsplit_once(')')?.1;
    rest.split_ascii_whitespace().nth(n - 3).map(str::to_owned)
}

/// Sends `signal` to `pid`, one of our unreaped children.
fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own
    // unreaped child, so it cannot name another process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// Whether every thread of `pid` is stopped.
fn all_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.into_iter().all(|task| {
        let stat = task
            .ok()
            .and_then(|task| std::fs::read_to_string(task.path().join("stat")).ok());
        let state = stat
            .as_deref()
            .and_then(|stat| stat.rsplit_once(')')?.1.split_ascii_whitespace().next());
        matches!(state, Some("T" | "t"))
    })
}

/// Whether the endpoint in `slot` holds a claim on a cell of the queue at
/// `file` (`capacity` cells of `cell_size` bytes).
fn holds_a_claim(file: &std::fs::File, slot: u64, capacity: u64, cell_size: u64) -> bool {
    (0..capacity).any(|i| {
        let word = read_u64(file, CELLS + i * cell_size);
        word >> 63 == 1 && (word >> 56) & 0x7F == slot
    })
}

/// The slot of `pid`'s endpoint among `slots` of the table in `file`.
fn slot_of(file: &std::fs::File, pid: u32, slots: std::ops::Range<u64>) -> u64 {
    slots
        .into_iter()
        .find(|&slot| read_u64(file, slot_word(slot)) as u32 == pid)
        .unwrap_or_else(|| panic!("process {pid} holds no slot"))
}

/// Stops `pid` (SIGSTOP) at random moments, up to `tries` times, until it
/// is caught holding a claim: between claiming a cell and publishing it
/// (a producer) or freeing it (a consumer). Leaves it stopped either way,
/// for a SIGKILL to land exactly there; returns whether it was caught.
/// (A stopped process is alive: nobody frees its claim meanwhile.)
fn stop_inside_a_claim(
    pid: u32,
    file: &std::fs::File,
    slot: u64,
    capacity: u64,
    rng: &mut Rng,
    tries: u32,
) -> bool {
    let cell_size = core::mem::size_of::<Big>() as u64 + 8;
    for attempt in 0..tries {
        signal(pid, libc::SIGSTOP);
        let give_up = std::time::Instant::now() + PATIENCE;
        while !all_stopped(pid) {
            assert!(std::time::Instant::now() < give_up, "the peer did not stop");
            std::thread::yield_now();
        }
        if holds_a_claim(file, slot, capacity, cell_size) {
            return true;
        }
        if attempt + 1 < tries {
            signal(pid, libc::SIGCONT);
            std::thread::sleep(Duration::from_micros(rng.below(500)));
        }
    }
    false
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let name = args[0].as_str();
        match role {
            // Sends Big(id, 0, 1, 2, ...) until the channel is disconnected
            // (or it is killed).
            "stream-forever" => {
                let id: u64 = arg(args, 1);
                let tx = Sender::<Big>::open(name).unwrap();
                let mut message = Big::new(id, 0);
                let mut seq = 0u64;
                loop {
                    message.seq = seq;
                    message.check = fingerprint(id, seq);
                    message.last = message.check;
                    if tx.send(message).is_err() {
                        break;
                    }
                    seq += 1;
                }
            }
            // Sends Big(id, 0, 1, 2, ...) in bursts of 50, a millisecond
            // apart, until the file args[2] exists; then one last message
            // marked final, and leaves.
            "stream-paced-until-file" => {
                let id: u64 = arg(args, 1);
                let stop = std::path::Path::new(&args[2]);
                let tx = Sender::<Big>::open(name).unwrap();
                let mut seq = 0u64;
                while !stop.exists() {
                    for _ in 0..50 {
                        tx.send(Big::new(id, seq)).unwrap();
                        seq += 1;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                let mut last = Big::new(id, seq);
                last.pad[0] = 1;
                tx.send(last).unwrap();
            }
            // Receives Big messages and forwards tag(id, seq) of each, as
            // soon as it has it, through the spsc channel args[1].
            "consume-forward" => {
                let rx = Receiver::<Big>::open(name).unwrap();
                let side = shmchan::spsc::Sender::<u64>::open(&args[1]).unwrap();
                while let Ok(m) = rx.recv() {
                    m.assert_valid(2);
                    side.send(tag(m.id, m.seq)).unwrap();
                }
            }
            // Opens `n` receivers of u64 and holds them until killed.
            "hold-receivers" => {
                let n: usize = arg(args, 1);
                let held: Vec<Receiver<u64>> = (0..n)
                    .map(|_| Receiver::<u64>::open(name).unwrap())
                    .collect();
                sleep_forever(held);
            }
            // Takes what is queued, then, never spinning, blocks in a plain
            // recv (of u64) until killed.
            "recv-asleep" => {
                let options = Options::new().spin(Duration::ZERO);
                let rx = Receiver::<u64>::open_with(name, &options).unwrap();
                while rx.try_recv().is_ok() {}
                let got = rx.recv();
                panic!("recv returned {got:?}, but nobody sends");
            }
            // Never spinning, sends u64s until it blocks on the full queue,
            // asleep, until killed.
            "send-asleep" => {
                let options = Options::new().spin(Duration::ZERO);
                let tx = Sender::<u64>::open_with(name, &options).unwrap();
                let mut i = 0;
                while tx.send(i).is_ok() {
                    i += 1;
                }
                panic!("send failed, but a receiver is attached");
            }
            // Does nothing until killed (its pid makes an owner word for a
            // dead process).
            "idle" => sleep_forever(()),
            // Creates the channel (of u64, capacity 8) with both ends,
            // sends 3, and holds them until killed.
            "create-and-hold" => {
                let (tx, rx) = mpmc::channel::<u64>(name, 8).unwrap();
                for i in 0..3 {
                    tx.send(i).unwrap();
                }
                sleep_forever((tx, rx));
            }
            // Opens a receiver (of u64), receives one message, and holds
            // it until killed.
            "recv-one-then-hold" => {
                let rx = Receiver::<u64>::open(name).unwrap();
                rx.recv().unwrap();
                sleep_forever(rx);
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// Receives Big messages until disconnection, on a thread, counting each
/// producer's in `seen`; fails if neither a message nor disconnection
/// comes within [`NOTICE`] (a stall). Returns the tags received, in order.
fn spawn_consumer(
    rx: Receiver<Big>,
    producers: u64,
    seen: Arc<Vec<AtomicU64>>,
) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            match rx.recv_timeout(NOTICE) {
                Ok(m) => {
                    m.assert_valid(producers);
                    if m.is_final() {
                        got.push(tag(m.id, m.seq) | 1 << 39);
                    } else {
                        got.push(tag(m.id, m.seq));
                    }
                    seen[m.id as usize].fetch_add(1, Ordering::Relaxed);
                }
                Err(RecvTimeoutError::Disconnected) => return got,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "a consumer got nothing for {NOTICE:?}: stalled (counts {:?})",
                    seen.iter()
                        .map(|n| n.load(Ordering::Relaxed))
                        .collect::<Vec<_>>()
                ),
            }
        }
    })
}

/// Checks what several consumers received: each consumer's values of each
/// producer increase (FIFO), and no value came twice. Returns, per
/// producer, the sorted sequence numbers received, and the final marker's
/// sequence number, if seen.
fn merge(streams: &[Vec<u64>], producers: u64) -> (Vec<Vec<u64>>, Vec<Option<u64>>) {
    let mut per = vec![Vec::new(); producers as usize];
    let mut finals = vec![None; producers as usize];
    for stream in streams {
        let mut last = vec![None; producers as usize];
        for &value in stream {
            let is_final = value & 1 << 39 != 0;
            let (id, seq) = untag(value & !(1 << 39));
            let id = id as usize;
            if let Some(prev) = last[id] {
                assert!(
                    seq > prev,
                    "producer {id}: {seq} after {prev} in one consumer"
                );
            }
            last[id] = Some(seq);
            if is_final {
                finals[id] = Some(seq);
            }
            per[id].push(seq);
        }
    }
    for (id, seqs) in per.iter_mut().enumerate() {
        seqs.sort_unstable();
        let before = seqs.len();
        seqs.dedup();
        assert_eq!(
            seqs.len(),
            before,
            "producer {id}: a message received twice"
        );
    }
    (per, finals)
}

/// `seqs` (sorted, distinct) is exactly `0..seqs.len()`.
fn assert_gap_free(seqs: &[u64], what: &str) {
    if let Some(gap) = seqs.iter().enumerate().find(|&(i, &seq)| seq != i as u64) {
        panic!(
            "{what}: a gap: message {} missing ({} received, up to {:?})",
            gap.0,
            seqs.len(),
            seqs.last()
        );
    }
}

// ---------------------------------------------------------------------------
// Producers killed.

/// One round: a producer process streaming as fast as it can is killed at
/// a random moment while another producer process (paced) and two consumer
/// threads (sharing this process's receiver) keep going.
///
/// With `aim`, the moment is chosen: the producer is stopped (SIGSTOP) at
/// random moments until it is caught between claiming a cell and
/// publishing it (as the cell's word shows), and killed there; if it is
/// not caught in [`TRIES`] tries, it is killed wherever the last stop left it.
///
/// What must hold: the consumers never wait [`NOTICE`] without a message
/// or disconnection (a cell the dead producer left claimed is freed and
/// skipped); they go on receiving the survivor's stream after the kill
/// (20,000 more messages, far more than the queue holds, so any hole has
/// been passed); every message is received once, each consumer's in order;
/// the killed producer's messages are exactly `0..n` (nothing it published
/// is lost; the one it claimed but did not publish was never sent) and the
/// survivor's exactly up to its final one. The holes (positions claimed
/// but never published, skipped by the consumers: `stats.received` counts
/// them) number one if the producer was killed inside a claim, else none.
/// Returns whether it was.
fn kill_one_producer_round(round: u64, aim: bool, reap_first: bool) -> bool {
    const CAPACITY: u64 = 16;
    let mut rng = Rng::with_env_seed(0xC1A1_0000 + round);
    let name = unique_name("mpmc-kill-producer");
    let _cleanup = Cleanup(name.clone());
    let stop = std::env::temp_dir().join(format!("{}.stop", unique_name("mpmc-kill-producer")));
    let stop_arg = stop.to_str().unwrap().to_owned();
    let rx = Receiver::<Big>::create(&name, CAPACITY as usize).unwrap();
    let file = shm_file(&name);
    let seen: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
    let mut doomed = Peer::spawn("stream-forever", &[&name, "0"]);
    let survivor = Peer::spawn("stream-paced-until-file", &[&name, "1", &stop_arg]);
    let consumers: Vec<_> = (0..2)
        .map(|_| spawn_consumer(rx.clone(), 2, seen.clone()))
        .collect();
    let count = |id: usize| seen[id].load(Ordering::Relaxed);

    let threshold = 1 + rng.below(3000);
    wait_until(PATIENCE, "both producers stream", || {
        count(0) >= threshold && count(1) >= 1
    });
    let slot = slot_of(&file, doomed.pid(), 0..64);
    let caught = if aim {
        stop_inside_a_claim(doomed.pid(), &file, slot, CAPACITY, &mut rng, TRIES)
    } else {
        std::thread::sleep(Duration::from_micros(rng.below(5000)));
        false
    };
    if reap_first {
        doomed.kill_and_reap();
    } else {
        doomed.kill_unreaped();
    }
    let at_kill = count(1);
    wait_until(PATIENCE, "the consumers go on with the survivor", || {
        count(1) >= at_kill + 20_000
    });
    std::fs::write(&stop, b"").unwrap();
    let streams: Vec<Vec<u64>> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
    survivor.finish(PATIENCE);
    let _ = std::fs::remove_file(&stop);
    if !reap_first {
        assert_eq!(
            proc_state(doomed.pid()),
            Some('Z'),
            "the disconnection was noticed while the killed producer was a zombie"
        );
        doomed.reap();
    }

    let (per, finals) = merge(&streams, 2);
    assert_gap_free(&per[0], "the killed producer");
    assert!(per[0].len() as u64 >= threshold);
    assert_gap_free(&per[1], "the surviving producer");
    assert_eq!(
        finals[1],
        per[1].last().copied(),
        "the survivor's final message was received, last"
    );
    let received = (per[0].len() + per[1].len()) as u64;
    let stats = rx.stats();
    assert_eq!(stats.sent, stats.received, "{stats:?}");
    assert_eq!(stats.len, 0);
    assert!(stats.received >= received, "{stats:?}, {received} received");
    let holes = stats.received - received;
    if aim {
        assert_eq!(
            holes,
            u64::from(caught),
            "a producer killed inside a claim leaves one hole, elsewhere none"
        );
    } else {
        assert!(holes <= 1, "one kill leaves at most one hole: {holes}");
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    caught || holes == 1
}

#[test]
fn killing_a_producer_process_at_random_moments_loses_nothing_it_published() {
    const ROUNDS: u64 = 12;
    let mut inside = 0;
    for round in 0..ROUNDS {
        let aim = round % 2 == 0;
        let reap_first = round % 4 < 2;
        inside += u64::from(within(
            ROUND_LIMIT,
            "a round of killing a producer",
            move || kill_one_producer_round(round, aim, reap_first),
        ));
    }
    eprintln!("{ROUNDS} producers killed, {inside} of them between claim and publish");
}

#[test]
fn every_producer_killed_consumers_get_everything_published_then_disconnection() {
    within(ROUND_LIMIT * 2, "killing every producer", || {
        const BEFORE_KILL: u64 = 2000;
        let name = unique_name("mpmc-kill-all-producers");
        let _cleanup = Cleanup(name.clone());
        let rx = Receiver::<Big>::create(&name, 16).unwrap();
        let seen: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
        let mut peers: Vec<Peer> = (0..2)
            .map(|id| Peer::spawn("stream-forever", &[&name, &id.to_string()]))
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| spawn_consumer(rx.clone(), 2, seen.clone()))
            .collect();
        wait_until(PATIENCE, "both producers stream", || {
            seen.iter()
                .all(|n| n.load(Ordering::Relaxed) >= BEFORE_KILL)
        });
        // One of them caught between claim and publish, if it can be: then
        // the consumers must skip its hole to reach the other's messages,
        // after which every sender is gone.
        let file = shm_file(&name);
        let mut rng = Rng::with_env_seed(0xC1A3_0000);
        let slot = slot_of(&file, peers[0].pid(), 0..64);
        let caught = stop_inside_a_claim(peers[0].pid(), &file, slot, 16, &mut rng, TRIES);
        for peer in peers.iter().rev() {
            peer.kill_unreaped();
        }
        // The consumers end on disconnection, not on a stall.
        let streams: Vec<Vec<u64>> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        let (per, _) = merge(&streams, 2);
        for (id, seqs) in per.iter().enumerate() {
            assert_gap_free(seqs, &format!("killed producer {id}"));
            assert!(seqs.len() as u64 >= BEFORE_KILL);
        }
        let received = (per[0].len() + per[1].len()) as u64;
        let stats = rx.stats();
        assert_eq!((stats.sent, stats.len), (stats.received, 0), "{stats:?}");
        let holes = stats.received - received;
        assert!(
            holes <= 2,
            "{} positions, {received} messages",
            stats.received
        );
        if caught {
            assert!(
                holes >= 1,
                "the producer caught inside a claim left no hole"
            );
        }
        eprintln!("caught inside a claim: {caught}; holes: {holes}");
        // Disconnection is sticky, for every kind of receive.
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.recv_timeout(NOTICE), Err(RecvTimeoutError::Disconnected));
        assert_eq!(rx.iter().next(), None);
        assert!(
            stats.endpoints.iter().all(|e| e.role == "receiver"),
            "the dead producers' slots were cleared: {stats:?}"
        );
        for peer in &mut peers {
            peer.reap();
        }
        drop(rx);
        assert!(
            !common::segment_exists(&name),
            "the dead producers do not keep the name alive"
        );
    });
}

// ---------------------------------------------------------------------------
// Consumers killed.

/// One round: a consumer process (forwarding the tag of each message it
/// receives, as soon as it has it, through an spsc side channel) is killed
/// at a random moment while two producer threads and a consumer thread of
/// this process keep going.
///
/// With `aim`, the consumer is stopped (SIGSTOP) at random moments until
/// it is caught holding a claim (reading a cell), and killed there (or
/// wherever the last stop left it).
///
/// What must hold: the producers never stall (each send completes within
/// [`NOTICE`]; a cell the dead consumer left claimed is freed when they
/// come round to it); the surviving consumer goes on receiving (20,000
/// more messages, far more than the queue holds); no message is received
/// twice, by the survivor or the dead one (as forwarded).
///
/// What may be lost: a consumer thread holds at most one message it has
/// not forwarded: either claimed and being read (lost with it, freed by a
/// survivor) or read and not yet forwarded. So the messages neither
/// received by the survivor nor forwarded by the dead consumer number at
/// most one; exactly one if it was killed inside a claim. Returns that
/// number.
fn kill_one_consumer_round(round: u64, aim: bool, reap_first: bool) -> u64 {
    const CAPACITY: u64 = 16;
    let mut rng = Rng::with_env_seed(0xC1A2_0000 + round);
    let name = unique_name("mpmc-kill-consumer");
    let _cleanup = Cleanup(name.clone());
    let side_name = unique_name("mpmc-kill-consumer-side");
    let _cleanup2 = Cleanup(side_name.clone());
    let side = shmchan::spsc::Receiver::<u64>::create(&side_name, 1 << 16).unwrap();
    let (tx, rx) = mpmc::channel::<Big>(&name, CAPACITY as usize).unwrap();
    let file = shm_file(&name);
    let mut doomed = Peer::spawn("consume-forward", &[&name, &side_name]);

    let forwarded = Arc::new(AtomicU64::new(0));
    let drainer = {
        let forwarded = forwarded.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                match side.recv_timeout(PATIENCE) {
                    Ok(value) => {
                        got.push(value);
                        forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(RecvTimeoutError::Disconnected) => return got,
                    Err(RecvTimeoutError::Timeout) => panic!("the side channel stalled"),
                }
            }
        })
    };
    let seen: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
    let survivor = spawn_consumer(rx.clone(), 2, seen.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..2u64)
        .map(|id| {
            let tx = tx.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    match tx.send_timeout(Big::new(id, seq), NOTICE) {
                        Ok(()) => seq += 1,
                        Err(err) => panic!("producer {id} stalled at {seq}: {err:?}"),
                    }
                }
                seq
            })
        })
        .collect();
    drop(tx);
    let received = || seen.iter().map(|n| n.load(Ordering::Relaxed)).sum::<u64>();

    let threshold = 1 + rng.below(2000);
    wait_until(PATIENCE, "the doomed consumer receives", || {
        forwarded.load(Ordering::Relaxed) >= threshold
    });
    let slot = slot_of(&file, doomed.pid(), RECEIVER_SLOTS..2 * RECEIVER_SLOTS);
    let caught = if aim {
        stop_inside_a_claim(doomed.pid(), &file, slot, CAPACITY, &mut rng, TRIES)
    } else {
        std::thread::sleep(Duration::from_micros(rng.below(5000)));
        false
    };
    if reap_first {
        doomed.kill_and_reap();
    } else {
        doomed.kill_unreaped();
    }
    let at_kill = received();
    wait_until(PATIENCE, "the survivors go on", || {
        received() >= at_kill + 20_000
    });
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<u64> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    let survived = survivor.join().unwrap();
    let dead = drainer.join().unwrap();
    if !reap_first {
        doomed.reap();
    }

    let (per, _) = merge(&[survived, dead], 2);
    let mut missing = 0;
    for (id, seqs) in per.iter().enumerate() {
        assert!(
            seqs.last().is_none_or(|&last| last < sent[id]),
            "producer {id} sent {}, yet {:?} was received",
            sent[id],
            seqs.last()
        );
        missing += sent[id] - seqs.len() as u64;
    }
    assert!(
        missing <= 1,
        "{missing} messages lost, but the killed consumer had at most one in hand"
    );
    if caught {
        assert_eq!(missing, 1, "the message being read is lost with its reader");
    }
    let stats = rx.stats();
    assert_eq!(
        (stats.sent, stats.received, stats.len),
        (sent[0] + sent[1], sent[0] + sent[1], 0),
        "a freed claim counts as received"
    );
    missing
}

#[test]
fn killing_a_consumer_process_at_random_moments_loses_at_most_the_message_in_its_hands() {
    const ROUNDS: u64 = 8;
    let mut lost = 0;
    for round in 0..ROUNDS {
        let aim = round % 2 == 0;
        let reap_first = round % 4 < 2;
        lost += within(ROUND_LIMIT, "a round of killing a consumer", move || {
            kill_one_consumer_round(round, aim, reap_first)
        });
    }
    eprintln!("{ROUNDS} consumers killed; {lost} messages lost with them");
}

/// Every receiver (64 attachments, in one process) is killed while a send
/// waits, asleep, on the full queue: the send hands its message back; the
/// dead process's slots can all be taken again; a new receiver gets what
/// was queued, in order, and the senders carry on with it.
#[test]
fn every_receiver_killed_unblocks_a_full_sender_and_their_slots_are_taken_again() {
    const CAPACITY: u64 = 8;
    let name = unique_name("mpmc-kill-receivers");
    let _cleanup = Cleanup(name.clone());
    let options = Options::new()
        .capacity(CAPACITY as usize)
        .spin(Duration::ZERO);
    let tx = Sender::<u64>::create_with(&name, &options).unwrap();
    let tx2 = tx.clone();
    let mut holder = Peer::spawn("hold-receivers", &[&name, "64"]);
    wait_until(PATIENCE, "the peer holds every receiver slot", || {
        live(&tx.stats(), "receiver") == 64
    });
    match Receiver::<u64>::open(&name) {
        Err(Error::Busy { role, pid, .. }) => assert_eq!((role, pid), ("receiver", holder.pid())),
        other => panic!("a 65th receiver: expected Busy, got {other:?}"),
    }
    for i in 0..CAPACITY {
        tx.try_send(i).unwrap();
    }
    assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));

    let pid = holder.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        sigkill(pid);
    });
    let (tx, result) = within(
        NOTICE + NOTICE,
        "a send asleep on a full queue",
        move || {
            let result = tx.send(CAPACITY);
            (tx, result)
        },
    );
    assert!(
        matches!(result, Err(SendError(back)) if back == CAPACITY),
        "send must hand back its message once every receiver is killed: {result:?}"
    );
    match tx2.send_timeout(CAPACITY, NOTICE) {
        Err(SendTimeoutError::Disconnected(back)) => assert_eq!(back, CAPACITY),
        other => panic!("the clone should see the receivers dead: {other:?}"),
    }
    assert!(matches!(
        tx2.try_send(CAPACITY),
        Err(TrySendError::Disconnected(_))
    ));
    killer.join().unwrap();
    holder.reap();

    // A new receiver finds the queue as it was, and the senders carry on.
    let rx = Receiver::<u64>::open(&name).expect("a dead receiver's slot can be taken");
    assert_eq!(rx.len(), CAPACITY as usize);
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        (0..CAPACITY).collect::<Vec<_>>()
    );
    tx.send(CAPACITY).unwrap();
    tx2.send(CAPACITY + 1).unwrap();
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(CAPACITY));
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(CAPACITY + 1));
    drop(rx);

    // Killed again, this time with nobody noticing before new receivers
    // come: each of the 64 dead attachments is taken over at once (no
    // Busy, no wait), and the 65th is Busy, naming this process.
    let mut holder = Peer::spawn("hold-receivers", &[&name, "64"]);
    wait_until(PATIENCE, "the peer holds every receiver slot", || {
        live(&tx.stats(), "receiver") == 64
    });
    holder.kill_and_reap();
    let receivers: Vec<Receiver<u64>> = (0..64)
        .map(|i| {
            Receiver::<u64>::open(&name)
                .unwrap_or_else(|err| panic!("receiver {i} after the holder died: {err}"))
        })
        .collect();
    match Receiver::<u64>::open(&name) {
        Err(Error::Busy { role, pid, .. }) => {
            assert_eq!((role, pid), ("receiver", std::process::id()))
        }
        other => panic!("a 65th receiver: expected Busy, got {other:?}"),
    }
    tx.send(7).unwrap();
    assert_eq!(receivers[63].recv_timeout(PATIENCE), Ok(7));
}

// ---------------------------------------------------------------------------
// Forged claims of dead processes, and sleepers of dead processes.

// The layout of an mpmc segment of `u64` (see tests/mpmc_hostile.rs, which
// checks it against the library).
const TABLE: u64 = 576;
const RING: u64 = 1664;
const HEAD: u64 = RING;
const TAIL: u64 = RING + 128;
const NOT_EMPTY: u64 = RING + 256;
const NOT_FULL: u64 = RING + 384;
const TALLIES: u64 = RING + 640;
const CELLS: u64 = RING + 1152;
const RECEIVER_SLOTS: u64 = 64;

fn slot_word(slot: u64) -> u64 {
    TABLE + 8 * slot
}

fn cell_word(index: u64) -> u64 {
    CELLS + 16 * index
}

fn cell_value(index: u64) -> u64 {
    cell_word(index) + 8
}

fn tally(slot: u64) -> u64 {
    TALLIES + 4 * slot
}

/// A cell's sequence word: claimed by the endpoint in `slot`, for `value`.
fn busy(value: u64, slot: u64) -> u64 {
    (value & ((1 << 56) - 1)) | 1 << 63 | slot << 56
}

/// The owner word of a process that is dead: a peer's pid, read before it
/// was killed and reaped. (Should the pid be reused, no matter: a slot is
/// held by its lock, which the dead peer never took.)
fn dead_owner_word() -> u64 {
    let mut peer = Peer::spawn("idle", &["-"]);
    let pid = peer.pid();
    peer.kill_and_reap();
    u64::from(pid)
}

/// A producer killed between claim and publish, forged: its claim in a cell
/// (and `tail` past it) and its slot in the table, owned by a dead
/// process. A consumer waiting on the cell probes the claimer, finds it
/// dead, and skips the hole; a new sender that takes the dead one's slot
/// frees such a claim when it attaches, before anyone waits on it.
#[test]
fn a_claim_forged_for_a_dead_producer_is_skipped_and_freed_by_its_slots_next_owner() {
    const CAPACITY: u64 = 8;
    let name = unique_name("mpmc-kill-forged-producer");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, CAPACITY as usize).unwrap();
    let file = shm_file(&name);
    let dead = dead_owner_word();
    let me = read_u64(&file, slot_word(0));
    assert_eq!(me as u32, std::process::id(), "tx holds sender slot 0");
    assert_eq!(
        read_u64(&file, slot_word(RECEIVER_SLOTS)),
        me,
        "rx, slot 64"
    );

    // Position 0 published; position 1 claimed by "producer 1", dead.
    tx.send(10).unwrap();
    write_u64(&file, slot_word(1), dead);
    write_u64(&file, cell_word(1), busy(1, 1));
    write_u64(&file, TAIL, 2);
    tx.send(12).unwrap();
    assert_eq!(read_u64(&file, TAIL), 3);
    assert_eq!(rx.recv(), Ok(10));
    let rx = within(
        NOTICE,
        "receiving past a dead producer's claim",
        move || {
            assert_eq!(rx.recv(), Ok(12), "the hole is skipped");
            rx
        },
    );
    assert_eq!(
        read_u64(&file, cell_word(1)),
        1 + CAPACITY,
        "the cell freed"
    );
    assert_eq!(
        read_u64(&file, slot_word(1)),
        0,
        "the dead claimer's slot reaped"
    );
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received, stats.len), (3, 3, 0));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    // The same with try_recv (once a probe is due: at most one per 100 ms).
    write_u64(&file, slot_word(1), dead);
    write_u64(&file, cell_word(3), busy(3, 1));
    write_u64(&file, TAIL, 4);
    tx.send(14).unwrap();
    let got = within(NOTICE, "try_recv past a dead producer's claim", move || {
        let got = loop {
            match rx.try_recv() {
                Ok(value) => break value,
                Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(1)),
                Err(err) => panic!("{err:?}"),
            }
        };
        (got, rx)
    });
    let (got, rx) = got;
    assert_eq!(got, 14);

    // Forged again, at position 5; this time a new sender takes slot 1
    // (slot 0 is held, slot 1's owner is dead) and frees the claim as it
    // attaches: before any receive looks at it.
    write_u64(&file, slot_word(1), dead);
    write_u64(&file, cell_word(5), busy(5, 1));
    write_u64(&file, TAIL, 6);
    assert_eq!(read_u64(&file, HEAD), 5);
    let tx2 = Sender::<u64>::open(&name).unwrap();
    assert_eq!(
        read_u64(&file, slot_word(1)),
        me,
        "the new sender took slot 1"
    );
    assert_eq!(
        read_u64(&file, cell_word(5)),
        5 + CAPACITY,
        "attaching freed the dead predecessor's claim"
    );
    assert_eq!(read_u64(&file, HEAD), 6, "and moved the head past it");
    tx2.send(16).unwrap();
    assert_eq!(rx.try_recv(), Ok(16));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // Around the queue again: the freed cells are reused normally.
    for i in 0..CAPACITY {
        tx.send(100 + i).unwrap();
    }
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        (100..100 + CAPACITY).collect::<Vec<_>>()
    );
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received), (7 + CAPACITY, 7 + CAPACITY));
}

/// A consumer killed while reading a cell, forged: the cell claimed by a
/// dead receiver's slot, `head` past it. Producers coming round to the
/// cell find it claimed, probe the claimer, and free it (its message is
/// lost with its reader); a new receiver that takes the dead one's slot
/// frees such a claim when it attaches.
#[test]
fn a_claim_forged_for_a_dead_consumer_is_freed_by_producers_and_by_its_slots_next_owner() {
    const CAPACITY: u64 = 8;
    let name = unique_name("mpmc-kill-forged-consumer");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, CAPACITY as usize).unwrap();
    let file = shm_file(&name);
    let dead = dead_owner_word();
    let me = read_u64(&file, slot_word(0));

    // Position 0 published, then "receiver 65" (dead) claimed it and moved
    // the head on.
    tx.send(10).unwrap();
    write_u64(&file, slot_word(RECEIVER_SLOTS + 1), dead);
    write_u64(&file, cell_word(0), busy(1, RECEIVER_SLOTS + 1));
    write_u64(&file, HEAD, 1);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    for i in 1..CAPACITY {
        tx.try_send(10 + i).unwrap();
    }
    // Position 8 is cell 0 again: the first look at its dead claimer frees
    // it, at once.
    tx.try_send(10 + CAPACITY)
        .expect("a dead consumer's cell is freed for the next lap");
    assert_eq!(read_u64(&file, slot_word(RECEIVER_SLOTS + 1)), 0, "reaped");
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        (11..=10 + CAPACITY).collect::<Vec<_>>(),
        "everything but the message lost with its reader"
    );

    // A blocking send does the same, after its probe.
    write_u64(&file, slot_word(RECEIVER_SLOTS + 1), dead);
    tx.send(30).unwrap(); // position 9, cell 1
    write_u64(&file, cell_word(1), busy(10, RECEIVER_SLOTS + 1));
    write_u64(&file, HEAD, 10);
    for i in 1..CAPACITY {
        tx.send(30 + i).unwrap();
    }
    let tx = within(
        NOTICE,
        "a send blocked on a dead consumer's cell",
        move || {
            tx.send(30 + CAPACITY).unwrap();
            tx
        },
    );
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        (31..=30 + CAPACITY).collect::<Vec<_>>()
    );

    // Forged again; a new receiver takes slot 65 (64 is held, 65's owner
    // dead) and frees the claim as it attaches.
    let position = read_u64(&file, TAIL);
    assert_eq!(read_u64(&file, HEAD), position);
    tx.send(50).unwrap();
    let index = position % CAPACITY;
    write_u64(&file, slot_word(RECEIVER_SLOTS + 1), dead);
    write_u64(
        &file,
        cell_word(index),
        busy(position + 1, RECEIVER_SLOTS + 1),
    );
    write_u64(&file, HEAD, position + 1);
    let rx2 = Receiver::<u64>::open(&name).unwrap();
    assert_eq!(read_u64(&file, slot_word(RECEIVER_SLOTS + 1)), me);
    assert_eq!(
        read_u64(&file, cell_word(index)),
        position + CAPACITY,
        "attaching freed the dead predecessor's claim"
    );
    for i in 0..CAPACITY {
        tx.try_send(60 + i).unwrap();
    }
    let mut got: Vec<u64> = rx2.try_iter().collect();
    got.extend(rx.try_iter());
    got.sort_unstable();
    assert_eq!(got, (60..60 + CAPACITY).collect::<Vec<_>>());
    assert_eq!(read_u64(&file, cell_value(index)), 60 + CAPACITY - 1);
}

/// A receiver process killed while asleep in `recv` leaves itself counted
/// in the `not_empty` doorbell's sleepers; whoever frees its slot takes its
/// count off (a sender probing the receivers, or a receiver taking its slot
/// over), so that publishes stop ringing for a sleeper that is gone. The
/// same for a sender killed asleep on a full queue.
#[test]
fn a_process_killed_asleep_leaves_no_sleeper_count_behind() {
    const CAPACITY: u64 = 4;
    let name = unique_name("mpmc-kill-asleep");
    let _cleanup = Cleanup(name.clone());
    let tx = Sender::<u64>::create(&name, CAPACITY as usize).unwrap();
    let file = shm_file(&name);
    let sleepers = |bell: u64| read_u32(&file, bell + 4);
    let slot = RECEIVER_SLOTS;

    // Freed by a sender's probe.
    let mut peer = Peer::spawn("recv-asleep", &[&name]);
    wait_until(PATIENCE, "the receiver sleeps", || {
        sleepers(NOT_EMPTY) == 1 && read_u32(&file, tally(slot)) == 1
    });
    peer.kill_and_reap();
    assert_eq!(sleepers(NOT_EMPTY), 1, "nobody has looked yet");
    // A full queue makes try_send look at the receivers.
    within(NOTICE, "sending until the dead receiver is noticed", {
        let tx = tx.clone();
        move || {
            while !matches!(tx.try_send(1), Err(TrySendError::Disconnected(_))) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    assert_eq!(
        sleepers(NOT_EMPTY),
        0,
        "the dead sleeper's count was taken off"
    );
    assert_eq!(read_u32(&file, tally(slot)), 0);
    assert_eq!(read_u64(&file, slot_word(slot)), 0);

    // Freed by the receiver that takes the slot over.
    let mut peer = Peer::spawn("recv-asleep", &[&name]);
    wait_until(PATIENCE, "the receiver sleeps", || {
        sleepers(NOT_EMPTY) == 1 && read_u32(&file, tally(slot)) == 1
    });
    peer.kill_and_reap();
    let rx = Receiver::<u64>::open(&name).unwrap();
    assert_eq!(read_u64(&file, slot_word(slot)) as u32, std::process::id());
    assert_eq!(sleepers(NOT_EMPTY), 0, "the new owner took the count off");
    assert_eq!(read_u32(&file, tally(slot)), 0);
    assert_eq!(rx.try_iter().count(), 0, "the peer took what was queued");

    // A sender asleep on the full queue, killed: its slot (1: 0 is held)
    // is freed by a receiver's probe.
    let mut peer = Peer::spawn("send-asleep", &[&name]);
    wait_until(PATIENCE, "the sender sleeps", || {
        sleepers(NOT_FULL) == 1 && read_u32(&file, tally(1)) == 1
    });
    peer.kill_and_reap();
    assert_eq!(sleepers(NOT_FULL), 1);
    drop(tx);
    // Every sender gone (one dropped, one dead): the receiver drains the
    // queue and, looking at the senders, frees the dead one's slot.
    let got = within(NOTICE, "receiving until disconnection", move || {
        let mut got = 0;
        while rx.recv().is_ok() {
            got += 1;
        }
        (got, rx)
    });
    assert_eq!(got.0, CAPACITY);
    assert_eq!(
        sleepers(NOT_FULL),
        0,
        "the dead sender's count was taken off"
    );
    assert_eq!(read_u32(&file, tally(1)), 0);
    assert_eq!(read_u64(&file, slot_word(1)), 0);
}

/// Three positions at a time, 20 times: a message, received; a hole (a
/// claim forged for a dead producer); a message, which a consumer waiting
/// on the hole gets once it has probed the claimer and skipped the hole.
/// Around and around the smallest queues, so that the hole falls on every
/// cell in every lap.
#[test]
fn holes_of_dead_producers_are_skipped_at_every_cell_of_the_smallest_queues() {
    let dead = dead_owner_word();
    for capacity in [2u64, 4] {
        let name = unique_name("mpmc-kill-holes");
        let _cleanup = Cleanup(name.clone());
        let (tx, rx) = mpmc::channel::<u64>(&name, capacity as usize).unwrap();
        let file = shm_file(&name);
        let (tx, rx) = within(NOTICE * 4, "skipping holes", move || {
            for i in 0..20 {
                let at = read_u64(&file, TAIL);
                tx.send(2 * i).unwrap();
                assert_eq!(rx.recv(), Ok(2 * i), "capacity {capacity}, round {i}");
                write_u64(&file, slot_word(1), dead);
                write_u64(&file, cell_word((at + 1) % capacity), busy(at + 1, 1));
                write_u64(&file, TAIL, at + 2);
                tx.send(2 * i + 1).unwrap();
                assert_eq!(rx.recv(), Ok(2 * i + 1), "capacity {capacity}, round {i}");
                let stats = rx.stats();
                assert_eq!((stats.sent, stats.received), (at + 3, at + 3));
            }
            (tx, rx)
        });
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
    }
}

/// A dead producer's claim met by the producers of the next lap (the queue
/// full behind it, nobody receiving): they probe the claimer, free the
/// cell and go on; the receiver then skips the hole.
#[test]
fn a_dead_producers_claim_is_freed_by_the_producers_that_come_round_to_it() {
    let dead = dead_owner_word();
    for capacity in [2u64, 4] {
        let name = unique_name("mpmc-kill-lapped");
        let _cleanup = Cleanup(name.clone());
        let (tx, rx) = mpmc::channel::<u64>(&name, capacity as usize).unwrap();
        let file = shm_file(&name);
        let (tx, rx) = within(NOTICE * 4, "sending past holes", move || {
            for i in 0..10 {
                let at = read_u64(&file, TAIL);
                assert_eq!(read_u64(&file, HEAD), at);
                // Position `at`: a message, received. Position `at + 1`: a
                // dead producer's claim.
                tx.send(100 * i).unwrap();
                assert_eq!(rx.recv(), Ok(100 * i));
                write_u64(&file, slot_word(1), dead);
                write_u64(&file, cell_word((at + 1) % capacity), busy(at + 1, 1));
                write_u64(&file, TAIL, at + 2);
                // Positions `at + 2 .. at + 1 + capacity` fill the queue;
                // the next is the hole's cell again.
                for k in 0..capacity {
                    tx.send_timeout(100 * i + 1 + k, NOTICE)
                        .unwrap_or_else(|err| panic!("capacity {capacity}, round {i}: {err:?}"));
                }
                for k in 0..capacity {
                    assert_eq!(rx.recv_timeout(NOTICE), Ok(100 * i + 1 + k));
                }
            }
            (tx, rx)
        });
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
    }
}

/// A sender whose queue never fills never blocks; its periodic look at the
/// receivers (every few hundred sends, and a liveness probe at most every
/// 100 ms) still tells it that the only receiver was killed.
#[test]
fn a_sender_that_never_blocks_notices_the_receiver_killed() {
    let name = unique_name("mpmc-kill-never-full");
    let _cleanup = Cleanup(name.clone());
    let tx = Sender::<u64>::create(&name, 1 << 16).unwrap();
    let mut peer = Peer::spawn("recv-one-then-hold", &[&name]);
    tx.send(0).unwrap();
    wait_until(PATIENCE, "the peer received the first message", || {
        tx.stats().received == 1
    });
    peer.kill_and_reap();
    // Sends a millisecond apart: 2000 of them never fill 65,536 cells.
    let refused = within(
        Duration::from_secs(60),
        "sending after the kill",
        move || {
            let refused = (1..2000u64).find_map(|seq| {
                std::thread::sleep(Duration::from_millis(1));
                tx.send(seq).err().map(|err| (seq, err))
            });
            assert!(tx.len() < tx.capacity(), "the queue never filled");
            refused
        },
    );
    let (seq, SendError(value)) = refused.expect("the sender never noticed its receiver died");
    assert_eq!(value, seq);
    assert!(seq < 1000, "noticed only after {seq} sends");
}

/// A channel whose every endpoint was killed is stale: `create` replaces
/// it with a fresh one, and no message of the old one shows up.
#[test]
fn a_channel_whose_endpoints_were_all_killed_is_replaced_by_create() {
    let name = unique_name("mpmc-kill-stale");
    let _cleanup = Cleanup(name.clone());
    let mut peer = Peer::spawn("create-and-hold", &[&name]);
    wait_until(PATIENCE, "the peer created the channel", || {
        Receiver::<u64>::open(&name).is_ok_and(|rx| rx.len() == 3)
    });
    assert!(matches!(
        Receiver::<u64>::create(&name, 8),
        Err(Error::AlreadyExists { .. })
    ));
    peer.kill_and_reap();
    let (tx, rx) = mpmc::channel::<u64>(&name, 4).unwrap();
    assert_eq!(rx.capacity(), 4);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(7).unwrap();
    assert_eq!(rx.recv(), Ok(7));
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.endpoints.len()), (1, 2));
}

/// A sender killed asleep on the full queue leaves itself counted in
/// `not_full`; while the receivers never find the queue empty they never
/// look at the senders (a dead sender's slot, and so its tally, is freed
/// only by a receiver's liveness probe, made when a receive finds the
/// queue empty, or by a producer that meets one of its claims), so the
/// count stays. It must not make every receive ring the doorbell (a futex
/// syscall) with nobody asleep to wake (DESIGN §4: "a busy channel makes
/// no syscalls"): once rung, the doorbell is not rung again until a waiter
/// has looked.
#[test]
fn a_sender_killed_asleep_does_not_make_every_receive_ring() {
    const CAPACITY: u64 = 4;
    let name = unique_name("mpmc-kill-stale-sleeper");
    let _cleanup = Cleanup(name.clone());
    let rx = Receiver::<u64>::create(&name, CAPACITY as usize).unwrap();
    let tx = Sender::<u64>::open(&name).unwrap();
    let file = shm_file(&name);
    let sleepers = |bell: u64| read_u32(&file, bell + 4);
    let mut peer = Peer::spawn("send-asleep", &[&name]);
    wait_until(PATIENCE, "the sender sleeps", || sleepers(NOT_FULL) == 1);
    let slot = slot_of(&file, peer.pid(), 0..64);
    assert_eq!(read_u32(&file, tally(slot)), 1);
    peer.kill_and_reap();
    // The live sender keeps the queue from ever being empty: one receive,
    // one send, 3000 times (over more than a second).
    let rings_before = read_u32(&file, NOT_FULL);
    for i in 0..3000 {
        rx.try_recv().expect("the queue is never empty");
        tx.try_send(i).unwrap();
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(4));
        }
    }
    let rings = read_u32(&file, NOT_FULL).wrapping_sub(rings_before);
    eprintln!(
        "not_full rung {rings} times in 3000 receives; sleeper count {}",
        sleepers(NOT_FULL)
    );
    assert!(
        rings < 100,
        "with nobody asleep, {rings} of 3000 receives rang not_full (the dead sender's \
         sleeper count is {})",
        sleepers(NOT_FULL)
    );
}

/// The mirror image, which holds: a receiver killed asleep in `recv` is
/// taken off `not_empty`'s count by the senders' periodic look at the
/// receivers (every few hundred sends), though the queue never fills.
#[test]
fn a_receiver_killed_asleep_does_not_make_every_send_ring_for_long() {
    let name = unique_name("mpmc-kill-stale-receiver");
    let _cleanup = Cleanup(name.clone());
    let tx = Sender::<u64>::create(&name, 64).unwrap();
    let rx = Receiver::<u64>::open(&name).unwrap();
    let file = shm_file(&name);
    let sleepers = |bell: u64| read_u32(&file, bell + 4);
    let mut peer = Peer::spawn("recv-asleep", &[&name]);
    wait_until(PATIENCE, "the receiver sleeps", || sleepers(NOT_EMPTY) == 1);
    peer.kill_and_reap();
    let rings_before = read_u32(&file, NOT_EMPTY);
    for i in 0..3000 {
        tx.try_send(i).unwrap();
        assert_eq!(rx.try_recv(), Ok(i));
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(4));
        }
    }
    let rings = read_u32(&file, NOT_EMPTY).wrapping_sub(rings_before);
    eprintln!("not_empty rung {rings} times in 3000 sends");
    assert_eq!(
        sleepers(NOT_EMPTY),
        0,
        "the dead receiver's count was taken off"
    );
    assert!(rings <= 1000, "{rings} of 3000 sends rang not_empty");
}

/// Opening scans the queue only to recover a dead predecessor's claims
/// (DESIGN §10: work bounded by what is attached). A claim naming slot 1
/// planted after slot 1's holder left cleanly is left alone by the next
/// holder of slot 1 (nothing died: no scan); the same claim after a holder
/// that died (its word left, its lock gone) is freed as the slot is taken.
#[test]
fn opening_scans_the_queue_only_after_a_dead_predecessor() {
    const CAPACITY: u64 = 8;
    let name = unique_name("mpmc-kill-no-scan");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = mpmc::channel::<u64>(&name, CAPACITY as usize).unwrap();
    let file = shm_file(&name);
    let clean = Sender::<u64>::open(&name).unwrap();
    assert_ne!(
        read_u64(&file, slot_word(1)),
        0,
        "the second sender holds slot 1"
    );
    drop(clean);
    assert_eq!(read_u64(&file, slot_word(1)), 0, "left cleanly");
    // A claim of slot 1's at a cell far from the positions in use.
    let planted = busy(6, 1);
    write_u64(&file, cell_word(6), planted);
    let again = Sender::<u64>::open(&name).unwrap();
    assert_ne!(read_u64(&file, slot_word(1)), 0, "slot 1 taken again");
    assert_eq!(
        read_u64(&file, cell_word(6)),
        planted,
        "a clean predecessor: the queue was not scanned"
    );
    drop(again);
    write_u64(&file, slot_word(1), dead_owner_word());
    let _taker = Sender::<u64>::open(&name).unwrap();
    assert_eq!(
        read_u64(&file, cell_word(6)),
        6 + CAPACITY,
        "a dead predecessor: its claim was freed"
    );
    tx.send(1).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
}
