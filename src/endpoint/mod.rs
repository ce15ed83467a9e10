//! The endpoint layer: the one [`Sender`] and [`Receiver`] that every
//! flavor's endpoints are.
//!
//! `shmchan::spsc::Sender<T>` is `Sender<Spsc<T>>`, `shmchan::bytes::Receiver`
//! is `Receiver<Bytes>`, and so on: the flavor modules name them, and you
//! rarely need to write these generic forms. What all endpoints share is
//! written once here: creating and opening ([`create`](Sender::create),
//! [`open`](Sender::open) and their `_with` forms), the queries
//! ([`capacity`](Sender::capacity), [`len`](Sender::len),
//! [`name`](Sender::name), [`stats`](Sender::stats), `Debug`), attaching and
//! detaching, and the rule by which an endpoint learns that the other side
//! is gone. The typed flavors (spsc, mpsc, mpmc) also share their whole
//! sending and receiving API; [`bytes`](crate::bytes) has its own, over the
//! same rule.
//!
//! # Disconnection
//!
//! As in `std::sync::mpsc`, across processes:
//!
//! - the first `send` or `try_send` after the last receiver detached
//!   (dropped, in this process or another) fails and hands the message back;
//! - the first `recv` or `try_recv` on an empty channel after the last
//!   sender detached fails, and iteration ends; what the senders sent before
//!   they left is still delivered first;
//! - before any endpoint of the other side has attached, calls wait (a
//!   sender fills the ring first); one that attaches later revives the
//!   channel.
//!
//! # Liveness
//!
//! An endpoint is alive exactly while the process that attached it holds
//! it. Each endpoint holds a lock that the kernel releases when its process
//! dies or calls `exec` (an open file description lock on a byte of the
//! segment object, one per endpoint slot), so a process killed with SIGKILL
//! anywhere in its code is noticed by a blocked or repeatedly polling peer
//! within a second, whatever PID namespace either is in, and its slot can be
//! taken again at once. Pids are kept in the segment for messages and tools
//! only.
//!
//! # Fork
//!
//! A child made by `fork` inherits its parent's endpoints as memory, not as
//! roles: in the child, an inherited endpoint reports disconnection from
//! every call, [`mpsc::Sender::try_clone`](crate::mpsc::Sender::try_clone)
//! fails with [`Error::Forked`], and dropping it leaves the parent's channel
//! alone. Open the channel by name in the child instead. (A child that keeps
//! an inherited endpoint without using it, exiting or calling `exec` also
//! keeps its parent's lock: if the parent dies meanwhile, its peers notice
//! only when the child lets go.)

#[cfg(all(feature = "async", not(loom)))]
mod asynch;
pub(crate) mod fork;
pub(crate) mod link;
pub(crate) mod locks;
pub(crate) mod roster;
pub(crate) mod rule;
#[cfg(not(loom))]
mod shell;
#[cfg(not(loom))]
mod typed;

#[cfg(all(feature = "async", not(loom)))]
pub use self::asynch::{
    AsyncFlavor, IntoRecvStream, IntoSendSink, RecvFut, RecvStream, Refused, SendFut, SendSink,
};
#[cfg(not(loom))]
pub use self::shell::Flavor;
#[cfg(not(loom))]
pub(crate) use self::shell::{channel, Attached, Hold, Own, Sealed};
#[cfg(not(loom))]
pub use self::typed::{IntoIter, Iter, TryIter, Typed, TypedSend};

#[cfg(not(loom))]
use self::roster::Side;
#[cfg(not(loom))]
use self::rule::End;
#[cfg(not(loom))]
use crate::{Error, Options, Stats};

/// The sending end of a channel of flavor `F`: see the flavor's module
/// ([`spsc`](crate::spsc), [`mpsc`](crate::mpsc), [`mpmc`](crate::mpmc),
/// [`bytes`](crate::bytes)), whose `Sender` this is.
///
/// Dropping it (or its process dying, or calling `exec`) detaches it; once
/// every sender of the channel is gone, receivers drain what was sent and
/// then report disconnection.
#[cfg(not(loom))]
pub struct Sender<F: Flavor> {
    attached: F::TxHold,
}

/// The receiving end of a channel of flavor `F`: see the flavor's module
/// ([`spsc`](crate::spsc), [`mpsc`](crate::mpsc), [`mpmc`](crate::mpmc),
/// [`bytes`](crate::bytes)), whose `Receiver` this is.
///
/// Dropping it (or its process dying, or calling `exec`) detaches it; once
/// every receiver of the channel is gone, sends fail.
#[cfg(not(loom))]
pub struct Receiver<F: Flavor> {
    attached: F::RxHold,
}

/// What both ends have alike: constructors, queries, `Debug`.
#[cfg(not(loom))]
macro_rules! common {
    ($End:ident, $side:ident, $attach:ident, $create:literal, $open:literal) => {
        impl<F: Flavor> $End<F> {
            #[doc = $create]
            ///
            /// `capacity` is in messages (for [`bytes`](crate::bytes), in
            /// bytes; for [`mpsc`](crate::mpsc), per sender), rounded up to a
            /// power of two; [`capacity`](Self::capacity) says what it became.
            ///
            /// # Errors
            ///
            /// [`Error::InvalidName`], [`Error::InvalidCapacity`] (0, or too
            /// large), [`Error::AlreadyExists`] if a live channel, or an
            /// object that is not a shmchan segment, has that name (a stale
            /// segment, whose endpoints all died, is replaced),
            /// [`Error::Io`].
            pub fn create(name: &str, capacity: usize) -> Result<Self, Error> {
                Self::create_with(name, &Options::new().capacity(capacity))
            }

            /// [`create`](Self::create) with [`Options`]: capacity, mode,
            /// spin time, and for mpsc the number of shards.
            ///
            /// # Errors
            ///
            /// As for [`create`](Self::create), and [`Error::InvalidMode`]
            /// for a mode that does not let the owner read and write.
            pub fn create_with(name: &str, options: &Options) -> Result<Self, Error> {
                Attached::create::<F>(name, options, Side::$side, F::$attach).map(|attached| Self {
                    attached: Hold::hold(attached),
                })
            }

            #[doc = $open]
            ///
            /// # Errors
            ///
            /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Busy`] if
            /// every place for this end is held by a live endpoint (naming
            /// one holder's pid), [`Error::Incompatible`] if the channel is
            /// of another flavor or message type (naming both, and the first
            /// field that differs), [`Error::Corrupt`], [`Error::Io`].
            pub fn open(name: &str) -> Result<Self, Error> {
                Self::open_with(name, &Options::new())
            }

            /// [`open`](Self::open) with [`Options`] (only the spin time
            /// applies).
            ///
            /// # Errors
            ///
            /// As for [`open`](Self::open).
            pub fn open_with(name: &str, options: &Options) -> Result<Self, Error> {
                Attached::open::<F>(name, options, Side::$side, F::$attach).map(|attached| Self {
                    attached: Hold::hold(attached),
                })
            }

            /// Messages the channel holds (bytes, for
            /// [`bytes`](crate::bytes); for [`mpsc`](crate::mpsc), each
            /// sender's ring): the capacity asked for, rounded up.
            pub fn capacity(&self) -> usize {
                self.attached.endpoint.end.capacity()
            }

            /// Messages waiting now (for an mpsc sender, its own). Other
            /// endpoints change it at any moment, so it is a hint, exact
            /// only while they are idle.
            pub fn len(&self) -> usize {
                self.attached.endpoint.end.len()
            }

            /// Whether no message is waiting now (a hint, as for
            /// [`len`](Self::len)).
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether a send would have to wait now (a hint, as for
            /// [`len`](Self::len)).
            pub fn is_full(&self) -> bool {
                self.attached.endpoint.end.is_full()
            }

            /// The channel's name, as given when creating or opening it.
            pub fn name(&self) -> &str {
                self.attached.name()
            }

            /// The channel's counters, read from the segment, and its
            /// attached endpoints (a system call per endpoint, to tell
            /// whether it lives).
            pub fn stats(&self) -> Stats {
                self.attached.stats::<F>()
            }
        }

        // `Debug` without a bound on the message type.
        impl<F: Flavor> core::fmt::Debug for $End<F> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                self.attached.describe::<F>(f, stringify!($End))
            }
        }
    };
}

#[cfg(not(loom))]
common!(
    Sender,
    Sender,
    attach_tx,
    "Creates a channel named `name` holding `capacity` messages, with only \
     this sender attached. Messages sent before a receiver attaches wait in \
     the channel; once it is full, `send` waits.",
    "Attaches to the existing channel `name` as a sender, in this process or any other."
);
#[cfg(not(loom))]
common!(
    Receiver,
    Receiver,
    attach_rx,
    "Creates a channel named `name` holding `capacity` messages, with only \
     this receiver attached. `recv` waits until a sender attaches and sends.",
    "Attaches to the existing channel `name` as a receiver, in this process or any other."
);

#[cfg(not(loom))]
impl<F: Flavor> Sender<F> {
    /// The attachment: its link, its end of the rings, its segment.
    #[inline(always)]
    pub(crate) fn attached(&self) -> &Attached<F::Tx> {
        &self.attached
    }

    pub(crate) fn from_attached(attached: Attached<F::Tx>) -> Self {
        Self::from_hold(Hold::hold(attached))
    }

    pub(crate) fn hold(&self) -> &F::TxHold {
        &self.attached
    }

    pub(crate) fn from_hold(attached: F::TxHold) -> Self {
        Self { attached }
    }
}

#[cfg(not(loom))]
impl<F: Flavor> Receiver<F> {
    /// The attachment: its link, its end of the rings, its segment.
    #[inline(always)]
    pub(crate) fn attached(&self) -> &Attached<F::Rx> {
        &self.attached
    }

    pub(crate) fn hold(&self) -> &F::RxHold {
        &self.attached
    }

    pub(crate) fn from_hold(attached: F::RxHold) -> Self {
        Self { attached }
    }
}
