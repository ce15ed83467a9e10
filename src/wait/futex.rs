//! `FUTEX_WAIT` / `FUTEX_WAKE` on a 32-bit word of the shared mapping.
//!
//! The calls are always the *shared* kind (no `FUTEX_PRIVATE_FLAG`): the
//! kernel then keys the wait queue by the physical page, not by this
//! process's address space, so a waker in another process finds the waiter.
//! [`wait_any`] sleeps on several words at once with `futex_waitv` (Linux
//! 5.16), which a plain `FUTEX_WAKE` on any of them ends; on an older kernel,
//! or past the call's 128 words, it sleeps at most [`POLL_INTERVAL`], and
//! its callers poll.
//!
//! Under `--cfg loom` the functions are emulated with a mutex and a
//! condition variable, which has the futex's one essential property: the
//! check of the words and the going to sleep are atomic with respect to a
//! wake.

#[cfg(not(loom))]
use super::Doorbell;
#[cfg(not(loom))]
use crate::primitive::AtomicU32;
use core::time::Duration;

/// Sleeps while `bell`'s futex word equals `expected`, for at most `timeout`.
///
/// Returns early, without error, when the word differs, on a wake, on a
/// signal, or spuriously: callers re-check their condition in a loop.
#[cfg(not(loom))]
pub(crate) fn wait(bell: &Doorbell, expected: u32, timeout: Duration) {
    wait_word(bell.seq(), expected, timeout);
}

/// Wakes up to `count` threads sleeping in [`wait`] on `bell`, in any process.
#[cfg(not(loom))]
pub(crate) fn wake(bell: &Doorbell, count: u32) {
    use rustix::thread::futex;
    let _ = futex::wake(bell.seq(), futex::Flags::empty(), count);
}

/// The most words one `futex_waitv` takes (the kernel's `FUTEX_WAITV_MAX`).
pub(crate) const WAITV_MAX: usize = 128;

/// How long [`wait_any`] sleeps where it cannot wait on every word: the
/// bound on the latency of that fallback's polling.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Sleeps until any of `bells`' futex words differs from the value paired
/// with it, or a wake on any, for at most `timeout`.
///
/// Returns early, without error, for the same reasons as [`wait`]. With one
/// bell it is [`wait`]; with more than [`WAITV_MAX`], or on a kernel
/// without `futex_waitv`, it sleeps on the first for at most
/// [`POLL_INTERVAL`], and the caller's loop polls the others.
#[cfg(not(loom))]
pub(crate) fn wait_any(bells: &[(&Doorbell, u32)], timeout: Duration) {
    let words: Vec<(*const AtomicU32, u32)> = bells
        .iter()
        .map(|&(bell, expected)| (bell.seq() as *const AtomicU32, expected))
        .collect();
    // SAFETY: each word is a live doorbell's, borrowed for this call.
    unsafe { wait_words(&words, timeout) }
}

/// [`wait_any`] over raw futex words.
///
/// # Safety
///
/// Each pointer must point to a 32-bit word that was mapped when the
/// caller last checked it. (The kernel reads the words once, when the
/// call starts; a word unmapped by then makes the call fail with `EFAULT`,
/// which is a return like any other. The fallback reads the first word.)
#[cfg(not(loom))]
pub(crate) unsafe fn wait_words(words: &[(*const AtomicU32, u32)], timeout: Duration) {
    use rustix::thread::futex;
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Cleared the first time the kernel says it has no `futex_waitv`.
    static WAITV: AtomicBool = AtomicBool::new(true);

    let Some(&(first, expected)) = words.first() else {
        return std::thread::sleep(timeout.min(POLL_INTERVAL));
    };
    // SAFETY: the caller's promise; the futex call reads the word with
    // the kernel's checked user access, never through this reference
    // after the call.
    let first = unsafe { &*first };
    // Relaxed: a hint, set once; a stale `true` costs one ENOSYS.
    if words.len() == 1 || words.len() > WAITV_MAX || !WAITV.load(Ordering::Relaxed) {
        let timeout = if words.len() == 1 {
            timeout
        } else {
            timeout.min(POLL_INTERVAL)
        };
        return wait_word(first, expected, timeout);
    }
    let mut waiters = [futex::Wait::new(); WAITV_MAX];
    for (waiter, &(word, expected)) in waiters.iter_mut().zip(words) {
        waiter.val = expected.into();
        waiter.uaddr = futex::WaitPtr::new(word.cast_mut().cast());
        // A 32-bit word, shared between processes (no FUTEX2_PRIVATE).
        waiter.flags = futex::WaitFlags::SIZE_U32;
    }
    // futex_waitv takes an absolute time on the clock it is given.
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let nanos = i64::from(timeout.subsec_nanos()) + now.tv_nsec;
    let deadline = rustix::time::Timespec {
        tv_sec: now
            .tv_sec
            .saturating_add(timeout.as_secs().min(i64::MAX as u64 / 2) as i64)
            .saturating_add(nanos / 1_000_000_000),
        tv_nsec: nanos % 1_000_000_000,
    };
    let result = futex::waitv(
        &waiters[..words.len()],
        futex::WaitvFlags::empty(),
        Some(&deadline),
        rustix::time::ClockId::Monotonic,
    );
    // A word that differed (EAGAIN), the time-out, a signal, a wake, a word
    // unmapped meanwhile (EFAULT): in every case, look again. No
    // futex_waitv: poll from now on.
    if result == Err(rustix::io::Errno::NOSYS) {
        WAITV.store(false, Ordering::Relaxed);
        wait_word(first, expected, timeout.min(POLL_INTERVAL));
    }
}

/// `FUTEX_WAIT` on one word (see [`wait`]).
#[cfg(not(loom))]
fn wait_word(word: &AtomicU32, expected: u32, timeout: Duration) {
    use rustix::thread::futex;
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: timeout.subsec_nanos().into(),
    };
    // EAGAIN (the word changed), ETIMEDOUT and EINTR all mean "look again";
    // no other error is possible for a valid, aligned word.
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes every thread sleeping on `word` (in this process or another).
#[cfg(all(not(loom), feature = "async"))]
pub(crate) fn wake_word(word: &AtomicU32) {
    use rustix::thread::futex;
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

#[cfg(loom)]
pub(crate) use self::model::{wait, wait_any, wake};

#[cfg(loom)]
mod model {
    use super::super::Doorbell;
    use crate::primitive::Ordering;
    use core::time::Duration;
    use loom::sync::{Condvar, Mutex};

    /// The stand-in for the kernel's futex wait queues: one for every word,
    /// so that a waiter on several words is woken by a wake on any. (A wake
    /// then also wakes waiters on other words, who look again: a futex may
    /// wake spuriously too.)
    #[derive(Default)]
    struct Parking {
        lock: Mutex<()>,
        cond: Condvar,
    }

    loom::lazy_static! {
        static ref PARKING: Parking = Parking::default();
    }

    /// A timed wait returns at once: the model's timer fires as early as it
    /// can, which is the interleaving most likely to lose a message.
    pub(crate) fn wait(bell: &Doorbell, expected: u32, timeout: Duration) {
        wait_any(&[(bell, expected)], timeout);
    }

    pub(crate) fn wait_any(bells: &[(&Doorbell, u32)], timeout: Duration) {
        let guard = PARKING.lock.lock().unwrap();
        let moved = bells
            .iter()
            .any(|(bell, expected)| bell.seq().load(Ordering::SeqCst) != *expected);
        if moved || timeout != Duration::MAX {
            return;
        }
        drop(PARKING.cond.wait(guard).unwrap());
    }

    pub(crate) fn wake(_bell: &Doorbell, _count: u32) {
        let _guard = PARKING.lock.lock().unwrap();
        PARKING.cond.notify_all();
    }
}
