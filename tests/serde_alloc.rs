//! Serde channels allocate nothing per message beyond what deserializing
//! the value itself allocates (DESIGN §7): the encoding goes straight into
//! the ring, the decoding reads from it in place.
//!
//! A counting global allocator counts, per thread, the allocations made
//! while that thread has counting switched on (see `bytes_alloc.rs`).
#![cfg(feature = "serde")]

mod common;

use common::counting_alloc::{allocations_in, Counting};
use common::{unique_name, Cleanup};
use serde::{Deserialize, Serialize};
use shmchan::serde::{self as chan, TryRecvError, TrySendError};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

const MESSAGES: u64 = 50_000;

/// A message that owns no heap memory.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Quote {
    Bid { id: u64, levels: [(u32, i64); 4] },
    Ask { id: u64, price: f64 },
}

/// A message that does: one `String`, one `Vec`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    symbol: String,
    fills: Vec<u32>,
}

fn quote(i: u64) -> Quote {
    if i % 2 == 0 {
        Quote::Bid {
            id: i,
            levels: [(i as u32, -(i as i64)); 4],
        }
    } else {
        Quote::Ask {
            id: i,
            price: i as f64 / 4.0,
        }
    }
}

#[test]
fn the_counter_counts() {
    common::counting_alloc::check_the_counter();
}

#[test]
fn values_without_heap_memory_move_without_allocating() {
    let name = unique_name("serde-alloc");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = chan::channel::<Quote>(&name, 4096).unwrap();
    // Warm up: the sender's guess of room settles, names are cached.
    for i in 0..100 {
        tx.send(&quote(i)).unwrap();
        assert_eq!(rx.recv().unwrap(), quote(i));
    }
    let (n, ()) = allocations_in(|| {
        for i in 0..MESSAGES {
            tx.send(&quote(i)).unwrap();
            assert!(rx.recv().unwrap() == quote(i));
        }
    });
    assert_eq!(n, 0, "send + recv");
    let (n, ()) = allocations_in(|| {
        let mut i = 0;
        while i < MESSAGES {
            // Bursts until full, so the ring wraps and refuses.
            let first = i;
            while let Ok(()) = tx.try_send(&quote(i)) {
                i += 1;
            }
            assert!(matches!(tx.try_send(&quote(i)), Err(TrySendError::Full)));
            for k in first..i {
                let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
                assert!(got == quote(k));
            }
            assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        }
    });
    assert_eq!(n, 0, "try_send bursts + recv_timeout");
}

#[test]
fn values_with_heap_memory_allocate_only_what_decoding_them_does() {
    let name = unique_name("serde-alloc-heap");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = chan::channel::<Order>(&name, 4096).unwrap();
    let order = Order {
        id: 7,
        symbol: "ACME".into(),
        fills: vec![1, 2, 3],
    };
    let encoded = postcard::to_allocvec(&order).unwrap();
    let (decoding, decoded) = allocations_in(|| postcard::from_bytes::<Order>(&encoded).unwrap());
    assert_eq!(decoded, order);
    assert_eq!(decoding, 2, "a String and a Vec");
    tx.send(&order).unwrap();
    rx.recv().unwrap();
    let (n, ()) = allocations_in(|| {
        for _ in 0..MESSAGES {
            tx.send(&order).unwrap();
            drop(rx.recv().unwrap());
        }
    });
    assert_eq!(n, MESSAGES as usize * decoding);
}
