//! Typed channels between processes on one Linux host, over shared memory,
//! with the interface of [`std::sync::mpsc`].
//!
//! A channel lives in a POSIX shared-memory object that processes create or
//! open by name. Underneath is a lock-free ring; a message is copied into the
//! ring by the sender and out of it by the receiver, and nothing else
//! happens on the fast path: no syscall, no allocation, no lock. A receiver
//! with nothing to do spins briefly and then sleeps on a futex in the
//! segment; a sender wakes it only when it sleeps.
//!
//! ```
//! use shmchan::{spsc, ShmSafe};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, ShmSafe)]
//! #[repr(C)]
//! struct Tick {
//!     ts: u64,
//!     px: f64,
//!     qty: u32,
//!     side: u32,
//! }
//!
//! # let name = format!("doc-crate-{}", std::process::id());
//! // In one process (here, both ends in one for the example):
//! let rx = spsc::Receiver::<Tick>::create(&name, 1024)?;
//! // In another, by name:
//! let tx = spsc::Sender::<Tick>::open(&name)?;
//!
//! tx.send(Tick { ts: 1, px: 101.5, qty: 10, side: 0 }).unwrap();
//! drop(tx);
//! let ticks: Vec<Tick> = rx.iter().collect(); // ends: the sender is gone
//! assert_eq!(ticks, [Tick { ts: 1, px: 101.5, qty: 10, side: 0 }]);
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! # What can be sent
//!
//! Values of types that are [`ShmSafe`]: integers, floats, arrays of them,
//! and `#[repr(C)]` structs of them without padding that
//! `#[derive(ShmSafe)]`. The derive refuses, at compile time, anything whose
//! value means nothing in another process (references, pointers, `Box`,
//! `Vec`, `String`) or has invalid bit patterns (`bool`, `char`, enums), and
//! fingerprints the layout: opening a channel with a different type is
//! [`Error::Incompatible`], naming the first field that differs.
//!
//! The derive implements nothing of bytemuck's, so it goes beside
//! `#[derive(bytemuck::Pod, bytemuck::Zeroable)]` on one struct; a field of
//! another crate's `bytemuck::Pod` type is marked `#[shm(pod)]` (see
//! [`ShmSafe`](derive@ShmSafe)). Messages of any shape that derive serde's
//! `Serialize` and `Deserialize` (strings, vectors, enums) go through
//! `shmchan::serde`, behind the cargo feature `serde`.
//!
//! # Flavors
//!
//! | module | senders | receivers | order |
//! |---|---|---|---|
//! | [`spsc`] | one at a time | one at a time | FIFO |
//! | [`mpsc`] | up to the shard count (default 16), each with a ring of its own | one at a time | FIFO per sender |
//! | [`mpmc`] | any number of threads, in up to 64 processes (`Clone`) | likewise | FIFO (in the order sends claimed their cells) |
//! | [`bytes`] (variable-length `&[u8]` messages) | one at a time | one at a time | FIFO |
//! | `serde` (values of a serde type; feature `serde`) | one at a time | one at a time | FIFO |
//! | [`broadcast`] (publish-subscribe) | one at a time | up to 64, each getting every message | FIFO per receiver |
//!
//! To wait on several channels at once, [`Select`]; for async code, the
//! cargo feature `async` gives every receiver `recv_async`, `stream` and
//! `into_stream`, and every sender `send_async`, `sink` and `into_sink`
//! (`shmchan::endpoint::AsyncFlavor` says what each yields and takes).
//!
//! To see channels from outside, [`inspect`] reads segments without
//! attaching to them; the `shmchan` command-line tool (`cli/`) is built on
//! it. Tools that carry typed messages they cannot name (the Zenoh bridge,
//! `bridge/`) reach every typed flavor's channels as bytes through
//! [`untyped`].
//!
//! # Disconnection and dead peers
//!
//! As in `std::sync::mpsc`: [`recv`](endpoint::Receiver::recv) fails once the
//! channel is empty and the sender is gone, and
//! [`send`](endpoint::Sender::send) fails once the receiver is gone. "Gone"
//! includes a process that died without dropping its end (SIGKILL, a
//! crash): a blocked call notices within a second, everything the dead
//! process had published is still delivered, and its role can be opened
//! again.
//!
//! # Limits
//!
//! Linux only (3.15 or newer: an endpoint's liveness is a lock the kernel
//! drops with its process, which works across PID namespaces). A process
//! that can write the segment can
//! make the channel fail (it then reports `Corrupt` or disconnection), but
//! cannot make this process misbehave, with one exception no shared-memory
//! design can prevent: truncating the object makes later accesses fault.
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(loom, allow(dead_code, unused_imports))]

// Lets the derive's `::shmchan::` paths resolve inside this crate's own tests.
extern crate self as shmchan;

pub mod broadcast;
pub mod bytes;
pub mod endpoint;
mod error;
#[cfg(not(loom))]
pub mod inspect;
#[cfg(all(test, loom))]
mod loom_tests;
pub mod mpmc;
pub mod mpsc;
#[cfg(not(loom))]
mod options;
mod primitive;
mod ring;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
mod select;
#[cfg(all(feature = "serde", not(loom)))]
pub mod serde;
mod shm_safe;
pub mod spsc;
#[cfg(not(loom))]
mod stats;
#[cfg(not(loom))]
pub mod untyped;
mod wait;

pub use error::{
    Error, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
#[cfg(not(loom))]
pub use options::Options;
#[cfg(not(loom))]
pub use segment::unlink;
#[cfg(not(loom))]
pub use select::{ReadyTimeoutError, Select, TryReadyError};
pub use shm_safe::{bytes_of, from_bytes, ShmSafe};
pub use shmchan_derive::ShmSafe;
#[cfg(not(loom))]
pub use stats::{EndpointInfo, Stats};

/// Items used by the code that `#[derive(ShmSafe)]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::shm_safe::{assert_pod, pod_schema, ConstStr, SchemaHasher, TEXT_CAP};
    pub use bytemuck;
}
