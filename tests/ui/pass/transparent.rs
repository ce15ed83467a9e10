//! A `repr(transparent)` newtype.
use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(transparent)]
struct Seq(u64);

#[derive(Clone, Copy, ShmSafe)]
#[repr(transparent)]
struct Price {
    ticks: i64,
}

fn main() {
    assert_eq!(Seq::LAYOUT, "Seq{0:u64@0}");
    assert_eq!(Price::LAYOUT, "Price{ticks:i64@0}");
}
