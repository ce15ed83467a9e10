//! async for every flavor (cargo feature `async`): futures, `Stream`s and
//! `Sink`s in the manner of flume, written once over [`AsyncFlavor`], the
//! one-message attempt each flavor supplies.
//!
//! No executor is involved: a pending future hands its doorbell to one
//! waiter thread per process (see `wait::waker`), which wakes it when the
//! doorbell rings, and at least every 100 ms so that it notices a dead
//! peer. Futures are cancellation-safe: a receive takes a message only in
//! the poll that returns it, and dropping a pending future takes its count
//! off the doorbell.

use super::rule::End;
use super::shell::Flavor;
use super::typed::Typed;
use super::{Receiver, Sender};
use crate::wait::{poll_op, Bell, Registration};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

/// A flavor that async can drive: all of them. What a receive yields and
/// a send takes, and how each fails.
pub trait AsyncFlavor: Flavor {
    /// What a receive yields: the message type (`Vec<u8>` for
    /// [`bytes`](crate::bytes)).
    type Item;
    /// Why a receive failed.
    type RecvError;
    /// What a send takes.
    type SendItem;
    /// Why a send failed (with the message, where the flavor hands it back).
    type SendError;
    /// One receive that does not wait: `None` if it would.
    #[doc(hidden)]
    fn try_recv_item(rx: &Receiver<Self>) -> Option<Result<Self::Item, Self::RecvError>>;
    /// One send that does not wait: the item back if it would.
    #[doc(hidden)]
    fn try_send_item(tx: &Sender<Self>, item: Self::SendItem) -> Result<(), Refused<Self>>;
    /// Whether a receive error ends a stream (disconnection) rather than
    /// being skipped (a message that does not decode).
    #[doc(hidden)]
    fn ends_stream(_err: &Self::RecvError) -> bool {
        true
    }
}

/// Why a send did not happen now.
#[doc(hidden)]
pub enum Refused<F: AsyncFlavor> {
    /// No room: the item, to try again.
    Full(F::SendItem),
    /// It never will: the error.
    Failed(F::SendError),
}

impl<F: Typed> AsyncFlavor for F {
    type Item = F::Msg;
    type RecvError = crate::RecvError;
    type SendItem = F::Msg;
    type SendError = crate::SendError<F::Msg>;

    fn try_recv_item(rx: &Receiver<Self>) -> Option<Result<F::Msg, crate::RecvError>> {
        match rx.try_recv() {
            Ok(value) => Some(Ok(value)),
            Err(crate::TryRecvError::Empty) => None,
            Err(crate::TryRecvError::Disconnected) => Some(Err(crate::RecvError)),
        }
    }

    fn try_send_item(tx: &Sender<Self>, item: F::Msg) -> Result<(), Refused<Self>> {
        tx.try_send(item).map_err(|err| match err {
            crate::TrySendError::Full(item) => Refused::Full(item),
            crate::TrySendError::Disconnected(item) => Refused::Failed(crate::SendError(item)),
        })
    }
}

fn bell<E: End>(endpoint: &super::rule::Endpoint<E>) -> Bell<'_> {
    Bell {
        bell: endpoint.end.bell(),
        tally: endpoint.end.tally(),
        barrier: endpoint.link.barrier,
    }
}

/// One poll of a receive on `rx`.
fn poll_recv<F: AsyncFlavor>(
    rx: &Receiver<F>,
    registration: &mut Option<Registration>,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Item, F::RecvError>> {
    poll_op(bell(&rx.attached().endpoint), registration, cx, || {
        F::try_recv_item(rx)
    })
}

/// One poll of a stream on `rx`: skips what the flavor skips.
fn poll_next<F: AsyncFlavor>(
    rx: &Receiver<F>,
    registration: &mut Option<Registration>,
    done: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<F::Item>> {
    if *done {
        return Poll::Ready(None);
    }
    loop {
        match poll_recv(rx, registration, cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(item)) => return Poll::Ready(Some(item)),
            Poll::Ready(Err(err)) if F::ends_stream(&err) => {
                *done = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Err(_)) => {}
        }
    }
}

/// One poll of a send of `*item` on `tx`; `*item` is `None` once sent or
/// failed.
fn poll_send<F: AsyncFlavor>(
    tx: &Sender<F>,
    item: &mut Option<F::SendItem>,
    registration: &mut Option<Registration>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), F::SendError>> {
    if item.is_none() {
        return Poll::Ready(Ok(()));
    }
    poll_op(
        bell(&tx.attached().endpoint),
        registration,
        cx,
        || match F::try_send_item(tx, item.take()?) {
            Ok(()) => Some(Ok(())),
            Err(Refused::Full(back)) => {
                *item = Some(back);
                None
            }
            Err(Refused::Failed(err)) => Some(Err(err)),
        },
    )
}

impl<F: AsyncFlavor> Receiver<F> {
    /// Receives a message asynchronously: the future completes when one
    /// arrives, or with an error once the channel is empty and the senders
    /// are gone (a dead one noticed within a second).
    ///
    /// Cancellation-safe: dropping the future before it completes loses
    /// nothing.
    pub fn recv_async(&self) -> RecvFut<'_, F> {
        RecvFut {
            registration: None,
            rx: self,
        }
    }

    /// The messages as a [`Stream`](futures_core::Stream), which ends when
    /// the channel is empty and the senders are gone. (For serde channels,
    /// a message that does not decode is skipped.)
    pub fn stream(&self) -> RecvStream<'_, F> {
        RecvStream {
            registration: None,
            done: false,
            rx: self,
        }
    }

    /// [`stream`](Self::stream), owning the receiver.
    pub fn into_stream(self) -> IntoRecvStream<F> {
        IntoRecvStream {
            registration: None,
            done: false,
            rx: self,
        }
    }
}

impl<F: AsyncFlavor> Sender<F> {
    /// Sends `item` asynchronously: the future completes once it is in the
    /// channel, or with an error once the receivers are gone.
    ///
    /// Dropping the future before it completes drops `item` unsent.
    pub fn send_async(&self, item: F::SendItem) -> SendFut<'_, F> {
        SendFut {
            registration: None,
            item: Some(item),
            tx: self,
        }
    }

    /// A [`Sink`](futures_sink::Sink) of messages: `start_send` holds one,
    /// `poll_ready` and `poll_flush` send it as room allows.
    pub fn sink(&self) -> SendSink<'_, F> {
        SendSink {
            registration: None,
            item: None,
            tx: self,
        }
    }

    /// [`sink`](Self::sink), owning the sender.
    pub fn into_sink(self) -> IntoSendSink<F> {
        IntoSendSink {
            registration: None,
            item: None,
            tx: self,
        }
    }
}

/// The future of [`Receiver::recv_async`].
pub struct RecvFut<'a, F: AsyncFlavor> {
    registration: Option<Registration>,
    rx: &'a Receiver<F>,
}

/// The stream of [`Receiver::stream`].
pub struct RecvStream<'a, F: AsyncFlavor> {
    registration: Option<Registration>,
    done: bool,
    rx: &'a Receiver<F>,
}

/// The stream of [`Receiver::into_stream`].
pub struct IntoRecvStream<F: AsyncFlavor> {
    // Dropped before the receiver whose doorbell it names.
    registration: Option<Registration>,
    done: bool,
    rx: Receiver<F>,
}

/// The future of [`Sender::send_async`].
pub struct SendFut<'a, F: AsyncFlavor> {
    registration: Option<Registration>,
    item: Option<F::SendItem>,
    tx: &'a Sender<F>,
}

/// The sink of [`Sender::sink`].
pub struct SendSink<'a, F: AsyncFlavor> {
    registration: Option<Registration>,
    item: Option<F::SendItem>,
    tx: &'a Sender<F>,
}

/// The sink of [`Sender::into_sink`].
pub struct IntoSendSink<F: AsyncFlavor> {
    // Dropped before the sender whose doorbell it names.
    registration: Option<Registration>,
    item: Option<F::SendItem>,
    tx: Sender<F>,
}

// None of them is self-referential: the registration points into the
// endpoint's mapping, which does not move with the future.
impl<F: AsyncFlavor> Unpin for RecvFut<'_, F> {}
impl<F: AsyncFlavor> Unpin for RecvStream<'_, F> {}
impl<F: AsyncFlavor> Unpin for IntoRecvStream<F> {}
impl<F: AsyncFlavor> Unpin for SendFut<'_, F> {}
impl<F: AsyncFlavor> Unpin for SendSink<'_, F> {}
impl<F: AsyncFlavor> Unpin for IntoSendSink<F> {}

impl<F: AsyncFlavor> Future for RecvFut<'_, F> {
    type Output = Result<F::Item, F::RecvError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        poll_recv(this.rx, &mut this.registration, cx)
    }
}

impl<F: AsyncFlavor> futures_core::Stream for RecvStream<'_, F> {
    type Item = F::Item;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Item>> {
        let this = self.get_mut();
        poll_next(this.rx, &mut this.registration, &mut this.done, cx)
    }
}

impl<F: AsyncFlavor> futures_core::Stream for IntoRecvStream<F> {
    type Item = F::Item;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Item>> {
        let this = self.get_mut();
        poll_next(&this.rx, &mut this.registration, &mut this.done, cx)
    }
}

impl<F: AsyncFlavor> futures_core::FusedStream for RecvStream<'_, F> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<F: AsyncFlavor> futures_core::FusedStream for IntoRecvStream<F> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<F: AsyncFlavor> Future for SendFut<'_, F> {
    type Output = Result<(), F::SendError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        poll_send(this.tx, &mut this.item, &mut this.registration, cx)
    }
}

macro_rules! sink {
    ($Sink:ident $(<$a:lifetime>)?, $tx:ident => $get:expr) => {
        impl<F: AsyncFlavor> futures_sink::Sink<F::SendItem> for $Sink<$($a,)? F> {
            type Error = F::SendError;

            fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), F::SendError>> {
                self.poll_flush(cx)
            }

            fn start_send(self: Pin<&mut Self>, item: F::SendItem) -> Result<(), F::SendError> {
                let this = self.get_mut();
                debug_assert!(this.item.is_none(), "start_send before poll_ready was Ready");
                this.item = Some(item);
                Ok(())
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), F::SendError>> {
                let this = self.get_mut();
                let $tx = &this.tx;
                poll_send($get, &mut this.item, &mut this.registration, cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), F::SendError>> {
                self.poll_flush(cx)
            }
        }
    };
}

sink!(SendSink<'_>, tx => *tx);
sink!(IntoSendSink, tx => tx);

macro_rules! debug {
    ($Type:ident $(<$a:lifetime>)?, $field:ident) => {
        impl<F: AsyncFlavor> fmt::Debug for $Type<$($a,)? F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($Type))
                    .field(stringify!($field), &self.$field)
                    .field("pending", &self.registration.is_some())
                    .finish()
            }
        }
    };
}

debug!(RecvFut<'_>, rx);
debug!(RecvStream<'_>, rx);
debug!(IntoRecvStream, rx);
debug!(SendFut<'_>, tx);
debug!(SendSink<'_>, tx);
debug!(IntoSendSink, tx);
