use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
struct Tick {
    ts: u64,
    px: f64,
}

fn main() {}
