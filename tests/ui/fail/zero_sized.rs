use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Nothing {
    bytes: [u8; 0],
}

fn main() {}
