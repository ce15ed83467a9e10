use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Msg {
    len: u64,
    data: *const u8,
}

fn main() {}
