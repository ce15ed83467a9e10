//! The API of the typed flavors (spsc, mpsc, mpmc): sending and receiving
//! values of one [`ShmSafe`] type, one at a time or in batches, and the
//! receivers' iterators. Written once, over [`Push`] and [`Pop`].

use super::rule::{Pop, Push};
use super::shell::Flavor;
use super::{Receiver, Sender};
use crate::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::ShmSafe;
use core::time::Duration;

/// A flavor whose senders send values of one [`ShmSafe`] type (every
/// typed flavor, and [`broadcast`](crate::broadcast)).
pub trait TypedSend: Flavor<Tx: Push<Self::Msg>> {
    /// The message type.
    type Msg: ShmSafe;
}

/// A flavor whose messages are values of one [`ShmSafe`] type, each
/// received once: spsc, mpsc, mpmc.
pub trait Typed: TypedSend<Rx: Pop<Self::Msg>> {}

impl<F: TypedSend> Sender<F> {
    /// Sends `value` if there is room, without blocking.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the channel is full (for mpsc: this
    /// sender's ring), [`TrySendError::Disconnected`] if every receiver is
    /// gone. Either way the message is handed back.
    pub fn try_send(&self, value: F::Msg) -> Result<(), TrySendError<F::Msg>> {
        self.attached().endpoint.try_send(value)
    }

    /// Sends `value`, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message once every receiver is gone:
    /// detached, or its process dead (noticed within a second). Before any
    /// receiver has attached, it fills the channel and then waits.
    #[inline(always)]
    pub fn send(&self, value: F::Msg) -> Result<(), SendError<F::Msg>> {
        self.attached()
            .endpoint
            .send(value, None)
            .map_err(|err| SendError(err.into_inner()))
    }

    /// Sends `value`, waiting at most `timeout` while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] if there was no room in time,
    /// [`SendTimeoutError::Disconnected`] if every receiver is gone (a dead
    /// one is noticed within a second, even by calls that keep timing out).
    #[inline]
    pub fn send_timeout(
        &self,
        value: F::Msg,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<F::Msg>> {
        self.attached().endpoint.send(value, Some(timeout))
    }

    /// Sends as many of `values` as fit, in order, without blocking, and
    /// wakes the receivers once. Returns how many were sent: at least 1, or
    /// 0 if `values` is empty. (mpsc and spsc publish them with one store;
    /// in mpmc, other senders' messages may come between them.)
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if none fit, [`TrySendError::Disconnected`]
    /// if every receiver is gone.
    pub fn try_send_batch(&self, values: &[F::Msg]) -> Result<usize, TrySendError<()>> {
        self.attached().endpoint.try_send_batch(values)
    }

    /// Sends all of `values`, in order, waiting while the channel is full;
    /// each time there is room, publishes as many as fit at once.
    ///
    /// # Errors
    ///
    /// [`SendError`] holding how many were sent (and will be received) if
    /// every receiver is gone before all were.
    pub fn send_batch(&self, values: &[F::Msg]) -> Result<(), SendError<usize>> {
        self.attached()
            .endpoint
            .send_batch(values)
            .map_err(SendError)
    }
}

impl<F: Typed> Receiver<F> {
    /// Receives a message if one is waiting, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is waiting,
    /// [`TryRecvError::Disconnected`] if none is waiting and every sender
    /// that attached is gone (detached, or its process dead).
    pub fn try_recv(&self) -> Result<F::Msg, TryRecvError> {
        self.attached().endpoint.try_recv()
    }

    /// Receives a message, waiting until one arrives.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is empty and every sender that
    /// attached is gone: detached, or its process dead (noticed within a
    /// second). Before any sender has attached, it waits.
    #[inline(always)]
    pub fn recv(&self) -> Result<F::Msg, RecvError> {
        self.attached().endpoint.recv(None).map_err(|_| RecvError)
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if nothing arrived in time,
    /// [`RecvTimeoutError::Disconnected`] as for [`recv`](Self::recv) (a dead
    /// sender is noticed within a second, even by calls that keep timing
    /// out).
    #[inline]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<F::Msg, RecvTimeoutError> {
        self.attached().endpoint.recv(Some(timeout))
    }

    /// Receives as many waiting messages as fit in `out`, in order, without
    /// blocking, and wakes the senders once. Returns how many: at least 1,
    /// or 0 if `out` is empty. (mpsc takes them from the senders' rings in
    /// turn.)
    ///
    /// # Errors
    ///
    /// As for [`try_recv`](Self::try_recv).
    pub fn try_recv_batch(&self, out: &mut [F::Msg]) -> Result<usize, TryRecvError> {
        self.attached().endpoint.try_recv_batch(out)
    }

    /// Receives as many waiting messages as fit in `out`, waiting until at
    /// least one is there. Returns how many: at least 1, or 0 if `out` is
    /// empty.
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv).
    pub fn recv_batch(&self, out: &mut [F::Msg]) -> Result<usize, RecvError> {
        self.attached()
            .endpoint
            .recv_batch(out)
            .map_err(|_| RecvError)
    }

    /// A blocking iterator: yields messages until the channel is empty and
    /// every sender is gone.
    pub fn iter(&self) -> Iter<'_, F> {
        Iter { rx: self }
    }

    /// A non-blocking iterator: yields the messages waiting now.
    pub fn try_iter(&self) -> TryIter<'_, F> {
        TryIter { rx: self }
    }
}

/// A blocking iterator over a [`Receiver`]'s messages; see [`Receiver::iter`].
pub struct Iter<'a, F: Typed> {
    rx: &'a Receiver<F>,
}

/// A non-blocking iterator over a [`Receiver`]'s messages; see
/// [`Receiver::try_iter`].
pub struct TryIter<'a, F: Typed> {
    rx: &'a Receiver<F>,
}

/// An owning blocking iterator over a [`Receiver`]'s messages.
pub struct IntoIter<F: Typed> {
    rx: Receiver<F>,
}

// `Debug` without a bound on the message type: the receiver's needs none.
impl<F: Typed> core::fmt::Debug for Iter<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Iter").field("rx", self.rx).finish()
    }
}

impl<F: Typed> core::fmt::Debug for TryIter<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TryIter").field("rx", self.rx).finish()
    }
}

impl<F: Typed> core::fmt::Debug for IntoIter<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IntoIter").field("rx", &self.rx).finish()
    }
}

impl<F: Typed> Iterator for Iter<'_, F> {
    type Item = F::Msg;
    fn next(&mut self) -> Option<F::Msg> {
        self.rx.recv().ok()
    }
}

impl<F: Typed> Iterator for TryIter<'_, F> {
    type Item = F::Msg;
    fn next(&mut self) -> Option<F::Msg> {
        self.rx.try_recv().ok()
    }
}

impl<F: Typed> Iterator for IntoIter<F> {
    type Item = F::Msg;
    fn next(&mut self) -> Option<F::Msg> {
        self.rx.recv().ok()
    }
}

impl<'a, F: Typed> IntoIterator for &'a Receiver<F> {
    type Item = F::Msg;
    type IntoIter = Iter<'a, F>;
    fn into_iter(self) -> Iter<'a, F> {
        self.iter()
    }
}

impl<F: Typed> IntoIterator for Receiver<F> {
    type Item = F::Msg;
    type IntoIter = IntoIter<F>;
    fn into_iter(self) -> IntoIter<F> {
        IntoIter { rx: self }
    }
}
