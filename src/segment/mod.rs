//! The shared-memory object behind a channel: create, open, map, unlink,
//! and taking a slot in its endpoint table. It knows the header and the
//! table's place, not the rings; who holds a slot, and how the other side
//! learns of it, is the endpoint layer's (`endpoint::roster`).
//!
//! Each `Segment` opens the object by name itself (`O_CLOEXEC`), so that
//! every endpoint locks its slot through an open file description of its
//! own (see `endpoint::locks`).
//!
//! # Who may do what, and the lock that orders it
//!
//! Three things must not interleave: a creator initialising a segment, an
//! opener taking a slot in one, and the last endpoint deciding to unlink it
//! (or a creator replacing a stale one). They are ordered with `flock` on
//! the object itself (a lock separate from the slot locks), which the
//! kernel releases when a holder dies:
//!
//! - a creator holds it exclusively from `O_CREAT | O_EXCL` until the
//!   segment is initialized, its own slot taken; it writes the magic first,
//!   so that what a creator that died leaves can be told from another
//!   program's object;
//! - an opener holds it shared from validation until its slot is taken;
//! - an unlinker holds it exclusively while it checks that every slot is
//!   vacant or its holder dead, sets [`Control::unlinked`], and unlinks the
//!   name.
//!
//! An opener that finds `unlinked` set raced with an unlinker and starts
//! over; one that finds the segment uninitialized waits for up to
//! [`INIT_GRACE`] for its creator before calling it stale or corrupt.

mod header;
mod name;

pub(crate) use header::{ElemType, Flavor, Header, Spec, TypeText};

use crate::endpoint::link::Place;
use crate::endpoint::locks::Locks;
use crate::endpoint::roster::{self, holder_word, EndpointSlot, Joined, Side};
use crate::primitive::Ordering;
use crate::Error;
use core::mem::size_of;
use core::ops::Range;
use core::ptr::NonNull;
use core::time::Duration;
use header::{
    Control, Layout, Refusal, ENDPOINTS_OFFSET, HEADER_REGION, INITIALIZED, MAX_ENDPOINTS,
};
use rustix::fs::{FallocateFlags, FlockOperation, Mode};
use rustix::io::Errno;
use rustix::shm::OFlags;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Instant, SystemTime};

/// How long an opener waits for a segment's creator to finish.
const INIT_GRACE: Duration = Duration::from_secs(1);
/// How often it looks in the meantime.
const INIT_POLL: Duration = Duration::from_millis(5);
/// What a failed reservation of the segment's memory is reported as.
const NO_SPACE: &str = "reserve the segment's memory in /dev/shm (if it is full, make it \
                        larger, e.g. docker run --shm-size, or use a smaller capacity)";
/// What a lock held past [`INIT_GRACE`] is reported as.
const LOCK_HELD: &str = "lock the segment (another process has held its lock for over a second)";
/// Bytes a segment has at least once it is sized.
const MIN_SIZE: usize = ENDPOINTS_OFFSET;

/// One endpoint's mapping of a segment, through an open file description
/// of its own, and its slot in the endpoint table.
pub struct Segment {
    name: String,
    path: String,
    /// Our own open file description of the object: the slot locks are its.
    file: File,
    map: memmap2::MmapRaw,
    header: Header,
    layout: Layout,
    /// Each side's slots.
    slots: [Range<usize>; 2],
    side: Side,
    /// Our slot, until we leave it.
    joined: Option<Joined>,
    /// Set in a child forked after we attached, and in a segment mapped only
    /// to be inspected: dropping it then leaves every slot, and the name,
    /// alone.
    abandoned: bool,
}

impl Segment {
    /// Creates the segment `name` for `spec` with `capacity` messages per
    /// ring and permission `mode`, and takes a slot of `side` in it.
    pub(crate) fn create(
        name: &str,
        spec: &Spec,
        capacity: u64,
        mode: u32,
        barrier: crate::wait::Mode,
        side: Side,
    ) -> Result<Self, Error> {
        let path = name::shm_path(name)?;
        if mode & 0o600 != 0o600 {
            return Err(Error::InvalidMode {
                mode,
                reason: "the owner must be able to read and write the segment, or no endpoint \
                         could open it; include 0o600",
            });
        }
        let layout = Layout::compute(spec, capacity).ok_or(Error::InvalidCapacity {
            requested: capacity as usize,
            reason: "the ring would not fit in memory (at most 1 TiB of messages per ring)",
        })?;
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR;
        for _ in 0..3 {
            match rustix::shm::open(path.as_str(), flags, Mode::from_raw_mode(mode)) {
                Ok(fd) => {
                    let new = New {
                        name,
                        path: &path,
                        spec,
                        capacity,
                        layout,
                        barrier,
                    };
                    let segment = new.initialize(File::from(fd), mode, side)?;
                    // A creator stalled for longer than the grace period
                    // may have had its object removed as stale; then its
                    // segment is an orphan nobody can open. Start over.
                    if names(&path, &segment.file).unwrap_or(true) {
                        return Ok(segment);
                    }
                }
                Err(Errno::EXIST) => match examine(name, &path)? {
                    Existing::Live(detail) => {
                        return Err(Error::AlreadyExists {
                            name: name.to_owned(),
                            detail,
                        })
                    }
                    Existing::Stale => continue,
                },
                Err(err) => return Err(io_error(name, "create the shared-memory object", err)),
            }
        }
        Err(Error::AlreadyExists {
            name: name.to_owned(),
            detail: "it was re-created by another process each time a stale one was removed".into(),
        })
    }

    /// Opens the existing segment `name`, checks it against `spec`, and
    /// takes a slot of `side` in it.
    pub(crate) fn open(name: &str, spec: &Spec, side: Side) -> Result<Self, Error> {
        let path = name::shm_path(name)?;
        let give_up = Instant::now() + INIT_GRACE;
        loop {
            let fd = match rustix::shm::open(path.as_str(), OFlags::RDWR, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    return Err(Error::NotFound {
                        name: name.to_owned(),
                    })
                }
                Err(err) => return Err(io_error(name, "open the shared-memory object", err)),
            };
            let file = File::from(fd);
            let lock = Flock::new(&file, false, INIT_GRACE)
                .map_err(|err| io_error(name, LOCK_HELD, err))?;
            // Acquire on `unlinked`: pairs with the unlinker's Release store.
            match Found::inspect(name, &file, Access::ReadWrite)? {
                Found::Ready(mapped) if mapped.control().unlinked.load(Ordering::Acquire) == 0 => {
                    // The lock belongs to the open file: it moves with the
                    // descriptor, and closing it on an error releases it.
                    core::mem::forget(lock);
                    let segment = mapped.attach(name, path, file, spec, side)?;
                    drop(Flock(&segment.file));
                    return Ok(segment);
                }
                // Unlinked under us: the name is gone or names a new
                // segment, unless the flag was scribbled; bounded either way.
                Found::Ready(_) if Instant::now() >= give_up => {
                    return Err(Error::Corrupt {
                        name: name.to_owned(),
                        detail: "it is marked as removed, yet its name still exists".into(),
                    })
                }
                Found::Ready(_) => {}
                Found::Truncated(size) => {
                    return Err(Error::Corrupt {
                        name: name.to_owned(),
                        detail: format!("it was truncated to {size} bytes"),
                    })
                }
                Found::Foreign => {
                    return Err(Error::Incompatible {
                        name: name.to_owned(),
                        detail: "it is not a shmchan segment: another program uses this name"
                            .into(),
                    })
                }
                Found::Unfinished { ours: true } if Instant::now() >= give_up => {
                    return Err(Error::Corrupt {
                        name: name.to_owned(),
                        detail: "it was never initialized: its creator probably died while \
                                 creating it; create it again (a stale segment is replaced) or remove it \
                                 with shmchan::unlink"
                            .into(),
                    })
                }
                Found::Unfinished { ours: false } if Instant::now() >= give_up => {
                    return Err(Error::Incompatible {
                        name: name.to_owned(),
                        detail: "it is empty or all zeros, not an initialized shmchan segment: \
                                 another program may use this name, or a creator died before \
                                 writing anything; if nothing uses it, remove it with \
                                 shmchan::unlink"
                            .into(),
                    })
                }
                Found::Unfinished { .. } => {}
            }
            drop(lock);
            std::thread::sleep(INIT_POLL);
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn header_capacity(&self) -> u64 {
        self.header.capacity
    }

    /// Bytes of one message, as validated when the segment was attached
    /// (what the layout was computed from; later writes to the shared
    /// header do not change it).
    pub(crate) fn elem_size(&self) -> usize {
        self.header.elem_size as usize
    }

    /// Alignment of one message, as [`elem_size`](Self::elem_size).
    pub(crate) fn elem_align(&self) -> usize {
        self.header.elem_align as usize
    }

    /// [`Error::Corrupt`] for this segment, saying `detail`.
    pub(crate) fn corrupt(&self, detail: &str) -> Error {
        Error::Corrupt {
            name: self.name.clone(),
            detail: detail.to_owned(),
        }
    }

    /// The barrier this segment's endpoints pair (see `wait::barrier`).
    pub(crate) fn barrier(&self) -> Result<crate::wait::Barrier, Error> {
        // Validation checked both the mode and that this process can take
        // part in it; a creator made it with a mode it can use.
        crate::wait::Mode::from_u32(self.header.barrier_mode)
            .and_then(crate::wait::Barrier::new)
            .ok_or_else(|| Error::Incompatible {
                name: self.name.clone(),
                detail: "it relies on membarrier(2), which this process may not call".into(),
            })
    }

    #[inline]
    fn base(&self) -> NonNull<u8> {
        // SAFETY: a successful mmap never returns null.
        unsafe { NonNull::new_unchecked(self.map.as_mut_ptr()) }
    }

    #[inline]
    fn control(&self) -> &Control {
        // SAFETY: validation checked the file holds at least `MIN_SIZE`
        // bytes, which include the `Control` block at this page-aligned
        // offset; the mapping lives as long as `self`.
        unsafe { self.base().add(HEADER_REGION).cast().as_ref() }
    }

    /// The roster: which sides ever attached, and their versions.
    pub(crate) fn roster(&self) -> &crate::endpoint::roster::Roster {
        &self.control().roster
    }

    /// The endpoint table.
    #[inline]
    pub(crate) fn endpoints(&self) -> &[EndpointSlot] {
        let ptr = self
            .base()
            .as_ptr()
            .wrapping_add(ENDPOINTS_OFFSET)
            .cast::<EndpointSlot>();
        // SAFETY: `Layout::compute` placed `header.endpoints` slots at this
        // aligned offset, inside the `layout.total` bytes that validation
        // found in the file; the mapping lives as long as `self`.
        unsafe { core::slice::from_raw_parts(ptr, self.header.endpoints as usize) }
    }

    /// The slot locks of our open file description.
    fn locks(&self) -> Locks {
        Locks::new(&self.file)
    }

    /// Rings in the segment (validated: see `header::validate`).
    pub(crate) fn rings(&self) -> usize {
        self.header.rings as usize
    }

    /// The flavor's shared control block.
    pub(crate) fn shared(&self) -> NonNull<u8> {
        // SAFETY: `Layout::compute` placed the shared block inside the
        // `layout.total` bytes that the file (and so the mapping) holds.
        unsafe { self.base().add(self.layout.shared) }
    }

    /// Our slot in the endpoint table.
    pub(crate) fn slot(&self) -> usize {
        self.joined.map_or(usize::MAX, |joined| joined.slot)
    }

    /// Whether our slot's last holder died without leaving it: what it
    /// left behind is ours to tidy.
    pub(crate) fn took_over(&self) -> bool {
        self.joined.is_some_and(|joined| joined.took_over)
    }

    /// What a [`Link`](crate::endpoint::link::Link) of our slot is made of.
    pub(crate) fn place(&self) -> Place<'_> {
        Place {
            roster: &self.control().roster,
            table: self.endpoints(),
            slots: self.slots.clone(),
            side: self.side,
            slot: self.slot(),
            word: holder_word(std::process::id()),
            locks: self.locks(),
        }
    }

    /// Maps the segment again, through a new open file description, and
    /// takes another slot of our side in it: for a second endpoint of this
    /// process (an mpsc sender's clone), which must hold a lock of its own.
    /// No `flock` is needed: while we hold our own slot the segment is
    /// neither unlinked for being unused nor replaced as stale.
    pub(crate) fn try_clone(&self) -> Result<Self, Error> {
        let file = self.reopen()?;
        let map = map(&self.name, &file, self.layout.total)?;
        let mut segment = Segment {
            name: self.name.clone(),
            path: self.path.clone(),
            file,
            map,
            header: self.header,
            layout: self.layout,
            slots: self.slots.clone(),
            side: self.side,
            joined: None,
            abandoned: false,
        };
        segment.join()?;
        Ok(segment)
    }

    /// A new open file description of our object: by name if the name
    /// still leads to it, else through `/proc/self/fd`.
    fn reopen(&self) -> Result<File, Error> {
        if let Ok(fd) = rustix::shm::open(self.path.as_str(), OFlags::RDWR, Mode::empty()) {
            let file = File::from(fd);
            if same_object(&file, &self.file) {
                return Ok(file);
            }
        }
        let by_fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        // std opens with O_CLOEXEC, as the slot locks need.
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(by_fd)
        {
            Ok(file) if same_object(&file, &self.file) => Ok(file),
            _ => Err(Error::Io {
                name: self.name.clone(),
                op: "open the segment again for another endpoint (its name was removed and \
                     /proc is not mounted; open the channel by name instead)",
                source: std::io::ErrorKind::NotFound.into(),
            }),
        }
    }

    /// The start of ring `index`'s control block and of its slots.
    pub(crate) fn ring(&self, index: usize) -> (NonNull<u8>, NonNull<u8>) {
        assert!(
            index < self.header.rings as usize,
            "ring index out of range"
        );
        let start = self.layout.rings + index * self.layout.ring_stride;
        // SAFETY: `Layout::compute` checked that every ring, its control
        // block and its slots, lies within `layout.total`, which the file
        // (and so the mapping) holds.
        unsafe {
            (
                self.base().add(start),
                self.base().add(start + self.layout.slots),
            )
        }
    }

    /// Gives up our slot, if we still hold it, and tells the other side.
    pub(crate) fn leave(&mut self) {
        if let Some(joined) = self.joined.take() {
            let word = holder_word(std::process::id());
            roster::leave(
                &self.control().roster,
                self.endpoints(),
                self.side,
                &self.locks(),
                joined.slot,
                word,
            );
        }
    }

    /// Forgets our slot, which the endpoint gave up itself.
    pub(crate) fn forget_slot(&mut self) {
        self.joined = None;
    }

    /// Forgets our slot without leaving it, and will leave the name alone:
    /// for a forked child, whose inherited endpoint is its parent's.
    pub(crate) fn abandon(&mut self) {
        self.joined = None;
        self.abandoned = true;
    }

    /// Unlinks the name if no live endpoint is attached any more.
    fn unlink_if_unused(&self) {
        // Normally held for microseconds, but a holder may be descheduled
        // for a while on a loaded machine; past the grace period someone
        // hostile holds it, and the name is left for `create` to replace.
        let Ok(_lock) = Flock::new(&self.file, true, INIT_GRACE) else {
            return;
        };
        let control = self.control();
        let table = self.endpoints();
        // Relaxed: the exclusive lock held here orders it against the store
        // in `unlink_if_same`, which is made under the same lock.
        if control.unlinked.load(Ordering::Relaxed) == 0
            && roster::all_vacant(table, &self.locks(), 0..table.len())
        {
            let _ = unlink_if_same(&self.path, &self.file, Some(control));
        }
    }

    /// Takes the first free slot of our side.
    fn join(&mut self) -> Result<(), Error> {
        let word = holder_word(std::process::id());
        let slots = self.slots[self.side as usize].clone();
        match roster::join(self.endpoints(), slots, &self.locks(), word) {
            Ok(joined) => {
                self.joined = Some(joined);
                Ok(())
            }
            Err(Some(pid)) => Err(Error::Busy {
                name: self.name.clone(),
                role: self.side.name(),
                pid,
            }),
            Err(None) => Err(Error::Io {
                name: self.name.clone(),
                op: "lock an endpoint slot (open file description locks need Linux 3.15 or newer)",
                source: std::io::Error::last_os_error(),
            }),
        }
    }
}

/// What a name turned out to be, looked at without attaching (see
/// [`Segment::inspect`]).
pub(crate) enum Seen {
    /// A shmchan segment, validated as `open` validates one, mapped
    /// read-only.
    Channel(Box<Segment>),
    /// Something that is not a shmchan segment, or cannot be told from one:
    /// what it looks like.
    Foreign(String),
    /// Ours, but not usable (corrupt, truncated, never initialized, of
    /// another layout version): why.
    Damaged(String),
}

impl Segment {
    /// Looks at the object `name` without attaching: opened and mapped
    /// read-only, with no lock taken and nothing written, so that a channel
    /// being looked at behaves exactly as one that is not. `shape` gives,
    /// for a header, the segment that a channel of its flavor and message
    /// type has (`None` for a flavor it does not know).
    pub(crate) fn inspect(
        name: &str,
        shape: impl FnOnce(&Header) -> Option<Spec>,
    ) -> Result<Seen, Error> {
        let path = name::shm_path(name)?;
        let file = match rustix::shm::open(path.as_str(), OFlags::RDONLY, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::NOENT) => {
                return Err(Error::NotFound {
                    name: name.to_owned(),
                })
            }
            Err(err) => {
                return Err(io_error(
                    name,
                    "open the shared-memory object to read it",
                    err,
                ))
            }
        };
        let mapped = match Found::inspect(name, &file, Access::ReadOnly)? {
            Found::Ready(mapped) => mapped,
            Found::Unfinished { ours: true } => {
                return Ok(Seen::Damaged(
                    "never initialized: being created, or its creator died while creating it"
                        .into(),
                ))
            }
            Found::Unfinished { ours: false } => {
                return Ok(Seen::Foreign("empty or all zeros".into()))
            }
            Found::Truncated(size) => {
                return Ok(Seen::Damaged(format!("truncated to {size} bytes")))
            }
            Found::Foreign => return Ok(Seen::Foreign("not a shmchan segment".into())),
        };
        let header = mapped.header();
        if header.magic != header::MAGIC {
            return Ok(Seen::Foreign(
                "not a shmchan segment (its init word is set, its magic is not ours)".into(),
            ));
        }
        let Some(spec) = shape(&header) else {
            return Ok(Seen::Damaged(format!(
                "unknown flavor number {}",
                header.flavor
            )));
        };
        match header::validate(&header, &spec, mapped.size) {
            Ok(layout) => Ok(Seen::Channel(Box::new(Segment {
                name: name.to_owned(),
                path,
                file,
                map: mapped.map,
                header,
                layout,
                slots: (spec.slots)(header.rings as usize, header.endpoints as usize),
                side: Side::Receiver,
                joined: None,
                abandoned: true,
            }))),
            Err(Refusal::Incompatible(detail) | Refusal::Corrupt(detail)) => {
                Ok(Seen::Damaged(detail))
            }
        }
    }

    /// The header, as validated when the segment was opened.
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The object's permission bits and owner.
    pub(crate) fn mode_and_owner(&self) -> (u32, u32) {
        match rustix::fs::fstat(&self.file) {
            Ok(stat) => (stat.st_mode & 0o7777, stat.st_uid),
            Err(_) => (0, 0),
        }
    }

    /// Every slot of the table that is not vacant: its side, its holder's
    /// pid, and whether the holder lives (a system call per slot; the slot
    /// `own`, ours, lives).
    pub(crate) fn endpoint_infos(&self, own: Option<usize>) -> Vec<crate::stats::EndpointInfo> {
        let table = self.endpoints();
        let locks = self.locks();
        table
            .iter()
            .enumerate()
            .filter_map(|(slot, entry)| {
                let side = if self.slots[Side::Sender as usize].contains(&slot) {
                    Side::Sender
                } else {
                    Side::Receiver
                };
                Some(crate::stats::EndpointInfo {
                    role: side.name(),
                    pid: entry.pid()?,
                    alive: own == Some(slot) || roster::held(table, &locks, slot),
                })
            })
            .collect()
    }
}

/// Removes the segment `name` if it is stale: every endpoint of it dead, or
/// it is what a creator that died left. Never a live channel, never an
/// object that is not a shmchan segment. Returns whether it removed it.
pub(crate) fn remove_if_stale(name: &str) -> Result<bool, Error> {
    let path = name::shm_path(name)?;
    if !std::path::Path::new("/dev/shm")
        .join(path.trim_start_matches('/'))
        .exists()
    {
        return Err(Error::NotFound {
            name: name.to_owned(),
        });
    }
    Ok(matches!(examine(name, &path)?, Existing::Stale))
}

impl Drop for Segment {
    fn drop(&mut self) {
        if !self.abandoned {
            self.leave();
            self.unlink_if_unused();
        }
    }
}

/// Whether two descriptors refer to the same object.
fn same_object(a: &File, b: &File) -> bool {
    match (rustix::fs::fstat(a), rustix::fs::fstat(b)) {
        (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
        _ => false,
    }
}

/// Removes the channel `name`, so that it can no longer be opened.
///
/// Endpoints already attached keep working; the memory is freed when the
/// last of them is dropped. Use it to clean up after a run that crashed.
///
/// # Errors
///
/// [`Error::InvalidName`] for a malformed name, [`Error::NotFound`] if no
/// such channel exists, [`Error::Io`] if the system refuses.
pub fn unlink(name: &str) -> Result<(), Error> {
    let path = name::shm_path(name)?;
    let file = match rustix::shm::open(path.as_str(), OFlags::RDWR, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::NOENT) => {
            return Err(Error::NotFound {
                name: name.to_owned(),
            })
        }
        Err(err) => return Err(io_error(name, "open the shared-memory object", err)),
    };
    // The same protocol as the last endpoint's: an open under way either
    // finishes first or sees the segment marked unlinked.
    let _lock =
        Flock::new(&file, true, INIT_GRACE).map_err(|err| io_error(name, LOCK_HELD, err))?;
    let control = match Found::inspect(name, &file, Access::ReadWrite)? {
        Found::Ready(mapped) => Some(mapped),
        _ => None,
    };
    unlink_if_same(&path, &file, control.as_ref().map(Mapped::control))
        .map_err(|err| io_error(name, "unlink the shared-memory object", err))
}

/// What a creator found under the name it wanted.
enum Existing {
    /// In use; the detail says by whom, or what it is.
    Live(String),
    /// Abandoned and now removed: try again.
    Stale,
}

/// Looks at the segment that already has our name, and removes it if stale.
fn examine(name: &str, path: &str) -> Result<Existing, Error> {
    let give_up = Instant::now() + INIT_GRACE;
    loop {
        let file = match rustix::shm::open(path, OFlags::RDWR, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::NOENT) => return Ok(Existing::Stale),
            Err(err) => {
                return Err(io_error(
                    name,
                    "open the existing shared-memory object",
                    err,
                ))
            }
        };
        let _lock =
            Flock::new(&file, true, INIT_GRACE).map_err(|err| io_error(name, LOCK_HELD, err))?;
        let control = match Found::inspect(name, &file, Access::ReadWrite)? {
            Found::Foreign => return Ok(Existing::Live("it is not a shmchan segment".into())),
            // Nobody can be using it: any access past its end would fault.
            Found::Truncated(_) => None,
            Found::Ready(mapped) => {
                let header = mapped.header();
                if header.magic != header::MAGIC {
                    return Ok(Existing::Live("it is not a shmchan segment".into()));
                }
                // Another layout version judges its endpoints' lives its own
                // way: we cannot tell whether they live, so they might.
                if header.version != header::VERSION {
                    let detail = format!(
                        "it was made by a shmchan with segment layout version {}, which may \
                         still be using it",
                        header.version
                    );
                    return Ok(Existing::Live(detail));
                }
                if let Some(pid) = mapped.live_holder(&file, header.endpoints) {
                    let detail = format!("process {pid} is attached to it");
                    return Ok(Existing::Live(detail));
                }
                Some(mapped)
            }
            // Our magic, uninitialized, and its creator no longer holds the
            // lock we hold now: it died while creating it.
            Found::Unfinished { ours: true } => None,
            // Empty or zeros: a creator in its first instants (it writes the
            // magic as soon as it holds the lock), or not ours at all.
            Found::Unfinished { ours: false } if Instant::now() < give_up => {
                drop(_lock);
                std::thread::sleep(INIT_POLL);
                continue;
            }
            Found::Unfinished { ours: false } => {
                return Ok(Existing::Live(
                    "it is empty or all zeros, so it cannot be told from another program's \
                     object; if it is the leftover of a creator that died at once, remove it \
                     with shmchan::unlink"
                        .into(),
                ))
            }
        };
        // Initialized with nobody alive attached, or never initialized.
        unlink_if_same(path, &file, control.as_ref().map(Mapped::control))
            .map_err(|err| io_error(name, "remove the stale segment", err))?;
        return Ok(Existing::Stale);
    }
}

/// Whether `path` still names the object open as `file`.
fn names(path: &str, file: &File) -> rustix::io::Result<bool> {
    let ours = rustix::fs::fstat(file)?;
    let named = match rustix::shm::open(path, OFlags::RDONLY, Mode::empty()) {
        Ok(fd) => rustix::fs::fstat(&fd)?,
        Err(Errno::NOENT) => return Ok(false),
        Err(err) => return Err(err),
    };
    Ok((ours.st_dev, ours.st_ino) == (named.st_dev, named.st_ino))
}

/// Unlinks `path` if it still names the object open as `file`, first
/// marking it unlinked (when it is an initialized segment, `control`).
fn unlink_if_same(path: &str, file: &File, control: Option<&Control>) -> rustix::io::Result<()> {
    if !names(path, file)? {
        return Ok(());
    }
    if let Some(control) = control {
        // Release: an opener that sees it (Acquire) starts over.
        control.unlinked.store(1, Ordering::Release);
    }
    match rustix::shm::unlink(path) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(err) => Err(err),
    }
}

/// What an object with the channel's name turned out to be.
enum Found {
    /// Initialized (the init word is set), mapped whole, not yet validated.
    Ready(Mapped),
    /// Without the init word: a creator at work, or one that died at work;
    /// `ours` if it has our magic (a creator writes it first), not if it is
    /// empty or has zeros there.
    Unfinished { ours: bool },
    /// Our magic, but too short to hold even the endpoint table.
    Truncated(u64),
    /// Something that is not a shmchan segment.
    Foreign,
}

impl Found {
    fn inspect(name: &str, file: &File, access: Access) -> Result<Self, Error> {
        let stat =
            rustix::fs::fstat(file).map_err(|err| io_error(name, "inspect the segment", err))?;
        let size = stat.st_size as u64;
        if size == 0 {
            return Ok(Self::Unfinished { ours: false });
        }
        // A creator sizes the object in one step, to more than this.
        if size < MIN_SIZE as u64 {
            let mut magic = [0u8; 8];
            let read = rustix::io::pread(file, &mut magic, 0).unwrap_or(0);
            let ours = read == magic.len() && magic == header::MAGIC;
            return Ok(if ours {
                Self::Truncated(size)
            } else {
                Self::Foreign
            });
        }
        let len = usize::try_from(size).map_err(|_| Error::Corrupt {
            name: name.to_owned(),
            detail: format!("its size, {size} bytes, cannot be mapped"),
        })?;
        let map = match access {
            Access::ReadWrite => map(name, file, len)?,
            Access::ReadOnly => map_read_only(name, file, len)?,
        };
        let mapped = Mapped { map, size };
        // Acquire: SYNC POINT with the creator's Release store of `init`:
        // the header is completely written before we read it.
        if mapped.control().init.load(Ordering::Acquire) == INITIALIZED {
            return Ok(Self::Ready(mapped));
        }
        let magic = mapped.header().magic;
        Ok(if magic == header::MAGIC {
            Self::Unfinished { ours: true }
        } else if magic == [0; 8] {
            Self::Unfinished { ours: false }
        } else {
            Self::Foreign
        })
    }
}

/// How a segment is mapped: to take part in it, or only to look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// A mapping of a whole segment.
struct Mapped {
    map: memmap2::MmapRaw,
    size: u64,
}

impl Mapped {
    fn control(&self) -> &Control {
        // SAFETY: the mapping holds at least `MIN_SIZE` bytes, which include
        // the `Control` block at this page-aligned offset.
        unsafe { &*self.map.as_ptr().add(HEADER_REGION).cast::<Control>() }
    }

    /// A copy of the header, read byte by byte with volatile loads: the
    /// memory is untrusted and may change while we read; the copy does not.
    fn header(&self) -> Header {
        let mut bytes = [0u8; size_of::<Header>()];
        for (i, byte) in bytes.iter_mut().enumerate() {
            // SAFETY: `i < size_of::<Header>() <= MIN_SIZE <= mapping length`.
            *byte = unsafe { self.map.as_ptr().add(i).read_volatile() };
        }
        zerocopy::transmute!(bytes)
    }

    /// The pid of a live holder of one of the first `count` slots of the
    /// table, if any, tested through `file`'s locks. `count` comes from the
    /// header: it is bounded by what fits in the file and by the most slots
    /// any segment has, so a hostile header cannot make this loop long.
    fn live_holder(&self, file: &File, count: u32) -> Option<u32> {
        let fits = (self.size as usize - ENDPOINTS_OFFSET) / size_of::<EndpointSlot>();
        let count = (count.min(MAX_ENDPOINTS) as usize).min(fits);
        let ptr = self
            .map
            .as_ptr()
            .wrapping_add(ENDPOINTS_OFFSET)
            .cast::<EndpointSlot>();
        // SAFETY: `count` slots fit in the mapping after the aligned offset.
        let table = unsafe { core::slice::from_raw_parts(ptr, count) };
        let locks = Locks::new(file);
        (0..count)
            .find(|&slot| roster::held(table, &locks, slot))
            .map(|slot| table[slot].pid().unwrap_or(0))
    }

    /// Validates the header against `spec` and takes a slot of `side`.
    fn attach(
        self,
        name: &str,
        path: String,
        file: File,
        spec: &Spec,
        side: Side,
    ) -> Result<Segment, Error> {
        let header = self.header();
        let layout =
            header::validate(&header, spec, self.size).map_err(|refusal| match refusal {
                Refusal::Incompatible(detail) => Error::Incompatible {
                    name: name.to_owned(),
                    detail,
                },
                Refusal::Corrupt(detail) => Error::Corrupt {
                    name: name.to_owned(),
                    detail,
                },
            })?;
        let mut segment = Segment {
            name: name.to_owned(),
            path,
            file,
            map: self.map,
            header,
            layout,
            slots: (spec.slots)(header.rings as usize, header.endpoints as usize),
            side,
            joined: None,
            abandoned: false,
        };
        segment.join()?;
        Ok(segment)
    }
}

/// Everything a creator decided before the object exists.
struct New<'a> {
    name: &'a str,
    path: &'a str,
    spec: &'a Spec,
    capacity: u64,
    layout: Layout,
    barrier: crate::wait::Mode,
}

impl New<'_> {
    /// Sizes, maps and fills the new object, takes a slot of `side`, then
    /// marks it initialized. On failure the half-made object is removed.
    fn initialize(self, file: File, mode: u32, side: Side) -> Result<Segment, Error> {
        // Kept open so that a failure removes this object, not one that
        // another creator may have put under the name meanwhile.
        let mine = file.try_clone();
        let result = self.try_initialize(file, mode, side);
        if let (Err(_), Ok(mine)) = (&result, mine) {
            let _ = unlink_if_same(self.path, &mine, None);
        }
        result
    }

    fn try_initialize(&self, file: File, mode: u32, side: Side) -> Result<Segment, Error> {
        let name = self.name;
        let lock = Flock::new(&file, true, INIT_GRACE)
            .map_err(|e| io_error(name, "lock the new segment", e))?;
        // Our magic first: from here on, a creator that dies leaves an
        // object that `create` can prove is a dead shmchan segment (one
        // that is empty or all zeros could be another program's).
        rustix::io::pwrite(&file, &header::MAGIC, 0)
            .map_err(|e| io_error(name, "write the segment's header", e))?;
        // The mode given to shm_open was masked by the umask; set it exactly.
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
            .map_err(|e| io_error(name, "set the mode", e))?;
        rustix::fs::ftruncate(&file, self.layout.total as u64)
            .map_err(|e| io_error(name, "size the segment", e))?;
        // tmpfs allocates pages on first touch: without this, a full
        // /dev/shm would surface as SIGBUS in the middle of a send.
        rustix::fs::fallocate(&file, FallocateFlags::empty(), 0, self.layout.total as u64)
            .map_err(|e| io_error(name, NO_SPACE, e))?;
        let map = map(name, &file, self.layout.total)?;
        let header = self.header();
        let bytes = zerocopy::IntoBytes::as_bytes(&header);
        // SAFETY: the new mapping holds `layout.total >= HEADER_REGION` bytes
        // and nobody else reads it before `init` is set below.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_mut_ptr(), bytes.len()) };
        // The lock belongs to the open file, not to this descriptor: it
        // stays held after the descriptor moves into the segment.
        core::mem::forget(lock);
        let mut segment = Segment {
            name: name.to_owned(),
            path: self.path.to_owned(),
            file,
            map,
            header,
            layout: self.layout,
            slots: (self.spec.slots)(self.spec.rings as usize, self.spec.endpoints as usize),
            side,
            joined: None,
            abandoned: false,
        };
        if let Some(init) = self.spec.init_ring {
            for ring in 0..segment.rings() {
                let (control, slots) = segment.ring(ring);
                // SAFETY: the layout puts the ring's control block and its
                // `capacity` slots there, inside the new mapping, which
                // nobody else reads before `init` is set below.
                unsafe { init(control, slots, self.capacity) };
            }
        }
        segment.join()?;
        // Release: SYNC POINT with an opener's Acquire load in `Found::inspect`.
        segment.control().init.store(INITIALIZED, Ordering::Release);
        drop(Flock(&segment.file));
        Ok(segment)
    }

    fn header(&self) -> Header {
        let elem = &self.spec.elem;
        let mut header = Header {
            magic: header::MAGIC,
            version: header::VERSION,
            flavor: self.spec.flavor as u32,
            capacity: self.capacity,
            elem_size: elem.size as u64,
            elem_align: elem.align as u64,
            schema: elem.schema,
            total_size: self.layout.total as u64,
            created_unix_ns: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            creator_pid: std::process::id(),
            barrier_mode: self.barrier as u32,
            endpoints: self.spec.endpoints,
            rings: self.spec.rings,
            type_name_len: 0,
            layout_len: 0,
            type_name: [0; header::TYPE_NAME_CAP],
            layout: [0; header::LAYOUT_CAP],
        };
        header.type_name_len = header::store_text(&mut header.type_name, elem.name);
        header.layout_len = header::store_text(&mut header.layout, elem.layout);
        header
    }
}

/// An advisory lock on a segment, released on drop (or by the kernel when
/// the holder dies).
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    /// Takes the lock, exclusive or shared, waiting at most `patience`: a
    /// holder that keeps it longer (stopped in a debugger, or hostile) gets
    /// `EWOULDBLOCK` back to its callers rather than an unbounded hang.
    fn new(file: &'a File, exclusive: bool, patience: Duration) -> rustix::io::Result<Self> {
        let op = if exclusive {
            FlockOperation::NonBlockingLockExclusive
        } else {
            FlockOperation::NonBlockingLockShared
        };
        let give_up = Instant::now() + patience;
        loop {
            match rustix::fs::flock(file.as_fd(), op) {
                Ok(()) => return Ok(Self(file)),
                Err(Errno::INTR) => continue,
                Err(Errno::WOULDBLOCK) if Instant::now() < give_up => std::thread::sleep(INIT_POLL),
                Err(err) => return Err(err),
            }
        }
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(self.0.as_fd(), FlockOperation::Unlock);
    }
}

/// Maps the first `len` bytes of the segment open as `file`, shared and
/// read-only: for looking, never for taking part.
fn map_read_only(name: &str, file: &File, len: usize) -> Result<memmap2::MmapRaw, Error> {
    memmap2::MmapOptions::new()
        .len(len)
        .map_raw_read_only(file)
        .map_err(|source| Error::Io {
            name: name.to_owned(),
            op: "map the segment to read it",
            source,
        })
}

/// Maps the first `len` bytes of the segment open as `file`, shared.
fn map(name: &str, file: &File, len: usize) -> Result<memmap2::MmapRaw, Error> {
    memmap2::MmapOptions::new()
        .len(len)
        .map_raw(file)
        .map_err(|source| Error::Io {
            name: name.to_owned(),
            op: "map the segment",
            source,
        })
}

fn io_error(name: &str, op: &'static str, err: Errno) -> Error {
    Error::Io {
        name: name.to_owned(),
        op,
        source: err.into(),
    }
}
