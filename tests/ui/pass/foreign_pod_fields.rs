//! Another crate's `bytemuck::Pod` types (here the `pod-geometry` fixture,
//! a stand-in for a math or imaging library) as fields marked
//! `#[shm(pod)]`, and, wrapped in a transparent struct, as a message.
use pod_geometry::{Rgba8, Vec3};
use shmchan::ShmSafe;

#[derive(Clone, Copy, Debug, PartialEq, ShmSafe)]
#[repr(C)]
struct Pose {
    t: u64,
    #[shm(pod)]
    at: Vec3,
    #[shm(pod)]
    color: Rgba8,
}

#[derive(Clone, Copy, Debug, PartialEq, ShmSafe)]
#[repr(transparent)]
struct Position(#[shm(pod)] pod_geometry::Vec3);

fn main() {
    assert_eq!(Pose::LAYOUT, "Pose{t:u64@0,at:Vec3@8,color:Rgba8@20}");
    assert_eq!(Position::LAYOUT, "Position{0:Vec3@0}");
    let name = format!("ui-foreign-pod-{}", std::process::id());
    let (tx, rx) = shmchan::mpmc::channel::<Pose>(&name, 4).unwrap();
    let pose = Pose {
        t: 7,
        at: Vec3 { x: 1.0, y: 2.0, z: 3.0 },
        color: Rgba8 { r: 1, g: 2, b: 3, a: 4 },
    };
    tx.send(pose).unwrap();
    assert_eq!(rx.recv(), Ok(pose));
}
