//! A stream of variable-length byte messages between two processes.
//!
//! For data that is not one fixed-size type: serialized records, image
//! rows, audio blocks, log lines. One [`Sender`] and one [`Receiver`] share
//! a ring of `capacity` bytes; each message takes an 8-byte header plus its
//! length rounded up to 8, and messages arrive whole and in order.
//!
//! ```
//! # let name = format!("doc-bytes-{}", std::process::id());
//! let (tx, mut rx) = shmchan::bytes::channel(&name, 4096)?;
//! tx.send(b"hello").unwrap();
//! tx.send(b"").unwrap(); // an empty message is a message
//! assert_eq!(&*rx.recv().unwrap(), b"hello");
//! assert_eq!(rx.recv().unwrap().len(), 0);
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! Both sides can skip the copy. A sender [`claim`](Sender::claim)s room
//! and writes in place; a receiver reads in place through the guard that
//! [`recv`](Receiver::recv) returns, and the space is released when the
//! guard is dropped:
//!
//! ```
//! # let name = format!("doc-bytes-grant-{}", std::process::id());
//! # let (mut tx, mut rx) = shmchan::bytes::channel(&name, 4096)?;
//! let mut grant = tx.claim(64).unwrap();
//! let written = format_into(&mut grant);
//! grant.commit(written); // publishes only the bytes written
//!
//! let message = rx.recv().unwrap();
//! assert_eq!(&*message, b"line 1\n");
//! # fn format_into(buf: &mut [u8]) -> usize { buf[..7].copy_from_slice(b"line 1\n"); 7 }
//! # Ok::<(), shmchan::Error>(())
//! ```

pub use crate::error::{Error, RecvError, RecvTimeoutError, TryRecvError};

use crate::link::Link;
use crate::primitive::Ordering;
use crate::ring::bytes::{
    Consumer, PeekError, Producer, Record, Reservation, ReserveError, Ring, Word, MAX_CAPACITY,
    MIN_CAPACITY,
};
use crate::ring::{Corrupt, Indices};
use crate::segment::{Claim, ElemType, Flavor, Segment, Spec};
use crate::shm_safe::SchemaHasher;
use crate::stats::Stats;
use crate::wait::{block_on, Blocked, Doorbell, Wait};
use crate::Options;
use core::fmt;
use core::mem::size_of;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::time::Duration;
use crossbeam_utils::CachePadded;
use std::time::Instant;

/// An error returned from [`Sender::send`] and [`Sender::claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The receiver is gone.
    Disconnected,
    /// The message is longer than [`Sender::max_message_len`]: it could
    /// never fit.
    TooLarge,
}

/// An error returned from [`Sender::try_send`] and [`Sender::try_claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// There is not enough contiguous room now.
    Full,
    /// The receiver is gone.
    Disconnected,
    /// The message is longer than [`Sender::max_message_len`].
    TooLarge,
}

/// An error returned from [`Sender::send_timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendTimeoutError {
    /// There was not enough room before the timeout.
    Timeout,
    /// The receiver is gone.
    Disconnected,
    /// The message is longer than [`Sender::max_message_len`].
    TooLarge,
}

const TOO_LARGE: &str = "message too large for the channel (see max_message_len)";

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disconnected => "sending on a closed channel",
            Self::TooLarge => TOO_LARGE,
        })
    }
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "sending on a full channel",
            Self::Disconnected => "sending on a closed channel",
            Self::TooLarge => TOO_LARGE,
        })
    }
}

impl fmt::Display for SendTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out waiting on send operation",
            Self::Disconnected => "sending on a closed channel",
            Self::TooLarge => TOO_LARGE,
        })
    }
}

impl std::error::Error for SendError {}
impl std::error::Error for TrySendError {}
impl std::error::Error for SendTimeoutError {}

impl From<SendError> for TrySendError {
    fn from(err: SendError) -> Self {
        match err {
            SendError::Disconnected => Self::Disconnected,
            SendError::TooLarge => Self::TooLarge,
        }
    }
}

impl From<SendError> for SendTimeoutError {
    fn from(err: SendError) -> Self {
        match err {
            SendError::Disconnected => Self::Disconnected,
            SendError::TooLarge => Self::TooLarge,
        }
    }
}

/// The flavor's control block at the start of its ring.
#[repr(C)]
struct Control {
    indices: Indices,
    /// The receiver sleeps here when the ring is empty.
    not_empty: CachePadded<Doorbell>,
    /// The sender sleeps here when the ring lacks room.
    not_full: CachePadded<Doorbell>,
    /// Messages sent since creation; written by the sender only.
    sent: CachePadded<crate::primitive::AtomicU64>,
    /// Messages received since creation; written by the receiver only.
    received: CachePadded<crate::primitive::AtomicU64>,
}

static_assertions::const_assert_eq!(size_of::<Control>(), 768);

const RECEIVER: Claim = Claim {
    slots: 0..1,
    role: "receiver",
    ever_bit: 1,
};
const SENDER: Claim = Claim {
    slots: 1..2,
    role: "sender",
    ever_bit: 2,
};
const ROLES: [&str; 2] = ["receiver", "sender"];

fn spec() -> Spec {
    let elem = ElemType {
        size: 1,
        align: 8,
        schema: SchemaHasher::new().str("bytes").usize(1).finish(),
        name: "bytes",
        layout: "bytes",
    };
    Spec::new(Flavor::Bytes, elem, 2, size_of::<Control>())
}

/// The error of a wait without a deadline (so never `Timeout`).
fn untimed(err: SendTimeoutError) -> SendError {
    match err {
        SendTimeoutError::TooLarge => SendError::TooLarge,
        SendTimeoutError::Disconnected | SendTimeoutError::Timeout => SendError::Disconnected,
    }
}

/// The ring size to create with: a power of two from 64 bytes to 8 GiB.
fn ring_capacity(options: &Options) -> Result<u64, Error> {
    let capacity = options.ring_capacity()?.max(MIN_CAPACITY);
    if capacity > MAX_CAPACITY {
        return Err(Error::InvalidCapacity {
            requested: options.capacity,
            reason: "a byte ring holds at most 8 GiB (its messages' lengths are 32-bit)",
        });
    }
    Ok(capacity)
}

/// Creates a byte channel named `name` with a ring of `capacity` bytes
/// (rounded up to a power of two, at least 64), and returns both ends.
///
/// # Errors
///
/// As for [`Receiver::create`] and [`Sender::open`].
pub fn channel(name: &str, capacity: usize) -> Result<(Sender, Receiver), Error> {
    channel_with(name, &Options::new().capacity(capacity))
}

/// [`channel`] with [`Options`] (the capacity is in bytes).
///
/// # Errors
///
/// As for [`Receiver::create`] and [`Sender::open`].
pub fn channel_with(name: &str, options: &Options) -> Result<(Sender, Receiver), Error> {
    let rx = Receiver::create_with(name, options)?;
    let tx = Sender::open_with(name, options)?;
    Ok((tx, rx))
}

/// Maps the ring of `segment` and attaches the end made by `attach`.
fn attach<E>(
    segment: Segment,
    options: &Options,
    peer: &Claim,
    attach: unsafe fn(Ring) -> Result<E, Corrupt>,
) -> Result<(Link, E, NonNull<Control>), Error> {
    let (control, words) = segment.ring(0);
    let control = control.cast::<Control>();
    let capacity = segment.header_capacity();
    if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err(Error::Corrupt {
            name: segment.name().to_owned(),
            detail: format!("a byte ring of {capacity} bytes"),
        });
    }
    // SAFETY: the segment's validated layout holds a `Control` block at
    // `control` and `capacity` bytes, 128-aligned, after it; the capacity
    // is a validated power of two within the byte ring's bounds (checked
    // just above). The mapping outlives the ring because both end up in the same
    // endpoint. `Word` is `repr(transparent)` over `u64`.
    let ring = unsafe {
        let indices = NonNull::from(&(*control.as_ptr()).indices);
        Ring::new(indices, words.cast::<Word>(), capacity)
    };
    let name = segment.name().to_owned();
    // SAFETY: the endpoint table gave this process the only claim on the role.
    let end = unsafe { attach(ring) }.map_err(|_| Error::Corrupt {
        name,
        detail: "its ring positions contradict each other".into(),
    })?;
    Ok((Link::new(segment, options, peer)?, end, control))
}

/// The sending end of a byte channel.
pub struct Sender {
    producer: Producer,
    control: NonNull<Control>,
    link: Link,
}

/// The receiving end of a byte channel.
pub struct Receiver {
    consumer: Consumer,
    control: NonNull<Control>,
    link: Link,
}

// SAFETY: as for `spsc::Sender`: the process-local state moves with the
// endpoint, the shared memory is reached through atomics and the ring's
// protocol. Not `Sync`: the ring has one producer and one consumer.
unsafe impl Send for Sender {}
// SAFETY: as for `Sender`.
unsafe impl Send for Receiver {}

impl Sender {
    /// Creates a byte channel named `name` with a ring of `capacity` bytes,
    /// with only this end attached.
    ///
    /// # Errors
    ///
    /// As for [`spsc::Sender::create`](crate::spsc::Sender::create).
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, &Options::new().capacity(capacity))
    }

    /// [`create`](Self::create) with [`Options`] (the capacity is in bytes).
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create).
    pub fn create_with(name: &str, options: &Options) -> Result<Self, Error> {
        let capacity = ring_capacity(options)?;
        let segment = Link::create_segment(name, &spec(), capacity, options, &SENDER)?;
        Self::from_segment(segment, options)
    }

    /// Attaches to the existing byte channel `name` as its sender.
    ///
    /// # Errors
    ///
    /// As for [`spsc::Sender::open`](crate::spsc::Sender::open).
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// [`open`](Self::open) with [`Options`] (only the spin time applies).
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    pub fn open_with(name: &str, options: &Options) -> Result<Self, Error> {
        Self::from_segment(Segment::open(name, &spec(), &SENDER)?, options)
    }

    fn from_segment(segment: Segment, options: &Options) -> Result<Self, Error> {
        let (link, producer, control) = attach(segment, options, &RECEIVER, Producer::attach)?;
        let sender = Self {
            producer,
            control,
            link,
        };
        // Only this end sleeps on `not_full`; see `spsc::Sender`.
        sender.control().not_full.forget_sleepers();
        Ok(sender)
    }

    fn control(&self) -> &Control {
        // SAFETY: see `attach`: valid while the mapping, owned by `self`, lives.
        unsafe { self.control.as_ref() }
    }

    /// The longest message this channel accepts: half its capacity, less
    /// the 8-byte record header.
    pub fn max_message_len(&self) -> usize {
        self.producer.ring().max_len() as usize
    }

    /// Sends a copy of `message` if there is room, without blocking.
    ///
    /// # Errors
    ///
    /// [`TrySendError::TooLarge`] if it is longer than
    /// [`max_message_len`](Self::max_message_len), [`TrySendError::Full`]
    /// if there is not enough contiguous room now,
    /// [`TrySendError::Disconnected`] if the receiver is gone.
    pub fn try_send(&self, message: &[u8]) -> Result<(), TrySendError> {
        let reservation = self.try_reserve(message.len())?;
        self.fill_and_publish(reservation, message);
        Ok(())
    }

    /// Sends a copy of `message`, waiting until there is room for it (as
    /// soon as enough contiguous bytes are free).
    ///
    /// # Errors
    ///
    /// [`SendError::TooLarge`] if it is longer than
    /// [`max_message_len`](Self::max_message_len),
    /// [`SendError::Disconnected`] if the receiver is gone.
    #[inline]
    pub fn send(&self, message: &[u8]) -> Result<(), SendError> {
        // The fast path, inline: room at once.
        if let Ok(reservation) = self.reserve(message.len()) {
            self.fill_and_publish(reservation, message);
            return Ok(());
        }
        let reservation = self.reserve_until(message.len(), None).map_err(untimed)?;
        self.fill_and_publish(reservation, message);
        Ok(())
    }

    /// Sends a copy of `message`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] if there was no room in time, and as
    /// for [`send`](Self::send).
    pub fn send_timeout(&self, message: &[u8], timeout: Duration) -> Result<(), SendTimeoutError> {
        let reservation = self.reserve_until(message.len(), Instant::now().checked_add(timeout))?;
        self.fill_and_publish(reservation, message);
        Ok(())
    }

    /// Claims room for a message of up to `len` bytes, without blocking,
    /// to be written in place and published with [`Grant::commit`].
    ///
    /// # Errors
    ///
    /// As for [`try_send`](Self::try_send).
    pub fn try_claim(&mut self, len: usize) -> Result<Grant<'_>, TrySendError> {
        let reservation = self.try_reserve(len)?;
        Ok(Grant {
            sender: self,
            reservation,
        })
    }

    /// Claims room for a message of up to `len` bytes, waiting until there
    /// is some, to be written in place and published with
    /// [`Grant::commit`]. A grant dropped without a commit sends nothing.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn claim(&mut self, len: usize) -> Result<Grant<'_>, SendError> {
        let reservation = self.reserve_until(len, None).map_err(untimed)?;
        Ok(Grant {
            sender: self,
            reservation,
        })
    }

    fn try_reserve(&self, len: usize) -> Result<Reservation, TrySendError> {
        match self.reserve(len) {
            Err(TrySendError::Full) => {
                self.producer.count_refusal();
                if self.link.peer_gone_or_dead() {
                    Err(TrySendError::Disconnected)
                } else {
                    Err(TrySendError::Full)
                }
            }
            result => result,
        }
    }

    #[inline]
    fn reserve(&self, len: usize) -> Result<Reservation, TrySendError> {
        if len > self.max_message_len() {
            return Err(TrySendError::TooLarge);
        }
        if self.link.peer_gone_now_and_then(&self.control().not_empty) {
            return Err(TrySendError::Disconnected);
        }
        match self.producer.reserve(len) {
            Ok(reservation) => Ok(reservation),
            Err(ReserveError::Full) => Err(TrySendError::Full),
            Err(ReserveError::TooLarge) => Err(TrySendError::TooLarge),
            Err(ReserveError::Corrupt) => {
                self.link.poison();
                Err(TrySendError::Disconnected)
            }
        }
    }

    /// Waits for room. Every release by the receiver wakes a waiting
    /// sender, which then looks for `len` contiguous bytes again: it is
    /// woken as soon as they are free, not only when the ring empties.
    #[inline(never)]
    fn reserve_until(
        &self,
        len: usize,
        deadline: Option<Instant>,
    ) -> Result<Reservation, SendTimeoutError> {
        let wait = Wait {
            spin: self.link.spin,
            deadline,
        };
        let poll = |_| match self.reserve(len) {
            Err(TrySendError::Full) => None,
            done => Some(done),
        };
        let dead = || {
            self.link
                .peer_gone_or_dead()
                .then_some(Err(TrySendError::Disconnected))
        };
        match block_on(
            &self.control().not_full,
            self.link.barrier,
            wait,
            poll,
            dead,
        ) {
            Blocked::Done(Ok(reservation)) => Ok(reservation),
            Blocked::Done(Err(TrySendError::TooLarge)) => Err(SendTimeoutError::TooLarge),
            Blocked::Done(Err(_)) => Err(SendTimeoutError::Disconnected),
            Blocked::TimedOut => Err(SendTimeoutError::Timeout),
        }
    }

    /// The payload bytes of `reservation`.
    fn payload(&self, reservation: &Reservation) -> *mut u8 {
        self.producer.ring().byte_ptr(reservation.payload())
    }

    fn fill_and_publish(&self, reservation: Reservation, message: &[u8]) {
        debug_assert!(message.len() <= reservation.len());
        // SAFETY: the reservation's payload lies inside the ring (the ring
        // checked that the record does not cross its end) and is ours until
        // published; `message.len()` is the reserved length.
        unsafe {
            core::ptr::copy_nonoverlapping(
                message.as_ptr(),
                self.payload(&reservation),
                message.len(),
            )
        };
        self.publish(reservation, message.len());
    }

    fn publish(&self, reservation: Reservation, len: usize) {
        self.producer.commit(reservation, len);
        // Single writer: a load and a store, no read-modify-write.
        let sent = &self.control().sent;
        sent.store(
            sent.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        self.control().not_empty.notify(self.link.barrier);
    }
}

/// Room claimed in the ring for one message, written in place.
///
/// It dereferences to the claimed bytes (their contents are whatever the
/// ring held before: write before you commit). [`commit`](Self::commit)
/// publishes a prefix of them; dropping the grant publishes nothing.
pub struct Grant<'a> {
    sender: &'a mut Sender,
    reservation: Reservation,
}

impl Grant<'_> {
    /// Publishes the first `len` bytes as one message (all of them if `len`
    /// is larger than the grant).
    pub fn commit(self, len: usize) {
        let len = len.min(self.reservation.len());
        self.sender.publish(self.reservation, len);
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the claimed bytes lie inside the ring and belong to this
        // grant until it commits: the receiver does not read them before
        // `tail` moves past them, and `&mut Sender` keeps other claims away.
        unsafe {
            core::slice::from_raw_parts(
                self.sender.payload(&self.reservation),
                self.reservation.len(),
            )
        }
    }
}

impl DerefMut for Grant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and `&mut self` makes this the only view.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.sender.payload(&self.reservation),
                self.reservation.len(),
            )
        }
    }
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("len", &self.reservation.len())
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Creates a byte channel named `name` with a ring of `capacity` bytes,
    /// with only this end attached.
    ///
    /// # Errors
    ///
    /// As for [`spsc::Sender::create`](crate::spsc::Sender::create).
    pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
        Self::create_with(name, &Options::new().capacity(capacity))
    }

    /// [`create`](Self::create) with [`Options`] (the capacity is in bytes).
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create).
    pub fn create_with(name: &str, options: &Options) -> Result<Self, Error> {
        let capacity = ring_capacity(options)?;
        let segment = Link::create_segment(name, &spec(), capacity, options, &RECEIVER)?;
        Self::from_segment(segment, options)
    }

    /// Attaches to the existing byte channel `name` as its receiver.
    ///
    /// # Errors
    ///
    /// As for [`spsc::Receiver::open`](crate::spsc::Receiver::open).
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &Options::new())
    }

    /// [`open`](Self::open) with [`Options`] (only the spin time applies).
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    pub fn open_with(name: &str, options: &Options) -> Result<Self, Error> {
        Self::from_segment(Segment::open(name, &spec(), &RECEIVER)?, options)
    }

    fn from_segment(segment: Segment, options: &Options) -> Result<Self, Error> {
        let (link, consumer, control) = attach(segment, options, &SENDER, Consumer::attach)?;
        let receiver = Self {
            consumer,
            control,
            link,
        };
        receiver.control().not_empty.forget_sleepers();
        Ok(receiver)
    }

    fn control(&self) -> &Control {
        // SAFETY: see `attach`: valid while the mapping, owned by `self`, lives.
        unsafe { self.control.as_ref() }
    }

    /// Receives the next message if one is waiting, without blocking. The
    /// guard reads it in place; its space is released when the guard drops.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is waiting,
    /// [`TryRecvError::Disconnected`] if none is waiting and the sender is
    /// gone, or the ring was found corrupt.
    pub fn try_recv(&mut self) -> Result<RecvGuard<'_>, TryRecvError> {
        let record = self.try_peek()?;
        Ok(RecvGuard {
            receiver: self,
            record,
        })
    }

    /// Receives the next message, waiting until one arrives.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is empty and the sender that attached
    /// is gone (detached, or its process dead).
    #[inline]
    pub fn recv(&mut self) -> Result<RecvGuard<'_>, RecvError> {
        // The fast path, inline: a message is waiting.
        let record = match self.consumer.peek() {
            Ok(record) if !self.link.is_poisoned() => record,
            _ => self.peek_until(None).map_err(|_| RecvError)?,
        };
        Ok(RecvGuard {
            receiver: self,
            record,
        })
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if nothing arrived in time,
    /// [`RecvTimeoutError::Disconnected`] as for [`recv`](Self::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<RecvGuard<'_>, RecvTimeoutError> {
        let record = self.peek_until(Instant::now().checked_add(timeout))?;
        Ok(RecvGuard {
            receiver: self,
            record,
        })
    }

    /// Receives the next message into `buf`, replacing its contents, and
    /// returns its length; waits until one arrives.
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv).
    pub fn recv_into(&self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        let record = self.peek_until(None).map_err(|_| RecvError)?;
        buf.clear();
        // SAFETY: `record` was just peeked, and is released after the copy.
        buf.extend_from_slice(unsafe { self.payload(&record) });
        self.release(record);
        Ok(buf.len())
    }

    /// A blocking iterator of copies of the messages, ending when the
    /// channel is empty and the sender is gone.
    pub fn iter(&self) -> Iter<'_> {
        Iter { rx: self }
    }

    /// A non-blocking iterator of copies of the messages waiting now.
    pub fn try_iter(&self) -> TryIter<'_> {
        TryIter { rx: self }
    }

    /// The next record, or why there is none; on an empty ring, probes
    /// (rate-limited) whether the sender died.
    fn try_peek(&self) -> Result<Record, TryRecvError> {
        match self.peek() {
            Err(TryRecvError::Empty) if self.link.peer_gone_or_dead() => {
                self.peek_after_disconnect()
            }
            result => result,
        }
    }

    /// The next record, and the cheap disconnection check.
    #[inline]
    fn peek(&self) -> Result<Record, TryRecvError> {
        if self.link.is_poisoned() {
            return Err(TryRecvError::Disconnected);
        }
        match self.consumer.peek() {
            Ok(record) => Ok(record),
            Err(PeekError::Empty) if self.link.peer_gone() => self.peek_after_disconnect(),
            Err(PeekError::Empty) => Err(TryRecvError::Empty),
            Err(PeekError::Corrupt) => self.poisoned(),
        }
    }

    /// The sender is gone: what it published before going is still
    /// delivered (see `spsc::Receiver::pop_after_disconnect`).
    #[cold]
    fn peek_after_disconnect(&self) -> Result<Record, TryRecvError> {
        match self.consumer.peek() {
            Ok(record) => Ok(record),
            Err(PeekError::Empty) => Err(TryRecvError::Disconnected),
            Err(PeekError::Corrupt) => self.poisoned(),
        }
    }

    #[cold]
    fn poisoned(&self) -> Result<Record, TryRecvError> {
        self.link.poison();
        Err(TryRecvError::Disconnected)
    }

    #[inline(never)]
    fn peek_until(&self, deadline: Option<Instant>) -> Result<Record, RecvTimeoutError> {
        self.link
            .recv_until(&self.control().not_empty, deadline, || self.peek())
    }

    /// The payload of `record`, in place.
    ///
    /// # Safety
    ///
    /// `record` must come from this receiver's `peek` and not have been
    /// released, and the slice must not be used after it is: the sender may
    /// reuse the bytes from then on.
    unsafe fn payload(&self, record: &Record) -> &[u8] {
        let start = self.consumer.ring().byte_ptr(record.payload());
        // SAFETY: `peek` checked that the record lies inside the ring and
        // within the published bytes, and the caller promises it is not yet
        // released, so a well-behaved sender leaves these bytes alone.
        unsafe { core::slice::from_raw_parts(start, record.len()) }
    }

    fn release(&self, record: Record) {
        self.consumer.release(record);
        let received = &self.control().received;
        received.store(
            received.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        self.control().not_full.notify(self.link.barrier);
    }
}

/// A received message, read in place in the ring; its space is released
/// when the guard is dropped.
///
/// A guard that is never dropped (forgotten, or its process killed) never
/// releases its message: the next `recv`, or the next receiver to attach,
/// gets the same message again. Delivery across a receiver's crash is at
/// least once. The bytes are as trustworthy as the sending process: a
/// hostile one can change them while they are read.
pub struct RecvGuard<'a> {
    receiver: &'a mut Receiver,
    record: Record,
}

impl Deref for RecvGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the guard releases its record only when dropped, and the
        // slice borrows the guard.
        unsafe { self.receiver.payload(&self.record) }
    }
}

impl Drop for RecvGuard<'_> {
    fn drop(&mut self) {
        self.receiver.release(self.record);
    }
}

impl fmt::Debug for RecvGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvGuard")
            .field("len", &self.record.len())
            .finish_non_exhaustive()
    }
}

/// Queries both ends answer alike.
macro_rules! common_queries {
    ($end:ident, $ring:ident, $own_bell:ident) => {
        impl $end {
            /// Bytes in the ring (the requested capacity, rounded up to a
            /// power of two of at least 64).
            pub fn capacity(&self) -> usize {
                self.$ring.ring().capacity() as usize
            }

            /// Messages waiting now (a hint: the other end may change it at
            /// any moment). Counted from the message counters, and never more
            /// than the queued bytes could hold (8 bytes a message at least),
            /// whatever the counters say.
            pub fn len(&self) -> usize {
                let control = self.control();
                let sent = control.sent.load(Ordering::Relaxed);
                let counted = sent.saturating_sub(control.received.load(Ordering::Relaxed));
                let queued_bytes = self.$ring.ring().len().unwrap_or(0);
                counted.min(queued_bytes / 8) as usize
            }

            /// Whether no message is waiting now (a hint).
            pub fn is_empty(&self) -> bool {
                self.$ring.ring().len().map_or(true, |bytes| bytes == 0)
            }

            /// The channel's name, as given when creating or opening it.
            pub fn name(&self) -> &str {
                self.link.segment.name()
            }

            /// The channel's counters. `sent`, `received` and `len` count
            /// messages; `capacity` and `high_water` count bytes.
            pub fn stats(&self) -> Stats {
                let control = self.control();
                let snapshot = control.indices.snapshot();
                Stats {
                    sent: control.sent.load(Ordering::Relaxed),
                    received: control.received.load(Ordering::Relaxed),
                    len: self.len() as u64,
                    capacity: self.capacity() as u64,
                    high_water: snapshot.high_water,
                    full: snapshot.refusals,
                    endpoints: self
                        .link
                        .endpoints(|i| ROLES.get(i).copied().unwrap_or("endpoint")),
                }
            }
        }

        impl fmt::Debug for $end {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("name", &self.name())
                    .field("capacity", &self.capacity())
                    .finish_non_exhaustive()
            }
        }

        impl Drop for $end {
            fn drop(&mut self) {
                self.link.segment.detach();
                // Say so on the doorbell this end sleeps on, which the peer
                // reads before each publish (see `peer_gone_now_and_then`);
                // wake the peer, asleep on either doorbell, to see us gone.
                let control = self.control();
                control.$own_bell.mark_left();
                control.not_empty.ring();
                control.not_full.ring();
            }
        }
    };
}

common_queries!(Sender, producer, not_full);
common_queries!(Receiver, consumer, not_empty);

/// A blocking iterator of message copies; see [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    rx: &'a Receiver,
}

/// A non-blocking iterator of message copies; see [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a> {
    rx: &'a Receiver,
}

/// An owning blocking iterator of message copies.
#[derive(Debug)]
pub struct IntoIter {
    rx: Receiver,
}

impl Iterator for Iter<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        self.rx.recv_into(&mut buf).ok()?;
        Some(buf)
    }
}

impl Iterator for TryIter<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        let record = self.rx.try_peek().ok()?;
        // SAFETY: `record` was just peeked, and is released after the copy.
        let message = unsafe { self.rx.payload(&record) }.to_vec();
        self.rx.release(record);
        Some(message)
    }
}

impl Iterator for IntoIter {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        self.rx.iter().next()
    }
}

impl<'a> IntoIterator for &'a Receiver {
    type Item = Vec<u8>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Receiver {
    type Item = Vec<u8>;
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        IntoIter { rx: self }
    }
}
