use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Msg {
    len: u64,
    text: &'static u64,
}

fn main() {}
