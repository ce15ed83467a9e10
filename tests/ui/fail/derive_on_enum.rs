use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(u32)]
enum Side {
    Buy,
    Sell,
}

fn main() {}
