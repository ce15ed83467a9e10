//! `FUTEX_WAIT` / `FUTEX_WAKE` on a 32-bit word of the shared mapping.
//!
//! The calls are always the *shared* kind (no `FUTEX_PRIVATE_FLAG`): the
//! kernel then keys the wait queue by the physical page, not by this
//! process's address space, so a waker in another process finds the waiter.
//! Under `--cfg loom` the same two functions are emulated with a mutex and a
//! condition variable, which has the futex's one essential property: the
//! check of the word and the going to sleep are atomic with respect to a wake.

#[cfg(not(loom))]
use crate::primitive::AtomicU32;
#[cfg(not(loom))]
use core::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout`.
///
/// Returns early, without error, when the word differs, on a wake, on a
/// signal, or spuriously: callers re-check their condition in a loop.
#[cfg(not(loom))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    use rustix::thread::futex;
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: timeout.subsec_nanos().into(),
    };
    // EAGAIN (the word changed), ETIMEDOUT and EINTR all mean "look again";
    // no other error is possible for a valid, aligned word.
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes up to `count` threads sleeping in [`wait`] on `word`, in any process.
#[cfg(not(loom))]
pub(crate) fn wake(word: &AtomicU32, count: u32) {
    use rustix::thread::futex;
    let _ = futex::wake(word, futex::Flags::empty(), count);
}

#[cfg(loom)]
pub(crate) use self::model::{wait, wake};

#[cfg(loom)]
mod model {
    use crate::primitive::{AtomicU32, Ordering};
    use core::time::Duration;
    use loom::sync::{Condvar, Mutex};

    loom::lazy_static! {
        static ref PARK: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    /// A timed wait returns at once: the model's timer fires as early as it
    /// can, which is the interleaving most likely to lose a message.
    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        let (lock, cond) = &*PARK;
        let guard = lock.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected || timeout != Duration::MAX {
            return;
        }
        drop(cond.wait(guard).unwrap());
    }

    pub(crate) fn wake(_word: &AtomicU32, _count: u32) {
        let (lock, cond) = &*PARK;
        let _guard = lock.lock().unwrap();
        cond.notify_all();
    }
}
