//! A tuple struct: fields are named by position.
use shmchan::ShmSafe;

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Pair(u32, f32);

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
pub struct Point(pub f64, pub f64, pub [i32; 2]);

fn main() {
    assert_eq!(Pair::LAYOUT, "Pair{0:u32@0,1:f32@4}");
    assert_eq!(Point::LAYOUT, "Point{0:f64@0,1:f64@8,2:[i32; 2]@16}");
}
