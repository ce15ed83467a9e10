use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Tick {
    px: f64,
    side: u32,
}

fn main() {}
