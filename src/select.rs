//! Waiting on several channels at once: [`Select`], crossbeam-channel's
//! readiness API, over receivers and senders of every flavor.

use crate::endpoint::rule::OpWatch;
use crate::endpoint::{Flavor, Receiver, Sender};
use crate::wait::{block_on_any, Wait, Watch};
use core::fmt;
use core::time::Duration;
use std::time::Instant;

/// Waits until one of several operations, on channels of any flavors, is
/// ready: a receive that would not wait, or a send that would not.
///
/// As in crossbeam-channel, an operation is added with [`recv`](Self::recv)
/// or [`send`](Self::send), which return its index; [`ready`](Self::ready)
/// blocks until one is ready and returns its index; the caller then does
/// the operation itself, with `try_recv` or `try_send` (another thread or
/// process may have taken the message or the room meanwhile, so that can
/// still find the channel empty or full: loop). An operation whose other
/// side is gone (disconnected, or its process dead) is ready, since it
/// would fail at once.
///
/// ```
/// use shmchan::{spsc, mpmc, Select};
/// # let (a, b) = (format!("doc-sel-a-{}", std::process::id()), format!("doc-sel-b-{}", std::process::id()));
/// let (tx1, rx1) = spsc::channel::<u64>(&a, 16)?;
/// let (tx2, rx2) = mpmc::channel::<u32>(&b, 16)?;
/// tx2.send(7).unwrap();
///
/// let mut sel = Select::new();
/// let first = sel.recv(&rx1);
/// let second = sel.recv(&rx2);
/// let index = sel.ready();
/// assert_eq!(index, second);
/// assert_eq!(rx2.try_recv(), Ok(7));
/// # drop((tx1, first));
/// # Ok::<(), shmchan::Error>(())
/// ```
///
/// # How it waits
///
/// It spins for the longest spin time among the endpoints, then sleeps on
/// every operation's doorbell at once, with one `futex_waitv` call (Linux
/// 5.16 or newer), after announcing itself on each as a blocked `recv` or
/// `send` would: publishers ring as they do for any sleeper, and nothing
/// changes on their fast path. On an older kernel, or past 128 distinct
/// doorbells, it sleeps on one of them for at most a millisecond at a time
/// and looks at the rest in between: bounded polling. A dead peer is
/// noticed within a second, as by a blocked call.
pub struct Select<'a> {
    /// The operations present, in the order they were added.
    ops: Vec<Box<dyn Watch + 'a>>,
    /// The index of each of `ops`, as `recv` or `send` returned it.
    indices: Vec<usize>,
    /// Operations added so far, removed ones included: the next index.
    added: usize,
    /// Where the next look starts, so that a ready operation cannot starve
    /// the ones after it.
    next: usize,
}

impl<'a> Select<'a> {
    /// An empty set of operations.
    pub fn new() -> Self {
        Self {
            ops: Vec::new(),
            indices: Vec::new(),
            added: 0,
            next: 0,
        }
    }

    /// Adds a receive on `rx` and returns its index.
    pub fn recv<F: Flavor>(&mut self, rx: &'a Receiver<F>) -> usize {
        self.add(Box::new(OpWatch(&rx.attached().endpoint)))
    }

    /// Adds a send on `tx` and returns its index. For [`bytes`](crate::bytes)
    /// and serde senders, ready means room for the smallest record: a
    /// longer message may still wait.
    pub fn send<F: Flavor>(&mut self, tx: &'a Sender<F>) -> usize {
        self.add(Box::new(OpWatch(&tx.attached().endpoint)))
    }

    fn add(&mut self, op: Box<dyn Watch + 'a>) -> usize {
        let index = self.added;
        self.ops.push(op);
        self.indices.push(index);
        self.added += 1;
        index
    }

    /// Removes the operation at `index`; the indices of the others stay.
    ///
    /// # Panics
    ///
    /// If there is no operation at `index` (never added, or removed).
    pub fn remove(&mut self, index: usize) {
        let Ok(at) = self.indices.binary_search(&index) else {
            panic!("no operation with index {index} in this Select");
        };
        self.ops.remove(at);
        self.indices.remove(at);
    }

    /// Blocks until an operation is ready, and returns its index.
    ///
    /// # Panics
    ///
    /// If there are no operations: it would wait forever.
    pub fn ready(&mut self) -> usize {
        assert!(
            !self.ops.is_empty(),
            "Select::ready with no operations would wait forever"
        );
        self.wait(None).expect("no deadline")
    }

    /// Returns the index of an operation that is ready now, without
    /// blocking.
    ///
    /// # Errors
    ///
    /// [`TryReadyError`] if none is.
    pub fn try_ready(&mut self) -> Result<usize, TryReadyError> {
        let now = Instant::now();
        self.wait(Some(now)).ok_or(TryReadyError)
    }

    /// Blocks until an operation is ready or `timeout` has passed, and
    /// returns its index.
    ///
    /// # Errors
    ///
    /// [`ReadyTimeoutError`] if none was ready in time.
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, ReadyTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.ready_deadline(deadline),
            // Too far to represent: no deadline.
            None => Ok(self.ready()),
        }
    }

    /// Blocks until an operation is ready or `deadline` has come, and
    /// returns its index.
    ///
    /// # Errors
    ///
    /// [`ReadyTimeoutError`] if none was ready in time.
    pub fn ready_deadline(&mut self, deadline: Instant) -> Result<usize, ReadyTimeoutError> {
        self.wait(Some(deadline)).ok_or(ReadyTimeoutError)
    }

    /// Waits over the operations present; returns the ready one's index.
    fn wait(&mut self, deadline: Option<Instant>) -> Option<usize> {
        if self.ops.is_empty() {
            if let Some(left) = deadline.and_then(|d| d.checked_duration_since(Instant::now())) {
                std::thread::sleep(left);
            }
            return None;
        }
        let spin = self
            .ops
            .iter()
            .map(|op| op.spin())
            .max()
            .unwrap_or_default();
        let start = self.next % self.ops.len();
        let found = block_on_any(&self.ops, start, Wait { spin, deadline })?;
        self.next = found + 1;
        Some(self.indices[found])
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("operations", &self.indices)
            .finish_non_exhaustive()
    }
}

/// No operation of a [`Select`] was ready ([`Select::try_ready`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TryReadyError;

/// No operation of a [`Select`] became ready before the timeout
/// ([`Select::ready_timeout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyTimeoutError;

impl fmt::Display for TryReadyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no operation is ready")
    }
}

impl fmt::Display for ReadyTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for an operation to become ready")
    }
}

impl std::error::Error for TryReadyError {}
impl std::error::Error for ReadyTimeoutError {}
