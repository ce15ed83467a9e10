use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
union Word {
    int: u32,
    float: f32,
}

fn main() {}
