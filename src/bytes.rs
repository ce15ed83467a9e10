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

use crate::endpoint::rule::{End, Miss};
use crate::primitive::{AtomicU64, Ordering};
use crate::ring::bytes::{Consumer, PeekError, Producer, Record, Reservation, ReserveError, Ring};
use crate::ring::Indices;
use crate::wait::{Barrier, Doorbell};
#[cfg(feature = "serde")]
use core::cell::Cell;
use core::fmt;
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;

#[cfg(not(loom))]
pub use self::api::*;

/// The byte-stream flavor: what [`Sender`] and [`Receiver`] are made of.
pub struct Bytes(());

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
    sent: CachePadded<AtomicU64>,
    /// Messages received since creation; written by the receiver only.
    received: CachePadded<AtomicU64>,
}

#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::size_of::<Control>(), 768);

/// Sends between two liveness probes of a sender whose ring never fills.
const PROBE_EVERY: u64 = 256;

/// The sending end of the byte ring.
pub struct BytesTx {
    producer: Producer,
    control: NonNull<Control>,
    barrier: Barrier,
    slot: usize,
    /// For a serde channel: the room to claim for the next encoding (twice
    /// the last one's size, within bounds), so that most encodings fit the
    /// first claim; 0 before the first.
    #[cfg(feature = "serde")]
    claim_hint: Cell<usize>,
}

/// The receiving end of the byte ring.
pub struct BytesRx {
    consumer: Consumer,
    control: NonNull<Control>,
    barrier: Barrier,
    slot: usize,
}

// SAFETY: as for `spsc::RingTx`: the process-local state moves with the
// end, the shared memory is reached through atomics and the ring's protocol,
// and bytes are `Send`. Not `Sync`: the ring has one producer and one
// consumer, whose cursors are `Cell`s.
unsafe impl Send for BytesTx {}
// SAFETY: as for `BytesTx`.
unsafe impl Send for BytesRx {}

/// Messages waiting: the message counters' difference, never more than the
/// queued bytes could hold (8 bytes a message at least), whatever the
/// counters say.
fn messages(control: &Control, ring: &Ring) -> u64 {
    // Relaxed: counters for people, each with a single writer.
    let sent = control.sent.load(Ordering::Relaxed);
    let counted = sent.saturating_sub(control.received.load(Ordering::Relaxed));
    let queued_bytes = ring.len().unwrap_or(0);
    counted.min(queued_bytes / 8)
}

/// What both ends of the byte ring answer alike.
trait Ends {
    fn control(&self) -> &Control;
    fn ring(&self) -> &Ring;

    fn messages(&self) -> u64 {
        messages(self.control(), self.ring())
    }

    /// No room even for an empty message (8 bytes).
    fn no_room(&self) -> bool {
        let queued = self.ring().len().unwrap_or(0);
        self.ring().capacity().saturating_sub(queued) < 8
    }

    /// Forgets the sleepers a dead holder of the sender's slot (or of the
    /// receiver's) left on the doorbell it slept on.
    fn forget_sleepers_of(&self, sender: bool) {
        let control = self.control();
        if sender {
            control.not_full.forget_sleepers();
        } else {
            control.not_empty.forget_sleepers();
        }
    }
}

impl Ends for BytesTx {
    fn control(&self) -> &Control {
        // SAFETY: it lies in the mapping (or heap) that outlives the end.
        unsafe { self.control.as_ref() }
    }
    fn ring(&self) -> &Ring {
        self.producer.ring()
    }
}

impl Ends for BytesRx {
    fn control(&self) -> &Control {
        // SAFETY: as for `BytesTx`.
        unsafe { self.control.as_ref() }
    }
    fn ring(&self) -> &Ring {
        self.consumer.ring()
    }
}

impl End for BytesTx {
    type Hint = ();

    fn bell(&self) -> &Doorbell {
        &self.control().not_full
    }

    fn take_over(&self, slot: usize, _died: bool) {
        self.forget_sleepers_of(slot == self.slot);
    }

    fn wake_all(&self) {
        self.control().not_empty.ring();
        self.control().not_full.ring();
    }

    /// Every [`PROBE_EVERY`]th message sent, by the count of messages sent:
    /// a word this end writes anyway, so the tick costs no store of its own.
    /// (Whatever a scribble makes of the count, it still comes round.)
    #[inline]
    fn probe_tick(&self) -> bool {
        // Relaxed: our own counter, read back.
        self.control().sent.load(Ordering::Relaxed) % PROBE_EVERY == 0
    }

    fn count_refusal(&self) {
        self.producer.count_refusal();
    }

    fn capacity(&self) -> usize {
        self.ring().capacity() as usize
    }

    fn len(&self) -> usize {
        self.messages() as usize
    }

    fn is_full(&self) -> bool {
        self.no_room()
    }

    /// Room for an empty message at least: a longer one may still wait.
    fn ready(&self) -> bool {
        // A corrupt ring is ready: the send fails at once.
        let ring = self.ring();
        ring.len()
            .map_or(true, |queued| ring.capacity().saturating_sub(queued) >= 8)
    }
}

impl End for BytesRx {
    type Hint = ();

    fn bell(&self) -> &Doorbell {
        &self.control().not_empty
    }

    fn take_over(&self, slot: usize, _died: bool) {
        self.forget_sleepers_of(slot != self.slot);
    }

    fn wake_all(&self) {
        self.control().not_empty.ring();
        self.control().not_full.ring();
    }

    fn capacity(&self) -> usize {
        self.ring().capacity() as usize
    }

    fn len(&self) -> usize {
        self.messages() as usize
    }

    fn is_full(&self) -> bool {
        self.no_room()
    }

    fn ready(&self) -> bool {
        // A corrupt ring is ready: the receive fails at once.
        self.ring().len().map_or(true, |queued| queued > 0)
    }
}

impl BytesTx {
    /// The longest payload a record may carry.
    pub(crate) fn max_len(&self) -> usize {
        self.producer.ring().max_len() as usize
    }

    /// The room to claim for the next encoding (see `claim_hint`).
    #[cfg(feature = "serde")]
    pub(crate) fn claim_hint(&self) -> &Cell<usize> {
        &self.claim_hint
    }

    /// One attempt to find contiguous room for `len` payload bytes.
    #[inline]
    pub(crate) fn reserve(&self, len: usize) -> Result<Reservation, Miss<()>> {
        match self.producer.reserve(len) {
            Ok(reservation) => Ok(reservation),
            Err(ReserveError::Full) => Err(Miss::Edge(())),
            // The caller checked the length against `max_len`.
            Err(ReserveError::TooLarge | ReserveError::Corrupt) => Err(Miss::Corrupt),
        }
    }

    /// The payload bytes of `reservation`. (Not under loom, whose cells
    /// hand out no raw pointers: the models write a payload word instead.)
    #[cfg(not(loom))]
    pub(crate) fn payload(&self, reservation: &Reservation) -> *mut u8 {
        self.producer.ring().byte_ptr(reservation.payload())
    }

    #[cfg(not(loom))]
    fn fill_and_publish(&self, reservation: Reservation, message: &[u8]) {
        debug_assert!(message.len() <= reservation.len());
        // SAFETY: the reservation's payload lies inside the ring (the ring
        // checked that the record does not cross its end) and is ours until
        // published; `message.len()` is at most the reserved length.
        unsafe {
            core::ptr::copy_nonoverlapping(
                message.as_ptr(),
                self.payload(&reservation),
                message.len(),
            )
        };
        self.publish(reservation, message.len());
    }

    pub(crate) fn publish(&self, reservation: Reservation, len: usize) {
        self.producer.commit(reservation, len);
        // Single writer: a load and a store, no read-modify-write. Relaxed:
        // a counter for people.
        let sent = &self.control().sent;
        sent.store(
            sent.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        self.control().not_empty.notify(self.barrier);
    }
}

impl BytesRx {
    /// One attempt to find the next record.
    #[inline]
    pub(crate) fn peek(&self) -> Result<Record, Miss<()>> {
        match self.consumer.peek() {
            Ok(record) => Ok(record),
            Err(PeekError::Empty) => Err(Miss::Edge(())),
            Err(PeekError::Corrupt) => Err(Miss::Corrupt),
        }
    }

    /// The payload of `record`, in place.
    ///
    /// # Safety
    ///
    /// `record` must come from this end's `peek` and not have been
    /// released, and the slice must not be used after it is: the sender may
    /// reuse the bytes from then on.
    #[cfg(not(loom))]
    pub(crate) unsafe fn payload(&self, record: &Record) -> &[u8] {
        let start = self.consumer.ring().byte_ptr(record.payload());
        // SAFETY: `peek` checked that the record lies inside the ring and
        // within the published bytes, and the caller promises it is not yet
        // released, so a well-behaved sender leaves these bytes alone.
        unsafe { core::slice::from_raw_parts(start, record.len()) }
    }

    pub(crate) fn release(&self, record: Record) {
        self.consumer.release(record);
        // Single writer, as for `sent`. Relaxed: a counter for people.
        let received = &self.control().received;
        received.store(
            received.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        self.control().not_full.notify(self.barrier);
    }
}

#[cfg(not(loom))]
mod api {
    use super::*;
    use crate::endpoint::roster::Side;
    use crate::endpoint::rule::Counts;
    use crate::endpoint::{self, Attached, Hold, Own};
    use crate::ring::bytes::{Word, MAX_CAPACITY, MIN_CAPACITY};
    use crate::segment::{ElemType, Flavor as Kind, Segment, Spec};
    use crate::shm_safe::SchemaHasher;
    use crate::Options;
    use core::ops::{Deref, DerefMut};
    use core::time::Duration;

    /// The sending end of a byte channel: one may be attached at a time.
    pub type Sender = endpoint::Sender<Bytes>;
    /// The receiving end of a byte channel: one may be attached at a time.
    pub type Receiver = endpoint::Receiver<Bytes>;

    /// The error of a wait without a deadline (so never `Timeout`).
    fn untimed(err: SendTimeoutError) -> SendError {
        match err {
            SendTimeoutError::TooLarge => SendError::TooLarge,
            SendTimeoutError::Disconnected | SendTimeoutError::Timeout => SendError::Disconnected,
        }
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
        endpoint::channel(name, options)
    }

    impl endpoint::Sealed for Bytes {}

    impl endpoint::Flavor for Bytes {
        type Tx = BytesTx;
        type Rx = BytesRx;
        type TxHold = Own<Attached<BytesTx>>;
        type RxHold = Own<Attached<BytesRx>>;
        const MODULE: &'static str = "shmchan::bytes";

        fn type_name() -> &'static str {
            "bytes"
        }

        /// A ring of `capacity` bytes, a power of two from 64 bytes to 8 GiB.
        fn spec(options: &Options, create: bool) -> Result<(Spec, u64), Error> {
            let capacity = if create { ring_capacity(options)? } else { 0 };
            Ok((shape(), capacity))
        }

        fn attach_tx(segment: &Segment, barrier: Barrier) -> Result<BytesTx, Error> {
            let (ring, control) = parts(segment)?;
            // SAFETY: we hold the sender's slot: no other producer exists.
            let producer = unsafe { Producer::attach(ring) }
                .map_err(|_| segment.corrupt("its ring positions contradict each other"))?;
            Ok(BytesTx {
                producer,
                control,
                barrier,
                slot: segment.slot(),
                #[cfg(feature = "serde")]
                claim_hint: Cell::new(0),
            })
        }

        fn counts(segment: &Segment) -> Counts {
            channel_counts(segment)
        }

        fn attach_rx(segment: &Segment, barrier: Barrier) -> Result<BytesRx, Error> {
            let (ring, control) = parts(segment)?;
            // SAFETY: we hold the receiver's slot: no other consumer exists.
            let consumer = unsafe { Consumer::attach(ring) }
                .map_err(|_| segment.corrupt("its ring positions contradict each other"))?;
            Ok(BytesRx {
                consumer,
                control,
                barrier,
                slot: segment.slot(),
            })
        }
    }

    /// A serde channel seen as a byte channel, whatever its message type:
    /// what [`Sender::open_serde`] and [`Receiver::open_serde`] attach as.
    pub(crate) struct Encoded(());

    impl endpoint::Sealed for Encoded {}

    impl endpoint::Flavor for Encoded {
        type Tx = BytesTx;
        type Rx = BytesRx;
        type TxHold = Own<Attached<BytesTx>>;
        type RxHold = Own<Attached<BytesRx>>;
        const MODULE: &'static str = "shmchan::bytes";

        fn type_name() -> &'static str {
            "encoded values"
        }

        /// Any serde segment: its ring is a byte ring, its schema is not
        /// read.
        fn spec(_: &Options, _: bool) -> Result<(Spec, u64), Error> {
            let elem = ElemType {
                size: 1,
                align: 8,
                schema: 0,
                name: "",
                layout: "",
            };
            let mut spec = ring_shape(Kind::Serde, elem);
            spec.any_schema = true;
            Ok((spec, 0))
        }

        fn attach_tx(segment: &Segment, barrier: Barrier) -> Result<BytesTx, Error> {
            Bytes::attach_tx(segment, barrier)
        }

        fn attach_rx(segment: &Segment, barrier: Barrier) -> Result<BytesRx, Error> {
            Bytes::attach_rx(segment, barrier)
        }

        fn counts(segment: &Segment) -> Counts {
            channel_counts(segment)
        }
    }

    /// The shape of a byte segment.
    pub(crate) fn shape() -> Spec {
        let elem = ElemType {
            size: 1,
            align: 8,
            schema: SchemaHasher::new().str("bytes").usize(1).finish(),
            name: "bytes",
            layout: "bytes",
        };
        ring_shape(Kind::Bytes, elem)
    }

    /// The shape of a segment holding one byte ring, of flavor `kind`
    /// (`Bytes`, or `Serde`, whose messages are encoded values), whose
    /// messages `elem` describes.
    pub(crate) fn ring_shape(kind: Kind, elem: ElemType) -> Spec {
        Spec::new(kind, elem, core::mem::size_of::<Control>())
    }

    /// The byte ring's size to create with: a power of two from 64 bytes to
    /// 8 GiB.
    pub(crate) fn ring_capacity(options: &Options) -> Result<u64, Error> {
        let capacity = options.ring_capacity()?.max(MIN_CAPACITY);
        if capacity > MAX_CAPACITY {
            return Err(Error::InvalidCapacity {
                requested: options.capacity,
                reason: "a byte ring holds at most 8 GiB (its messages' lengths are 32-bit)",
            });
        }
        Ok(capacity)
    }

    /// The counters of a byte segment: `sent`, `received` and `len` count
    /// messages; `capacity` and `high_water` count bytes.
    pub(crate) fn channel_counts(segment: &Segment) -> Counts {
        let Ok((ring, control)) = parts(segment) else {
            return Counts::default();
        };
        // SAFETY: `parts` found the control block in the mapping.
        let control = unsafe { control.as_ref() };
        let snapshot = control.indices.snapshot();
        Counts {
            // Relaxed: counters for people.
            sent: control.sent.load(Ordering::Relaxed),
            received: control.received.load(Ordering::Relaxed),
            len: messages(control, &ring),
            capacity: ring.capacity(),
            high_water: snapshot.high_water,
            full: snapshot.refusals,
        }
    }

    /// The byte ring of `segment` and its control block.
    fn parts(segment: &Segment) -> Result<(Ring, NonNull<Control>), Error> {
        let (control, words) = segment.ring(0);
        let control = control.cast::<Control>();
        let capacity = segment.header_capacity();
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(segment.corrupt(&format!("a byte ring of {capacity} bytes")));
        }
        // SAFETY: the segment's validated layout holds a `Control` block at
        // `control` and `capacity` bytes, 128-aligned, after it; the
        // capacity is a validated power of two within the byte ring's
        // bounds (checked just above). The mapping outlives the ring: both
        // end up in the same attachment. `Word` is `repr(transparent)` over
        // `u64`.
        let ring = unsafe {
            let indices = NonNull::from(&(*control.as_ptr()).indices);
            Ring::new(indices, words.cast::<Word>(), capacity)
        };
        Ok((ring, control))
    }

    impl Sender {
        fn tx(&self) -> &endpoint::rule::Endpoint<BytesTx> {
            &self.attached().endpoint
        }

        /// Attaches to the existing [`serde`](crate::serde) channel `name`
        /// as its sender, whatever its message type: each message sent must
        /// be one value's postcard encoding, as a serde sender writes it.
        /// For tools that carry encoded values without decoding them (the
        /// Zenoh bridge); the channel's type is in
        /// [`inspect::channel`](crate::inspect::channel).
        ///
        /// # Errors
        ///
        /// As for [`open`](Self::open); [`Error::Incompatible`] if `name` is
        /// not a serde channel.
        pub fn open_serde(name: &str) -> Result<Self, Error> {
            let attach = <Encoded as endpoint::Flavor>::attach_tx;
            Attached::open::<Encoded>(name, &Options::new(), Side::Sender, attach)
                .map(Self::from_attached)
        }

        /// The longest message this channel accepts: half its capacity, less
        /// the 8-byte record header.
        pub fn max_message_len(&self) -> usize {
            self.tx().end.max_len()
        }

        /// Sends a copy of `message` if there is room, without blocking.
        ///
        /// # Errors
        ///
        /// [`TrySendError::TooLarge`] if it is longer than
        /// [`max_message_len`](Self::max_message_len),
        /// [`TrySendError::Full`] if there is not enough contiguous room
        /// now, [`TrySendError::Disconnected`] if the receiver is gone.
        pub fn try_send(&self, message: &[u8]) -> Result<(), TrySendError> {
            let reservation = self.try_reserve(message.len())?;
            self.tx().end.fill_and_publish(reservation, message);
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
            let tx = self.tx();
            // The fast path, inline: the receiver there, room at once.
            if message.len() <= self.max_message_len() && !tx.receivers_gone() {
                if let Ok(reservation) = tx.end.reserve(message.len()) {
                    tx.end.fill_and_publish(reservation, message);
                    return Ok(());
                }
            }
            let reservation = self.reserve_until(message.len(), None).map_err(untimed)?;
            tx.end.fill_and_publish(reservation, message);
            Ok(())
        }

        /// Sends a copy of `message`, waiting at most `timeout` for room.
        ///
        /// # Errors
        ///
        /// [`SendTimeoutError::Timeout`] if there was no room in time, and
        /// as for [`send`](Self::send).
        pub fn send_timeout(
            &self,
            message: &[u8],
            timeout: Duration,
        ) -> Result<(), SendTimeoutError> {
            let reservation = self.reserve_until(message.len(), Some(timeout))?;
            self.tx().end.fill_and_publish(reservation, message);
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

        /// Claims room for a message of up to `len` bytes, waiting until
        /// there is some, to be written in place and published with
        /// [`Grant::commit`]. A grant dropped without a commit sends
        /// nothing.
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
            if len > self.max_message_len() {
                return Err(TrySendError::TooLarge);
            }
            let tx = self.tx();
            tx.try_put(|| tx.end.reserve(len)).map_err(|err| match err {
                crate::TrySendError::Full(()) => TrySendError::Full,
                crate::TrySendError::Disconnected(()) => TrySendError::Disconnected,
            })
        }

        /// Waits for room. Every release by the receiver wakes a waiting
        /// sender, which then looks for `len` contiguous bytes again: it is
        /// woken as soon as they are free, not only when the ring empties.
        #[inline(never)]
        fn reserve_until(
            &self,
            len: usize,
            timeout: Option<Duration>,
        ) -> Result<Reservation, SendTimeoutError> {
            if len > self.max_message_len() {
                return Err(SendTimeoutError::TooLarge);
            }
            let tx = self.tx();
            let deadline =
                timeout.and_then(|timeout| std::time::Instant::now().checked_add(timeout));
            tx.put_until(deadline, || tx.end.reserve(len))
                .map_err(|err| match err {
                    crate::SendTimeoutError::Timeout(()) => SendTimeoutError::Timeout,
                    crate::SendTimeoutError::Disconnected(()) => SendTimeoutError::Disconnected,
                })
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
        /// Publishes the first `len` bytes as one message (all of them if
        /// `len` is larger than the grant).
        pub fn commit(self, len: usize) {
            let len = len.min(self.reservation.len());
            self.sender.tx().end.publish(self.reservation, len);
        }
    }

    impl Deref for Grant<'_> {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            // SAFETY: the claimed bytes lie inside the ring and belong to
            // this grant until it commits: the receiver does not read them
            // before `tail` moves past them, and `&mut Sender` keeps other
            // claims away.
            unsafe {
                core::slice::from_raw_parts(
                    self.sender.tx().end.payload(&self.reservation),
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
                    self.sender.tx().end.payload(&self.reservation),
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
        fn rx(&self) -> &endpoint::rule::Endpoint<BytesRx> {
            &self.attached().endpoint
        }

        /// Attaches to the existing [`serde`](crate::serde) channel `name`
        /// as its receiver, whatever its message type: each message is one
        /// value's postcard encoding, handed over undecoded (see
        /// [`Sender::open_serde`]).
        ///
        /// # Errors
        ///
        /// As for [`open`](Self::open); [`Error::Incompatible`] if `name` is
        /// not a serde channel.
        pub fn open_serde(name: &str) -> Result<Self, Error> {
            let attach = <Encoded as endpoint::Flavor>::attach_rx;
            Attached::open::<Encoded>(name, &Options::new(), Side::Receiver, attach)
                .map(|attached| Self::from_hold(Own::hold(attached)))
        }

        /// Receives the next message if one is waiting, without blocking.
        /// The guard reads it in place; its space is released when the
        /// guard drops.
        ///
        /// # Errors
        ///
        /// [`TryRecvError::Empty`] if none is waiting,
        /// [`TryRecvError::Disconnected`] if none is waiting and the sender
        /// is gone, or the ring was found corrupt.
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
        /// [`RecvError`] once the channel is empty and the sender that
        /// attached is gone (detached, or its process dead).
        #[inline]
        pub fn recv(&mut self) -> Result<RecvGuard<'_>, RecvError> {
            let record = self.peek_until(None).map_err(|_| RecvError)?;
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
        pub fn recv_timeout(
            &mut self,
            timeout: Duration,
        ) -> Result<RecvGuard<'_>, RecvTimeoutError> {
            let record = self.peek_until(Some(timeout))?;
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
            Ok(self.copy_out(record, buf))
        }

        /// Receives the next message into `buf`, replacing its contents,
        /// and returns its length, if one is waiting; without blocking.
        /// Takes `&self`, so it works beside a [`Select`](crate::Select)
        /// that borrows this receiver.
        ///
        /// # Errors
        ///
        /// As for [`try_recv`](Self::try_recv).
        pub fn try_recv_into(&self, buf: &mut Vec<u8>) -> Result<usize, TryRecvError> {
            let record = self.try_peek()?;
            Ok(self.copy_out(record, buf))
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

        /// Copies `record` into `buf` (replacing its contents) and releases it.
        fn copy_out(&self, record: Record, buf: &mut Vec<u8>) -> usize {
            let end = &self.rx().end;
            buf.clear();
            // SAFETY: `record` was just peeked, and is released after the copy.
            buf.extend_from_slice(unsafe { end.payload(&record) });
            end.release(record);
            buf.len()
        }

        fn try_peek(&self) -> Result<Record, TryRecvError> {
            let rx = self.rx();
            rx.try_take(|| rx.end.peek())
        }

        /// The next record; the fast path (one ready) inline.
        #[inline]
        fn peek_until(&self, timeout: Option<Duration>) -> Result<Record, RecvTimeoutError> {
            let rx = self.rx();
            if rx.link.usable() {
                if let Ok(record) = rx.end.peek() {
                    return Ok(record);
                }
            }
            let deadline =
                timeout.and_then(|timeout| std::time::Instant::now().checked_add(timeout));
            rx.take_until(deadline, || rx.end.peek())
        }
    }

    /// A received message, read in place in the ring; its space is released
    /// when the guard is dropped.
    ///
    /// A guard that is never dropped (forgotten, or its process killed)
    /// never releases its message: the next `recv`, or the next receiver to
    /// attach, gets the same message again. Delivery across a receiver's
    /// crash is at least once. The bytes are as trustworthy as the sending
    /// process: a hostile one can change them while they are read.
    pub struct RecvGuard<'a> {
        receiver: &'a mut Receiver,
        record: Record,
    }

    impl Deref for RecvGuard<'_> {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            // SAFETY: the guard releases its record only when dropped, and
            // the slice borrows the guard.
            unsafe { self.receiver.rx().end.payload(&self.record) }
        }
    }

    impl Drop for RecvGuard<'_> {
        fn drop(&mut self) {
            self.receiver.rx().end.release(self.record);
        }
    }

    impl fmt::Debug for RecvGuard<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RecvGuard")
                .field("len", &self.record.len())
                .finish_non_exhaustive()
        }
    }

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
            let mut buf = Vec::new();
            self.rx.copy_out(record, &mut buf);
            Some(buf)
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
}

/// async for byte channels: messages are received as `Vec<u8>` copies and
/// sent from `Vec<u8>`s.
#[cfg(all(feature = "async", not(loom)))]
impl crate::endpoint::AsyncFlavor for Bytes {
    type Item = Vec<u8>;
    type RecvError = RecvError;
    type SendItem = Vec<u8>;
    type SendError = SendError;

    fn try_recv_item(rx: &Receiver) -> Option<Result<Vec<u8>, RecvError>> {
        let rx = &rx.attached().endpoint;
        match rx.try_take(|| rx.end.peek()) {
            Ok(record) => {
                // SAFETY: `record` was just peeked and is released below,
                // after the copy.
                let message = unsafe { rx.end.payload(&record) }.to_vec();
                rx.end.release(record);
                Some(Ok(message))
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(RecvError)),
        }
    }

    fn try_send_item(tx: &Sender, item: Vec<u8>) -> Result<(), crate::endpoint::Refused<Self>> {
        use crate::endpoint::Refused;
        match tx.try_send(&item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full) => Err(Refused::Full(item)),
            Err(TrySendError::Disconnected) => Err(Refused::Failed(SendError::Disconnected)),
            Err(TrySendError::TooLarge) => Err(Refused::Failed(SendError::TooLarge)),
        }
    }
}
