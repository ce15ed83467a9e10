use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Flagged {
    ts: u64,
    #[shm(pod)]
    flags: [bool; 8],
}

fn main() {}
