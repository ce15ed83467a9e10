use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C, packed)]
struct Header {
    kind: u8,
    len: u32,
}

fn main() {}
