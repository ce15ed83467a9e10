//! The sleeping path across processes: futex wake-ups reach another
//! process, in both barrier modes, and timeouts are honoured.

mod common;

use common::{expect_success, spawn_peer_env, unique_name, wait_for};
use shmchan::{spsc, Error, Options};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

/// No spinning: every wait that finds nothing goes to sleep on the futex.
fn sleepy() -> Options {
    Options::new().capacity(16).spin(Duration::ZERO)
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| match role {
        // Creates both channels, then echoes `value + 1` until pings stop.
        "echo" => {
            let pings = spsc::Receiver::<u64>::create_with(&args[0], &sleepy()).unwrap();
            let pongs = spsc::Sender::<u64>::create_with(&args[1], &sleepy()).unwrap();
            for value in &pings {
                pongs.send(value + 1).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    });
}

/// Opens `name` as soon as the peer has created it.
fn open_when_created<E>(mut open: impl FnMut() -> Result<E, Error>) -> E {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        match open() {
            Ok(end) => return end,
            Err(Error::NotFound { .. }) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(err) => panic!("open failed: {err}"),
        }
    }
}

/// 500 round trips in which both sides sleep between messages.
fn sleeping_ping_pong(env: &[(&str, &str)]) {
    let (ping, pong) = (unique_name("ping"), unique_name("pong"));
    let child = spawn_peer_env("echo", &[&ping, &pong], env);
    let pongs = open_when_created(|| spsc::Receiver::<u64>::open_with(&pong, &sleepy()));
    let pings = open_when_created(|| spsc::Sender::<u64>::open_with(&ping, &sleepy()));
    // A wake-up that never arrives costs a liveness interval (100 ms) per
    // round trip, 50 s in all: the watchdog turns that into a failure.
    let (done_tx, done_rx) = std_mpsc::channel();
    let worker = std::thread::spawn(move || {
        for i in 0..500u64 {
            pings.send(i).unwrap();
            assert_eq!(pongs.recv(), Ok(i + 1));
        }
        done_tx.send(()).unwrap();
    });
    let finished = done_rx.recv_timeout(Duration::from_secs(30));
    assert!(
        finished.is_ok(),
        "sleeping round trips stalled: wake-ups are not reaching the other process"
    );
    worker.join().unwrap();
    expect_success(child, Duration::from_secs(10));
}

#[test]
fn sleeping_ping_pong_across_processes_with_membarrier() {
    sleeping_ping_pong(&[]);
}

#[test]
fn sleeping_ping_pong_across_processes_with_fences() {
    sleeping_ping_pong(&[("SHMCHAN_NO_MEMBARRIER", "1")]);
}

#[test]
fn recv_timeout_waits_at_least_the_timeout() {
    let name = unique_name("recv-timeout");
    let (_tx, rx) = spsc::channel_with::<u64>(&name, &sleepy()).unwrap();
    let start = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(shmchan::RecvTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn send_wakes_a_receiver_sleeping_in_another_process() {
    let (ping, pong) = (unique_name("wake-ping"), unique_name("wake-pong"));
    let mut child = spawn_peer_env("echo", &[&ping, &pong], &[]);
    let pongs = open_when_created(|| spsc::Receiver::<u64>::open_with(&pong, &sleepy()));
    let pings = open_when_created(|| spsc::Sender::<u64>::open_with(&ping, &sleepy()));
    // Let the echo process fall asleep in `recv`, then wake it.
    std::thread::sleep(Duration::from_millis(50));
    pings.send(41).unwrap();
    assert_eq!(pongs.recv_timeout(Duration::from_secs(10)), Ok(42));
    drop(pings);
    assert!(wait_for(&mut child, Duration::from_secs(10)).success());
}
