//! Other crates' `bytemuck::Pod` types in messages, across processes: as
//! fields marked `#[shm(pod)]` (here the `pod-geometry` fixture stands in for
//! a math or imaging library), fingerprinted by name, size and alignment.

mod common;

use common::{unique_name, Cleanup, Peer};
use pod_geometry::{Rgba8, Vec3};
use shmchan::{spsc, Error, ShmSafe};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, ShmSafe)]
#[repr(C)]
struct Pose {
    t: u64,
    #[shm(pod)]
    at: Vec3,
    #[shm(pod)]
    color: Rgba8,
}

fn pose(i: u64) -> Pose {
    let f = i as f32;
    Pose {
        t: i,
        at: Vec3 {
            x: f,
            y: f + 0.5,
            z: -f,
        },
        color: Rgba8 {
            r: i as u8,
            g: (i >> 8) as u8,
            b: 7,
            a: 255,
        },
    }
}

mod vec3 {
    /// A position: a `Vec3` wrapped, to be sent as a message.
    #[derive(Clone, Copy, Debug, PartialEq, shmchan::ShmSafe)]
    #[repr(transparent)]
    pub struct Position(#[shm(pod)] pub pod_geometry::Vec3);
}

mod point3 {
    /// The same name, size and alignment, around another library's type.
    #[derive(Clone, Copy, Debug, PartialEq, shmchan::ShmSafe)]
    #[repr(transparent)]
    pub struct Position(#[shm(pod)] pub pod_geometry::Point3);
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Sends pose(0..count) on the channel `args[0]`.
        "send-poses" => {
            let count: u64 = common::arg(args, 1);
            let tx = spsc::Sender::<Pose>::open(&args[0]).unwrap();
            for i in 0..count {
                tx.send(pose(i)).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    });
}

#[test]
fn a_message_with_other_crates_pod_fields_crosses_processes_intact() {
    const COUNT: u64 = 100_000;
    let name = unique_name("pod-poses");
    let _cleanup = Cleanup(name.clone());
    let rx = spsc::Receiver::<Pose>::create(&name, 256).unwrap();
    let peer = Peer::spawn("send-poses", &[&name, &COUNT.to_string()]);
    let got: Vec<Pose> = rx.iter().collect();
    peer.finish(Duration::from_secs(60));
    assert_eq!(got.len() as u64, COUNT);
    for (i, received) in got.iter().enumerate() {
        assert_eq!(*received, pose(i as u64));
    }
    assert_eq!(Pose::LAYOUT, "Pose{t:u64@0,at:Vec3@8,color:Rgba8@20}");
}

/// Two wrappers of the same name around two libraries' 12-byte vectors: the
/// fingerprint tells them apart by the field type's name, and the error
/// names the field that differs.
#[test]
fn another_crates_pod_type_of_another_name_is_incompatible() {
    let name = unique_name("pod-names");
    let _cleanup = Cleanup(name.clone());
    let _rx = spsc::Receiver::<vec3::Position>::create(&name, 8).unwrap();
    assert_eq!(
        core::mem::size_of::<vec3::Position>(),
        core::mem::size_of::<point3::Position>()
    );
    match spsc::Sender::<point3::Position>::open(&name) {
        Err(err @ Error::Incompatible { .. }) => {
            let text = err.to_string();
            assert!(
                text.contains("0:Vec3@0") && text.contains("0:Point3@0"),
                "{text}"
            );
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    let tx = spsc::Sender::<vec3::Position>::open(&name).unwrap();
    tx.send(vec3::Position(Vec3 {
        x: 1.0,
        y: 2.0,
        z: 3.0,
    }))
    .unwrap();
}
