use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Odd {
    #[shm(pod, trusted)]
    ts: u64,
}

fn main() {}
