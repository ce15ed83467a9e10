use shmchan::ShmSafe;

#[derive(Clone, Copy)]
#[repr(C)]
struct Inner(u32);

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Outer {
    seq: u32,
    inner: Inner,
}

fn main() {}
