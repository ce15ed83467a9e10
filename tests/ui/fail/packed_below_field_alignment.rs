use shmchan::ShmSafe;

// Offset 0 is aligned for `u32`, but `repr(packed)` gives `Counter` an
// alignment of 1, so a `Counter` (and its field) may sit at any address.
#[derive(Clone, Copy, ShmSafe)]
#[repr(C, packed)]
struct Counter {
    hits: u32,
}

fn main() {}
