//! The ring algorithms, over raw memory, knowing nothing of files or names.
//!
//! A ring is handed pointers to its control words and its slots; it never
//! allocates or maps anything. The flavors lay a ring over a shared mapping;
//! the tests lay the same code over heap memory, under loom too.

// Under loom only the algorithms are built, not the flavors that use all of them.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod spsc;

/// A ring's control words or positions contradict each other: a peer wrote
/// garbage into the segment. The endpoint stops using the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Corrupt;
