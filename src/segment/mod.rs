//! The shared-memory object behind a channel: create, open, map, detach,
//! unlink. It knows the header and the endpoint table, not the rings.
//!
//! # Who may do what, and the lock that orders it
//!
//! Three things must not interleave: a creator initialising a segment, an
//! opener claiming a role in one, and the last endpoint deciding to unlink
//! it (or a creator replacing a stale one). They are ordered with `flock` on
//! the object itself, which the kernel releases when a holder dies:
//!
//! - a creator holds it exclusively from `O_CREAT | O_EXCL` until the
//!   segment is initialized, its own role claimed;
//! - an opener holds it shared from validation until its role is claimed;
//! - an unlinker holds it exclusively while it checks that every role is
//!   vacant, sets [`Control::unlinked`], and unlinks the name.
//!
//! An opener that finds `unlinked` set raced with an unlinker and starts
//! over; one that finds the segment uninitialized waits for up to
//! [`INIT_GRACE`] for its creator before calling it stale or corrupt.

mod endpoints;
mod header;
mod name;

pub(crate) use endpoints::{EndpointSlot, Owner};
pub(crate) use header::{ElemType, Flavor, Spec};

use crate::primitive::Ordering;
use crate::Error;
use core::mem::size_of;
use core::ops::Range;
use core::ptr::NonNull;
use core::time::Duration;
use header::{Control, Header, Layout, Refusal, ENDPOINTS_OFFSET, HEADER_REGION, INITIALIZED};
use rustix::fs::{FallocateFlags, FlockOperation, Mode};
use rustix::io::Errno;
use rustix::shm::OFlags;
use std::fs::File;
use std::os::fd::AsFd;
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

/// Which slots of the endpoint table an endpoint may take, and its role.
#[derive(Clone, Debug)]
pub(crate) struct Claim {
    /// Tried in order; the first vacant one is taken.
    pub(crate) slots: Range<usize>,
    /// For messages: `"sender"`, `"receiver"`.
    pub(crate) role: &'static str,
    /// The bit set in [`Control::attached_ever`] on claiming the role. Every
    /// check that can refuse an endpoint for a reason other than corruption
    /// is made before the claim, so a peer never sees a role that attached
    /// and left when an open merely failed.
    pub(crate) ever_bit: u32,
}

/// One endpoint's mapping of a segment, and its claim on a role.
pub(crate) struct Segment {
    name: String,
    path: String,
    file: File,
    map: memmap2::MmapRaw,
    header: Header,
    layout: Layout,
    /// Our slot in the endpoint table, until we detach.
    slot: Option<usize>,
}

impl Segment {
    /// Creates the segment `name` for `spec` with `capacity` messages per
    /// ring and permission `mode`, and takes a role in it.
    pub(crate) fn create(
        name: &str,
        spec: &Spec,
        capacity: u64,
        mode: u32,
        barrier: crate::wait::Mode,
        claim: &Claim,
    ) -> Result<Self, Error> {
        let path = name::shm_path(name)?;
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
                    let segment = new.initialize(File::from(fd), mode, claim)?;
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
    /// takes a role in it.
    pub(crate) fn open(name: &str, spec: &Spec, claim: &Claim) -> Result<Self, Error> {
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
            match Found::inspect(name, &file)? {
                Found::Ready(mapped) if mapped.control().unlinked.load(Ordering::Acquire) == 0 => {
                    // The lock belongs to the open file: it moves with the
                    // descriptor, and closing it on an error releases it.
                    core::mem::forget(lock);
                    let segment = mapped.attach(name, path, file, spec, claim)?;
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
                Found::Unfinished if Instant::now() >= give_up => {
                    return Err(Error::Corrupt {
                        name: name.to_owned(),
                        detail: "it was never initialized: its creator probably died while \
                                 creating it; create it again (a stale segment is replaced) or remove it \
                                 with shmchan::unlink"
                            .into(),
                    })
                }
                Found::Unfinished => {}
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

    pub(crate) fn barrier_mode(&self) -> Option<crate::wait::Mode> {
        crate::wait::Mode::from_u32(self.header.barrier_mode)
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

    /// Our slot in the endpoint table, while attached.
    pub(crate) fn slot(&self) -> Option<usize> {
        self.slot
    }

    /// Maps the segment again and takes another role in it, for a second
    /// endpoint of this process (an mpsc sender's clone). No lock is needed:
    /// while we hold our own role the segment is neither unlinked for
    /// being unused nor replaced as stale.
    pub(crate) fn try_clone(&self, claim: &Claim) -> Result<Self, Error> {
        let file = self.file.try_clone().map_err(|source| Error::Io {
            name: self.name.clone(),
            op: "duplicate the segment's descriptor",
            source,
        })?;
        let map = map(&self.name, &file, self.layout.total)?;
        let mut segment = Segment {
            name: self.name.clone(),
            path: self.path.clone(),
            file,
            map,
            header: self.header,
            layout: self.layout,
            slot: None,
        };
        segment.claim_role(claim)?;
        Ok(segment)
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

    /// Whether an endpoint of role `bit` has ever attached.
    #[inline]
    pub(crate) fn ever_attached(&self, bit: u32) -> bool {
        // Acquire: pairs with the Release `fetch_or` in `claim_role`; read
        // this before the slot, so a set bit means the slot was claimed.
        self.control().attached_ever.load(Ordering::Acquire) & bit != 0
    }

    /// Gives up our role, if we still hold it.
    pub(crate) fn detach(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.endpoints()[slot].release(Owner::me());
        }
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
        // Relaxed: the exclusive lock held here orders it against the store
        // in `unlink_if_same`, which is made under the same lock.
        if control.unlinked.load(Ordering::Relaxed) == 0
            && self.endpoints().iter().all(EndpointSlot::vacant)
        {
            let _ = unlink_if_same(&self.path, &self.file, Some(control));
        }
    }

    fn claim_role(&mut self, claim: &Claim) -> Result<(), Error> {
        let me = Owner::me();
        let mut holder = None;
        for index in claim.slots.clone() {
            let Some(slot) = self.endpoints().get(index) else {
                break;
            };
            match slot.claim(me) {
                Ok(_) => {
                    self.slot = Some(index);
                    // Release: pairs with `ever_attached`'s Acquire.
                    self.control()
                        .attached_ever
                        .fetch_or(claim.ever_bit, Ordering::Release);
                    return Ok(());
                }
                Err(owner) => holder = holder.or(Some(owner)),
            }
        }
        Err(Error::Busy {
            name: self.name.clone(),
            role: claim.role,
            pid: holder.map_or(0, Owner::pid),
        })
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.detach();
        self.unlink_if_unused();
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
    let control = match Found::inspect(name, &file)? {
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
        let control = match Found::inspect(name, &file)? {
            Found::Foreign => return Ok(Existing::Live("it is not a shmchan segment".into())),
            // Nobody can be using it: any access past its end would fault.
            Found::Truncated(_) => None,
            Found::Ready(mapped) => {
                let header = mapped.header();
                if header.magic != header::MAGIC {
                    return Ok(Existing::Live("it is not a shmchan segment".into()));
                }
                if let Some(owner) = mapped.live_owner(header.endpoints) {
                    let detail = format!("process {} is attached to it", owner.pid());
                    return Ok(Existing::Live(detail));
                }
                Some(mapped)
            }
            Found::Unfinished if Instant::now() < give_up => {
                drop(_lock);
                std::thread::sleep(INIT_POLL);
                continue;
            }
            Found::Unfinished => None,
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
    /// Empty, or zeros where the magic should be, or our magic without the
    /// init word: a creator at work, or one that died at work.
    Unfinished,
    /// Our magic, but too short to hold even the endpoint table.
    Truncated(u64),
    /// Something that is not a shmchan segment.
    Foreign,
}

impl Found {
    fn inspect(name: &str, file: &File) -> Result<Self, Error> {
        let stat =
            rustix::fs::fstat(file).map_err(|err| io_error(name, "inspect the segment", err))?;
        let size = stat.st_size as u64;
        if size == 0 {
            return Ok(Self::Unfinished);
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
        let map = map(name, file, len)?;
        let mapped = Mapped { map, size };
        // Acquire: SYNC POINT with the creator's Release store of `init`:
        // the header is completely written before we read it.
        if mapped.control().init.load(Ordering::Acquire) == INITIALIZED {
            return Ok(Self::Ready(mapped));
        }
        let magic = mapped.header().magic;
        Ok(if magic == header::MAGIC || magic == [0; 8] {
            Self::Unfinished
        } else {
            Self::Foreign
        })
    }
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

    /// A live owner in the first `count` slots of the table, if any; `count`
    /// comes from the header and is bounded by the file's size here.
    fn live_owner(&self, count: u32) -> Option<Owner> {
        let fits = (self.size as usize - ENDPOINTS_OFFSET) / size_of::<EndpointSlot>();
        let count = (count as usize).min(fits);
        let ptr = self
            .map
            .as_ptr()
            .wrapping_add(ENDPOINTS_OFFSET)
            .cast::<EndpointSlot>();
        // SAFETY: `count` slots fit in the mapping after the aligned offset.
        let slots = unsafe { core::slice::from_raw_parts(ptr, count) };
        slots
            .iter()
            .filter_map(EndpointSlot::owner)
            .find(|owner| owner.alive())
    }

    /// Validates the header against `spec` and takes a role.
    fn attach(
        self,
        name: &str,
        path: String,
        file: File,
        spec: &Spec,
        claim: &Claim,
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
            slot: None,
        };
        segment.claim_role(claim)?;
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
    /// Sizes, maps and fills the new object, claims a role, then marks it
    /// initialized. On failure the half-made object is removed.
    fn initialize(self, file: File, mode: u32, claim: &Claim) -> Result<Segment, Error> {
        // Kept open so that a failure removes this object, not one that
        // another creator may have put under the name meanwhile.
        let mine = file.try_clone();
        let result = self.try_initialize(file, mode, claim);
        if let (Err(_), Ok(mine)) = (&result, mine) {
            let _ = unlink_if_same(self.path, &mine, None);
        }
        result
    }

    fn try_initialize(&self, file: File, mode: u32, claim: &Claim) -> Result<Segment, Error> {
        let name = self.name;
        let lock = Flock::new(&file, true, INIT_GRACE)
            .map_err(|e| io_error(name, "lock the new segment", e))?;
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
            slot: None,
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
        segment.claim_role(claim)?;
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
