//! `repr(C, align(N))` is accepted when it leaves no padding; so is a
//! separate `#[repr(align(N))]` next to `#[repr(C)]`.
use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C, align(8))]
struct Pair {
    a: u32,
    b: u32,
}

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
#[repr(align(64))]
struct Line {
    bytes: [u8; 64],
}

const _: () = assert!(core::mem::align_of::<Pair>() == 8);
const _: () = assert!(core::mem::align_of::<Line>() == 64);

fn main() {}
