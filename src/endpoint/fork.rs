//! Telling a forked child from the process that attached an endpoint.
//!
//! A child made by `fork` inherits its parent's endpoints: their mappings,
//! their descriptors, and with them the parent's slot locks. It must not use
//! them (a second producer on a single-producer ring corrupts the parent's
//! stream), nor give up the parent's roles when it drops them.
//!
//! Each process gets a *token*, a non-zero number kept in a private page
//! marked `MADV_WIPEONFORK`: in a forked child that page reads as zeros, so
//! the child's token is new (one more than its parent's, which it finds in
//! ordinary memory). An endpoint records the token of the process that
//! attached it and compares on every operation: one load of a line nobody
//! writes.
//!
//! On kernels without `MADV_WIPEONFORK` (before 4.14) the page is ordinary
//! memory, and a child's use of an inherited endpoint goes unnoticed.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The word that holds this process's token (0 until first asked, and in a
/// forked child until it asks).
#[cfg(not(loom))]
pub(crate) fn page() -> &'static AtomicU64 {
    static PAGE: std::sync::OnceLock<&'static AtomicU64> = std::sync::OnceLock::new();
    PAGE.get_or_init(|| map_wiped_page().unwrap_or_else(|| Box::leak(Box::new(AtomicU64::new(0)))))
}

/// Under loom there is no fork: one token, always.
#[cfg(loom)]
pub(crate) fn page() -> &'static AtomicU64 {
    static PAGE: AtomicU64 = AtomicU64::new(1);
    &PAGE
}

/// This process's token: never 0, and different in a child forked after
/// the parent asked for its own.
pub(crate) fn current(page: &AtomicU64) -> u64 {
    // Relaxed: the token is this process's own; no memory hangs on it.
    match page.load(Relaxed) {
        0 => generate(page),
        token => token,
    }
}

#[cold]
fn generate(page: &AtomicU64) -> u64 {
    /// The last token made in this address space; a forked child inherits
    /// it, so its own token differs from its parent's.
    static LAST: AtomicU64 = AtomicU64::new(0);
    let token = LAST.load(Relaxed).wrapping_add(1).max(1);
    // Relaxed: as in `current`. Threads racing here agree on the winner.
    match page.compare_exchange(0, token, Relaxed, Relaxed) {
        Ok(_) => {
            LAST.store(token, Relaxed);
            token
        }
        Err(winner) => winner,
    }
}

/// A private page of zeros that the kernel wipes again in a forked child.
#[cfg(not(loom))]
fn map_wiped_page() -> Option<&'static AtomicU64> {
    use rustix::mm::{madvise, mmap_anonymous, Advice, MapFlags, ProtFlags};
    const PAGE: usize = 4096;
    // SAFETY: a fresh anonymous mapping at an address of the kernel's
    // choosing overlaps nothing of ours.
    let ptr = unsafe {
        mmap_anonymous(
            core::ptr::null_mut(),
            PAGE,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .ok()?;
    // SAFETY: `ptr..ptr + PAGE` is the mapping just made, used by nothing yet.
    if unsafe { madvise(ptr, PAGE, Advice::LinuxWipeOnFork) }.is_err() {
        // SAFETY: as above; nothing refers to the mapping.
        let _ = unsafe { rustix::mm::munmap(ptr, PAGE) };
        return None;
    }
    // SAFETY: the page is zeroed, page-aligned, readable and writable, and
    // never unmapped: a valid `AtomicU64` for the rest of the process.
    Some(unsafe { &*ptr.cast::<AtomicU64>() })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_has_another_token() {
        let page = page();
        let mine = current(page);
        assert_ne!(mine, 0);
        assert_eq!(current(page), mine, "stable within a process");
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only reads memory, writes to a pipe and exits,
        // all async-signal-safe, then `_exit`s without running destructors.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let child = current(page).to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer, then ends the
            // child at once, as a forked child of a threaded process should.
            unsafe {
                libc::write(fds[1], child.as_ptr().cast(), child.len());
                libc::_exit(0);
            }
        }
        let mut buf = [0u8; 8];
        let mut status = 0;
        // SAFETY: reads into a live buffer of 8 bytes from our pipe, waits
        // for our own child, and closes the descriptors we made.
        unsafe {
            assert_eq!(libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()), 8);
            libc::waitpid(pid, &mut status, 0);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        let child = u64::from_ne_bytes(buf);
        assert_ne!(child, 0);
        assert_ne!(
            child, mine,
            "the child's token must differ from its parent's"
        );
        assert_eq!(current(page), mine);
    }
}
