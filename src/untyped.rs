//! Typed channels reached without their message type: each message moves
//! as its bytes, exactly the channel's message size.
//!
//! For tools that carry typed messages they cannot name, such as the
//! `shmchan-bridge` command, which forwards a channel of `Tick`s without
//! being compiled with `Tick`. The message type is whatever the channel's
//! header records ([`message_type`](Receiver::message_type)); whoever
//! finally reads the values checks it, by opening the channel (or another
//! one the bytes are carried into) with its Rust type. Programs that know
//! the type use the typed endpoints instead.
//!
//! ```
//! # let name = format!("doc-untyped-{}", std::process::id());
//! let tx = shmchan::spsc::Sender::<[u32; 2]>::create(&name, 64)?;
//! tx.send([7, 8]).unwrap();
//! let rx = shmchan::untyped::Receiver::open(&name)?;
//! let mut bytes = [0u8; 8];
//! rx.recv_timeout(&mut bytes, std::time::Duration::from_secs(1)).unwrap();
//! assert_eq!(shmchan::from_bytes::<[u32; 2]>(&bytes), Some([7, 8]));
//! assert_eq!(rx.message_type().name, "[u32; 2]");
//! # Ok::<(), shmchan::Error>(())
//! ```
//!
//! Every typed flavor can be reached so: spsc, mpsc, mpmc and broadcast.
//! (`bytes` and serde channels carry bytes already: see
//! [`bytes::Sender::open_serde`](crate::bytes::Sender::open_serde).)

use crate::broadcast::{Broadcast, BroadcastRx, BroadcastTx, Overflow};
use crate::endpoint::rule::{deadline, Counts};
use crate::endpoint::{self, Flavor, Own};
use crate::inspect::{self, MessageType};
use crate::mpmc::{Mpmc, QueueEnd};
use crate::mpsc::{Mpsc, ShardsRx};
use crate::segment::{ElemType, Segment, Spec};
use crate::spsc::{RingRx, RingTx, Spsc};
use crate::wait::Barrier;
use crate::{Error, Options, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use core::time::Duration;
use std::sync::Arc;

/// An spsc channel whose messages are bytes of the header's size.
pub(crate) struct RawSpsc(());
/// An mpsc channel whose messages are bytes of the header's size.
pub(crate) struct RawMpsc(());
/// A broadcast channel whose messages are bytes of the header's size.
pub(crate) struct RawBroadcast(());
/// An mpmc channel whose messages are bytes of the header's size.
pub(crate) struct RawMpmc(());

/// The message type an untyped opener expects: the header's size and
/// alignment (in `options`), any fingerprint. Untyped endpoints only open.
fn raw_elem(options: &Options, create: bool) -> Result<ElemType, Error> {
    let (size, align) = options
        .raw
        .filter(|_| !create)
        .ok_or(Error::InvalidCapacity {
            requested: options.capacity,
            reason: "an untyped endpoint cannot create a channel, only open one",
        })?;
    Ok(ElemType {
        size,
        align,
        schema: 0,
        name: "",
        layout: "",
    })
}

/// `spec` with any message type of its size accepted.
fn any_schema(mut spec: Spec) -> Spec {
    spec.any_schema = true;
    spec
}

macro_rules! raw_flavor {
    ($raw:ident, $typed:ident, $module:literal, $shape:expr, $Tx:ty, $Rx:ty) => {
        raw_flavor!($raw, $typed, $module, $shape, $Tx, $Rx, Own);
    };
    ($raw:ident, $typed:ident, $module:literal, $shape:expr, $Tx:ty, $Rx:ty, $Hold:ident) => {
        impl endpoint::Sealed for $raw {}

        impl Flavor for $raw {
            type Tx = $Tx;
            type Rx = $Rx;
            type TxHold = $Hold<endpoint::Attached<$Tx>>;
            type RxHold = $Hold<endpoint::Attached<$Rx>>;
            const MODULE: &'static str = $module;

            fn type_name() -> &'static str {
                "bytes of a typed message"
            }

            fn spec(options: &Options, create: bool) -> Result<(Spec, u64), Error> {
                Ok((any_schema($shape(raw_elem(options, create)?)), 0))
            }

            /// The typed flavor's own attachment, over bytes: its ring
            /// takes its stride from the validated header.
            fn attach_tx(segment: &Segment, barrier: Barrier) -> Result<$Tx, Error> {
                <$typed<u8> as Flavor>::attach_tx(segment, barrier)
            }

            fn attach_rx(segment: &Segment, barrier: Barrier) -> Result<$Rx, Error> {
                <$typed<u8> as Flavor>::attach_rx(segment, barrier)
            }

            fn counts(segment: &Segment) -> Counts {
                <$typed<u8> as Flavor>::counts(segment)
            }
        }
    };
}

raw_flavor!(
    RawSpsc,
    Spsc,
    "shmchan::spsc",
    crate::spsc::shape,
    RingTx<u8>,
    RingRx<u8>
);
raw_flavor!(
    RawBroadcast,
    Broadcast,
    "shmchan::broadcast",
    |elem| crate::broadcast::shape(elem, 1, Overflow::Block),
    BroadcastTx<u8>,
    BroadcastRx<u8>
);
raw_flavor!(
    RawMpmc,
    Mpmc,
    "shmchan::mpmc",
    crate::mpmc::shape,
    QueueEnd<u8>,
    QueueEnd<u8>,
    Arc
);
raw_flavor!(
    RawMpsc,
    Mpsc,
    "shmchan::mpsc",
    |elem| crate::mpsc::shape(elem, 0),
    RingTx<u8>,
    ShardsRx<u8>
);

/// The channel `name`'s message type, and the options to open it untyped.
fn describe(name: &str) -> Result<(&'static str, MessageType, Options), Error> {
    let channel = inspect::channel(name)?;
    let mut options = Options::new();
    options.raw = Some((channel.elem_size as usize, channel.elem_align as usize));
    Ok((channel.flavor, channel.message_type(), options))
}

/// An end of one of the flavors untyped endpoints reach.
enum Ends<S, M, Q, B> {
    Spsc(S),
    Mpsc(M),
    Mpmc(Q),
    Broadcast(B),
}

/// Runs `$body` with `$end` the end, whichever flavor it is.
macro_rules! each {
    ($ends:expr, $end:ident => $body:expr) => {
        match $ends {
            Ends::Spsc($end) => $body,
            Ends::Mpsc($end) => $body,
            Ends::Mpmc($end) => $body,
            Ends::Broadcast($end) => $body,
        }
    };
}

/// An end just opened, and its channel's message type.
type Opened<S, M, Q, B> = (Ends<S, M, Q, B>, MessageType);

/// Opens `name` with `spsc`, `mpsc`, `mpmc` or `broadcast`, as its flavor
/// says.
fn open<S, M, Q, B>(
    name: &str,
    spsc: impl FnOnce(&str, &Options) -> Result<S, Error>,
    mpsc: impl FnOnce(&str, &Options) -> Result<M, Error>,
    mpmc: impl FnOnce(&str, &Options) -> Result<Q, Error>,
    broadcast: impl FnOnce(&str, &Options) -> Result<B, Error>,
) -> Result<Opened<S, M, Q, B>, Error> {
    let (flavor, message_type, options) = describe(name)?;
    let end = match flavor {
        "spsc" => Ends::Spsc(spsc(name, &options)?),
        "mpsc" => Ends::Mpsc(mpsc(name, &options)?),
        "mpmc" => Ends::Mpmc(mpmc(name, &options)?),
        "broadcast" => Ends::Broadcast(broadcast(name, &options)?),
        other => {
            return Err(Error::Incompatible {
                name: name.trim_start_matches('/').to_owned(),
                detail: format!(
                    "it is a {other} channel, which untyped endpoints do not reach (they reach \
                     the typed flavors: spsc, mpsc, mpmc and broadcast); open it with its own \
                     endpoints"
                ),
            })
        }
    };
    Ok((end, message_type))
}

/// Panics unless `len` is one message of channel `name`.
fn check(message_type: &MessageType, name: &str, len: usize) {
    assert_eq!(
        len as u64, message_type.size,
        "a message of channel {name:?} is {} bytes",
        message_type.size
    );
}

/// The receiving end of a typed channel, its messages taken as bytes.
pub struct Receiver {
    end: Ends<
        endpoint::Receiver<RawSpsc>,
        endpoint::Receiver<RawMpsc>,
        endpoint::Receiver<RawMpmc>,
        endpoint::Receiver<RawBroadcast>,
    >,
    message_type: MessageType,
    /// Broadcast messages this receiver missed, lapped by the sender.
    lagged: core::cell::Cell<u64>,
}

impl Receiver {
    /// Attaches to the existing typed channel `name` (spsc, mpsc, mpmc or
    /// broadcast) as a receiver, whatever its message type.
    ///
    /// # Errors
    ///
    /// As the typed `open`; [`Error::Incompatible`] for a channel of
    /// another flavor.
    pub fn open(name: &str) -> Result<Self, Error> {
        let (end, message_type) = open(
            name,
            endpoint::Receiver::open_with,
            endpoint::Receiver::open_with,
            endpoint::Receiver::open_with,
            endpoint::Receiver::open_with,
        )?;
        Ok(Self {
            end,
            message_type,
            lagged: core::cell::Cell::new(0),
        })
    }

    /// The channel's message type, as its header records it.
    pub fn message_type(&self) -> &MessageType {
        &self.message_type
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        each!(&self.end, end => end.name())
    }

    /// Receives a message into `out` if one is waiting, without blocking.
    ///
    /// # Errors
    ///
    /// As the typed `try_recv`.
    ///
    /// # Panics
    ///
    /// If `out` is not exactly one message long
    /// ([`message_type().size`](MessageType::size) bytes).
    pub fn try_recv(&self, out: &mut [u8]) -> Result<(), TryRecvError> {
        check(&self.message_type, self.name(), out.len());
        match &self.end {
            Ends::Spsc(end) => {
                let e = &end.attached().endpoint;
                e.try_take(|| e.end.pop_bytes(out))
            }
            Ends::Mpsc(end) => {
                let e = &end.attached().endpoint;
                e.try_take(|| e.end.pop_bytes(out))
            }
            Ends::Mpmc(end) => {
                let e = &end.attached().endpoint;
                e.try_take(|| e.end.pop_bytes(out))
            }
            Ends::Broadcast(end) => loop {
                let e = &end.attached().endpoint;
                match e.try_take(|| e.end.pop_bytes(out))? {
                    Ok(()) => return Ok(()),
                    Err(missed) => self.lag(missed),
                }
            },
        }
    }

    /// Receives a message into `out`, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As the typed `recv_timeout`.
    ///
    /// # Panics
    ///
    /// As [`try_recv`](Self::try_recv).
    pub fn recv_timeout(&self, out: &mut [u8], timeout: Duration) -> Result<(), RecvTimeoutError> {
        check(&self.message_type, self.name(), out.len());
        let until = deadline(Some(timeout));
        match &self.end {
            Ends::Spsc(end) => {
                let e = &end.attached().endpoint;
                e.take_until(until, || e.end.pop_bytes(out))
            }
            Ends::Mpsc(end) => {
                let e = &end.attached().endpoint;
                e.take_until(until, || e.end.pop_bytes(out))
            }
            Ends::Mpmc(end) => {
                let e = &end.attached().endpoint;
                e.take_until(until, || e.end.pop_bytes(out))
            }
            Ends::Broadcast(end) => loop {
                let e = &end.attached().endpoint;
                match e.take_until(until, || e.end.pop_bytes(out))? {
                    Ok(()) => return Ok(()),
                    Err(missed) => self.lag(missed),
                }
            },
        }
    }

    /// Broadcast messages this receiver missed because the sender lapped
    /// it (`Overflow::Overwrite`): a receive skips them and goes on from
    /// the oldest message kept, as the typed iterators do, and counts them
    /// here. Always 0 for spsc and mpsc.
    pub fn lagged(&self) -> u64 {
        self.lagged.get()
    }

    fn lag(&self, missed: u64) {
        self.lagged.set(self.lagged.get().saturating_add(missed));
    }
}

/// A sending end of a typed channel, its messages given as bytes.
pub struct Sender {
    end: Ends<
        endpoint::Sender<RawSpsc>,
        endpoint::Sender<RawMpsc>,
        endpoint::Sender<RawMpmc>,
        endpoint::Sender<RawBroadcast>,
    >,
    message_type: MessageType,
}

impl Sender {
    /// Attaches to the existing typed channel `name` (spsc, mpsc, mpmc or
    /// broadcast) as a sender (for mpsc, taking a free shard), whatever its
    /// message type.
    ///
    /// # Errors
    ///
    /// As the typed `open`; [`Error::Incompatible`] for a channel of
    /// another flavor.
    pub fn open(name: &str) -> Result<Self, Error> {
        let (end, message_type) = open(
            name,
            endpoint::Sender::open_with,
            endpoint::Sender::open_with,
            endpoint::Sender::open_with,
            endpoint::Sender::open_with,
        )?;
        Ok(Self { end, message_type })
    }

    /// The channel's message type, as its header records it.
    pub fn message_type(&self) -> &MessageType {
        &self.message_type
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        each!(&self.end, end => end.name())
    }

    /// Sends `message`, one message's bytes, if there is room, without
    /// blocking.
    ///
    /// # Errors
    ///
    /// As the typed `try_send` (the message stays the caller's).
    ///
    /// # Panics
    ///
    /// If `message` is not exactly one message long
    /// ([`message_type().size`](MessageType::size) bytes).
    pub fn try_send(&self, message: &[u8]) -> Result<(), TrySendError<()>> {
        check(&self.message_type, self.name(), message.len());
        each!(&self.end, end => {
            let e = &end.attached().endpoint;
            e.try_put(|| e.end.push_bytes(message))
        })
    }

    /// Sends `message`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As the typed `send_timeout` (the message stays the caller's).
    ///
    /// # Panics
    ///
    /// As [`try_send`](Self::try_send).
    pub fn send_timeout(
        &self,
        message: &[u8],
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<()>> {
        check(&self.message_type, self.name(), message.len());
        let until = deadline(Some(timeout));
        each!(&self.end, end => {
            let e = &end.attached().endpoint;
            e.put_until(until, || e.end.push_bytes(message))
        })
    }
}
