use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Tick {
    side: u32,
    px: f64,
}

fn main() {}
