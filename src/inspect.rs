//! Reading channels without attaching to them: what the `shmchan`
//! command-line tool shows, for any other tool that wants the same.
//!
//! Everything here opens segments read-only, takes no lock and writes
//! nothing, so a channel being inspected behaves exactly as one that is
//! not. Headers are validated as `open` validates them; a segment that fails
//! is reported as damaged, not trusted, and an object that is not a
//! shmchan segment as foreign. Whether an endpoint lives is asked of the
//! kernel (its lock), as the endpoints themselves ask.
//!
//! ```
//! # let name = format!("doc-inspect-{}", std::process::id());
//! let (tx, _rx) = shmchan::spsc::channel::<u64>(&name, 64)?;
//! tx.send(7).unwrap();
//! let channel = shmchan::inspect::channel(&name)?;
//! assert_eq!((channel.flavor, channel.type_name.as_str()), ("spsc", "u64"));
//! assert_eq!((channel.stats.capacity, channel.stats.len), (64, 1));
//! assert!(!channel.stale());
//! # Ok::<(), shmchan::Error>(())
//! ```

use crate::segment::{self, ElemType, Flavor as Kind, Header, Seen, Segment, Spec, TypeText};
use crate::{Error, Stats};
use std::time::{Duration, SystemTime};

/// Where Linux keeps POSIX shared-memory objects.
const SHM_DIR: &str = "/dev/shm";

/// A channel, as its segment describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Channel {
    /// Its name, without a leading `/`.
    pub name: String,
    /// `"spsc"`, `"mpsc"`, `"mpmc"`, `"bytes"`, `"serde"` or `"broadcast"`.
    pub flavor: &'static str,
    /// The message type's own name (`Tick`, `[u64; 4]`; `bytes`; a serde
    /// channel's type or schema name).
    pub type_name: String,
    /// The message type's layout, as `ShmSafe::LAYOUT` gives it (cut if
    /// it was longer than the header holds).
    pub layout: String,
    /// Bytes of one message (1 for `bytes`).
    pub elem_size: u64,
    /// Alignment of one message.
    pub elem_align: u64,
    /// The message type's layout fingerprint (`ShmSafe::SCHEMA`).
    pub schema: u64,
    /// Rings in the segment: an mpsc channel's shard count, otherwise 1.
    pub rings: u32,
    /// The segment's permission bits.
    pub mode: u32,
    /// The segment's owner.
    pub uid: u32,
    /// The segment's size, in bytes.
    pub size: u64,
    /// The process that created it, as its PID namespace numbers it.
    pub creator_pid: u32,
    /// When it was created.
    pub created: SystemTime,
    /// Its counters and its endpoints (see [`Stats`]); `capacity` is per
    /// ring, in messages (bytes, for `bytes`).
    pub stats: Stats,
}

/// A message type as a channel's header records it: what a tool compares,
/// without the Rust type, to tell whether two channels carry the same
/// messages (the Zenoh bridge, before it carries one channel's messages
/// into another).
///
/// Typed flavors (spsc, mpsc, mpmc, broadcast) carrying the same type are
/// interchangeable; a `bytes` channel matches only `bytes`, and a serde
/// channel only a serde channel of the same type or schema name and
/// version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// The type's own name (`Tick`; `bytes`; a serde type or schema name).
    pub name: String,
    /// Its layout text (`ShmSafe::LAYOUT`; for serde, the schema version).
    pub layout: String,
    /// Bytes of one message (1 for `bytes` and serde).
    pub size: u64,
    /// Alignment of one message.
    pub align: u64,
    /// The layout fingerprint (`ShmSafe::SCHEMA`, or the serde schema's).
    pub schema: u64,
    /// Whether messages are serde encodings (compared by name and version,
    /// having no layout).
    pub serde: bool,
}

impl MessageType {
    /// The type `T`, as a typed channel of `T` records it.
    pub fn of<T: crate::ShmSafe>() -> Self {
        let elem = ElemType::of::<T>();
        Self {
            name: elem.name.to_owned(),
            layout: elem.layout.to_owned(),
            size: elem.size as u64,
            align: elem.align as u64,
            schema: elem.schema,
            serde: false,
        }
    }

    /// Checks that channel `channel`, whose messages are of this type, can
    /// take messages of type `expected`.
    ///
    /// # Errors
    ///
    /// [`Error::Incompatible`] naming both types (and the first field that
    /// differs), worded as an `open` with the wrong type is.
    pub fn expect(&self, channel: &str, expected: &MessageType) -> Result<(), Error> {
        match self
            .text()
            .mismatch(&expected.text(), self.serde || expected.serde)
        {
            None => Ok(()),
            Some(detail) => Err(Error::Incompatible {
                name: channel.to_owned(),
                detail,
            }),
        }
    }

    fn text(&self) -> TypeText<'_> {
        TypeText {
            name: &self.name,
            layout: &self.layout,
            size: self.size,
            align: self.align,
            schema: self.schema,
        }
    }
}

impl Channel {
    /// The type of its messages.
    pub fn message_type(&self) -> MessageType {
        MessageType {
            name: self.type_name.clone(),
            layout: self.layout.clone(),
            size: self.elem_size,
            align: self.elem_align,
            schema: self.schema,
            serde: self.flavor == "serde",
        }
    }

    /// Whether no live endpoint holds it: left by a run whose processes all
    /// died. `create` replaces such a segment, and
    /// [`remove_if_stale`] removes it.
    pub fn stale(&self) -> bool {
        !self.stats.endpoints.iter().any(|endpoint| endpoint.alive)
    }
}

/// What a name in the shared-memory directory turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// A shmchan channel.
    Channel(Channel),
    /// Not a shmchan segment (another program's object, or one that
    /// cannot be told from one): what it looks like.
    Foreign {
        /// The object's name.
        name: String,
        /// What it looks like.
        detail: String,
    },
    /// A shmchan segment that cannot be used (corrupt, truncated, never
    /// initialized, or of another shmchan's layout version): why.
    Damaged {
        /// The segment's name.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An object that could not be read (another user's, say): why.
    Unreadable {
        /// The object's name.
        name: String,
        /// Why it could not be read.
        detail: String,
    },
}

impl Entry {
    /// The name of the object this entry describes.
    pub fn name(&self) -> &str {
        match self {
            Self::Channel(channel) => &channel.name,
            Self::Foreign { name, .. }
            | Self::Damaged { name, .. }
            | Self::Unreadable { name, .. } => name,
        }
    }
}

/// Every object in the shared-memory directory, shmchan's or not, in order
/// of name. One that cannot be read or makes no sense is an entry that says
/// so; it never makes the listing fail.
///
/// # Errors
///
/// [`Error::Io`] if the directory itself cannot be read.
pub fn list() -> Result<Vec<Entry>, Error> {
    let dir = std::fs::read_dir(SHM_DIR).map_err(|source| Error::Io {
        name: SHM_DIR.to_owned(),
        op: "list the shared-memory directory",
        source,
    })?;
    let mut entries: Vec<Entry> = dir
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| self::entry(&entry.file_name().to_string_lossy()))
        .collect();
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(entries)
}

/// What the object `name` is.
fn entry(name: &str) -> Entry {
    let name = name.to_owned();
    match channel(&name) {
        Ok(channel) => Entry::Channel(channel),
        Err(Error::InvalidName { reason, .. }) => Entry::Foreign {
            name,
            detail: format!("not a channel name: {reason}"),
        },
        Err(Error::Incompatible { detail, .. }) => Entry::Foreign { name, detail },
        Err(Error::Corrupt { detail, .. }) => Entry::Damaged { name, detail },
        Err(err) => Entry::Unreadable {
            name,
            detail: err.to_string(),
        },
    }
}

/// The channel `name`, described.
///
/// # Errors
///
/// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Incompatible`] if
/// the object is not a shmchan segment, [`Error::Corrupt`] if it is one that
/// cannot be used (the detail says why), [`Error::Io`] if it cannot be read.
pub fn channel(name: &str) -> Result<Channel, Error> {
    let bare = name.trim_start_matches('/');
    match Segment::inspect(bare, shape)? {
        Seen::Channel(segment) => Ok(describe(&segment)),
        Seen::Foreign(detail) => Err(Error::Incompatible {
            name: bare.to_owned(),
            detail: format!("it is not a shmchan segment: {detail}"),
        }),
        Seen::Damaged(detail) => Err(Error::Corrupt {
            name: bare.to_owned(),
            detail,
        }),
    }
}

/// Removes the segment `name` if it is stale: every endpoint of it dead
/// (or it is what a creator that died left). Never a live channel, and
/// never an object that is not a shmchan segment. Returns whether it
/// removed it.
///
/// # Errors
///
/// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Io`].
pub fn remove_if_stale(name: &str) -> Result<bool, Error> {
    segment::remove_if_stale(name)
}

/// The segment a channel with this header's flavor and message type has;
/// `None` for an unknown flavor or a message type no channel can have.
fn shape(header: &Header) -> Option<Spec> {
    let (size, align) = (header.elem_size, header.elem_align);
    if !(align.is_power_of_two() && align <= 4096 && (1..=1 << 40).contains(&size)) {
        return None;
    }
    // The name and layout texts serve only messages about a mismatch,
    // which cannot happen: the expected type is the header's own.
    let elem = ElemType {
        size: size as usize,
        align: align as usize,
        schema: header.schema,
        name: "",
        layout: "",
    };
    Some(match Kind::from_u32(header.flavor)? {
        Kind::Spsc => crate::spsc::shape(elem),
        Kind::Mpsc => crate::mpsc::shape(elem, header.rings),
        Kind::Mpmc => crate::mpmc::shape(elem),
        Kind::Bytes => crate::bytes::shape(),
        // A serde channel's elem is its schema's, as the header says.
        Kind::Serde => crate::bytes::ring_shape(Kind::Serde, elem),
        // Its receivers are counted in the header; the policy is not part
        // of the shape.
        Kind::Broadcast => crate::broadcast::shape(elem, 1, crate::broadcast::Overflow::Block),
    })
}

/// A validated segment, described.
fn describe(segment: &Segment) -> Channel {
    let header = segment.header();
    let kind = Kind::from_u32(header.flavor).expect("validated");
    let counts = match kind {
        Kind::Spsc => crate::spsc::channel_counts(segment),
        Kind::Mpsc => crate::mpsc::channel_counts(segment),
        Kind::Mpmc => crate::mpmc::channel_counts(segment),
        Kind::Bytes | Kind::Serde => crate::bytes::channel_counts(segment),
        Kind::Broadcast => crate::broadcast::channel_counts(segment),
    };
    let (mode, uid) = segment.mode_and_owner();
    Channel {
        name: segment.name().to_owned(),
        flavor: kind.module().trim_start_matches("shmchan::"),
        type_name: header.type_name(),
        layout: header.layout_text(),
        elem_size: header.elem_size,
        elem_align: header.elem_align,
        schema: header.schema,
        rings: header.rings,
        mode,
        uid,
        size: header.total_size,
        creator_pid: header.creator_pid,
        created: SystemTime::UNIX_EPOCH + Duration::from_nanos(header.created_unix_ns),
        stats: Stats {
            sent: counts.sent,
            received: counts.received,
            len: counts.len,
            capacity: counts.capacity,
            high_water: counts.high_water,
            full: counts.full,
            endpoints: segment.endpoint_infos(None),
        },
    }
}
