use shmchan::ShmSafe;

#[derive(Clone, Copy)]
#[repr(u32)]
enum Side {
    Buy = 0,
    Sell = 1,
}

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Order {
    qty: u32,
    side: Side,
}

fn main() {}
