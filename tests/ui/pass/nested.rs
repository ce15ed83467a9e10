//! A derived struct used as a field, alone and in an array.
use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Level {
    px: f64,
    qty: u32,
    orders: u32,
}

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Book {
    ts: u64,
    best: Level,
    depth: [Level; 8],
}

const _: () = assert!(core::mem::size_of::<Book>() == 8 + 16 * 9);

fn main() {
    assert_eq!(Book::NAME, "Book");
    assert_eq!(
        Book::LAYOUT,
        "Book{ts:u64@0,best:Level@8,depth:[Level; 8]@24}"
    );
}
