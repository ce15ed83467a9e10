//! spsc across real processes.

mod common;

use common::{expect_success, spawn_peer, unique_name};
use shmchan::spsc;
use std::time::Duration;

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        "send-count" => {
            let count: u64 = args[1].parse().unwrap();
            let tx = spsc::Sender::<u64>::open(&args[0]).unwrap();
            for i in 0..count {
                tx.send(i).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    });
}

#[test]
fn child_streams_a_million_in_order() {
    let name = unique_name("million");
    let rx = spsc::Receiver::<u64>::create(&name, 1024).unwrap();
    let child = spawn_peer("send-count", &[&name, "1000000"]);
    let mut expected = 0u64;
    for value in &rx {
        assert_eq!(value, expected);
        expected += 1;
    }
    assert_eq!(expected, 1_000_000);
    expect_success(child, Duration::from_secs(30));
}
