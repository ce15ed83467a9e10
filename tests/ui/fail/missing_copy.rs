use shmchan::ShmSafe;

#[derive(Clone, ShmSafe)]
#[repr(C)]
struct Tick {
    ts: u64,
}

fn main() {}
