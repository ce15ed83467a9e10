//! The local ends of a bridge: a [`Source`] the exporter drains and a
//! [`Sink`] the importer fills, implemented for every flavor's endpoints.

use crate::wire::Frame;
use shmchan::inspect::MessageType;
use shmchan::ShmSafe;
use std::time::Duration;

/// A channel's receiving end, as an exporter drains it.
pub trait Source: Send + 'static {
    /// The channel's name.
    fn name(&self) -> &str;

    /// What the channel carries.
    ///
    /// # Errors
    ///
    /// As [`shmchan::inspect::channel`].
    fn message_type(&self) -> Result<MessageType, shmchan::Error>;

    /// Bytes of every message, for a typed channel; `None` for `bytes` and
    /// serde channels, whose messages have any length.
    fn fixed_size(&self) -> Option<u32>;

    /// Appends to `frame` the messages ready now, within `limit`, waiting
    /// at most `timeout` for the first. Returns how many it appended: 0 when
    /// none came in time, or when the channel's senders are gone (after
    /// waiting `timeout`: a sender attaching later revives the channel).
    fn drain(&mut self, frame: &mut Frame, limit: Limit, timeout: Duration) -> usize;
}

/// A channel's sending end, as an importer fills it.
pub trait Sink: Send + 'static {
    /// The channel's name.
    fn name(&self) -> &str;

    /// What the channel carries.
    ///
    /// # Errors
    ///
    /// As [`shmchan::inspect::channel`].
    fn message_type(&self) -> Result<MessageType, shmchan::Error>;

    /// Bytes of every message, for a typed channel; `None` for `bytes` and
    /// serde channels, whose messages have any length.
    fn fixed_size(&self) -> Option<u32>;

    /// Sends one message, waiting at most `timeout` for room. Returns
    /// whether it was sent.
    ///
    /// # Errors
    ///
    /// [`SinkError::Closed`] while the channel has no receiver (it may get
    /// one later: try again), [`SinkError::TooLarge`] if the message can
    /// never fit.
    fn send(&mut self, message: &[u8], timeout: Duration) -> Result<bool, SinkError>;
}

/// How much one [`Source::drain`] may append: it stops before `messages`
/// messages, or once the frame holds `bytes` (the first message is always
/// taken whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Fewer messages than this.
    pub messages: usize,
    /// Bytes of messages after which no more are taken.
    pub bytes: usize,
}

impl Limit {
    /// Whether a frame holding `n` messages can take another.
    pub fn admits(&self, n: usize, frame: &Frame) -> bool {
        n < self.messages && frame.body_len() < self.bytes
    }
}

/// Why a [`Sink`] did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkError {
    /// Every receiver of the channel is gone, for now.
    Closed,
    /// The message is `len` bytes; the channel takes at most `max`.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The most the channel takes.
        max: usize,
    },
}

/// What the wait for a drain's first message found.
enum First {
    /// A message, appended.
    Got,
    /// None in time.
    Nothing,
    /// None, and the channel's senders are gone.
    Gone,
}

/// Every drain's shape: `first` appends the first message, waiting at most
/// `timeout`; `next` appends another if one is ready, within `limit`.
fn drain_with(
    frame: &mut Frame,
    limit: Limit,
    timeout: Duration,
    first: impl FnOnce(&mut Frame) -> First,
    mut next: impl FnMut(&mut Frame) -> bool,
) -> usize {
    match first(frame) {
        First::Got => {}
        First::Nothing => return 0,
        First::Gone => {
            // No sender: nothing will come until one attaches.
            std::thread::sleep(timeout);
            return 0;
        }
    }
    let mut n = 1;
    while limit.admits(n, frame) && next(frame) {
        n += 1;
    }
    n
}

/// [`drain_with`] for a typed receiver: `wait` for the first value,
/// `ready` for the others; `gone` tells a disconnection from a timeout.
fn drain_typed<T: ShmSafe, E>(
    frame: &mut Frame,
    limit: Limit,
    timeout: Duration,
    wait: impl FnOnce(Duration) -> Result<T, E>,
    mut ready: impl FnMut() -> Option<T>,
    gone: impl Fn(&E) -> bool,
) -> usize {
    let first = |frame: &mut Frame| match wait(timeout) {
        Ok(value) => {
            frame.push(shmchan::bytes_of(&value));
            First::Got
        }
        Err(err) if gone(&err) => First::Gone,
        Err(_) => First::Nothing,
    };
    let next = |frame: &mut Frame| {
        ready()
            .map(|value| frame.push(shmchan::bytes_of(&value)))
            .is_some()
    };
    drain_with(frame, limit, timeout, first, next)
}

/// Sends one typed message taken from its bytes.
fn send_typed<T: ShmSafe, E>(
    message: &[u8],
    send: impl FnOnce(T) -> Result<(), E>,
    timed_out: impl Fn(&E) -> bool,
) -> Result<bool, SinkError> {
    let Some(value) = shmchan::from_bytes::<T>(message) else {
        return Err(SinkError::TooLarge {
            len: message.len(),
            max: size_of::<T>(),
        });
    };
    match send(value) {
        Ok(()) => Ok(true),
        Err(err) if timed_out(&err) => Ok(false),
        Err(_) => Err(SinkError::Closed),
    }
}

macro_rules! typed_ends {
    ($($flavor:ident),*) => {$(
        impl<T: ShmSafe + Send + Sync> Source for shmchan::$flavor::Receiver<T> {
            fn name(&self) -> &str {
                shmchan::$flavor::Receiver::name(self)
            }

            fn message_type(&self) -> Result<MessageType, shmchan::Error> {
                Ok(MessageType::of::<T>())
            }

            fn fixed_size(&self) -> Option<u32> {
                Some(size_of::<T>() as u32)
            }

            fn drain(&mut self, frame: &mut Frame, limit: Limit, timeout: Duration) -> usize {
                drain_typed(
                    frame,
                    limit,
                    timeout,
                    |timeout| self.recv_timeout(timeout),
                    || self.try_recv().ok(),
                    |err| *err == shmchan::RecvTimeoutError::Disconnected,
                )
            }
        }
    )*};
}

typed_ends!(spsc, mpsc, mpmc);

macro_rules! typed_sinks {
    ($($flavor:ident),*) => {$(
        impl<T: ShmSafe + Send + Sync> Sink for shmchan::$flavor::Sender<T> {
            fn name(&self) -> &str {
                shmchan::$flavor::Sender::name(self)
            }

            fn message_type(&self) -> Result<MessageType, shmchan::Error> {
                Ok(MessageType::of::<T>())
            }

            fn fixed_size(&self) -> Option<u32> {
                Some(size_of::<T>() as u32)
            }

            fn send(&mut self, message: &[u8], timeout: Duration) -> Result<bool, SinkError> {
                send_typed(
                    message,
                    |value: T| self.send_timeout(value, timeout),
                    |err| matches!(err, shmchan::SendTimeoutError::Timeout(_)),
                )
            }
        }
    )*};
}

typed_sinks!(spsc, mpsc, mpmc, broadcast);

/// A broadcast receiver: a lag (possible only in `Overwrite` mode) is the
/// local channel's own loss, and the bridge carries on from the oldest
/// message kept.
impl<T: ShmSafe + Send + Sync> Source for shmchan::broadcast::Receiver<T> {
    fn name(&self) -> &str {
        shmchan::broadcast::Receiver::name(self)
    }

    fn message_type(&self) -> Result<MessageType, shmchan::Error> {
        Ok(MessageType::of::<T>())
    }

    fn fixed_size(&self) -> Option<u32> {
        Some(size_of::<T>() as u32)
    }

    fn drain(&mut self, frame: &mut Frame, limit: Limit, timeout: Duration) -> usize {
        use shmchan::broadcast::RecvTimeoutError;
        drain_typed(
            frame,
            limit,
            timeout,
            |timeout| self.recv_timeout(timeout),
            || loop {
                match self.try_recv() {
                    Ok(value) => return Some(value),
                    Err(shmchan::broadcast::TryRecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            },
            |err| *err == RecvTimeoutError::Disconnected,
        )
    }
}

/// Byte and serde channels: each message is carried as its bytes (a serde
/// channel's, as its encoding, undecoded).
impl Source for shmchan::bytes::Receiver {
    fn name(&self) -> &str {
        shmchan::bytes::Receiver::name(self)
    }

    fn message_type(&self) -> Result<MessageType, shmchan::Error> {
        Ok(shmchan::inspect::channel(self.name())?.message_type())
    }

    fn fixed_size(&self) -> Option<u32> {
        None
    }

    fn drain(&mut self, frame: &mut Frame, limit: Limit, timeout: Duration) -> usize {
        // The guards borrow the receiver, one at a time.
        let rx = core::cell::RefCell::new(self);
        let first = |frame: &mut Frame| match rx.borrow_mut().recv_timeout(timeout) {
            Ok(message) => {
                frame.push(&message);
                First::Got
            }
            Err(shmchan::RecvTimeoutError::Disconnected) => First::Gone,
            Err(shmchan::RecvTimeoutError::Timeout) => First::Nothing,
        };
        let next = |frame: &mut Frame| {
            rx.borrow_mut()
                .try_recv()
                .map(|message| frame.push(&message))
                .is_ok()
        };
        drain_with(frame, limit, timeout, first, next)
    }
}

impl Sink for shmchan::bytes::Sender {
    fn name(&self) -> &str {
        shmchan::bytes::Sender::name(self)
    }

    fn message_type(&self) -> Result<MessageType, shmchan::Error> {
        Ok(shmchan::inspect::channel(self.name())?.message_type())
    }

    fn fixed_size(&self) -> Option<u32> {
        None
    }

    fn send(&mut self, message: &[u8], timeout: Duration) -> Result<bool, SinkError> {
        use shmchan::bytes::SendTimeoutError;
        match self.send_timeout(message, timeout) {
            Ok(()) => Ok(true),
            Err(SendTimeoutError::Timeout) => Ok(false),
            Err(SendTimeoutError::Disconnected) => Err(SinkError::Closed),
            Err(SendTimeoutError::TooLarge) => Err(SinkError::TooLarge {
                len: message.len(),
                max: self.max_message_len(),
            }),
        }
    }
}

/// A typed channel reached without its type (what the command carries):
/// each message is its bytes, the channel's message size.
impl Source for shmchan::untyped::Receiver {
    fn name(&self) -> &str {
        shmchan::untyped::Receiver::name(self)
    }

    fn message_type(&self) -> Result<MessageType, shmchan::Error> {
        Ok(shmchan::untyped::Receiver::message_type(self).clone())
    }

    fn fixed_size(&self) -> Option<u32> {
        Some(shmchan::untyped::Receiver::message_type(self).size as u32)
    }

    fn drain(&mut self, frame: &mut Frame, limit: Limit, timeout: Duration) -> usize {
        let size = shmchan::untyped::Receiver::message_type(self).size as usize;
        let first = |frame: &mut Frame| {
            let mut found = First::Nothing;
            frame.try_push_with(size, |room| match self.recv_timeout(room, timeout) {
                Ok(()) => {
                    found = First::Got;
                    true
                }
                Err(shmchan::RecvTimeoutError::Disconnected) => {
                    found = First::Gone;
                    false
                }
                Err(shmchan::RecvTimeoutError::Timeout) => false,
            });
            found
        };
        let next =
            |frame: &mut Frame| frame.try_push_with(size, |room| self.try_recv(room).is_ok());
        drain_with(frame, limit, timeout, first, next)
    }
}

impl Sink for shmchan::untyped::Sender {
    fn name(&self) -> &str {
        shmchan::untyped::Sender::name(self)
    }

    fn message_type(&self) -> Result<MessageType, shmchan::Error> {
        Ok(shmchan::untyped::Sender::message_type(self).clone())
    }

    fn fixed_size(&self) -> Option<u32> {
        Some(shmchan::untyped::Sender::message_type(self).size as u32)
    }

    fn send(&mut self, message: &[u8], timeout: Duration) -> Result<bool, SinkError> {
        let size = shmchan::untyped::Sender::message_type(self).size as usize;
        if message.len() != size {
            return Err(SinkError::TooLarge {
                len: message.len(),
                max: size,
            });
        }
        match self.send_timeout(message, timeout) {
            Ok(()) => Ok(true),
            Err(shmchan::SendTimeoutError::Timeout(())) => Ok(false),
            Err(shmchan::SendTimeoutError::Disconnected(())) => Err(SinkError::Closed),
        }
    }
}
