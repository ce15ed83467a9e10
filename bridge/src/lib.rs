//! shmchan channels carried across hosts by [Zenoh](https://zenoh.io).
//!
//! An *exporter* drains a local channel and publishes its messages on a
//! Zenoh key; an *importer* subscribed to that key sends them into a local
//! channel on another host. Producer and consumer keep their shmchan code;
//! the bridges run beside them, as the `shmchan-bridge` command or in
//! process through this library.
//!
//! ```no_run
//! use shmchan_zenoh::{export, import, Network, Options};
//!
//! // Host A: the producer's channel, drained into the key `ticks`.
//! let a = Network::new().listen("tcp/127.0.0.1:7447").open()?;
//! let rx = shmchan::spsc::Receiver::<u64>::open("ticks-a")?;
//! let exporter = export(&a, rx, "ticks", &Options::new())?;
//!
//! // Host B: what arrives on `ticks`, sent into the consumer's channel.
//! let b = Network::new().connect("tcp/127.0.0.1:7447").open()?;
//! let tx = shmchan::spsc::Sender::<u64>::open("ticks-b")?;
//! let importer = import(&b, "ticks", tx, &Options::new())?;
//! # Ok::<(), shmchan_zenoh::Error>(())
//! ```
//!
//! # What is guaranteed
//!
//! - **Types.** The exporter introduces its channel's message type before
//!   any data; an importer whose channel carries another type refuses with
//!   the [`Incompatible`](shmchan::Error::Incompatible) error an `open`
//!   with the wrong type gives, and nothing is delivered. Typed flavors
//!   carrying the same type interchange (spsc into mpmc, say); `bytes`
//!   and serde channels forward their payloads as they are.
//! - **While connected, nothing is lost, duplicated or reordered.**
//!   Zenoh carries the samples reliably, in order per key, with congestion
//!   control `Block`. The exporter keeps at most [`Options::window`]
//!   messages unacknowledged by the slowest importer: a slow or absent
//!   importer stops it draining its channel, so the local sender blocks
//!   (backpressure) instead of anything being dropped. With no importer at
//!   all, the exporter drains nothing.
//! - **A crash or a lost connection loses at most one window** of messages
//!   (those in flight: taken from the exporter's channel, not yet in the
//!   importer's), never duplicates one (nothing is resent) and never
//!   reorders or corrupts one. Messages still in the exporter's channel
//!   wait there for a restarted exporter. An importer counts the gaps it
//!   sees in [`Stats::lost`].
//! - The importer is a sender of its local channel that does not leave:
//!   its consumer sees the channel connected while the importer runs.

mod export;
mod import;
mod local;
mod network;
pub mod open;
mod wire;

pub use export::export;
pub use import::import;
pub use local::{Limit, Sink, SinkError, Source};
pub use network::Network;
pub use wire::Frame;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How a bridge runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    window: u64,
    frame_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            window: 4096,
            frame_bytes: 256 * 1024,
        }
    }
}

impl Options {
    /// Defaults: a window of 4096 messages, frames of up to 256 KiB.
    pub fn new() -> Self {
        Self::default()
    }

    /// Most messages an exporter keeps unacknowledged (at least 1): what
    /// a crash or a lost connection can cost at most.
    pub fn window(mut self, messages: u64) -> Self {
        self.window = messages.max(1);
        self
    }

    /// Most bytes of messages in one Zenoh sample (at least one message
    /// is always sent whole).
    pub fn frame_bytes(mut self, bytes: usize) -> Self {
        self.frame_bytes = bytes.max(1);
        self
    }
}

/// What can stop a bridge.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The local channel: it could not be opened, or (importer) it carries
    /// another message type than the exporter's
    /// ([`Incompatible`](shmchan::Error::Incompatible)).
    Channel(shmchan::Error),
    /// Zenoh refused something: a session, a key, a publication.
    Zenoh {
        /// What was being done.
        op: String,
        /// Zenoh's error.
        detail: String,
    },
    /// A message longer than the local channel takes (a `bytes` or serde
    /// channel smaller than the exporter's). It was not delivered, nor
    /// acknowledged.
    TooLarge {
        /// The local channel.
        channel: String,
        /// The message's length.
        len: usize,
        /// The most the channel takes.
        max: usize,
    },
}

impl Error {
    fn zenoh(op: &str, err: impl fmt::Display) -> Self {
        Self::Zenoh {
            op: op.to_owned(),
            detail: err.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Channel(err) => err.fmt(f),
            Self::Zenoh { op, detail } => write!(f, "zenoh could not {op}: {detail}"),
            Self::TooLarge { channel, len, max } => write!(
                f,
                "a message of {len} bytes arrived for channel {channel:?}, which takes at most \
                 {max}; create it with a capacity of at least {} bytes and restart the importer",
                (len + 8).next_power_of_two() * 2
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Channel(err) => Some(err),
            _ => None,
        }
    }
}

impl From<shmchan::Error> for Error {
    fn from(err: shmchan::Error) -> Self {
        Self::Channel(err)
    }
}

/// A bridge's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Exporter: messages published. Importer: messages delivered into the
    /// local channel.
    pub messages: u64,
    /// Zenoh samples published (exporter) or received (importer).
    pub frames: u64,
    /// Importer: messages it knows it missed (gaps in the sequence, after
    /// a crash or a lost connection). Exporter: 0.
    pub lost: u64,
    /// Exporter: importers present now. Importer: 1 once it has accepted an
    /// exporter's introduction.
    pub peers: u64,
    /// Samples on the bridge's keys that did not parse (another program
    /// publishing there?); they are ignored.
    pub malformed: u64,
    /// Exporter: the last reason an importer gave for refusing this
    /// channel's type.
    pub refusal: Option<String>,
}

/// Counters shared between a bridge's thread and its handle.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    messages: AtomicU64,
    frames: AtomicU64,
    lost: AtomicU64,
    peers: AtomicU64,
    malformed: AtomicU64,
    refusal: Mutex<Option<String>>,
}

impl Shared {
    /// Adds to a counter. The counters are read by other threads only as
    /// statistics, ordering nothing: Relaxed.
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        // Relaxed: the flag carries no data; the join in `Bridge::stop`
        // orders what the thread did before it.
        self.stop.load(Ordering::Relaxed)
    }
}

/// A running exporter or importer: its thread, stopped when this is
/// dropped or [`stop`](Self::stop)ped.
#[derive(Debug)]
pub struct Bridge {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl Bridge {
    fn spawn(
        name: String,
        run: impl FnOnce(&Shared) -> Result<(), Error> + Send + 'static,
    ) -> Result<Self, Error> {
        let shared = Arc::new(Shared::default());
        let inner = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&inner))
            .map_err(|err| Error::zenoh("start the bridge's thread", err))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Its counters now.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            messages: load(&s.messages),
            frames: load(&s.frames),
            lost: load(&s.lost),
            peers: load(&s.peers),
            malformed: load(&s.malformed),
            refusal: s
                .refusal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// Whether it has stopped on its own (on an error: see
    /// [`stop`](Self::stop)).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops it (within about 50 ms, or once a blocked publication or
    /// delivery returns) and returns its final counters.
    ///
    /// # Errors
    ///
    /// The error it stopped on by itself, if it did.
    pub fn stop(mut self) -> Result<Stats, Error> {
        self.halt()?;
        Ok(self.stats())
    }

    fn halt(&mut self) -> Result<(), Error> {
        // Relaxed: see `Shared::stopping`.
        self.shared.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(err))) => Err(err),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// The key expression under which a bridge keeps its own traffic for the
/// data key `key`: `@` chunks match no wildcard, so a subscriber to
/// `key/**` sees none of it.
fn control_key(key: &str, what: &str) -> String {
    format!("{key}/@shmchan/{what}")
}

/// A number no other bridge of this run is likely to pick: the exporter's
/// epoch, the importer's identity.
fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}
