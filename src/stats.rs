//! [`Stats`]: counters kept in the segment, readable from any process.

/// A snapshot of a channel's counters, taken without locking: each number
/// was true at some moment during the call, not necessarily the same one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages sent since the channel was created.
    pub sent: u64,
    /// Messages received since the channel was created. For
    /// [`broadcast`](crate::broadcast), where each receiver reads every
    /// message: how many the slowest receiver attached now has read (with
    /// none attached, the furthest any receiver got).
    pub received: u64,
    /// Messages waiting now (for broadcast, for the slowest receiver).
    pub len: u64,
    /// Messages the channel holds.
    pub capacity: u64,
    /// The most messages found waiting at once (a lower bound of the true
    /// maximum: it is sampled when the receiver looks; for mpmc, when a
    /// sender looks, every few hundred sends and whenever it finds the
    /// channel full).
    pub high_water: u64,
    /// `try_send` calls refused because the channel was full.
    pub full: u64,
    /// The endpoints attached now.
    pub endpoints: Vec<EndpointInfo>,
}

/// One attached endpoint, as [`Stats`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointInfo {
    /// `"sender"` or `"receiver"`.
    pub role: &'static str,
    /// Its process.
    pub pid: u32,
    /// Whether that process is still running (a dead one has not been
    /// noticed and cleared yet).
    pub alive: bool,
}
