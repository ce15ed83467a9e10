use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Msg {
    data: Vec<u8>,
}

fn main() {}
