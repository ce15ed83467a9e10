//! What the hostile-memory tests (`*hostile.rs`) share: hostile values to
//! write, owner words of dead processes, the tally of the random calls, and
//! the scribbling loops themselves.

use super::Rng;
use std::time::Duration;

/// The timeout of the `*_timeout` calls the scribbling loops make.
pub const TIMEOUT: Duration = Duration::from_millis(1);

/// What the scribbling loops counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Calls that succeeded.
    pub ok: u64,
    /// An endpoint reported disconnection: it found the ring corrupt (or
    /// the endpoints were made to look gone).
    pub tx_dead: bool,
    pub rx_dead: bool,
}

impl Tally {
    /// Whether an endpoint reported disconnection.
    pub fn dead(&self) -> bool {
        self.tx_dead || self.rx_dead
    }
}

/// The scribbling loop with every endpoint in this process: `rounds` times,
/// `round` scribbles on the victim and makes random calls on its endpoints.
/// Once an endpoint reports disconnection, the run counts a corruption and
/// starts over on a `fresh` channel, and checks that the broken one (named
/// by `name`) still goes away cleanly when its endpoints drop.
///
/// Fails unless some scribble was detected and some call succeeded; returns
/// the number of corruptions detected and of calls that succeeded.
pub fn scribble_in_process<V>(
    rounds: u64,
    mut fresh: impl FnMut() -> V,
    name: impl Fn(&V) -> String,
    mut round: impl FnMut(&mut V, &mut Tally),
) -> (u64, u64) {
    let mut victim = fresh();
    let mut tally = Tally::default();
    let mut corrupted = 0u64;
    for _ in 0..rounds {
        round(&mut victim, &mut tally);
        if tally.dead() {
            // Corruption found: the endpoint may say Disconnected forever.
            corrupted += 1;
            tally.tx_dead = false;
            tally.rx_dead = false;
            let old = std::mem::replace(&mut victim, fresh());
            let old_name = name(&old);
            drop(old);
            assert!(
                !super::segment_exists(&old_name),
                "a corrupted channel is still unlinked when its ends drop"
            );
        }
    }
    assert_detected(corrupted);
    assert!(
        tally.ok > 0,
        "no call ever succeeded: the run tested nothing but errors"
    );
    (corrupted, tally.ok)
}

/// Up to `rounds` rounds of `round` (a scribble and some calls) on one
/// channel, stopping at the first that leaves an endpoint reporting
/// disconnection; whether one did.
pub fn scribble_until_detected(rounds: u64, mut round: impl FnMut(&mut Tally)) -> bool {
    let mut tally = Tally::default();
    for _ in 0..rounds {
        round(&mut tally);
        if tally.dead() {
            return true;
        }
    }
    false
}

/// A scribbling run must have been noticed at least once: otherwise the
/// offsets it writes at are probably no longer the library's.
pub fn assert_detected(corrupted: u64) {
    assert!(
        corrupted > 0,
        "no scribble was ever detected: are the offsets right?"
    );
}

/// A value to write over a 64-bit word whose value is `current`: garbage,
/// extremes, and values near the truth, which pass the range checks and
/// reach deeper code. (tests/mpmc_hostile.rs has its own, which also flips
/// the flag bits of a cell's word.)
pub fn hostile_u64(rng: &mut Rng, current: u64, capacity: u64) -> u64 {
    match rng.below(8) {
        0 => rng.next(),
        1 => 0,
        2 => u64::MAX - rng.below(3),
        3 => 1 << rng.below(64),
        4 | 5 => current
            .wrapping_add(rng.below(2 * capacity + 3))
            .wrapping_sub(capacity + 1),
        6 => current.wrapping_add(capacity + 1),
        _ => current.wrapping_sub(1),
    }
}

/// A value to write over a 32-bit word (a futex word, a sleeper count)
/// whose value is `current`.
pub fn hostile_u32(rng: &mut Rng, current: u32) -> u32 {
    match rng.below(5) {
        0 => rng.next() as u32,
        1 => 0,
        2 => u32::MAX,
        3 => current.wrapping_add(1),
        _ => current.wrapping_sub(1),
    }
}

/// Owner words left in slots whose lock nobody holds, so dead whatever they
/// say: a pid above the kernel's limit (`PID_MAX_LIMIT` is 2^22), one
/// beyond `i32::MAX`, pid 0 with junk above it, this process's own pid
/// with junk above it, and so on. `me` is an owner word of this process.
pub fn dead_words(me: u64) -> Vec<u64> {
    let my_start = me >> 32;
    let my_pid = me & 0xFFFF_FFFF;
    vec![
        12345 << 32 | 0x3FFF_FFFF,
        u64::MAX,
        0xDEAD_BEEF << 32,
        (my_start.wrapping_add(1) & 0xFFFF_FFFF) << 32 | my_pid,
        0x7FFF_FFFF,
        1 << 32 | 0x0040_0001,
        (my_start ^ 0x5555) << 32 | 0x0050_0000,
    ]
}

/// Bytes to write at an offset of the segment.
pub type Write = (u64, Vec<u8>);

pub fn u32b(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub fn u64b(v: u64) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// `(id << 32) + seq`: message `seq` of sender `id`.
pub fn tagged(id: u64, seq: u64) -> u64 {
    id << 32 | seq
}

/// Removes the channel's name (and any file of that name) when the test
/// ends, in case it failed before the endpoints did.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = shmchan::unlink(&self.0);
        let _ = std::fs::remove_file(super::shm::shm_path(&self.0));
    }
}

/// Writes `poke_sender` and `poke_receiver` for the typed flavor `$flavor`
/// (`mpsc` or `mpmc`, whose endpoints have the same methods): one random
/// call on an endpoint, with what must hold whatever the memory says.
/// Batches are of up to `$batch` messages; `$most`, with `$end` the
/// endpoint, is the most messages the whole channel can hold.
#[allow(unused_macros)]
macro_rules! pokes {
    ($flavor:ident, batch: $batch:literal, most: |$end:ident| $most:expr) => {
        /// One random call on a sender, with what must hold whatever the memory
        /// says.
        fn poke_sender(
            tx: &shmchan::$flavor::Sender<u64>,
            rng: &mut $crate::common::Rng,
            tally: &mut $crate::common::hostile::Tally,
        ) {
            let value = rng.next();
            let capacity = tx.capacity();
            match rng.below(5) {
                0 => match tx.try_send(value) {
                    Ok(()) => tally.ok += 1,
                    Err(shmchan::TrySendError::Full(back)) => assert_eq!(back, value),
                    Err(shmchan::TrySendError::Disconnected(back)) => {
                        assert_eq!(back, value);
                        tally.tx_dead = true;
                    }
                },
                1 => {
                    let values = [value; $batch];
                    let n = 1 + rng.below(values.len() as u64) as usize;
                    match tx.try_send_batch(&values[..n]) {
                        Ok(sent) => {
                            assert!((1..=n).contains(&sent), "try_send_batch of {n}: {sent}");
                            tally.ok += 1;
                        }
                        Err(shmchan::TrySendError::Full(())) => {}
                        Err(shmchan::TrySendError::Disconnected(())) => tally.tx_dead = true,
                    }
                }
                2 => match tx.send_timeout(value, $crate::common::hostile::TIMEOUT) {
                    Ok(()) => tally.ok += 1,
                    Err(shmchan::SendTimeoutError::Timeout(back)) => assert_eq!(back, value),
                    Err(shmchan::SendTimeoutError::Disconnected(back)) => {
                        assert_eq!(back, value);
                        tally.tx_dead = true;
                    }
                },
                3 => {
                    let len = tx.len();
                    assert!(len <= capacity, "len {len} exceeds capacity {capacity}");
                    // (Not compared with `len`: the receiver, or a scribble, may
                    // change the ring between the two calls.)
                    let _ = (tx.is_empty(), tx.is_full(), format!("{tx:?}"));
                }
                _ => {
                    let stats = tx.stats();
                    let most = {
                        let $end = tx;
                        $most
                    } as u64;
                    assert!(stats.len <= most, "stats.len {} exceeds {most}", stats.len);
                    assert_eq!(stats.capacity, capacity as u64);
                }
            }
        }

        /// One random call on the receiver, with what must hold whatever the
        /// memory says.
        fn poke_receiver(
            rx: &shmchan::$flavor::Receiver<u64>,
            rng: &mut $crate::common::Rng,
            tally: &mut $crate::common::hostile::Tally,
        ) {
            let most = {
                let $end = rx;
                $most
            };
            match rng.below(6) {
                0 => match rx.try_recv() {
                    Ok(_) => tally.ok += 1,
                    Err(shmchan::TryRecvError::Empty) => {}
                    Err(shmchan::TryRecvError::Disconnected) => tally.rx_dead = true,
                },
                1 => {
                    let mut out = [0u64; $batch];
                    let n = 1 + rng.below(out.len() as u64) as usize;
                    match rx.try_recv_batch(&mut out[..n]) {
                        Ok(received) => {
                            assert!(
                                (1..=n).contains(&received),
                                "try_recv_batch into {n}: {received}"
                            );
                            tally.ok += 1;
                        }
                        Err(shmchan::TryRecvError::Empty) => {}
                        Err(shmchan::TryRecvError::Disconnected) => tally.rx_dead = true,
                    }
                }
                2 => match rx.recv_timeout($crate::common::hostile::TIMEOUT) {
                    Ok(_) => tally.ok += 1,
                    Err(shmchan::RecvTimeoutError::Timeout) => {}
                    Err(shmchan::RecvTimeoutError::Disconnected) => tally.rx_dead = true,
                },
                3 => {
                    let limit = rng.below(8) as usize;
                    assert!(rx.try_iter().take(limit).count() <= limit);
                }
                4 => {
                    let len = rx.len();
                    assert!(len <= most, "len {len} exceeds {most}");
                    // (Not compared with `len`: a sender in another process may
                    // send between the two calls.)
                    let _ = (rx.is_empty(), rx.is_full(), format!("{rx:?}"));
                }
                _ => {
                    let stats = rx.stats();
                    assert!(
                        stats.len <= most as u64,
                        "stats.len {} exceeds {most}",
                        stats.len
                    );
                    assert_eq!(stats.capacity, rx.capacity() as u64);
                }
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use pokes;
