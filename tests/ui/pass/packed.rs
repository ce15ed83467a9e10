//! `repr(C, packed)` is accepted when every field stays aligned: here all
//! fields have alignment 1. `packed(N)` with N at least each field's
//! alignment is accepted too.
use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C, packed)]
struct Header {
    kind: u8,
    flags: u8,
    tag: [u8; 3],
}

#[derive(Clone, Copy, ShmSafe)]
#[repr(C, packed(4))]
struct Words {
    a: u32,
    b: u16,
    c: u16,
}

fn main() {
    assert_eq!(Header::LAYOUT, "Header{kind:u8@0,flags:u8@1,tag:[u8; 3]@2}");
    assert_eq!(Words::LAYOUT, "Words{a:u32@0,b:u16@4,c:u16@6}");
}
