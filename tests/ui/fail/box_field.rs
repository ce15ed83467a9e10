use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Msg {
    len: u64,
    data: Box<u64>,
}

fn main() {}
