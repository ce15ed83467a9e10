//! Segment sizes as DESIGN §7 states them: a fixed header (and fixed
//! control blocks) plus `capacity * size_of::<T>()` for spsc and for each
//! mpsc shard, plus one 8-byte sequence word per cell for mpmc, plus the
//! ring's bytes for `bytes`. Nothing else grows with the capacity or the
//! message type.
//!
//! Each size is the length of the shared-memory file, read with `stat`.
//! Capacities are chosen so that every ring is a multiple of the 128-byte
//! alignment the segment rounds its end to.

mod common;

use common::shm::shm_file;
use common::unique_name;
use shmchan::{bytes, mpmc, mpsc, spsc, Options, ShmSafe};

/// A message type whose size is not a power of two.
#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Tick {
    ts: u64,
    px: f64,
    qty: u32,
    side: u32,
}

/// The fixed part may not exceed this: a header page and the control
/// blocks, not something that scales.
const MOST_FIXED: u64 = 16 * 1024;

fn file_size(name: &str) -> u64 {
    shm_file(name).metadata().expect("stat the segment").len()
}

/// The size of a new spsc segment of `capacity` messages of `T`.
fn spsc_size<T: ShmSafe>(capacity: usize) -> u64 {
    let name = unique_name("size-spsc");
    let (_tx, _rx) = spsc::channel::<T>(&name, capacity).unwrap();
    file_size(&name)
}

fn mpsc_size<T: ShmSafe>(capacity: usize, shards: usize) -> u64 {
    let name = unique_name("size-mpsc");
    let options = Options::new().capacity(capacity).shards(shards);
    let (_tx, _rx) = mpsc::channel_with::<T>(&name, &options).unwrap();
    file_size(&name)
}

fn mpmc_size<T: ShmSafe>(capacity: usize) -> u64 {
    let name = unique_name("size-mpmc");
    let (_tx, _rx) = mpmc::channel::<T>(&name, capacity).unwrap();
    file_size(&name)
}

fn bytes_size(capacity: usize) -> u64 {
    let name = unique_name("size-bytes");
    let (_tx, _rx) = bytes::channel(&name, capacity).unwrap();
    file_size(&name)
}

/// What `size(capacity)` has beyond `per_message * capacity`, the same for
/// every capacity given, and not more than [`MOST_FIXED`].
fn fixed_part(
    what: &str,
    capacities: &[usize],
    per_message: u64,
    size: impl Fn(usize) -> u64,
) -> u64 {
    let fixed: Vec<u64> = capacities
        .iter()
        .map(|&c| {
            let total = size(c);
            let rings = per_message * c as u64;
            assert!(total > rings, "{what}, capacity {c}: {total} bytes");
            total - rings
        })
        .collect();
    assert!(
        fixed.iter().all(|&f| f == fixed[0]),
        "{what}: the part that does not grow by {per_message} bytes per message \
         changes with the capacity: {fixed:?} for capacities {capacities:?}"
    );
    assert!(fixed[0] <= MOST_FIXED, "{what}: {} fixed bytes", fixed[0]);
    fixed[0]
}

const CAPACITIES: [usize; 3] = [64, 1024, 16384];

#[test]
fn spsc_is_a_header_plus_capacity_times_the_message() {
    let fixed = [
        fixed_part("spsc<u64>", &CAPACITIES, 8, spsc_size::<u64>),
        fixed_part("spsc<Tick>", &CAPACITIES, 24, spsc_size::<Tick>),
        fixed_part("spsc<[u64; 8]>", &CAPACITIES, 64, spsc_size::<[u64; 8]>),
        fixed_part("spsc<u8>", &[128, 1024, 16384], 1, spsc_size::<u8>),
    ];
    assert!(
        fixed.iter().all(|&f| f == fixed[0]),
        "the header depends on the message type: {fixed:?}"
    );
}

#[test]
fn each_mpsc_shard_is_its_control_block_plus_capacity_times_the_message() {
    for shards in [1, 4, 16] {
        // Per message of one shard's capacity, every shard pays once.
        let per_capacity = |size: u64| size * shards as u64;
        let fixed = [
            fixed_part("mpsc<u64>", &CAPACITIES, per_capacity(8), |c| {
                mpsc_size::<u64>(c, shards)
            }),
            fixed_part("mpsc<Tick>", &CAPACITIES, per_capacity(24), |c| {
                mpsc_size::<Tick>(c, shards)
            }),
        ];
        assert_eq!(
            fixed[0], fixed[1],
            "{shards} shards: header by message type"
        );
    }
    // The fixed part grows by the same control block for each shard.
    let by_shards: Vec<u64> = [1, 2, 3]
        .iter()
        .map(|&s| mpsc_size::<u64>(64, s) - s as u64 * 64 * 8)
        .collect();
    assert_eq!(
        by_shards[2] - by_shards[1],
        by_shards[1] - by_shards[0],
        "each shard's fixed part: {by_shards:?}"
    );
}

#[test]
fn each_mpmc_cell_is_the_message_plus_one_sequence_word() {
    let fixed = [
        fixed_part("mpmc<u64>", &CAPACITIES, 8 + 8, mpmc_size::<u64>),
        fixed_part("mpmc<Tick>", &CAPACITIES, 24 + 8, mpmc_size::<Tick>),
        fixed_part("mpmc<[u64; 8]>", &CAPACITIES, 64 + 8, mpmc_size::<[u64; 8]>),
    ];
    assert!(
        fixed.iter().all(|&f| f == fixed[0]),
        "the header depends on the message type: {fixed:?}"
    );
}

#[test]
fn bytes_is_a_header_plus_the_ring() {
    fixed_part("bytes", &[1024, 65536, 1 << 20], 1, bytes_size);
}
