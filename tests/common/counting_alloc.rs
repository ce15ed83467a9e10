//! A counting global allocator: it counts, per thread, the allocations made
//! while that thread has counting switched on; other threads (the test
//! harness, other tests running in parallel) do not disturb the count.
//!
//! A test binary installs it with
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: common::counting_alloc::Counting = common::counting_alloc::Counting;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting.
pub struct Counting;

thread_local! {
    /// Whether this thread's allocations are being counted now.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// This thread's allocations while counting.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator may run while the thread's locals are torn
    // down; these locals have no destructors, but be safe.
    let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
    if counting {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counting touches only const-initialized
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: `ptr` was allocated by `System` (every allocation goes
        // through it), with `layout`, as the caller promises.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns how many heap allocations this thread made in it.
pub fn allocations_in<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|on| on.set(true));
    let result = f();
    COUNTING.with(|on| on.set(false));
    (ALLOCATIONS.with(Cell::get) - before, result)
}

/// Fails, naming them, if any of `counts` (operation, allocations) is not
/// zero.
pub fn assert_none(counts: &[(&str, usize)]) {
    let allocating: Vec<_> = counts.iter().filter(|(_, n)| *n != 0).collect();
    assert!(
        allocating.is_empty(),
        "heap allocations in steady state: {allocating:?}"
    );
}

/// Checks that this test binary counts: one allocation is counted as one,
/// none as none. Each binary that installs [`Counting`] calls it from a
/// test of its own; without it, its other tests would pass vacuously.
pub fn check_the_counter() {
    let (allocations, v) = allocations_in(|| std::hint::black_box(vec![1u8; 10]));
    assert_eq!(allocations, 1);
    drop(v);
    let (allocations, ()) = allocations_in(|| {});
    assert_eq!(allocations, 0);
}

/// Writes `exercise_one_thread(tx, rx, messages)` for the typed flavor
/// `$flavor` (`spsc`, `mpsc`, `mpmc` or `broadcast`, whose endpoints have
/// the same methods): every per-message operation, both ends in this thread, each
/// counted on its own; returns the counts by operation. (Unused in the
/// test binaries that share `common` without counting.)
#[allow(unused_macros)]
macro_rules! exercise_one_thread {
    ($flavor:ident) => {
        $crate::common::counting_alloc::exercise_one_thread!($flavor, errors: shmchan);
    };
    // `$errors`: the module of the receiver's `TryRecvError` (broadcast
    // has its own).
    ($flavor:ident, errors: $($errors:ident)::+) => {
        /// Every per-message operation, both ends in this thread.
        fn exercise_one_thread(
            tx: &shmchan::$flavor::Sender<u64>,
            rx: &shmchan::$flavor::Receiver<u64>,
            messages: u64,
        ) -> Vec<(&'static str, usize)> {
            let mut counts = Vec::with_capacity(8);
            let capacity = tx.capacity() as u64;

            let (n, ()) = $crate::common::counting_alloc::allocations_in(|| {
                for i in 0..messages {
                    tx.send(i).unwrap();
                    if rx.recv() != Ok(i) {
                        panic!("send/recv out of order");
                    }
                }
            });
            counts.push(("send + recv", n));

            let (n, ()) = $crate::common::counting_alloc::allocations_in(|| {
                for i in 0..messages {
                    if tx.try_send(i).is_err() || rx.try_recv() != Ok(i) {
                        panic!("try_send/try_recv failed");
                    }
                    // Now and then the full and empty answers too.
                    if i % 1000 == 0 {
                        while tx.try_send(i).is_ok() {}
                        if !matches!(tx.try_send(i), Err(shmchan::TrySendError::Full(_))) {
                            panic!("not full");
                        }
                        while rx.try_recv().is_ok() {}
                        if rx.try_recv() != Err($($errors)::+::TryRecvError::Empty) {
                            panic!("not empty");
                        }
                    }
                }
            });
            counts.push(("try_send + try_recv (incl. Full and Empty)", n));

            let (n, ()) = $crate::common::counting_alloc::allocations_in(|| {
                for i in 0..messages {
                    if tx
                        .send_timeout(i, std::time::Duration::from_secs(1))
                        .is_err()
                        || rx.recv_timeout(std::time::Duration::from_secs(1)) != Ok(i)
                    {
                        panic!("send_timeout/recv_timeout failed");
                    }
                }
            });
            counts.push(("send_timeout + recv_timeout", n));

            let (n, ()) = $crate::common::counting_alloc::allocations_in(|| {
                let mut values = [0u64; 32];
                let mut out = [0u64; 32];
                let mut next = 0u64;
                while next < messages {
                    for (k, v) in values.iter_mut().enumerate() {
                        *v = next + k as u64;
                    }
                    let sent = if next % 64 == 0 {
                        tx.try_send_batch(&values)
                    } else {
                        tx.send_batch(&values)
                            .map(|()| values.len())
                            .map_err(|_| shmchan::TrySendError::Disconnected(()))
                    };
                    if sent != Ok(values.len()) {
                        panic!("batch send failed");
                    }
                    let received = if next % 64 == 0 {
                        rx.try_recv_batch(&mut out)
                    } else {
                        rx.recv_batch(&mut out).map_err($($errors)::+::TryRecvError::from)
                    };
                    if received != Ok(out.len()) || out != values {
                        panic!("batch receive failed");
                    }
                    next += values.len() as u64;
                }
            });
            counts.push(("send_batch/try_send_batch + recv_batch/try_recv_batch", n));

            let (n, ()) = $crate::common::counting_alloc::allocations_in(|| {
                let mut received = 0;
                while received < messages {
                    for i in 0..capacity {
                        tx.send(i).unwrap();
                    }
                    let count = rx.try_iter().count() as u64;
                    if count != capacity {
                        panic!("try_iter missed messages");
                    }
                    received += count;
                }
            });
            counts.push(("try_iter", n));

            let (n, ()) = $crate::common::counting_alloc::allocations_in(|| {
                for _ in 0..messages {
                    let _ = std::hint::black_box((
                        tx.len(),
                        rx.len(),
                        tx.is_empty(),
                        rx.is_full(),
                        tx.capacity(),
                        rx.name().len(),
                    ));
                }
            });
            counts.push(("len / is_empty / is_full / capacity / name", n));
            counts
        }
    };
}
#[allow(unused_imports)]
pub(crate) use exercise_one_thread;
