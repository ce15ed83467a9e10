use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Ping;

fn main() {}
