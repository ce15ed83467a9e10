//! The segment header: what the creator writes, what an opener checks.
//!
//! A segment is, in order:
//!
//! | offset | what |
//! |---|---|
//! | 0 | [`Header`]: fixed facts, written once by the creator |
//! | 512 | [`Control`]: the initialized word and other live words |
//! | 576 | the endpoint table, one [`EndpointSlot`] per role, shard or attachment |
//! | [`Layout::shared`] | the flavor's shared control block, if it has one (mpsc) |
//! | [`Layout::rings`] | each ring: the flavor's control block, then its slots |
//!
//! Nothing an opener uses is taken from the header on trust: it copies the
//! header out of the mapping once, checks every field against what it
//! expects, recomputes the layout from the checked fields, and compares the
//! result with the header's `total_size` and the file's real size.

use crate::endpoint::roster::{EndpointSlot, Roster};
use crate::primitive::AtomicU32;
use core::mem::{align_of, size_of};
use core::ops::Range;
use core::ptr::NonNull;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The first eight bytes of every shmchan segment.
pub(crate) const MAGIC: [u8; 8] = *b"SHMCHAN\0";
/// The version of this layout; bumped whenever it changes incompatibly.
pub(crate) const VERSION: u32 = 2;
/// The value of [`Control::init`] once the segment is ready.
pub(crate) const INITIALIZED: u32 = 0x5EC0_1417;
/// Bytes reserved for [`Header`].
pub(crate) const HEADER_REGION: usize = 512;
/// Offset of the endpoint table.
pub(crate) const ENDPOINTS_OFFSET: usize = HEADER_REGION + size_of::<Control>();
/// Room for the message type's name in the header.
pub(crate) const TYPE_NAME_CAP: usize = 64;
/// Room for the message type's layout text in the header.
pub(crate) const LAYOUT_CAP: usize = 256;
/// The most bytes of slots one ring may have (1 TiB).
pub(crate) const MAX_RING_BYTES: u64 = 1 << 40;
/// The most shards (senders) an mpsc channel may have.
pub(crate) const MAX_SHARDS: u32 = 1024;
/// The most endpoint slots any segment has (an mpsc channel's shards and
/// its receiver); a header that claims more is corrupt.
pub(crate) const MAX_ENDPOINTS: u32 = MAX_SHARDS + 1;
/// The most endpoints of a broadcast channel: its receivers and its sender.
pub(crate) const MAX_BROADCAST_ENDPOINTS: u32 = 65;

/// Which flavor a segment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Flavor {
    Spsc = 1,
    Mpsc = 2,
    Mpmc = 3,
    Bytes = 4,
    /// A byte ring of encoded values (`shmchan::serde`).
    Serde = 5,
    /// One sender, many receivers each reading every message.
    Broadcast = 6,
}

impl Flavor {
    pub(crate) fn from_u32(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Spsc),
            2 => Some(Self::Mpsc),
            3 => Some(Self::Mpmc),
            4 => Some(Self::Bytes),
            5 => Some(Self::Serde),
            6 => Some(Self::Broadcast),
            _ => None,
        }
    }

    /// The module a user opens it with.
    pub(crate) fn module(self) -> &'static str {
        match self {
            Self::Spsc => "shmchan::spsc",
            Self::Mpsc => "shmchan::mpsc",
            Self::Mpmc => "shmchan::mpmc",
            Self::Bytes => "shmchan::bytes",
            Self::Serde => "shmchan::serde",
            Self::Broadcast => "shmchan::broadcast",
        }
    }
}

/// The fixed facts of a segment, `#[repr(C)]` with no padding so it can be
/// copied out of untrusted memory and parsed by `zerocopy`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub(crate) struct Header {
    pub(crate) magic: [u8; 8],
    pub(crate) version: u32,
    pub(crate) flavor: u32,
    /// Messages per ring; a power of two.
    pub(crate) capacity: u64,
    pub(crate) elem_size: u64,
    pub(crate) elem_align: u64,
    pub(crate) schema: u64,
    /// Bytes the creator made the segment; the layout must agree.
    pub(crate) total_size: u64,
    pub(crate) created_unix_ns: u64,
    pub(crate) creator_pid: u32,
    /// A [`wait::Mode`](crate::wait::Mode).
    pub(crate) barrier_mode: u32,
    /// Entries in the endpoint table.
    pub(crate) endpoints: u32,
    /// Rings after the endpoint table.
    pub(crate) rings: u32,
    pub(crate) type_name_len: u32,
    pub(crate) layout_len: u32,
    pub(crate) type_name: [u8; TYPE_NAME_CAP],
    pub(crate) layout: [u8; LAYOUT_CAP],
}

/// The live words after the header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    /// [`INITIALIZED`] once the creator has written everything else; stored
    /// with Release, loaded with Acquire (SYNC POINT: the whole header).
    pub(crate) init: AtomicU32,
    /// Non-zero once the name was unlinked; set under the exclusive lock.
    pub(crate) unlinked: AtomicU32,
    /// Which sides ever attached, and each side's version.
    pub(crate) roster: Roster,
    /// Room for later use; atomics, like every word other processes write.
    _reserved: [AtomicU32; 11],
}

static_assertions::const_assert!(size_of::<Header>() <= HEADER_REGION);
static_assertions::const_assert_eq!(size_of::<Control>(), 64);
static_assertions::const_assert_eq!(ENDPOINTS_OFFSET % align_of::<EndpointSlot>(), 0);

/// The message type as the header describes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ElemType {
    pub(crate) size: usize,
    pub(crate) align: usize,
    pub(crate) schema: u64,
    pub(crate) name: &'static str,
    pub(crate) layout: &'static str,
}

impl ElemType {
    /// The type `T` of a typed flavor's messages.
    pub(crate) fn of<T: crate::ShmSafe>() -> Self {
        const {
            assert!(
                size_of::<T>() != 0,
                "a zero-sized message type carries nothing"
            )
        };
        // Slots are aligned relative to the mapping, which is only page-aligned.
        const {
            assert!(
                align_of::<T>() <= 4096,
                "message types aligned above a page are not supported"
            )
        };
        Self {
            size: size_of::<T>(),
            align: align_of::<T>(),
            schema: T::SCHEMA,
            name: T::NAME,
            layout: T::LAYOUT,
        }
    }
}

/// Writes a new ring's initial state: given its control block, its slots
/// and its capacity. (See [`Spec::init_ring`].)
pub(crate) type InitRing = unsafe fn(NonNull<u8>, NonNull<u8>, u64);

/// What a flavor expects of a segment.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub(crate) flavor: Flavor,
    pub(crate) elem: ElemType,
    /// Bytes and alignment of one slot of a ring: the message itself, or
    /// (mpmc) the message with its sequence word.
    pub(crate) slot_size: usize,
    pub(crate) slot_align: usize,
    pub(crate) endpoints: u32,
    pub(crate) rings: u32,
    /// One ring per sender (mpsc): an opener takes the number of rings from
    /// the header (1 to [`MAX_SHARDS`]), with one endpoint more than rings.
    pub(crate) sharded: bool,
    /// An opener takes the number of endpoints from the header (2 to
    /// [`MAX_BROADCAST_ENDPOINTS`]): broadcast, whose receivers are counted
    /// at creation.
    pub(crate) endpoints_from_header: bool,
    /// Any message type of the right size and alignment is accepted: the
    /// opener carries messages without reading them (`shmchan::untyped`,
    /// and a serde channel's encodings through `bytes::open_serde`).
    pub(crate) any_schema: bool,
    /// Each side's slots in the endpoint table, given the number of rings
    /// and of endpoints: `[receivers, senders]`.
    pub(crate) slots: fn(rings: usize, endpoints: usize) -> [Range<usize>; 2],
    /// Bytes of the flavor's control block shared by all rings.
    pub(crate) shared_control: usize,
    /// Bytes of the flavor's control block at the start of each ring.
    pub(crate) ring_control: usize,
    /// Writes a new ring's initial state, where all zeros is not one (the
    /// mpmc cells' sequence words): given the ring's control block, its
    /// slots and its capacity, in a segment nobody else sees yet.
    pub(crate) init_ring: Option<InitRing>,
}

impl Spec {
    /// The usual shape: a ring of messages of type `elem`, no shared block,
    /// one receiver (slot 0) and one sender (slot 1).
    pub(crate) fn new(flavor: Flavor, elem: ElemType, ring_control: usize) -> Self {
        Self {
            flavor,
            elem,
            slot_size: elem.size,
            slot_align: elem.align,
            endpoints: 2,
            rings: 1,
            sharded: false,
            endpoints_from_header: false,
            any_schema: false,
            slots: |_, _| [0..1, 1..2],
            shared_control: 0,
            ring_control,
            init_ring: None,
        }
    }
}

/// Where things are in a segment; computed, never read from the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Offset of the flavor's shared control block.
    pub(crate) shared: usize,
    /// Offset of ring 0's control block.
    pub(crate) rings: usize,
    /// Bytes from one ring to the next.
    pub(crate) ring_stride: usize,
    /// Offset of the slots from the start of a ring.
    pub(crate) slots: usize,
    /// Bytes in the segment.
    pub(crate) total: usize,
}

/// Alignment of every ring and of its slots: two cache lines, so that no
/// ring shares a line (or an adjacent-line prefetch pair) with another.
const RING_ALIGN: usize = 128;

impl Layout {
    /// The layout of `spec` with `capacity` messages per ring, or `None` if
    /// it does not fit in memory.
    pub(crate) fn compute(spec: &Spec, capacity: u64) -> Option<Self> {
        let align = spec.slot_align.max(RING_ALIGN);
        let slot_bytes = capacity.checked_mul(spec.slot_size as u64)?;
        if slot_bytes > MAX_RING_BYTES || !align.is_power_of_two() {
            return None;
        }
        let table = (spec.endpoints as usize).checked_mul(size_of::<EndpointSlot>())?;
        let shared = round_up(ENDPOINTS_OFFSET.checked_add(table)?, RING_ALIGN)?;
        let rings = round_up(shared.checked_add(spec.shared_control)?, align)?;
        let slots = round_up(spec.ring_control, align)?;
        let ring_stride = round_up(slots.checked_add(usize::try_from(slot_bytes).ok()?)?, align)?;
        let total = rings.checked_add(ring_stride.checked_mul(spec.rings as usize)?)?;
        Some(Self {
            shared,
            rings,
            ring_stride,
            slots,
            total,
        })
    }
}

fn round_up(n: usize, align: usize) -> Option<usize> {
    Some(n.checked_add(align - 1)? & !(align - 1))
}

/// Copies `text` into `buf`, cutting at a character boundary, and returns
/// the bytes used.
pub(crate) fn store_text(buf: &mut [u8], text: &str) -> u32 {
    let mut len = text.len().min(buf.len());
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    buf[..len].copy_from_slice(&text.as_bytes()[..len]);
    len as u32
}

/// Reads a text stored by [`store_text`], tolerating a hostile length.
pub(crate) fn load_text(buf: &[u8], len: u32) -> String {
    let len = (len as usize).min(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

impl Header {
    pub(crate) fn type_name(&self) -> String {
        load_text(&self.type_name, self.type_name_len)
    }

    pub(crate) fn layout_text(&self) -> String {
        load_text(&self.layout, self.layout_len)
    }
}

/// Why a header was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not ours, or made for something else: [`crate::Error::Incompatible`].
    Incompatible(String),
    /// Contradicts itself: [`crate::Error::Corrupt`].
    Corrupt(String),
}

/// Checks a header copied from a segment of `file_size` bytes against what
/// `spec` expects, and returns the layout to use. A sharded spec takes its
/// number of rings from the header.
pub(crate) fn validate(header: &Header, spec: &Spec, file_size: u64) -> Result<Layout, Refusal> {
    use Refusal::{Corrupt, Incompatible};
    if header.magic != MAGIC {
        return Err(Incompatible(
            "it is not a shmchan segment (wrong magic bytes)".into(),
        ));
    }
    if header.version != VERSION {
        return Err(Incompatible(format!(
            "it was made by a shmchan with segment layout version {}, this one uses version {VERSION}; \
             use the same shmchan version in every process",
            header.version
        )));
    }
    match Flavor::from_u32(header.flavor) {
        Some(flavor) if flavor == spec.flavor => {}
        Some(flavor) => {
            return Err(Incompatible(format!(
                "it is a {flavor:?} channel, opened here as {:?}; open it with {}",
                spec.flavor,
                flavor.module()
            )))
        }
        None => return Err(Corrupt(format!("unknown flavor number {}", header.flavor))),
    }
    if spec.any_schema {
        // The layout below is computed from the spec's size and alignment.
        if (header.elem_size, header.elem_align) != (spec.elem.size as u64, spec.elem.align as u64)
        {
            return Err(Corrupt(format!(
                "messages of {} bytes aligned to {}",
                header.elem_size, header.elem_align
            )));
        }
    } else {
        check_type(header, &spec.elem).map_err(Incompatible)?;
    }
    if header.capacity == 0 || !header.capacity.is_power_of_two() {
        return Err(Corrupt(format!(
            "capacity {} is not a power of two",
            header.capacity
        )));
    }
    let mut spec = *spec;
    if spec.sharded && (1..=MAX_SHARDS).contains(&header.rings) {
        spec.rings = header.rings;
        spec.endpoints = header.rings + 1;
    }
    if spec.endpoints_from_header && (2..=MAX_BROADCAST_ENDPOINTS).contains(&header.endpoints) {
        spec.endpoints = header.endpoints;
    }
    if header.endpoints != spec.endpoints || header.rings != spec.rings {
        return Err(Corrupt(format!(
            "{} endpoints and {} rings, expected {} and {}",
            header.endpoints, header.rings, spec.endpoints, spec.rings
        )));
    }
    let spec = &spec;
    match crate::wait::Mode::from_u32(header.barrier_mode) {
        None => {
            return Err(Corrupt(format!(
                "unknown barrier mode {}",
                header.barrier_mode
            )))
        }
        // Checked here, before any role is claimed, so that this refusal
        // never looks to a peer like an endpoint that attached and left.
        Some(mode) if crate::wait::Barrier::new(mode).is_none() => {
            return Err(Incompatible(
                "it relies on membarrier(2), which this process may not call (a seccomp \
                 filter?); create the channel with SHMCHAN_NO_MEMBARRIER=1 in the environment"
                    .into(),
            ))
        }
        Some(_) => {}
    }
    let layout = Layout::compute(spec, header.capacity).ok_or_else(|| {
        Corrupt(format!(
            "capacity {} does not fit in memory",
            header.capacity
        ))
    })?;
    // Exactly: a creator sizes the file to its layout, and a header that
    // describes a smaller channel than the file holds would have us lay
    // rings over the wrong bytes.
    if header.total_size != layout.total as u64 || file_size != layout.total as u64 {
        return Err(Corrupt(format!(
            "its header says {} bytes, its file has {file_size}, its layout needs {}",
            header.total_size, layout.total
        )));
    }
    Ok(layout)
}

/// Compares the stored message type with the expected one.
fn check_type(header: &Header, want: &ElemType) -> Result<(), String> {
    let (found_name, found_layout) = (header.type_name(), header.layout_text());
    let found = TypeText {
        name: &found_name,
        layout: &found_layout,
        size: header.elem_size,
        align: header.elem_align,
        schema: header.schema,
    };
    let want = TypeText {
        name: want.name,
        layout: want.layout,
        size: want.size as u64,
        align: want.align as u64,
        schema: want.schema,
    };
    let serde = Flavor::from_u32(header.flavor) == Some(Flavor::Serde);
    found.mismatch(&want, serde).map_or(Ok(()), Err)
}

/// A message type as a header records it, borrowed.
pub(crate) struct TypeText<'a> {
    pub(crate) name: &'a str,
    pub(crate) layout: &'a str,
    pub(crate) size: u64,
    pub(crate) align: u64,
    pub(crate) schema: u64,
}

impl TypeText<'_> {
    /// What differs between the type a channel carries (`self`) and the
    /// one an endpoint expects, said for a person; `None` if they are the
    /// same type. `serde`: the types are encoded values, which have a name
    /// and a schema version but no layout to compare.
    pub(crate) fn mismatch(&self, want: &TypeText<'_>, serde: bool) -> Option<String> {
        if self.schema == want.schema && self.size == want.size && self.align == want.align {
            return None;
        }
        let (found_name, found_layout) = (self.name, self.layout);
        if serde {
            return Some(format!(
                "it carries `{found_name}` ({found_layout}), this endpoint expects `{}` ({}); use \
                 the same type in every process, or the same Options::schema",
                want.name, want.layout
            ));
        }
        let mut detail = format!(
            "it carries `{found_name}` ({} bytes, align {}), this endpoint expects `{}` ({} bytes, align {})",
            self.size, self.align, want.name, want.size, want.align
        );
        match first_difference(found_layout, want.layout) {
            Some(diff) => detail.push_str(&format!("; first difference: {diff}")),
            None if found_layout == want.layout => detail
                .push_str("; their layouts read the same at this level, so a nested type differs"),
            None => {}
        }
        detail.push_str(&format!(
            "; found layout {found_layout}, expected {}",
            want.layout
        ));
        Some(detail)
    }
}

/// Names the first field where two layout texts (`Name{a:u64@0,b:u32@8}`)
/// differ, or `None` if they are equal or not both structs.
pub(crate) fn first_difference(found: &str, want: &str) -> Option<String> {
    let fields = |text: &str| -> Option<Vec<String>> {
        let open = text.find('{')?;
        let body = text[open + 1..].strip_suffix('}')?;
        Some(body.split(',').map(str::to_owned).collect())
    };
    let (found_fields, want_fields) = (fields(found)?, fields(want)?);
    let count = found_fields.len().max(want_fields.len());
    (0..count).find_map(|i| match (found_fields.get(i), want_fields.get(i)) {
        (Some(f), Some(w)) if f == w => None,
        (Some(f), Some(w)) => Some(format!(
            "field {} is `{f}` in the channel, `{w}` here",
            i + 1
        )),
        (Some(f), None) => Some(format!("the channel's type has an extra field `{f}`")),
        (None, Some(w)) => Some(format!("this endpoint's type has an extra field `{w}`")),
        (None, None) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec::new(Flavor::Spsc, ElemType::of::<u64>(), 512)
    }

    #[test]
    fn layout_is_header_plus_slots() {
        let layout = Layout::compute(&spec(), 1024).unwrap();
        assert_eq!(layout.rings % 128, 0);
        assert_eq!(layout.total, layout.rings + 512 + 1024 * 8);
        assert!(Layout::compute(&spec(), 1 << 62).is_none());
    }

    #[test]
    fn first_difference_names_the_field() {
        let diff = first_difference("T{a:u64@0,b:u32@8}", "T{a:u64@0,b:i32@8}").unwrap();
        assert!(
            diff.contains("field 2") && diff.contains("b:i32@8"),
            "{diff}"
        );
        let diff = first_difference("T{a:u64@0}", "T{a:u64@0,b:u32@8}").unwrap();
        assert!(diff.contains("extra field `b:u32@8`"), "{diff}");
        assert_eq!(first_difference("u64", "u32"), None);
    }

    #[test]
    fn texts_are_cut_at_char_boundaries() {
        let mut buf = [0u8; 4];
        let len = store_text(&mut buf, "aéé");
        assert_eq!(load_text(&buf, len), "aé");
        assert_eq!(load_text(&buf, u32::MAX), "aé\u{0}");
    }
}
