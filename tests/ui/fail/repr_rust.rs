use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(Rust, align(8))]
struct Tick {
    ts: u64,
    px: f64,
}

fn main() {}
