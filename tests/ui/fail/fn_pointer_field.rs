use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Job {
    run: fn(u64) -> u64,
}

fn main() {}
