//! `FUTEX_WAIT` / `FUTEX_WAKE` on a 32-bit word of the shared mapping.
//!
//! The calls are always the *shared* kind (no `FUTEX_PRIVATE_FLAG`): the
//! kernel then keys the wait queue by the physical page, not by this
//! process's address space, so a waker in another process finds the waiter.
//! Under `--cfg loom` the same two functions are emulated with a mutex and a
//! condition variable, which has the futex's one essential property: the
//! check of the word and the going to sleep are atomic with respect to a wake.

#[cfg(not(loom))]
use super::Doorbell;
#[cfg(not(loom))]
use core::time::Duration;

/// Sleeps while `bell`'s futex word equals `expected`, for at most `timeout`.
///
/// Returns early, without error, when the word differs, on a wake, on a
/// signal, or spuriously: callers re-check their condition in a loop.
#[cfg(not(loom))]
pub(crate) fn wait(bell: &Doorbell, expected: u32, timeout: Duration) {
    use rustix::thread::futex;
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: timeout.subsec_nanos().into(),
    };
    // EAGAIN (the word changed), ETIMEDOUT and EINTR all mean "look again";
    // no other error is possible for a valid, aligned word.
    let _ = futex::wait(bell.seq(), futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes up to `count` threads sleeping in [`wait`] on `bell`, in any process.
#[cfg(not(loom))]
pub(crate) fn wake(bell: &Doorbell, count: u32) {
    use rustix::thread::futex;
    let _ = futex::wake(bell.seq(), futex::Flags::empty(), count);
}

#[cfg(loom)]
pub(crate) use self::model::{wait, wake, Parking};

#[cfg(loom)]
mod model {
    use super::super::Doorbell;
    use crate::primitive::Ordering;
    use core::time::Duration;
    use loom::sync::{Condvar, Mutex};

    /// One doorbell's stand-in for the kernel's futex wait queue: a wake on
    /// one doorbell does not disturb waiters on another.
    #[derive(Debug, Default)]
    pub(crate) struct Parking {
        lock: Mutex<()>,
        cond: Condvar,
    }

    /// A timed wait returns at once: the model's timer fires as early as it
    /// can, which is the interleaving most likely to lose a message.
    pub(crate) fn wait(bell: &Doorbell, expected: u32, timeout: Duration) {
        let guard = bell.parking.lock.lock().unwrap();
        if bell.seq().load(Ordering::SeqCst) != expected || timeout != Duration::MAX {
            return;
        }
        drop(bell.parking.cond.wait(guard).unwrap());
    }

    pub(crate) fn wake(bell: &Doorbell, _count: u32) {
        let _guard = bell.parking.lock.lock().unwrap();
        bell.parking.cond.notify_all();
    }
}
