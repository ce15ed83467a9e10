//! The private flavor interface, and an attachment: a flavor's end of the
//! rings, its link, and the segment they both live in.

use super::link::Link;
use super::roster::Side;
use super::rule::{Counts, End, Endpoint};
use super::{Receiver, Sender};
use crate::segment::{Segment, Spec};
use crate::stats::{EndpointInfo, Stats};
use crate::wait::Barrier;
use crate::{Error, Options};
use core::ops::Deref;
use std::sync::Arc;

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// A kind of channel: `Spsc<T>`, `Mpsc<T>`, `Mpmc<T>`, `Bytes`. It says
/// what [`Sender`] and [`Receiver`] are made of; its items are the crate's
/// own business (the trait is sealed).
pub trait Flavor: Sealed + Sized + 'static {
    /// A sender's end of the rings.
    #[doc(hidden)]
    type Tx: End;
    /// A receiver's end of the rings.
    #[doc(hidden)]
    type Rx: End;
    /// How a sender's attachment is held: alone, or shared by its clones.
    #[doc(hidden)]
    type TxHold: Hold<Attached<Self::Tx>>;
    #[doc(hidden)]
    type RxHold: Hold<Attached<Self::Rx>>;
    /// The flavor's module, for `Debug`.
    #[doc(hidden)]
    const MODULE: &'static str;
    /// The message type's name, for `Debug`.
    #[doc(hidden)]
    fn type_name() -> &'static str;
    /// The segment to create with `options` and its capacity per ring (in
    /// the ring's own units), or, not to `create`, what to expect of one to
    /// open (its capacity then comes from the header, 0 here).
    #[doc(hidden)]
    fn spec(options: &Options, create: bool) -> Result<(Spec, u64), Error>;
    /// Lays a sender's end over `segment`, in which it holds a sender's slot.
    #[doc(hidden)]
    fn attach_tx(segment: &Segment, barrier: Barrier) -> Result<Self::Tx, Error>;
    /// Lays a receiver's end over `segment`, in which it holds a receiver's slot.
    #[doc(hidden)]
    fn attach_rx(segment: &Segment, barrier: Barrier) -> Result<Self::Rx, Error>;
    /// The channel's counters, as kept in `segment`.
    #[doc(hidden)]
    fn counts(segment: &Segment) -> Counts;
}

/// How an end is laid over a segment (see [`Flavor::attach_tx`]).
pub(crate) type AttachFn<E> = fn(&Segment, Barrier) -> Result<E, Error>;

/// How an endpoint holds its attachment: alone ([`Own`]), or shared with
/// its clones (`Arc`, mpmc).
pub trait Hold<A>: Deref<Target = A> {
    fn hold(attached: A) -> Self;
}

/// An attachment held by one endpoint alone.
pub struct Own<A>(A);

impl<A> Deref for Own<A> {
    type Target = A;
    #[inline(always)]
    fn deref(&self) -> &A {
        &self.0
    }
}

impl<A> Hold<A> for Own<A> {
    fn hold(attached: A) -> Self {
        Self(attached)
    }
}

impl<A> Hold<A> for Arc<A> {
    fn hold(attached: A) -> Self {
        Arc::new(attached)
    }
}

/// One attachment to a channel: the endpoint (link and end) and the
/// segment they point into, which outlives them (it is dropped last).
pub struct Attached<E: End> {
    pub(crate) endpoint: Endpoint<E>,
    segment: Segment,
}

impl<E: End> Attached<E> {
    /// Creates the channel `name` for flavor `F`, attached as `side`.
    pub(crate) fn create<F: Flavor>(
        name: &str,
        options: &Options,
        side: Side,
        attach: AttachFn<E>,
    ) -> Result<Self, Error> {
        let (spec, capacity) = F::spec(options, true)?;
        let segment = Segment::create(
            name,
            &spec,
            capacity,
            options.mode,
            crate::wait::Mode::for_new_segment(),
            side,
        )
        .map_err(|err| options.as_requested(err))?;
        Self::attach(segment, options, attach)
    }

    /// Opens the channel `name` of flavor `F`, attached as `side`.
    pub(crate) fn open<F: Flavor>(
        name: &str,
        options: &Options,
        side: Side,
        attach: AttachFn<E>,
    ) -> Result<Self, Error> {
        let (spec, _) = F::spec(options, false)?;
        Self::attach(Segment::open(name, &spec, side)?, options, attach)
    }

    /// Another attachment of this process to the same channel, with a slot
    /// (and a lock) of its own.
    pub(crate) fn try_clone(&self, attach: AttachFn<E>) -> Result<Self, Error> {
        if self.endpoint.link.forked() {
            return Err(Error::Forked {
                name: self.name().to_owned(),
            });
        }
        let options = Options::new().spin(self.endpoint.link.spin);
        Self::attach(self.segment.try_clone()?, &options, attach)
    }

    /// Lays the flavor's end over a segment in which we hold a slot, tidies
    /// what a dead predecessor in that slot left, and announces us.
    fn attach(segment: Segment, options: &Options, attach: AttachFn<E>) -> Result<Self, Error> {
        let barrier = segment.barrier()?;
        // On an error from here on, dropping `segment` gives the slot up.
        let end = attach(&segment, barrier)?;
        // SAFETY: the link points into the segment's mapping, which moves
        // into the same attachment and is dropped after it; our open file
        // description holds our slot's lock.
        let link = unsafe { Link::new(segment.place(), barrier, options.spin) };
        let endpoint = Endpoint::start(link, end, segment.slot(), segment.took_over());
        Ok(Self { endpoint, segment })
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.segment
    }

    pub(crate) fn name(&self) -> &str {
        self.segment.name()
    }

    /// The counters of the channel, of flavor `F`, and its endpoints.
    pub(crate) fn stats<F: Flavor>(&self) -> Stats {
        let counts = F::counts(&self.segment);
        let endpoints: Vec<EndpointInfo> = self.segment.endpoint_infos(Some(self.segment.slot()));
        Stats {
            sent: counts.sent,
            received: counts.received,
            len: counts.len,
            capacity: counts.capacity,
            high_water: counts.high_water,
            full: counts.full,
            endpoints,
        }
    }

    /// `Debug` for the endpoint called `end` of flavor `F`.
    pub(crate) fn describe<F: Flavor>(
        &self,
        f: &mut core::fmt::Formatter<'_>,
        end: &str,
    ) -> core::fmt::Result {
        f.debug_struct(end)
            .field("name", &self.name())
            .field("flavor", &F::MODULE)
            .field("type", &F::type_name())
            .field("capacity", &self.endpoint.end.capacity())
            .finish_non_exhaustive()
    }
}

impl<E: End> Drop for Attached<E> {
    fn drop(&mut self) {
        if self.endpoint.link.forked() {
            // The parent's: leave its slot, its peers and its name alone.
            self.segment.abandon();
            return;
        }
        self.endpoint.leave();
        // The slot is given up; the segment unlinks the name if it was the last.
        self.segment.forget_slot();
    }
}

/// Creates a channel of flavor `F` and returns both ends: the receiver
/// creates it, the sender opens it.
pub(crate) fn channel<F: Flavor>(
    name: &str,
    options: &Options,
) -> Result<(Sender<F>, Receiver<F>), Error> {
    let rx = Receiver::create_with(name, options)?;
    let tx = Sender::open_with(name, options)?;
    Ok((tx, rx))
}
