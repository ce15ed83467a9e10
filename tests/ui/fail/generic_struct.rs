use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Wrapper<T> {
    value: T,
}

fn main() {}
