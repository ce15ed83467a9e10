//! Slot locks: one byte lock per endpoint slot, which the kernel releases
//! when the process that holds it dies or calls `exec`.
//!
//! The locks are open file description locks (`F_OFD_SETLK`, Linux 3.15)
//! on bytes far past the end of the segment object: byte
//! [`LOCK_BASE`]` + slot`. They belong to the open file description that
//! took them, not to the process, so:
//!
//! - each endpoint locks through a description of its own (its segment is
//!   opened by name, `O_CLOEXEC`), and two endpoints of one process do not
//!   share a lock by accident;
//! - the lock is released when the last descriptor of that description is
//!   closed: by the endpoint's drop, by the kernel when the process dies, or
//!   by `exec` (the descriptor is close-on-exec);
//! - it means the same in every PID namespace, needs no `/proc`, and cannot
//!   be fooled by pid reuse.
//!
//! Testing a slot from the description that holds it says "not held": an
//! endpoint never tests its own slot.
//!
//! Under loom, a model with the same three operations stands in: a word per
//! slot naming the description that holds it.

#[cfg(not(loom))]
pub(crate) use self::ofd::Locks;

#[cfg(loom)]
pub(crate) use self::model::{LockTable, Locks};

#[cfg(not(loom))]
mod ofd {
    use std::io;
    use std::os::fd::{AsRawFd, RawFd};

    /// The offset of slot 0's lock byte: past any segment, so that a tool
    /// locking the segment's bytes never collides with an endpoint's lock.
    pub(crate) const LOCK_BASE: i64 = 1 << 40;

    static_assertions::const_assert_eq!(core::mem::size_of::<libc::off_t>(), 8);

    /// The slot locks of one open file description of a segment.
    ///
    /// Holds the descriptor's number, not the descriptor: the segment that
    /// owns the descriptor outlives every `Locks` made from it.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Locks {
        fd: RawFd,
    }

    impl Locks {
        /// The locks of the description `file` refers to. `file` must stay
        /// open while they are used.
        pub(crate) fn new(file: &impl AsRawFd) -> Self {
            Self {
                fd: file.as_raw_fd(),
            }
        }

        /// Takes `slot`'s lock without waiting: `Ok(true)` if this
        /// description holds it now, `Ok(false)` if another one does.
        pub(crate) fn try_take(&self, slot: usize) -> io::Result<bool> {
            match self.fcntl(libc::F_OFD_SETLK, libc::F_WRLCK, slot) {
                Ok(_) => Ok(true),
                Err(err) if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => {
                    Ok(false)
                }
                Err(err) => Err(err),
            }
        }

        /// Releases `slot`'s lock, if this description holds it.
        pub(crate) fn give(&self, slot: usize) {
            // Unlocking cannot fail for a valid descriptor and range.
            let _ = self.fcntl(libc::F_OFD_SETLK, libc::F_UNLCK, slot);
        }

        /// Whether another description holds `slot`'s lock. If the kernel
        /// cannot tell (it always can, on Linux 3.15 and later), says yes:
        /// a live endpoint must never be taken for a dead one.
        pub(crate) fn held(&self, slot: usize) -> bool {
            self.fcntl(libc::F_OFD_GETLK, libc::F_WRLCK, slot)
                .map_or(true, |found| found.l_type != libc::F_UNLCK as libc::c_short)
        }

        fn fcntl(
            &self,
            cmd: libc::c_int,
            kind: libc::c_int,
            slot: usize,
        ) -> io::Result<libc::flock> {
            let mut lock = libc::flock {
                l_type: kind as libc::c_short,
                l_whence: libc::SEEK_SET as libc::c_short,
                // Slots number at most a few thousand: no overflow.
                l_start: LOCK_BASE + slot as i64,
                l_len: 1,
                // Must be 0 for the OFD commands.
                l_pid: 0,
            };
            loop {
                // SAFETY: `lock` is a valid, initialised `flock` that lives
                // across the call; the OFD commands read it and (GETLK)
                // write it, and touch no other memory. A stale descriptor
                // number at worst fails with EBADF.
                let rc = unsafe { libc::fcntl(self.fd, cmd, &mut lock as *mut libc::flock) };
                if rc != -1 {
                    return Ok(lock);
                }
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINTR) {
                    return Err(err);
                }
            }
        }
    }
}

#[cfg(loom)]
mod model {
    use crate::primitive::{AtomicU32, Ordering};
    use loom::sync::Arc;

    /// The model's kernel: per slot, the description holding its lock (0
    /// for none).
    pub(crate) struct LockTable {
        holders: Box<[AtomicU32]>,
    }

    impl LockTable {
        pub(crate) fn new(slots: usize) -> Arc<Self> {
            Arc::new(Self {
                holders: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            })
        }

        /// What the kernel does when description `holder`'s process dies:
        /// every lock it holds is released.
        pub(crate) fn release_all(&self, holder: u32) {
            for word in self.holders.iter() {
                let _ = word.compare_exchange(holder, 0, Ordering::SeqCst, Ordering::SeqCst);
            }
        }
    }

    /// One description's view of the model's locks.
    #[derive(Clone)]
    pub(crate) struct Locks {
        table: Arc<LockTable>,
        me: u32,
    }

    impl core::fmt::Debug for Locks {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Locks").field("me", &self.me).finish()
        }
    }

    impl Locks {
        /// Description `me` (not 0) of `table`.
        pub(crate) fn of(table: &Arc<LockTable>, me: u32) -> Self {
            assert_ne!(me, 0);
            Self {
                table: table.clone(),
                me,
            }
        }

        // SeqCst throughout: the kernel's lock table is one sequentially
        // consistent object, and the model should not be weaker than it.
        pub(crate) fn try_take(&self, slot: usize) -> std::io::Result<bool> {
            let word = &self.table.holders[slot];
            Ok(
                match word.compare_exchange(0, self.me, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => true,
                    Err(holder) => holder == self.me,
                },
            )
        }

        pub(crate) fn give(&self, slot: usize) {
            let _ = self.table.holders[slot].compare_exchange(
                self.me,
                0,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }

        pub(crate) fn held(&self, slot: usize) -> bool {
            let holder = self.table.holders[slot].load(Ordering::SeqCst);
            holder != 0 && holder != self.me
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn two_descriptions_of_one_file_exclude_each_other() {
        let path = std::env::temp_dir().join(format!("shmchan-locks-{}", std::process::id()));
        let a = std::fs::File::create(&path).unwrap();
        let b = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (la, lb) = (Locks::new(&a), Locks::new(&b));
        assert!(la.try_take(3).unwrap());
        assert!(
            la.try_take(3).unwrap(),
            "retaking one's own lock is no conflict"
        );
        assert!(!lb.try_take(3).unwrap());
        assert!(lb.held(3));
        assert!(!la.held(3), "a description does not conflict with itself");
        assert!(lb.try_take(4).unwrap(), "locks are per byte");
        la.give(3);
        assert!(!lb.held(3));
        // Closing the description releases its locks, as a death would.
        drop(b);
        assert!(!la.held(4));
        assert!(la.try_take(4).unwrap());
    }
}
