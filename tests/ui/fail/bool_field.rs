use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Msg {
    flags: [u8; 7],
    done: bool,
}

fn main() {}
