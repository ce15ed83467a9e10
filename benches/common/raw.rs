//! The hand-written baselines' memory: a bare POSIX shared-memory mapping
//! of atomic words, with no header, no checks and no sleeping, and the
//! peer's busy-wait over it.

use super::Res;
use std::ffi::CString;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Slots of the hand-written ring: as many as the spsc channel's in
/// `stream` (checked there).
pub const RAW_CAPACITY: u64 = 4096;
/// The most words a slot of the hand-written ring has (24-byte messages).
pub const RAW_SLOT_WORDS: usize = 3;
/// Words of a raw mapping: two index words 128 bytes apart, then the slots.
const RAW_WORDS: usize = 32 + RAW_SLOT_WORDS * RAW_CAPACITY as usize;

/// A bare POSIX shared-memory mapping of atomic words ([`RAW_WORDS`]
/// unless asked for more), for the hand-written baselines: no header, no
/// checks, no sleeping.
pub struct RawShm {
    words: NonNull<AtomicU64>,
    len: usize,
}

impl RawShm {
    pub fn create(name: &str) -> std::io::Result<Self> {
        Self::map(name, true, RAW_WORDS)
    }

    pub fn open(name: &str) -> std::io::Result<Self> {
        Self::map(name, false, RAW_WORDS)
    }

    /// A mapping of two index words and `bytes` bytes after them (see
    /// [`byte_ring`](Self::byte_ring)).
    pub fn create_bytes(name: &str, bytes: usize) -> std::io::Result<Self> {
        Self::map(name, true, 32 + bytes.div_ceil(8))
    }

    pub fn open_bytes(name: &str, bytes: usize) -> std::io::Result<Self> {
        Self::map(name, false, 32 + bytes.div_ceil(8))
    }

    fn path(name: &str) -> std::io::Result<CString> {
        Ok(CString::new(format!("/{name}"))?)
    }

    fn map(name: &str, create: bool, words: usize) -> std::io::Result<Self> {
        let len = words * size_of::<u64>();
        let path = Self::path(name)?;
        let flags = if create {
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR
        } else {
            libc::O_RDWR
        };
        // SAFETY: `path` is a NUL-terminated string.
        let fd = unsafe { libc::shm_open(path.as_ptr(), flags, 0o600) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `fd` is an open descriptor of a shared-memory object.
        if create && unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new shared mapping of `len` bytes of `fd`, which its
        // creator sized to `len` before any opener runs (with the same
        // length: both sides take it from the same constant or argument);
        // no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let words = NonNull::new(ptr.cast()).ok_or(ErrorKind::Other)?;
        Ok(Self { words, len })
    }

    /// Removes the name; the mappings stay valid.
    pub fn unlink(name: &str) {
        if let Ok(path) = Self::path(name) {
            // SAFETY: `path` is a NUL-terminated string.
            unsafe { libc::shm_unlink(path.as_ptr()) };
        }
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is `len` bytes long, page-aligned, zero-filled
        // when created, and mapped while `self` lives; `AtomicU64` has the
        // layout of `u64`, and both processes only ever access these words
        // atomically (a byte ring's slots are not handed out as words).
        unsafe { std::slice::from_raw_parts(self.words.as_ptr(), self.len / 8) }
    }

    /// Head (written by the consumer), tail (by the producer), and the
    /// bytes after them, for a byte ring whose slots the two sides copy in
    /// and out with `memcpy`, each slot owned by one side at a time through
    /// the indices' Release and Acquire.
    pub fn byte_ring(&self) -> (&AtomicU64, &AtomicU64, NonNull<u8>) {
        let words = self.words();
        // SAFETY: word 32 lies in the mapping (`map` makes at least 32 words
        // and the bytes after them).
        let slots = unsafe { self.words.add(32) }.cast::<u8>();
        (&words[0], &words[16], slots)
    }

    /// Head (written by the consumer), tail (by the producer), slots.
    pub fn ring(&self) -> (&AtomicU64, &AtomicU64, &[AtomicU64]) {
        let words = self.words();
        (&words[0], &words[16], &words[32..])
    }

    /// Ping (written by the bench), pong (by the peer).
    pub fn ping_pong(&self) -> (&AtomicU64, &AtomicU64) {
        let words = self.words();
        (&words[0], &words[16])
    }
}

impl Drop for RawShm {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference
        // into it outlives `self`.
        unsafe { libc::munmap(self.words.as_ptr().cast(), self.len) };
    }
}

/// One turn of a peer's busy-wait; every 2^20 turns it fails if the bench
/// process is gone, so an orphaned peer does not spin forever.
pub fn spin(spins: u32) -> Res<u32> {
    std::hint::spin_loop();
    let spins = spins.wrapping_add(1);
    if spins % (1 << 20) == 0 && bench_gone() {
        return Err("the bench process is gone".into());
    }
    Ok(spins)
}

/// The bench process, as the peer first saw it.
static PARENT: AtomicU32 = AtomicU32::new(0);

/// Remembers the bench process, for [`bench_gone`]: a peer that waits on
/// a raw mapping calls it first.
pub fn remember_bench() {
    // Relaxed: stored once, by the peer's only thread, before it reads it.
    PARENT.store(std::os::unix::process::parent_id(), Ordering::Relaxed);
}

/// Whether the bench process that started this peer has exited (the peer
/// was then handed to another parent).
fn bench_gone() -> bool {
    // Relaxed: see `remember_bench`.
    std::os::unix::process::parent_id() != PARENT.load(Ordering::Relaxed)
}

impl RawShm {
    /// Ping (written by the bench), pong (by the peer), as 32-bit futex
    /// words: the first half of the words of [`RawShm::ping_pong`], which a
    /// mapping used for this never touches as 64-bit words.
    pub fn futex_pair(&self) -> (&AtomicU32, &AtomicU32) {
        let base = self.words.as_ptr().cast::<AtomicU32>();
        // SAFETY: words 0 and 16 lie in the mapping (see `words`), are
        // 8-byte aligned, so 4-byte aligned, and are accessed only
        // atomically as `u32` by the processes of a futex ping-pong (each
        // mapping serves one protocol). `AtomicU32` has the layout of `u32`.
        unsafe { (&*base, &*base.add(16 * 2)) }
    }
}

/// The peer's wait for the bench to move `word` from `last`: sleeps on the
/// futex, waking every 100 ms to fail if the bench process is gone.
pub fn futex_wait_change(word: &AtomicU32, last: u32) -> Res<u32> {
    use rustix::thread::futex;
    let tick = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        // Acquire: pairs with the bench's Release store of the word.
        let value = word.load(Ordering::Acquire);
        if value != last {
            return Ok(value);
        }
        // Returns at once if the word is no longer `last`; EAGAIN, EINTR
        // and the timeout all lead back to the check above.
        let _ = futex::wait(word, futex::Flags::empty(), last, Some(&tick));
        if bench_gone() {
            return Err("the bench process is gone".into());
        }
    }
}

/// Wakes the one process that may sleep on `word`.
pub fn futex_wake(word: &AtomicU32) {
    let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), 1);
}
