//! Array fields, including nested arrays.
use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Frame {
    seq: u64,
    ids: [u16; 4],
    grid: [[u8; 3]; 8],
}

fn main() {
    assert_eq!(
        Frame::LAYOUT,
        "Frame{seq:u64@0,ids:[u16; 4]@8,grid:[[u8; 3]; 8]@16}"
    );
}
