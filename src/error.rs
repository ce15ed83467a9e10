//! Errors: the `std::sync::mpsc`-shaped errors of sending and receiving,
//! each returning the message to the caller, and [`Error`], for creating and
//! opening a channel, whose messages say what to do next.

use core::fmt;
use std::io;

/// An error returned from [`send`](crate::spsc::Sender::send): every
/// receiver is gone, so the message could never be received. It is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// An error returned from [`try_send`](crate::spsc::Sender::try_send).
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full; the message is handed back.
    Full(T),
    /// Every receiver is gone; the message is handed back.
    Disconnected(T),
}

/// An error returned from [`send_timeout`](crate::spsc::Sender::send_timeout).
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the timeout; the message is handed back.
    Timeout(T),
    /// Every receiver is gone; the message is handed back.
    Disconnected(T),
}

/// An error returned from [`recv`](crate::spsc::Receiver::recv): the
/// channel is empty and every sender is gone.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// An error returned from [`try_recv`](crate::spsc::Receiver::try_recv).
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// The channel is empty now; a sender may still send.
    Empty,
    /// The channel is empty and every sender is gone.
    Disconnected,
}

/// An error returned from [`recv_timeout`](crate::spsc::Receiver::recv_timeout).
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the timeout.
    Timeout,
    /// The channel is empty and every sender is gone.
    Disconnected,
}

impl<T> SendError<T> {
    /// The message that could not be sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TrySendError<T> {
    /// The message that could not be sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(t) | Self::Disconnected(t) => t,
        }
    }

    /// Whether the send failed because the channel was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the send failed because every receiver was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

impl<T> SendTimeoutError<T> {
    /// The message that could not be sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Timeout(t) | Self::Disconnected(t) => t,
        }
    }

    /// Whether the send failed because the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// Whether the send failed because every receiver was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

impl TryRecvError {
    /// Whether the channel was merely empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }

    /// Whether every sender was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected)
    }
}

impl RecvTimeoutError {
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    /// Whether every sender was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected)
    }
}

// `Debug` without a `T: Debug` bound, as in std: the message is elided.
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError { .. }")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("sending on a full channel"),
            Self::Disconnected(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("timed out waiting on send operation"),
            Self::Disconnected(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel")
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("receiving on an empty channel"),
            Self::Disconnected => f.write_str("receiving on an empty and closed channel"),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting on receive operation"),
            Self::Disconnected => f.write_str("channel is empty and sending half is closed"),
        }
    }
}

impl<T> std::error::Error for SendError<T> {}
impl<T> std::error::Error for TrySendError<T> {}
impl<T> std::error::Error for SendTimeoutError<T> {}
impl std::error::Error for RecvError {}
impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(err: SendError<T>) -> Self {
        Self::Disconnected(err.0)
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(err: SendError<T>) -> Self {
        Self::Disconnected(err.0)
    }
}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        Self::Disconnected
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        Self::Disconnected
    }
}

/// Why a channel could not be created or opened.
///
/// Every variant names the channel; its `Display` says what went wrong and
/// what to do about it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The name is not 1 to 200 characters of `[A-Za-z0-9._-]` with an
    /// optional leading `/`.
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The capacity is 0, or too large to map.
    InvalidCapacity {
        /// The capacity as given.
        requested: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The permission mode given to `create` would lock the owner out.
    InvalidMode {
        /// The mode as given.
        mode: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A live channel of that name exists.
    AlreadyExists {
        /// The channel's name.
        name: String,
        /// What holds it.
        detail: String,
    },
    /// No channel of that name exists.
    NotFound {
        /// The channel's name.
        name: String,
    },
    /// The role asked for is held by a live endpoint.
    Busy {
        /// The channel's name.
        name: String,
        /// The role (`"sender"`, `"receiver"`).
        role: &'static str,
        /// The process that holds it.
        pid: u32,
    },
    /// The channel exists but was made for another message type, flavor or
    /// version of shmchan.
    Incompatible {
        /// The channel's name.
        name: String,
        /// What was expected and what was found.
        detail: String,
    },
    /// The segment's contents contradict themselves: it was damaged, or
    /// its creator died before finishing it.
    Corrupt {
        /// The channel's name.
        name: String,
        /// What is inconsistent.
        detail: String,
    },
    /// The endpoint was inherited through `fork`: it belongs to the parent
    /// process, and this process may not use it.
    Forked {
        /// The channel's name.
        name: String,
    },
    /// A system call failed.
    Io {
        /// The channel's name.
        name: String,
        /// What was being done.
        op: &'static str,
        /// The system's error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { name, reason } => write!(
                f,
                "invalid channel name {name:?}: {reason}; use 1 to 200 characters of \
                 A-Z, a-z, 0-9, '.', '_' and '-', optionally after one leading '/'"
            ),
            Self::InvalidCapacity { requested, reason } => {
                write!(f, "invalid capacity {requested}: {reason}")
            }
            Self::InvalidMode { mode, reason } => {
                write!(f, "invalid mode {mode:#o}: {reason}")
            }
            Self::AlreadyExists { name, detail } => write!(
                f,
                "channel {name:?} already exists ({detail}); open it instead of creating it, \
                 pick another name, or remove it with shmchan::unlink({name:?}) once nothing uses it"
            ),
            Self::NotFound { name } => write!(
                f,
                "no channel named {name:?}; create it first (for example with \
                 Receiver::create), or check the name"
            ),
            Self::Busy { name, role, pid } => write!(
                f,
                "the {role} of channel {name:?} is held by process {pid}; \
                 only one may be attached at a time: drop it there, or wait for that process to exit"
            ),
            Self::Incompatible { name, detail } => {
                write!(f, "channel {name:?} is incompatible with this endpoint: {detail}")
            }
            Self::Corrupt { name, detail } => write!(
                f,
                "channel {name:?} is corrupt: {detail}; remove it with \
                 shmchan::unlink({name:?}) and create it again"
            ),
            Self::Forked { name } => write!(
                f,
                "this endpoint of channel {name:?} was inherited through fork and belongs to the \
                 parent process; open the channel by name in this process instead"
            ),
            Self::Io { name, op, source } => {
                write!(f, "could not {op} for channel {name:?}: {source}")?;
                if source.kind() == io::ErrorKind::PermissionDenied {
                    f.write_str(
                        "; the segment belongs to another user or its mode forbids access \
                         (see the builder's mode option)",
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_hand_back_the_message() {
        assert_eq!(TrySendError::Full(5).into_inner(), 5);
        assert_eq!(SendTimeoutError::Disconnected(6).into_inner(), 6);
        assert_eq!(SendError(7).into_inner(), 7);
        let err: TrySendError<u8> = SendError(1).into();
        assert!(err.is_disconnected());
    }

    #[test]
    fn display_reads_as_a_sentence() {
        struct NotDebug;
        assert_eq!(format!("{:?}", TrySendError::Full(NotDebug)), "Full(..)");
        assert_eq!(RecvError.to_string(), "receiving on a closed channel");
        let busy = Error::Busy {
            name: "ticks".into(),
            role: "sender",
            pid: 42,
        };
        let text = busy.to_string();
        assert!(
            text.contains("process 42") && text.contains("sender"),
            "{text}"
        );
    }
}
