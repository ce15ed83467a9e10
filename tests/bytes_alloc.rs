//! Zero heap allocations per message in steady state, for the byte stream
//! (DESIGN §7): `try_send`/`send`/`send_timeout`, claims, receive guards
//! and `recv_into` (into a vector with room) allocate nothing.
//!
//! A counting global allocator counts, per thread, the allocations made
//! while that thread has counting switched on; other threads (the test
//! harness, other tests running in parallel) do not disturb the count.
//! (`iter` and `try_iter` yield `Vec<u8>` copies: they allocate by design.)

mod common;

use common::counting_alloc::{allocations_in, Counting};
use common::unique_name;
use shmchan::bytes::{self, Receiver, Sender, TryRecvError, TrySendError};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

const MESSAGES: usize = 100_000;
const WARM_UP: usize = 1000;

/// The length of message `i`: every length from 0 to `max`, in a scattered
/// order, with the extremes often.
fn length(i: usize, max: usize) -> usize {
    match i % 16 {
        0 => 0,
        1 => max,
        _ => i.wrapping_mul(7919) % (max + 1),
    }
}

/// Source bytes: message `i` of `len` bytes is `source[i % 251..][..len]`,
/// so that neighbours differ and checking is one comparison.
fn source(max: usize) -> Vec<u8> {
    (0..max + 256).map(|k| (k * 131 % 256) as u8).collect()
}

fn message(source: &[u8], i: usize, len: usize) -> &[u8] {
    &source[i % 251..][..len]
}

/// The counter works: without it, every test here would pass vacuously.
#[test]
fn the_counter_counts() {
    common::counting_alloc::check_the_counter();
}

/// Every per-message operation, both ends in this thread; `count`
/// messages each. Returns the allocations of each kind.
fn exercise_one_thread(
    tx: &mut Sender,
    rx: &mut Receiver,
    count: usize,
) -> Vec<(&'static str, usize)> {
    let max = tx.max_message_len();
    let src = source(max);
    let mut buf = Vec::with_capacity(max);
    let mut counts = Vec::with_capacity(8);

    let (n, ()) = allocations_in(|| {
        for i in 0..count {
            let m = message(&src, i, length(i, max));
            if tx.send(m).is_err() || *rx.recv().unwrap() != *m {
                panic!("send/recv failed at {i}");
            }
        }
    });
    counts.push(("send + recv guard", n));

    let (n, ()) = allocations_in(|| {
        let mut i = 0;
        while i < count {
            // A burst until full (wrapping and refusing), then a drain.
            let first = i;
            loop {
                match tx.try_send(message(&src, i, length(i, max))) {
                    Ok(()) => i += 1,
                    Err(TrySendError::Full) => break,
                    Err(_) => panic!("try_send failed"),
                }
            }
            for j in first..i {
                match rx.try_recv() {
                    Ok(got) if *got == *message(&src, j, length(j, max)) => {}
                    _ => panic!("try_recv failed at {j}"),
                }
            }
            if !matches!(rx.try_recv(), Err(TryRecvError::Empty)) {
                panic!("not empty");
            }
        }
    });
    counts.push(("try_send + try_recv guard (incl. Full and Empty)", n));

    let (n, ()) = allocations_in(|| {
        for i in 0..count {
            let m = message(&src, i, length(i, max));
            if tx.send_timeout(m, Duration::from_secs(5)).is_err() {
                panic!("send_timeout failed");
            }
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(got) if *got == *m => {}
                _ => panic!("recv_timeout failed at {i}"),
            }
        }
    });
    counts.push(("send_timeout + recv_timeout guard", n));

    let (n, ()) = allocations_in(|| {
        for i in 0..count {
            let m = message(&src, i, length(i, max));
            let claim = (m.len() + i % 40).min(max);
            let mut grant = if i % 2 == 0 {
                tx.claim(claim).unwrap()
            } else {
                tx.try_claim(claim).unwrap()
            };
            grant[..m.len()].copy_from_slice(m);
            grant.commit(m.len());
            if rx.recv_into(&mut buf) != Ok(m.len()) || buf != m {
                panic!("claim/recv_into failed at {i}");
            }
        }
    });
    counts.push(("claim/try_claim + commit + recv_into", n));

    let (n, ()) = allocations_in(|| {
        for _ in 0..count {
            let _ = std::hint::black_box((
                tx.len(),
                rx.len(),
                tx.is_empty(),
                rx.is_empty(),
                tx.capacity(),
                tx.max_message_len(),
                rx.name().len(),
            ));
        }
    });
    counts.push(("len / is_empty / capacity / max_message_len / name", n));
    counts
}

#[test]
fn steady_state_in_one_thread_allocates_nothing() {
    let name = unique_name("bytes-alloc-one-thread");
    let (mut tx, mut rx) = bytes::channel(&name, 4096).unwrap();
    exercise_one_thread(&mut tx, &mut rx, WARM_UP);
    let counts = exercise_one_thread(&mut tx, &mut rx, MESSAGES);
    common::counting_alloc::assert_none(&counts);
}

/// The receiver in another thread; a small ring, so both ends often block
/// (spinning, then sleeping). Each thread counts its own allocations.
#[test]
fn steady_state_across_threads_allocates_nothing() {
    let name = unique_name("bytes-alloc-threads");
    let options = shmchan::Options::new()
        .capacity(512)
        .spin(Duration::from_micros(5));
    let (tx, mut rx) = bytes::channel_with(&name, &options).unwrap();
    let max = tx.max_message_len();
    let receiver = std::thread::spawn(move || {
        let src = source(max);
        let mut buf = Vec::with_capacity(max);
        let mut receive = |i: usize| {
            let m = message(&src, i, length(i, max));
            if i % 2 == 0 {
                if *rx.recv().unwrap() != *m {
                    panic!("recv out of order at {i}");
                }
            } else if rx.recv_into(&mut buf) != Ok(m.len()) || buf != m {
                panic!("recv_into out of order at {i}");
            }
        };
        for i in 0..WARM_UP {
            receive(i);
        }
        allocations_in(|| {
            for i in WARM_UP..WARM_UP + MESSAGES {
                receive(i);
            }
        })
        .0
    });
    let src = source(max);
    let send = |i: usize| {
        let m = message(&src, i, length(i, max));
        if tx.send(m).is_err() {
            panic!("send failed at {i}");
        }
    };
    for i in 0..WARM_UP {
        send(i);
    }
    let (sender, ()) = allocations_in(|| {
        for i in WARM_UP..WARM_UP + MESSAGES {
            send(i);
        }
    });
    let receiver = receiver.join().unwrap();
    assert_eq!(
        (sender, receiver),
        (0, 0),
        "heap allocations (sender send, receiver recv + recv_into)"
    );
}
