//! shmchan (crate docs are written with the flavors).
#![deny(unsafe_op_in_unsafe_fn)]

// Lets the derive's `::shmchan::` paths resolve inside this crate's own tests.
extern crate self as shmchan;

mod error;
#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(not(loom))]
mod link;
#[cfg(not(loom))]
mod options;
mod primitive;
mod ring;
#[cfg(not(loom))]
mod segment;
mod shm_safe;
#[cfg(not(loom))]
pub mod spsc;
#[cfg(not(loom))]
mod stats;
mod wait;

pub use error::{Error, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
#[cfg(not(loom))]
pub use segment::unlink;
#[cfg(not(loom))]
pub use options::Options;
pub use shm_safe::ShmSafe;
#[cfg(not(loom))]
pub use stats::{EndpointInfo, Stats};
pub use shmchan_derive::ShmSafe;

/// Items used by the code that `#[derive(ShmSafe)]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::shm_safe::{ConstStr, SchemaHasher, TEXT_CAP};
    pub use bytemuck;
}
