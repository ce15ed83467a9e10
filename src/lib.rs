//! shmchan (crate docs are written with the flavors).
#![deny(unsafe_op_in_unsafe_fn)]

// Lets the derive's `::shmchan::` paths resolve inside this crate's own tests.
extern crate self as shmchan;

mod shm_safe;

pub use shm_safe::ShmSafe;
pub use shmchan_derive::ShmSafe;

/// Items used by the code that `#[derive(ShmSafe)]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::shm_safe::{ConstStr, SchemaHasher, TEXT_CAP};
    pub use bytemuck;
}
