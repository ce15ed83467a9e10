//! [`Options`]: capacity, permission mode, spin time and (mpsc) shards of a
//! channel.

use core::time::Duration;

/// Settings for creating or opening a channel.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let options = shmchan::Options::new()
///     .capacity(4096)
///     .mode(0o640)
///     .spin(Duration::from_micros(20));
/// # let name = format!("doc-options-{}", std::process::id());
/// let (tx, rx) = shmchan::spsc::channel_with::<u64>(&name, &options)?;
/// assert_eq!(tx.capacity(), 4096);
/// # Ok::<(), shmchan::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub(crate) capacity: usize,
    pub(crate) mode: u32,
    pub(crate) spin: Duration,
    pub(crate) shards: usize,
    pub(crate) receivers: usize,
    pub(crate) overflow: crate::broadcast::Overflow,
    /// For `shmchan::serde`: the schema name and version to record and
    /// check, instead of the type's name.
    #[cfg(feature = "serde")]
    pub(crate) schema: Option<(String, u32)>,
    /// For [`untyped`](crate::untyped) endpoints: the size and alignment of
    /// the messages, read from the channel's header.
    pub(crate) raw: Option<(usize, usize)>,
}

impl Options {
    /// The default capacity, in messages.
    pub const DEFAULT_CAPACITY: usize = 1024;
    /// The default permission mode: the creating user alone may open it.
    pub const DEFAULT_MODE: u32 = 0o600;
    /// The default time a blocked call spins before it sleeps. Long enough
    /// that a ping-pong at full speed never sleeps.
    pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);
    /// The default number of shards of an mpsc channel: how many senders
    /// may be attached at once.
    pub const DEFAULT_SHARDS: usize = 16;
    /// The most shards an mpsc channel may have.
    pub const MAX_SHARDS: usize = 1024;
    /// The default number of receivers a broadcast channel has places for.
    pub const DEFAULT_RECEIVERS: usize = 16;
    /// The most receivers a broadcast channel may have.
    pub const MAX_RECEIVERS: usize = 64;

    /// Capacity 1024, mode `0o600`, 50 µs of spinning, 16 mpsc shards.
    pub fn new() -> Self {
        Self {
            capacity: Self::DEFAULT_CAPACITY,
            mode: Self::DEFAULT_MODE,
            spin: Self::DEFAULT_SPIN,
            shards: Self::DEFAULT_SHARDS,
            receivers: Self::DEFAULT_RECEIVERS,
            overflow: crate::broadcast::Overflow::Block,
            #[cfg(feature = "serde")]
            schema: None,
            raw: None,
        }
    }

    /// Messages the channel holds, rounded up to a power of two when it is
    /// created (`capacity()` reports the real one). Ignored by `open`.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Permission bits of the shared-memory object, as for `chmod`, set
    /// exactly (the umask does not apply). Ignored by `open`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// How long a blocking call spins before it sleeps on a futex. Zero
    /// sleeps at once: least CPU, most latency.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// For [`mpsc`](crate::mpsc): how many senders may be attached at once,
    /// each with a ring of its own of [`capacity`](Self::capacity)
    /// messages; 1 to [`MAX_SHARDS`](Self::MAX_SHARDS). Fixed for the
    /// channel's life. Ignored by `open` and by the other flavors.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// For [`broadcast`](crate::broadcast): how many receivers may be
    /// attached at once, 1 to [`MAX_RECEIVERS`](Self::MAX_RECEIVERS)
    /// (default 16). Fixed for the channel's life; ignored by `open` and by
    /// the other flavors.
    pub fn receivers(mut self, receivers: usize) -> Self {
        self.receivers = receivers;
        self
    }

    /// For [`broadcast`](crate::broadcast): what the sender does when the
    /// slowest receiver is a whole ring behind (default
    /// [`Overflow::Block`](crate::broadcast::Overflow::Block)). Fixed for
    /// the channel's life; ignored by `open` and by the other flavors.
    pub fn overflow(mut self, overflow: crate::broadcast::Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// For [`serde`](crate::serde) channels: the schema name and version
    /// that `create` records and `open` checks (opening with another is
    /// [`Error::Incompatible`](crate::Error::Incompatible), naming both),
    /// instead of the message type's name. Use it when two programs name
    /// the type differently, or to version a type whose name stays. Ignored
    /// by the other flavors. (With the cargo feature `serde`.)
    #[cfg(feature = "serde")]
    pub fn schema(mut self, name: &str, version: u32) -> Self {
        self.schema = Some((name.to_owned(), version));
        self
    }

    /// The capacity to create with: a power of two, at least 1.
    pub(crate) fn ring_capacity(&self) -> Result<u64, crate::Error> {
        let invalid = |reason| crate::Error::InvalidCapacity {
            requested: self.capacity,
            reason,
        };
        if self.capacity == 0 {
            return Err(invalid("a channel must hold at least one message"));
        }
        let rounded = self
            .capacity
            .checked_next_power_of_two()
            .ok_or_else(|| invalid("it is too large"))?;
        Ok(rounded as u64)
    }
}

impl Options {
    /// Restates an `InvalidCapacity` in terms of the capacity asked for,
    /// not the power of two it was rounded to.
    pub(crate) fn as_requested(&self, err: crate::Error) -> crate::Error {
        match err {
            crate::Error::InvalidCapacity { reason, .. } => crate::Error::InvalidCapacity {
                requested: self.capacity,
                reason,
            },
            other => other,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}
