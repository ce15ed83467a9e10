//! Messages of any shape: channels of the `serde` types you already have
//! (`String`s, `Vec`s, enums, nested structs), encoded with postcard into a
//! byte ring. Behind the cargo feature `serde`.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! enum Event {
//!     Order { symbol: String, fills: Vec<(u32, f64)> },
//!     Cancel(u64),
//! }
//!
//! # let name = format!("doc-serde-{}", std::process::id());
//! let (tx, rx) = shmchan::serde::channel::<Event>(&name, 64 * 1024)?;
//! tx.send(&Event::Order { symbol: "ACME".into(), fills: vec![(10, 101.5)] }).unwrap();
//! tx.send(&Event::Cancel(7)).unwrap();
//! drop(tx);
//! let events: Vec<Event> = rx.iter().collect(); // ends: the sender is gone
//! assert_eq!(events[1], Event::Cancel(7));
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! One [`Sender`] and one [`Receiver`], in any processes, share a ring of
//! `capacity` bytes, as in [`bytes`](crate::bytes). A send encodes the
//! value straight into room claimed in the ring (no buffer in between) and
//! publishes it; a receive decodes it from the ring and releases the room.
//! The largest encoding accepted is
//! [`max_message_len`](Sender::max_message_len) bytes (half the ring, less
//! 8); a longer one is `TooLarge`, and nothing is sent.
//!
//! # Types
//!
//! The segment records the message type's name, without module paths
//! (`Order`, `Vec<Fill>`), or a schema name and version set with
//! [`Options::schema`]; opening with another is [`Error::Incompatible`],
//! naming both. The encoding itself carries no type information: two types
//! of the same name and different shapes are told apart only when a value
//! does not decode, which is an error that says so (`Decode`), never a
//! panic. Version a type whose shape changes with `Options::schema`.

pub use crate::error::Error;

use crate::bytes::{ring_capacity, ring_shape, BytesRx, BytesTx};
use crate::endpoint::rule::Endpoint;
use crate::endpoint::{self, Attached, Own};
use crate::ring::bytes::{Record, Reservation};
use crate::segment::{ElemType, Flavor as Kind, Segment, Spec};
use crate::shm_safe::SchemaHasher;
use crate::wait::Barrier;
use crate::Options;
use ::serde::de::DeserializeOwned;
use ::serde::Serialize;
use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The serde flavor carrying values of type `T`: what [`Sender`] and
/// [`Receiver`] are made of.
pub struct Serde<T>(PhantomData<fn() -> T>);

/// The sending end of a serde channel: one may be attached at a time.
pub type Sender<T> = endpoint::Sender<Serde<T>>;
/// The receiving end of a serde channel: one may be attached at a time.
pub type Receiver<T> = endpoint::Receiver<Serde<T>>;

/// Creates a serde channel named `name` with a ring of `capacity` bytes
/// (rounded up to a power of two, at least 64), and returns both ends.
///
/// # Errors
///
/// As for [`Receiver::create`] and [`Sender::open`].
pub fn channel<T: Serialize + DeserializeOwned + 'static>(
    name: &str,
    capacity: usize,
) -> Result<(Sender<T>, Receiver<T>), Error> {
    channel_with(name, &Options::new().capacity(capacity))
}

/// [`channel`] with [`Options`] (the capacity is in bytes; see also
/// [`Options::schema`]).
///
/// # Errors
///
/// As for [`Receiver::create`] and [`Sender::open`].
pub fn channel_with<T: Serialize + DeserializeOwned + 'static>(
    name: &str,
    options: &Options,
) -> Result<(Sender<T>, Receiver<T>), Error> {
    endpoint::channel(name, options)
}

impl<T> endpoint::Sealed for Serde<T> {}

impl<T: 'static> endpoint::Flavor for Serde<T> {
    type Tx = BytesTx;
    type Rx = BytesRx;
    type TxHold = Own<Attached<BytesTx>>;
    type RxHold = Own<Attached<BytesRx>>;
    const MODULE: &'static str = "shmchan::serde";

    fn type_name() -> &'static str {
        short_type_name::<T>()
    }

    /// A byte ring whose messages are values of `T`: the header records
    /// the schema's name (the type's, or the one in `options`) and version.
    fn spec(options: &Options, create: bool) -> Result<(Spec, u64), Error> {
        let (name, version) = match &options.schema {
            Some((name, version)) => (leak(name), *version),
            None => (short_type_name::<T>(), 0),
        };
        let elem = ElemType {
            size: 1,
            align: 8,
            schema: SchemaHasher::new()
                .str("serde")
                .str(name)
                .u64(version.into())
                .finish(),
            name,
            layout: leak(&format!("schema version {version}, postcard")),
        };
        let capacity = if create { ring_capacity(options)? } else { 0 };
        Ok((ring_shape(Kind::Serde, elem), capacity))
    }

    fn attach_tx(segment: &Segment, barrier: Barrier) -> Result<BytesTx, Error> {
        <crate::bytes::Bytes as endpoint::Flavor>::attach_tx(segment, barrier)
    }

    fn attach_rx(segment: &Segment, barrier: Barrier) -> Result<BytesRx, Error> {
        <crate::bytes::Bytes as endpoint::Flavor>::attach_rx(segment, barrier)
    }

    fn counts(segment: &Segment) -> endpoint::rule::Counts {
        crate::bytes::channel_counts(segment)
    }
}

/// `T`'s name as `std::any::type_name` gives it, without module paths
/// (`Vec<Fill>`, not `alloc::vec::Vec<orders::Fill>`): made once per type.
fn short_type_name<T: 'static>() -> &'static str {
    static NAMES: Mutex<Option<HashMap<TypeId, &'static str>>> = Mutex::new(None);
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    names
        .get_or_insert_with(HashMap::new)
        .entry(TypeId::of::<T>())
        .or_insert_with(|| leak(&strip_paths(std::any::type_name::<T>())))
}

/// Each path in `text` cut to its last segment.
fn strip_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(word.rsplit("::").next().unwrap_or(word));
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A `'static` copy of a text the header records; made once per type (or
/// schema option) a process opens, so the few bytes are not worth freeing.
fn leak(text: &str) -> &'static str {
    Box::leak(text.into())
}

/// The room claimed for an encoding at first: most messages are smaller.
const FIRST_CLAIM: usize = 256;

impl<T: Serialize + DeserializeOwned + 'static> Sender<T> {
    fn tx(&self) -> &Endpoint<BytesTx> {
        &self.attached().endpoint
    }

    /// The longest encoding this channel accepts: half its capacity, less
    /// an 8-byte record header.
    pub fn max_message_len(&self) -> usize {
        self.tx().end.max_len()
    }

    /// Sends `value` if there is room for its encoding, without blocking.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if there is not enough room now,
    /// [`TrySendError::Disconnected`] if the receiver is gone,
    /// [`TrySendError::TooLarge`] if the encoding is longer than
    /// [`max_message_len`](Self::max_message_len),
    /// [`TrySendError::Encode`] if `value` cannot be encoded.
    pub fn try_send(&self, value: &T) -> Result<(), TrySendError> {
        self.encode(value, |len| {
            let tx = self.tx();
            tx.try_put(|| tx.end.reserve(len)).map_err(|err| match err {
                crate::TrySendError::Full(()) => TrySendError::Full,
                crate::TrySendError::Disconnected(()) => TrySendError::Disconnected,
            })
        })
    }

    /// Sends `value`, waiting until there is room for its encoding.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] once the receiver is gone (a dead one is
    /// noticed within a second), [`SendError::TooLarge`],
    /// [`SendError::Encode`], as for [`try_send`](Self::try_send).
    pub fn send(&self, value: &T) -> Result<(), SendError> {
        self.send_until(value, None).map_err(|err| match err {
            SendTimeoutError::Timeout | SendTimeoutError::Disconnected => SendError::Disconnected,
            SendTimeoutError::TooLarge => SendError::TooLarge,
            SendTimeoutError::Encode(err) => SendError::Encode(err),
        })
    }

    /// Sends `value`, waiting at most `timeout` for room for its encoding.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] if there was no room in time, and as
    /// for [`send`](Self::send).
    pub fn send_timeout(&self, value: &T, timeout: Duration) -> Result<(), SendTimeoutError> {
        // A timeout too long for `Instant` is no timeout.
        self.send_until(value, Instant::now().checked_add(timeout))
    }

    fn send_until(&self, value: &T, deadline: Option<Instant>) -> Result<(), SendTimeoutError> {
        self.encode(value, |len| {
            let tx = self.tx();
            tx.put_until(deadline, || tx.end.reserve(len))
                .map_err(|err| match err {
                    crate::SendTimeoutError::Timeout(()) => SendTimeoutError::Timeout,
                    crate::SendTimeoutError::Disconnected(()) => SendTimeoutError::Disconnected,
                })
        })
    }

    /// Encodes `value` into room claimed in the ring, and publishes it.
    ///
    /// The fast path guesses the room (twice the last encoding, at least
    /// [`FIRST_CLAIM`]) and encodes straight into it; a claim the encoding
    /// outgrows is given up (claims write nothing) for one four times
    /// larger. Where the guess finds no room now, the encoding's exact
    /// length is measured (a second pass, only then) and `wait` finds that
    /// much room, or says why not: so a message that fits is never refused
    /// for want of room it does not need.
    fn encode<E: From<Oversize>>(
        &self,
        value: &T,
        wait: impl FnOnce(usize) -> Result<Reservation, E>,
    ) -> Result<(), E> {
        let tx = self.tx();
        let end = &tx.end;
        let max = end.max_len();
        let mut len = match end.claim_hint().get() {
            0 => FIRST_CLAIM.min(max),
            hint => hint,
        };
        while !tx.receivers_gone() {
            let Ok(reservation) = end.reserve(len) else {
                break;
            };
            match postcard::to_slice(value, self.claimed(&reservation)) {
                Ok(used) => {
                    self.publish(reservation, used.len());
                    return Ok(());
                }
                Err(postcard::Error::SerializeBufferFull) if len < max => {
                    len = len.saturating_mul(4).min(max);
                }
                Err(postcard::Error::SerializeBufferFull) => return Err(Oversize::TooLarge.into()),
                Err(err) => return Err(Oversize::Encode(EncodeError(err)).into()),
            }
        }
        let exact = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
            .map_err(|err| Oversize::Encode(EncodeError(err)))?;
        if exact > max {
            return Err(Oversize::TooLarge.into());
        }
        let reservation = wait(exact)?;
        match postcard::to_slice(value, self.claimed(&reservation)) {
            Ok(used) => {
                self.publish(reservation, used.len());
                Ok(())
            }
            // Room for the measured length and still too little: the
            // value's `Serialize` wrote something else the second time.
            Err(err) => Err(Oversize::Encode(EncodeError(err)).into()),
        }
    }

    /// The bytes of `reservation`, to encode into.
    #[allow(clippy::mut_from_ref)] // the reservation is this sender's alone
    fn claimed(&self, reservation: &Reservation) -> &mut [u8] {
        // SAFETY: the reserved payload lies inside the ring (reservations
        // never cross its end) and no other party reads or writes it until
        // it is published: the receiver reads only below `tail`, and this
        // (single) sender makes one reservation at a time. The bytes are
        // initialized memory of the mapping.
        unsafe {
            core::slice::from_raw_parts_mut(self.tx().end.payload(reservation), reservation.len())
        }
    }

    /// Publishes the first `used` bytes of `reservation`, and remembers the
    /// length for the next guess.
    fn publish(&self, reservation: Reservation, used: usize) {
        let end = &self.tx().end;
        end.publish(reservation, used);
        let max = end.max_len();
        end.claim_hint()
            .set(used.saturating_mul(2).max(FIRST_CLAIM).min(max));
    }
}

/// What an encoding can fail with besides waiting: the two errors every
/// send error has.
enum Oversize {
    TooLarge,
    Encode(EncodeError),
}

impl<T: Serialize + DeserializeOwned + 'static> Receiver<T> {
    fn rx(&self) -> &Endpoint<BytesRx> {
        &self.attached().endpoint
    }

    /// Receives a value if one is waiting, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is waiting,
    /// [`TryRecvError::Disconnected`] if none is waiting and the sender is
    /// gone, [`TryRecvError::Decode`] if the next message does not decode
    /// as `T` (it is then skipped).
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let rx = self.rx();
        match rx.try_take(|| rx.end.peek()) {
            Ok(record) => self.decode(record).map_err(TryRecvError::Decode),
            Err(crate::TryRecvError::Empty) => Err(TryRecvError::Empty),
            Err(crate::TryRecvError::Disconnected) => Err(TryRecvError::Disconnected),
        }
    }

    /// Receives a value, waiting until one arrives.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] once the channel is empty and the sender
    /// that attached is gone (a dead one is noticed within a second),
    /// [`RecvError::Decode`] if the next message does not decode as `T` (it
    /// is then skipped).
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|err| match err {
            RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected => RecvError::Disconnected,
            RecvTimeoutError::Decode(err) => RecvError::Decode(err),
        })
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if nothing arrived in time, and as for
    /// [`recv`](Self::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        // A timeout too long for `Instant` is no timeout.
        self.recv_until(Instant::now().checked_add(timeout))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let rx = self.rx();
        let record = match rx.link.usable().then(|| rx.end.peek()) {
            Some(Ok(record)) => record,
            _ => rx
                .take_until(deadline, || rx.end.peek())
                .map_err(|err| match err {
                    crate::RecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
                    crate::RecvTimeoutError::Disconnected => RecvTimeoutError::Disconnected,
                })?,
        };
        self.decode(record).map_err(RecvTimeoutError::Decode)
    }

    /// Decodes `record` from the ring and releases it, whether it decodes
    /// or not.
    fn decode(&self, record: Record) -> Result<T, DecodeError> {
        let end = &self.rx().end;
        // SAFETY: `record` was just peeked, and is released below, after the
        // last use of the slice.
        let bytes = unsafe { end.payload(&record) };
        let result = postcard::from_bytes::<T>(bytes).map_err(|source| DecodeError {
            len: bytes.len(),
            type_name: short_type_name::<T>(),
            source,
        });
        end.release(record);
        result
    }

    /// A blocking iterator: yields values until the channel is empty and
    /// the sender is gone. A message that does not decode is skipped; use
    /// [`recv`](Self::recv) to see why.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator: yields the values waiting now (skipping any
    /// that do not decode).
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

/// A blocking iterator over a [`Receiver`]'s values; see [`Receiver::iter`].
pub struct Iter<'a, T: Serialize + DeserializeOwned + 'static> {
    rx: &'a Receiver<T>,
}

/// A non-blocking iterator over a [`Receiver`]'s values; see
/// [`Receiver::try_iter`].
pub struct TryIter<'a, T: Serialize + DeserializeOwned + 'static> {
    rx: &'a Receiver<T>,
}

/// An owning blocking iterator over a [`Receiver`]'s values.
pub struct IntoIter<T: Serialize + DeserializeOwned + 'static> {
    rx: Receiver<T>,
}

impl<T: Serialize + DeserializeOwned + 'static> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        loop {
            match self.rx.recv() {
                Ok(value) => return Some(value),
                Err(RecvError::Decode(_)) => {}
                Err(RecvError::Disconnected) => return None,
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        loop {
            match self.rx.try_recv() {
                Ok(value) => return Some(value),
                Err(TryRecvError::Decode(_)) => {}
                Err(_) => return None,
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.iter().next()
    }
}

impl<'a, T: Serialize + DeserializeOwned + 'static> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T: Serialize + DeserializeOwned + 'static> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

// `Debug` without a bound on the value type.
impl<T: Serialize + DeserializeOwned + 'static> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("rx", self.rx).finish()
    }
}

impl<T: Serialize + DeserializeOwned + 'static> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").field("rx", self.rx).finish()
    }
}

impl<T: Serialize + DeserializeOwned + 'static> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").field("rx", &self.rx).finish()
    }
}

/// async for serde channels: values of `T` are received, and sent by value
/// (the future or sink holds it until it is encoded).
#[cfg(feature = "async")]
impl<T: Serialize + DeserializeOwned + 'static> crate::endpoint::AsyncFlavor for Serde<T> {
    type Item = T;
    type RecvError = RecvError;
    type SendItem = T;
    type SendError = SendError;

    fn try_recv_item(rx: &Receiver<T>) -> Option<Result<T, RecvError>> {
        match rx.try_recv() {
            Ok(value) => Some(Ok(value)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(RecvError::Disconnected)),
            Err(TryRecvError::Decode(err)) => Some(Err(RecvError::Decode(err))),
        }
    }

    fn try_send_item(tx: &Sender<T>, item: T) -> Result<(), crate::endpoint::Refused<Self>> {
        use crate::endpoint::Refused;
        match tx.try_send(&item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full) => Err(Refused::Full(item)),
            Err(TrySendError::Disconnected) => Err(Refused::Failed(SendError::Disconnected)),
            Err(TrySendError::TooLarge) => Err(Refused::Failed(SendError::TooLarge)),
            Err(TrySendError::Encode(err)) => Err(Refused::Failed(SendError::Encode(err))),
        }
    }

    /// A message that does not decode is skipped, as by `iter`.
    fn ends_stream(err: &RecvError) -> bool {
        matches!(err, RecvError::Disconnected)
    }
}

// ---------------------------------------------------------------------------
// Errors.

/// A value that could not be encoded (a serde impl that refused, or a
/// sequence of unknown length).
#[derive(Debug)]
pub struct EncodeError(postcard::Error);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the value cannot be encoded ({}); a sequence must know its length",
            self.0
        )
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A message that did not decode as the receiver's type: the sender used
/// another shape of the type (version it with `Options::schema`), or the
/// segment was written over. The message is skipped.
#[derive(Debug)]
pub struct DecodeError {
    len: usize,
    type_name: &'static str,
    source: postcard::Error,
}

impl DecodeError {
    /// Bytes of the message that did not decode.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a message of {} bytes does not decode as `{}` ({}): the sender encodes another \
             shape of the type (give each shape a version with Options::schema), or the \
             channel was written over; the message was skipped",
            self.len, self.type_name, self.source
        )
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

const TOO_LARGE: &str = "the value's encoding is longer than the channel's largest message \
                         (see max_message_len): create the channel with a larger capacity";
const CLOSED: &str = "sending on a closed channel";

/// An error returned from [`Sender::send`].
#[derive(Debug)]
pub enum SendError {
    /// The receiver is gone.
    Disconnected,
    /// The encoding is longer than [`Sender::max_message_len`]; nothing was
    /// sent.
    TooLarge,
    /// The value cannot be encoded; nothing was sent.
    Encode(EncodeError),
}

/// An error returned from [`Sender::try_send`].
#[derive(Debug)]
pub enum TrySendError {
    /// There is not enough room for the encoding now.
    Full,
    /// The receiver is gone.
    Disconnected,
    /// The encoding is longer than [`Sender::max_message_len`].
    TooLarge,
    /// The value cannot be encoded.
    Encode(EncodeError),
}

/// An error returned from [`Sender::send_timeout`].
#[derive(Debug)]
pub enum SendTimeoutError {
    /// There was not enough room before the timeout.
    Timeout,
    /// The receiver is gone.
    Disconnected,
    /// The encoding is longer than [`Sender::max_message_len`].
    TooLarge,
    /// The value cannot be encoded.
    Encode(EncodeError),
}

/// An error returned from [`Receiver::recv`].
#[derive(Debug)]
pub enum RecvError {
    /// The channel is empty and the sender is gone.
    Disconnected,
    /// The next message did not decode (it was skipped).
    Decode(DecodeError),
}

/// An error returned from [`Receiver::try_recv`].
#[derive(Debug)]
pub enum TryRecvError {
    /// The channel is empty now.
    Empty,
    /// The channel is empty and the sender is gone.
    Disconnected,
    /// The next message did not decode (it was skipped).
    Decode(DecodeError),
}

/// An error returned from [`Receiver::recv_timeout`].
#[derive(Debug)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the timeout.
    Timeout,
    /// The channel is empty and the sender is gone.
    Disconnected,
    /// The next message did not decode (it was skipped).
    Decode(DecodeError),
}

impl From<Oversize> for TrySendError {
    fn from(err: Oversize) -> Self {
        match err {
            Oversize::TooLarge => Self::TooLarge,
            Oversize::Encode(err) => Self::Encode(err),
        }
    }
}

impl From<Oversize> for SendTimeoutError {
    fn from(err: Oversize) -> Self {
        match err {
            Oversize::TooLarge => Self::TooLarge,
            Oversize::Encode(err) => Self::Encode(err),
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected => f.write_str(CLOSED),
            Self::TooLarge => f.write_str(TOO_LARGE),
            Self::Encode(err) => err.fmt(f),
        }
    }
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("sending on a full channel"),
            Self::Disconnected => f.write_str(CLOSED),
            Self::TooLarge => f.write_str(TOO_LARGE),
            Self::Encode(err) => err.fmt(f),
        }
    }
}

impl fmt::Display for SendTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting on send operation"),
            Self::Disconnected => f.write_str(CLOSED),
            Self::TooLarge => f.write_str(TOO_LARGE),
            Self::Encode(err) => err.fmt(f),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected => f.write_str("receiving on a closed channel"),
            Self::Decode(err) => err.fmt(f),
        }
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("receiving on an empty channel"),
            Self::Disconnected => f.write_str("receiving on an empty and closed channel"),
            Self::Decode(err) => err.fmt(f),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting on receive operation"),
            Self::Disconnected => f.write_str("channel is empty and sending half is closed"),
            Self::Decode(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for SendError {}
impl std::error::Error for TrySendError {}
impl std::error::Error for SendTimeoutError {}
impl std::error::Error for RecvError {}
impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_stripped_everywhere_in_a_type_name() {
        assert_eq!(strip_paths("alloc::vec::Vec<orders::Fill>"), "Vec<Fill>");
        assert_eq!(
            strip_paths("(u32, core::option::Option<alloc::string::String>)"),
            "(u32, Option<String>)"
        );
        assert_eq!(strip_paths("[a::b::T; 4]"), "[T; 4]");
        assert_eq!(short_type_name::<Vec<String>>(), "Vec<String>");
    }
}
