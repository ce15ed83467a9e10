//! The contract every flavor keeps (DESIGN §4, §10), written once and run
//! for each: disconnection at once in both directions, in this process and
//! across processes; iteration; timeouts of zero, tiny and huge durations;
//! a SIGKILLed peer noticed by every kind of call; `exec` releasing a role;
//! a forked child refused the parent's roles; peers in another PID
//! namespace; foreign objects and bad modes refused; expired deadlines that
//! cost no barrier and no futex call.
//!
//! Each behaviour is a generic function over [`Chan`], instantiated for
//! every flavor by `contract!` (one test per flavor and behaviour, named
//! `<flavor>::<behaviour>`). Peers are this test binary run again, with the
//! flavor as their first argument.
//!
//! No timing is pass/fail: the library promises to notice a dead peer
//! within a second; the watchdogs here allow ten.

mod common;

use common::{sleep_forever, unique_name, wait_until, within, Cleanup, Peer};
use shmchan::{
    Error, Options, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Stats, TryRecvError,
    TrySendError,
};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

/// How long a survivor may take to notice a dead peer before the test
/// fails (the contract is 1 s).
const NOTICE: Duration = Duration::from_secs(10);
/// How long a live peer may take to do its part.
const PATIENCE: Duration = Duration::from_secs(30);

/// One flavor, seen through `u64` messages (for `bytes`, their 8 bytes), with
/// std's error shapes.
trait Chan: Sized + 'static {
    const FLAVOR: &'static str;
    type Tx: Send + 'static;
    type Rx: Send + 'static;
    fn create_rx(name: &str, options: &Options) -> Result<Self::Rx, Error>;
    fn create_tx(name: &str, options: &Options) -> Result<Self::Tx, Error>;
    fn open_rx(name: &str) -> Result<Self::Rx, Error>;
    fn open_tx(name: &str) -> Result<Self::Tx, Error>;
    fn try_send(tx: &Self::Tx, value: u64) -> Result<(), TrySendError<u64>>;
    fn send(tx: &Self::Tx, value: u64) -> Result<(), SendError<u64>>;
    fn send_timeout(
        tx: &Self::Tx,
        value: u64,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<u64>>;
    fn try_recv(rx: &mut Self::Rx) -> Result<u64, TryRecvError>;
    fn recv(rx: &mut Self::Rx) -> Result<u64, RecvError>;
    fn recv_timeout(rx: &mut Self::Rx, timeout: Duration) -> Result<u64, RecvTimeoutError>;
    /// `iter()`, to its end.
    fn iter(rx: &Self::Rx) -> Vec<u64>;
    /// `try_iter()`, to its end.
    fn try_iter(rx: &Self::Rx) -> Vec<u64>;
    fn stats(rx: &Self::Rx) -> Stats;
    fn stats_tx(tx: &Self::Tx) -> Stats;
    /// Whether a receiver that attaches while no other is attached gets
    /// what was sent before it: a queue's messages wait for a receiver,
    /// while a broadcast receiver starts at the next message sent (only the
    /// first receiver ever gets what came before).
    const LATE_RECEIVERS_GET_THE_BACKLOG: bool = true;
    /// Options for a channel that holds `messages` of ours (for `bytes`, a
    /// ring of as many 16-byte records).
    fn options(messages: usize) -> Options {
        Options::new().capacity(messages)
    }
}

/// A receive error of a typed flavor, as std's: broadcast's add `Lagged`,
/// which its default `Block` mode never reports.
trait IntoStd<E> {
    fn into_std(self) -> E;
}

impl<E> IntoStd<E> for E {
    fn into_std(self) -> E {
        self
    }
}

impl IntoStd<TryRecvError> for shmchan::broadcast::TryRecvError {
    fn into_std(self) -> TryRecvError {
        match self {
            Self::Empty => TryRecvError::Empty,
            Self::Disconnected => TryRecvError::Disconnected,
            Self::Lagged(n) => panic!("lapped by {n} in block mode"),
        }
    }
}

impl IntoStd<RecvError> for shmchan::broadcast::RecvError {
    fn into_std(self) -> RecvError {
        match self {
            Self::Disconnected => RecvError,
            Self::Lagged(n) => panic!("lapped by {n} in block mode"),
        }
    }
}

impl IntoStd<RecvTimeoutError> for shmchan::broadcast::RecvTimeoutError {
    fn into_std(self) -> RecvTimeoutError {
        match self {
            Self::Timeout => RecvTimeoutError::Timeout,
            Self::Disconnected => RecvTimeoutError::Disconnected,
            Self::Lagged(n) => panic!("lapped by {n} in block mode"),
        }
    }
}

/// A typed flavor's `Chan` (its errors through [`IntoStd`]), with `$item`s
/// of its own.
macro_rules! typed_chan {
    ($chan:ident, $module:ident $(, $item:item)*) => {
        struct $chan;
        impl Chan for $chan {
            const FLAVOR: &'static str = stringify!($module);
            $($item)*
            type Tx = shmchan::$module::Sender<u64>;
            type Rx = shmchan::$module::Receiver<u64>;
            fn create_rx(name: &str, options: &Options) -> Result<Self::Rx, Error> {
                shmchan::$module::Receiver::create_with(name, options)
            }
            fn create_tx(name: &str, options: &Options) -> Result<Self::Tx, Error> {
                shmchan::$module::Sender::create_with(name, options)
            }
            fn open_rx(name: &str) -> Result<Self::Rx, Error> {
                shmchan::$module::Receiver::open(name)
            }
            fn open_tx(name: &str) -> Result<Self::Tx, Error> {
                shmchan::$module::Sender::open(name)
            }
            fn try_send(tx: &Self::Tx, value: u64) -> Result<(), TrySendError<u64>> {
                tx.try_send(value)
            }
            fn send(tx: &Self::Tx, value: u64) -> Result<(), SendError<u64>> {
                tx.send(value)
            }
            fn send_timeout(
                tx: &Self::Tx,
                value: u64,
                timeout: Duration,
            ) -> Result<(), SendTimeoutError<u64>> {
                tx.send_timeout(value, timeout)
            }
            fn try_recv(rx: &mut Self::Rx) -> Result<u64, TryRecvError> {
                rx.try_recv().map_err(IntoStd::into_std)
            }
            fn recv(rx: &mut Self::Rx) -> Result<u64, RecvError> {
                rx.recv().map_err(IntoStd::into_std)
            }
            fn recv_timeout(rx: &mut Self::Rx, timeout: Duration) -> Result<u64, RecvTimeoutError> {
                rx.recv_timeout(timeout).map_err(IntoStd::into_std)
            }
            fn iter(rx: &Self::Rx) -> Vec<u64> {
                rx.iter().collect()
            }
            fn try_iter(rx: &Self::Rx) -> Vec<u64> {
                rx.try_iter().collect()
            }
            fn stats(rx: &Self::Rx) -> Stats {
                rx.stats()
            }
            fn stats_tx(tx: &Self::Tx) -> Stats {
                tx.stats()
            }
        }
    };
}

typed_chan!(Spsc, spsc);
typed_chan!(Mpsc, mpsc);
typed_chan!(Mpmc, mpmc);
// Block mode (the default): no receiver is ever lapped.
typed_chan!(
    Broadcast,
    broadcast,
    const LATE_RECEIVERS_GET_THE_BACKLOG: bool = false;
);

struct Bytes;

fn decode(message: &[u8]) -> u64 {
    u64::from_le_bytes(message.try_into().expect("an 8-byte message"))
}

impl Chan for Bytes {
    const FLAVOR: &'static str = "bytes";
    type Tx = shmchan::bytes::Sender;
    type Rx = shmchan::bytes::Receiver;
    fn create_rx(name: &str, options: &Options) -> Result<Self::Rx, Error> {
        shmchan::bytes::Receiver::create_with(name, options)
    }
    fn create_tx(name: &str, options: &Options) -> Result<Self::Tx, Error> {
        shmchan::bytes::Sender::create_with(name, options)
    }
    fn open_rx(name: &str) -> Result<Self::Rx, Error> {
        shmchan::bytes::Receiver::open(name)
    }
    fn open_tx(name: &str) -> Result<Self::Tx, Error> {
        shmchan::bytes::Sender::open(name)
    }
    fn try_send(tx: &Self::Tx, value: u64) -> Result<(), TrySendError<u64>> {
        tx.try_send(&value.to_le_bytes()).map_err(|err| match err {
            shmchan::bytes::TrySendError::Full => TrySendError::Full(value),
            shmchan::bytes::TrySendError::Disconnected => TrySendError::Disconnected(value),
            shmchan::bytes::TrySendError::TooLarge => panic!("8 bytes too large"),
        })
    }
    fn send(tx: &Self::Tx, value: u64) -> Result<(), SendError<u64>> {
        tx.send(&value.to_le_bytes()).map_err(|err| match err {
            shmchan::bytes::SendError::Disconnected => SendError(value),
            shmchan::bytes::SendError::TooLarge => panic!("8 bytes too large"),
        })
    }
    fn send_timeout(
        tx: &Self::Tx,
        value: u64,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<u64>> {
        tx.send_timeout(&value.to_le_bytes(), timeout)
            .map_err(|err| match err {
                shmchan::bytes::SendTimeoutError::Timeout => SendTimeoutError::Timeout(value),
                shmchan::bytes::SendTimeoutError::Disconnected => {
                    SendTimeoutError::Disconnected(value)
                }
                shmchan::bytes::SendTimeoutError::TooLarge => panic!("8 bytes too large"),
            })
    }
    fn try_recv(rx: &mut Self::Rx) -> Result<u64, TryRecvError> {
        rx.try_recv().map(|message| decode(&message))
    }
    fn recv(rx: &mut Self::Rx) -> Result<u64, RecvError> {
        rx.recv().map(|message| decode(&message))
    }
    fn recv_timeout(rx: &mut Self::Rx, timeout: Duration) -> Result<u64, RecvTimeoutError> {
        rx.recv_timeout(timeout).map(|message| decode(&message))
    }
    fn iter(rx: &Self::Rx) -> Vec<u64> {
        rx.iter().map(|message| decode(&message)).collect()
    }
    fn try_iter(rx: &Self::Rx) -> Vec<u64> {
        rx.try_iter().map(|message| decode(&message)).collect()
    }
    fn stats(rx: &Self::Rx) -> Stats {
        rx.stats()
    }
    fn stats_tx(tx: &Self::Tx) -> Stats {
        tx.stats()
    }
    fn options(messages: usize) -> Options {
        Options::new().capacity((messages * 16).max(64))
    }
}

/// The serde flavor, carrying `u64`s (postcard varints).
#[cfg(feature = "serde")]
struct Serde;

#[cfg(feature = "serde")]
impl Chan for Serde {
    const FLAVOR: &'static str = "serde";
    type Tx = shmchan::serde::Sender<u64>;
    type Rx = shmchan::serde::Receiver<u64>;
    fn create_rx(name: &str, options: &Options) -> Result<Self::Rx, Error> {
        shmchan::serde::Receiver::create_with(name, options)
    }
    fn create_tx(name: &str, options: &Options) -> Result<Self::Tx, Error> {
        shmchan::serde::Sender::create_with(name, options)
    }
    fn open_rx(name: &str) -> Result<Self::Rx, Error> {
        shmchan::serde::Receiver::open(name)
    }
    fn open_tx(name: &str) -> Result<Self::Tx, Error> {
        shmchan::serde::Sender::open(name)
    }
    fn try_send(tx: &Self::Tx, value: u64) -> Result<(), TrySendError<u64>> {
        use shmchan::serde::TrySendError as E;
        tx.try_send(&value).map_err(|err| match err {
            E::Full => TrySendError::Full(value),
            E::Disconnected => TrySendError::Disconnected(value),
            other => panic!("a u64 refused: {other}"),
        })
    }
    fn send(tx: &Self::Tx, value: u64) -> Result<(), SendError<u64>> {
        tx.send(&value).map_err(|err| match err {
            shmchan::serde::SendError::Disconnected => SendError(value),
            other => panic!("a u64 refused: {other}"),
        })
    }
    fn send_timeout(
        tx: &Self::Tx,
        value: u64,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<u64>> {
        use shmchan::serde::SendTimeoutError as E;
        tx.send_timeout(&value, timeout).map_err(|err| match err {
            E::Timeout => SendTimeoutError::Timeout(value),
            E::Disconnected => SendTimeoutError::Disconnected(value),
            other => panic!("a u64 refused: {other}"),
        })
    }
    fn try_recv(rx: &mut Self::Rx) -> Result<u64, TryRecvError> {
        use shmchan::serde::TryRecvError as E;
        rx.try_recv().map_err(|err| match err {
            E::Empty => TryRecvError::Empty,
            E::Disconnected => TryRecvError::Disconnected,
            E::Decode(err) => panic!("{err}"),
        })
    }
    fn recv(rx: &mut Self::Rx) -> Result<u64, RecvError> {
        rx.recv().map_err(|err| match err {
            shmchan::serde::RecvError::Disconnected => RecvError,
            shmchan::serde::RecvError::Decode(err) => panic!("{err}"),
        })
    }
    fn recv_timeout(rx: &mut Self::Rx, timeout: Duration) -> Result<u64, RecvTimeoutError> {
        use shmchan::serde::RecvTimeoutError as E;
        rx.recv_timeout(timeout).map_err(|err| match err {
            E::Timeout => RecvTimeoutError::Timeout,
            E::Disconnected => RecvTimeoutError::Disconnected,
            E::Decode(err) => panic!("{err}"),
        })
    }
    fn iter(rx: &Self::Rx) -> Vec<u64> {
        rx.iter().collect()
    }
    fn try_iter(rx: &Self::Rx) -> Vec<u64> {
        rx.try_iter().collect()
    }
    fn stats(rx: &Self::Rx) -> Stats {
        rx.stats()
    }
    fn stats_tx(tx: &Self::Tx) -> Stats {
        tx.stats()
    }
    /// A ring of as many 16-byte records (a varint below 2^56 and its
    /// header fit in 16).
    fn options(messages: usize) -> Options {
        Options::new().capacity((messages * 16).max(64))
    }
}

/// Runs `body` with the [`Chan`] named `flavor`.
macro_rules! with_flavor {
    ($flavor:expr, $chan:ident => $body:expr) => {
        match $flavor {
            "spsc" => {
                type $chan = Spsc;
                $body
            }
            "mpsc" => {
                type $chan = Mpsc;
                $body
            }
            "mpmc" => {
                type $chan = Mpmc;
                $body
            }
            "bytes" => {
                type $chan = Bytes;
                $body
            }
            "broadcast" => {
                type $chan = Broadcast;
                $body
            }
            #[cfg(feature = "serde")]
            "serde" => {
                type $chan = Serde;
                $body
            }
            other => panic!("no flavor {other}"),
        }
    };
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let name = args[1].as_str();
        let count: u64 = args.get(2).map_or(0, |n| n.parse().unwrap());
        with_flavor!(args[0].as_str(), C => peer_role::<C>(role, name, count))
    });
}

fn peer_role<C: Chan>(role: &str, name: &str, count: u64) {
    match role {
        // Sends 0..count, then drops the sender and exits.
        "send-then-exit" => {
            let tx = C::open_tx(name).unwrap();
            for i in 0..count {
                C::send(&tx, i).unwrap();
            }
        }
        // Sends 0..count, then holds the sender until killed.
        "send-then-hold" => {
            let tx = C::open_tx(name).unwrap();
            for i in 0..count {
                C::send(&tx, i).unwrap();
            }
            sleep_forever(tx)
        }
        // Receives `count` messages, then drops the receiver and exits.
        "recv-then-exit" => {
            let mut rx = C::open_rx(name).unwrap();
            for i in 0..count {
                assert_eq!(C::recv(&mut rx), Ok(i));
            }
        }
        // Receives `count` messages, then holds the receiver until killed.
        "recv-then-hold" => {
            let mut rx = C::open_rx(name).unwrap();
            for i in 0..count {
                assert_eq!(C::recv(&mut rx), Ok(i));
            }
            sleep_forever(rx)
        }
        // Sends 0..count, then becomes `sleep 600`, holding nothing.
        "send-then-exec" => {
            let tx = C::open_tx(name).unwrap();
            for i in 0..count {
                C::send(&tx, i).unwrap();
            }
            let err = Command::new("sleep").arg("600").exec();
            panic!("exec: {err} ({tx:p})", tx = &tx);
        }
        // Receives `count`, then becomes `sleep 600`, holding nothing.
        "recv-then-exec" => {
            let mut rx = C::open_rx(name).unwrap();
            for i in 0..count {
                assert_eq!(C::recv(&mut rx), Ok(i));
            }
            let err = Command::new("sleep").arg("600").exec();
            panic!("exec: {err} ({rx:p})", rx = &rx);
        }
        // Sends 0, forks a child that tries to use the inherited sender (and
        // must be refused) and drops it, then, the child gone, sends 1 and
        // exits.
        "send-fork-send" => {
            let tx = C::open_tx(name).unwrap();
            C::send(&tx, 0).unwrap();
            let code = fork_and_wait(|| {
                // SAFETY: in the child, the parent's `tx` is never used or
                // dropped again (the child `_exit`s): this copy is the only one.
                let tx = unsafe { std::ptr::read(&tx) };
                let refused = matches!(C::try_send(&tx, 100), Err(TrySendError::Disconnected(100)))
                    && C::send(&tx, 101).is_err()
                    && matches!(
                        C::send_timeout(&tx, 102, Duration::ZERO),
                        Err(SendTimeoutError::Disconnected(102))
                    );
                drop(tx);
                i32::from(!refused)
            });
            assert_eq!(code, 0, "the forked child could use its parent's sender");
            C::send(&tx, 1).unwrap();
        }
        // Receives 0, forks a child that tries to receive through the
        // inherited receiver (and must be refused) and drops it, then, the
        // child gone, receives 1 and 2 and exits.
        "recv-fork-recv" => {
            let mut rx = C::open_rx(name).unwrap();
            assert_eq!(C::recv(&mut rx), Ok(0));
            assert_eq!(count, 0);
            let code = fork_and_wait(|| {
                // SAFETY: as for the sender above.
                let mut rx = unsafe { std::ptr::read(&rx) };
                let refused = matches!(C::try_recv(&mut rx), Err(TryRecvError::Disconnected))
                    && matches!(
                        C::recv_timeout(&mut rx, Duration::ZERO),
                        Err(RecvTimeoutError::Disconnected)
                    );
                drop(rx);
                i32::from(!refused)
            });
            assert_eq!(code, 0, "the forked child could use its parent's receiver");
            assert_eq!(C::recv(&mut rx), Ok(1));
            assert_eq!(C::recv(&mut rx), Ok(2));
        }
        // Sends `count` messages and receives them back on a second
        // channel, both ends here, polling with expired deadlines between
        // "BEGIN" and "END" on stderr (see `expired_deadlines_cost_no_futex_and_no_barrier`).
        "expired-deadlines" => {
            let mut rx = C::create_rx(name, &C::options(4)).unwrap();
            let tx = C::open_tx(name).unwrap();
            while C::try_send(&tx, 7).is_ok() {}
            marker("BEGIN");
            for _ in 0..count {
                assert!(matches!(
                    C::send_timeout(&tx, 8, Duration::ZERO),
                    Err(SendTimeoutError::Timeout(8))
                ));
            }
            while C::try_recv(&mut rx).is_ok() {}
            for _ in 0..count {
                assert_eq!(
                    C::recv_timeout(&mut rx, Duration::ZERO),
                    Err(RecvTimeoutError::Timeout)
                );
            }
            marker("END");
        }
        other => panic!("unknown role {other}"),
    }
}

/// Writes `text` to stderr in one `write(2)`, for a tracer to see.
fn marker(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{text}\n").as_bytes());
}

/// Forks; the child runs `child` and `_exit`s with its result; the parent
/// waits and returns the child's exit code. The peer process is single
/// threaded while it forks (the test harness ran it with one test thread).
fn fork_and_wait(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: fork(2) in a peer that runs one test on one thread; the child
    // only runs `child` (which uses no lock another thread could hold) and
    // `_exit`s without running the parent's destructors.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(2);
        // SAFETY: ends the child without unwinding into the parent's frames.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child, writing its status to a live int.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status),
        "the forked child died: {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

/// A fresh name, removed when the test ends.
fn fresh(tag: &str) -> (Cleanup, String) {
    let name = unique_name(tag);
    (Cleanup(name.clone()), name)
}

fn spawn<C: Chan>(role: &str, name: &str, count: u64) -> Peer {
    Peer::spawn(role, &[C::FLAVOR, name, &count.to_string()])
}

// ---------------------------------------------------------------------------
// The behaviours.

/// In one process: the first send after the last receiver dropped fails and
/// hands the message back, whatever the form of the call.
fn send_fails_at_once_after_the_last_receiver_drops<C: Chan>() {
    let (_cleanup, name) = fresh("contract-tx-at-once");
    let rx = C::create_rx(&name, &C::options(8)).unwrap();
    let tx = C::open_tx(&name).unwrap();
    C::send(&tx, 1).unwrap();
    drop(rx);
    assert_eq!(C::try_send(&tx, 2), Err(TrySendError::Disconnected(2)));
    assert_eq!(C::send(&tx, 3), Err(SendError(3)));
    assert_eq!(
        C::send_timeout(&tx, 4, Duration::ZERO),
        Err(SendTimeoutError::Disconnected(4))
    );
    assert_eq!(
        C::send_timeout(&tx, 5, Duration::MAX),
        Err(SendTimeoutError::Disconnected(5))
    );
    // A receiver that attaches later revives the channel.
    let mut again = C::open_rx(&name).unwrap();
    C::send(&tx, 6).unwrap();
    if C::LATE_RECEIVERS_GET_THE_BACKLOG {
        assert_eq!(C::recv(&mut again), Ok(1));
    }
    assert_eq!(C::recv(&mut again), Ok(6));
}

/// Across processes: a receiver that received and exited; the first send
/// after its exit fails.
fn send_fails_at_once_after_the_receiver_process_exits<C: Chan>() {
    let (_cleanup, name) = fresh("contract-tx-exit");
    let tx = C::create_tx(&name, &C::options(8)).unwrap();
    let peer = spawn::<C>("recv-then-exit", &name, 3);
    for i in 0..3 {
        C::send_timeout(&tx, i, PATIENCE).unwrap();
    }
    peer.finish(PATIENCE);
    assert_eq!(C::try_send(&tx, 9), Err(TrySendError::Disconnected(9)));
}

/// In one process: once the last sender dropped, the receiver gets what was
/// sent, then the first receive of the empty channel fails, whatever its
/// form; `iter` ends.
fn recv_fails_at_once_after_the_last_sender_drops<C: Chan>() {
    let (_cleanup, name) = fresh("contract-rx-at-once");
    let mut rx = C::create_rx(&name, &C::options(8)).unwrap();
    let tx = C::open_tx(&name).unwrap();
    for i in 0..3 {
        C::send(&tx, i).unwrap();
    }
    drop(tx);
    assert_eq!(C::try_recv(&mut rx), Ok(0));
    assert_eq!(C::recv_timeout(&mut rx, Duration::ZERO), Ok(1));
    assert_eq!(C::recv(&mut rx), Ok(2));
    assert_eq!(C::try_recv(&mut rx), Err(TryRecvError::Disconnected));
    assert_eq!(C::recv(&mut rx), Err(RecvError));
    assert_eq!(
        C::recv_timeout(&mut rx, Duration::ZERO),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(
        C::recv_timeout(&mut rx, Duration::MAX),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(C::iter(&rx), []);
    // A sender that attaches later revives the channel.
    let tx = C::open_tx(&name).unwrap();
    C::send(&tx, 7).unwrap();
    assert_eq!(C::try_recv(&mut rx), Ok(7));
}

/// Across processes: a sender that sent and exited; the receiver gets it
/// all, then the first receive after fails (not `Empty`).
fn recv_fails_at_once_after_the_sender_process_exits<C: Chan>() {
    let (_cleanup, name) = fresh("contract-rx-exit");
    let mut rx = C::create_rx(&name, &C::options(8)).unwrap();
    spawn::<C>("send-then-exit", &name, 5).finish(PATIENCE);
    assert_eq!(C::try_iter(&rx), [0, 1, 2, 3, 4]);
    assert_eq!(C::try_recv(&mut rx), Err(TryRecvError::Disconnected));
}

/// Before any sender attached, a receive waits (it does not report
/// disconnection); before any receiver attached, a sender fills the ring.
fn the_other_side_is_awaited_before_it_first_attaches<C: Chan>() {
    let (_cleanup, name) = fresh("contract-before");
    let mut rx = C::create_rx(&name, &C::options(8)).unwrap();
    assert_eq!(C::try_recv(&mut rx), Err(TryRecvError::Empty));
    assert_eq!(
        C::recv_timeout(&mut rx, Duration::from_millis(1)),
        Err(RecvTimeoutError::Timeout)
    );
    drop(rx);
    let (_cleanup, name) = fresh("contract-before-tx");
    let tx = C::create_tx(&name, &C::options(8)).unwrap();
    let mut sent = 0;
    while C::try_send(&tx, sent).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 8);
    assert_eq!(C::try_send(&tx, 99), Err(TrySendError::Full(99)));
    assert_eq!(
        C::send_timeout(&tx, 99, Duration::from_millis(1)),
        Err(SendTimeoutError::Timeout(99))
    );
}

/// `iter` yields everything sent, in order, and ends when the senders are
/// gone; `try_iter` yields what is waiting and ends at once.
fn iteration_ends_when_the_senders_are_gone<C: Chan>() {
    let (_cleanup, name) = fresh("contract-iter");
    let rx = C::create_rx(&name, &C::options(64)).unwrap();
    let tx = C::open_tx(&name).unwrap();
    assert_eq!(C::try_iter(&rx), []);
    for i in 0..3 {
        C::send(&tx, i).unwrap();
    }
    assert_eq!(C::try_iter(&rx), [0, 1, 2]);
    drop(tx);
    assert_eq!(C::iter(&rx), [], "the only sender is gone");
    // A sender in another process revives the channel; once it attached,
    // iteration runs until it is gone.
    let peer = spawn::<C>("send-then-exit", &name, 20);
    wait_until(PATIENCE, "the peer attached", || {
        let stats = C::stats(&rx);
        stats.sent > 3 || stats.endpoints.iter().any(|e| e.role == "sender")
    });
    let got = within(PATIENCE, "iterating to the end", move || C::iter(&rx));
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    peer.finish(PATIENCE);
}

/// Timeouts of zero, a microsecond and "for ever" (`Duration::MAX`, which
/// does not overflow) behave: a message waiting is taken by any of them,
/// an empty channel times out the finite ones.
fn timeouts_of_zero_tiny_and_huge_durations<C: Chan>() {
    let (_cleanup, name) = fresh("contract-timeouts");
    let mut rx = C::create_rx(&name, &C::options(8)).unwrap();
    let tx = C::open_tx(&name).unwrap();
    for timeout in [Duration::ZERO, Duration::from_micros(1)] {
        assert_eq!(
            C::recv_timeout(&mut rx, timeout),
            Err(RecvTimeoutError::Timeout)
        );
    }
    for (i, timeout) in [Duration::ZERO, Duration::from_micros(1), Duration::MAX]
        .into_iter()
        .enumerate()
    {
        C::send_timeout(&tx, i as u64, timeout).unwrap();
        assert_eq!(C::recv_timeout(&mut rx, timeout), Ok(i as u64));
    }
    while C::try_send(&tx, 0).is_ok() {}
    for timeout in [Duration::ZERO, Duration::from_micros(1)] {
        assert_eq!(
            C::send_timeout(&tx, 5, timeout),
            Err(SendTimeoutError::Timeout(5))
        );
    }
    // A huge timeout waits for a message that comes later.
    while C::try_recv(&mut rx).is_ok() {}
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        C::send(&tx, 42)
    });
    let waited = within(PATIENCE, "a receive with a huge timeout", move || {
        C::recv_timeout(&mut rx, Duration::from_secs(3600 * 24 * 365))
    });
    assert_eq!(waited, Ok(42));
    assert_eq!(sender.join().unwrap(), Ok(()));
}

/// The kinds of receiving call: each, repeated, must report a SIGKILLed
/// sender (whatever its timeout, zero included).
const RECV_KINDS: [&str; 5] = [
    "try_recv",
    "recv_timeout(0)",
    "recv_timeout(20µs)",
    "recv_timeout(1h)",
    "recv",
];

/// For each kind of receiving call: a sender process sends 2 and is
/// SIGKILLed; the receiver gets both, then that kind of call, repeated,
/// reports disconnection within the watchdog. The sender's slot can then be
/// taken again.
fn every_kind_of_receive_notices_a_killed_sender<C: Chan>() {
    for kind in RECV_KINDS {
        let (_cleanup, name) = fresh("contract-kill-tx");
        let mut rx = C::create_rx(&name, &C::options(8)).unwrap();
        let peer = spawn::<C>("send-then-hold", &name, 2);
        assert_eq!(C::recv_timeout(&mut rx, PATIENCE), Ok(0));
        assert_eq!(C::recv_timeout(&mut rx, PATIENCE), Ok(1));
        peer.kill();
        let mut rx = within(NOTICE, kind, move || loop {
            let gone = match kind {
                "try_recv" => C::try_recv(&mut rx) == Err(TryRecvError::Disconnected),
                "recv" => C::recv(&mut rx) == Err(RecvError),
                timed => {
                    let timeout = match timed {
                        "recv_timeout(0)" => Duration::ZERO,
                        "recv_timeout(20µs)" => Duration::from_micros(20),
                        _ => Duration::from_secs(3600),
                    };
                    C::recv_timeout(&mut rx, timeout) == Err(RecvTimeoutError::Disconnected)
                }
            };
            if gone {
                break rx;
            }
        });
        assert_eq!(C::try_recv(&mut rx), Err(TryRecvError::Disconnected));
        let tx = C::open_tx(&name).expect("the dead sender's slot is free again");
        C::send(&tx, 5).unwrap();
        assert_eq!(C::try_recv(&mut rx), Ok(5), "{kind}");
    }
}

/// The kinds of sending call.
const SEND_KINDS: [&str; 5] = [
    "try_send",
    "send_timeout(0)",
    "send_timeout(20µs)",
    "send_timeout(1h)",
    "send",
];

/// For each kind of sending call: a receiver process receives 1 and is
/// SIGKILLed; that kind of call, repeated (filling the ring on the way),
/// reports disconnection within the watchdog. The receiver's slot can then
/// be taken again, and gets what was sent after the one it took.
fn every_kind_of_send_notices_a_killed_receiver<C: Chan>() {
    for kind in SEND_KINDS {
        let (_cleanup, name) = fresh("contract-kill-rx");
        let tx = C::create_tx(&name, &C::options(8)).unwrap();
        let peer = spawn::<C>("recv-then-hold", &name, 1);
        C::send_timeout(&tx, 0, PATIENCE).unwrap();
        wait_until(PATIENCE, "the peer received", || {
            C::stats_tx(&tx).received >= 1
        });
        peer.kill();
        let tx = within(NOTICE, kind, move || {
            let mut next = 2;
            loop {
                let gone = match kind {
                    "try_send" => C::try_send(&tx, next) == Err(TrySendError::Disconnected(next)),
                    "send" => C::send(&tx, next) == Err(SendError(next)),
                    timed => {
                        let timeout = match timed {
                            "send_timeout(0)" => Duration::ZERO,
                            "send_timeout(20µs)" => Duration::from_micros(20),
                            _ => Duration::from_secs(3600),
                        };
                        C::send_timeout(&tx, next, timeout)
                            == Err(SendTimeoutError::Disconnected(next))
                    }
                };
                if gone {
                    break tx;
                }
                next += 1;
            }
        });
        assert_eq!(C::try_send(&tx, 0), Err(TrySendError::Disconnected(0)));
        let mut rx = C::open_rx(&name).expect("the dead receiver's slot is free again");
        if C::LATE_RECEIVERS_GET_THE_BACKLOG {
            assert_eq!(
                C::try_recv(&mut rx),
                Ok(2),
                "{kind}: what followed the taken one"
            );
        } else {
            C::send(&tx, 7).unwrap();
            assert_eq!(C::try_recv(&mut rx), Ok(7), "{kind}: the next one sent");
        }
    }
}

/// A process that calls `exec` gives up its roles at once: the other side
/// sees it gone, and its slot can be taken again, though the process (the
/// same pid, now `sleep`) lives on.
fn exec_releases_the_role<C: Chan>() {
    let (_cleanup, name) = fresh("contract-exec-tx");
    let mut rx = C::create_rx(&name, &C::options(8)).unwrap();
    let peer = spawn::<C>("send-then-exec", &name, 2);
    let mut rx = within(
        NOTICE + PATIENCE,
        "a receive after the sender's exec",
        move || {
            assert_eq!(C::recv(&mut rx), Ok(0));
            assert_eq!(C::recv(&mut rx), Ok(1));
            assert_eq!(C::recv(&mut rx), Err(RecvError));
            rx
        },
    );
    let tx = C::open_tx(&name).expect("the exec'd sender's slot is free");
    C::send(&tx, 2).unwrap();
    assert_eq!(C::try_recv(&mut rx), Ok(2));
    drop((tx, rx, peer));

    let (_cleanup, name) = fresh("contract-exec-rx");
    let tx = C::create_tx(&name, &C::options(8)).unwrap();
    let peer = spawn::<C>("recv-then-exec", &name, 1);
    C::send_timeout(&tx, 0, PATIENCE).unwrap();
    let tx = within(
        NOTICE + PATIENCE,
        "sends after the receiver's exec",
        move || {
            let mut next = 1;
            while C::send(&tx, next).is_ok() {
                next += 1;
            }
            tx
        },
    );
    let mut rx = C::open_rx(&name).expect("the exec'd receiver's slot is free");
    if C::LATE_RECEIVERS_GET_THE_BACKLOG {
        assert_eq!(C::try_recv(&mut rx), Ok(1));
    } else {
        assert_eq!(C::try_recv(&mut rx), Err(TryRecvError::Empty));
    }
    C::send(&tx, 100).unwrap();
    drop(peer);
}

/// A forked child inherits its parent's endpoint as memory, not as a role:
/// its sends and receives report disconnection, and its dropping the
/// endpoint leaves the parent's channel alone, the parent carrying on.
fn a_forked_child_is_refused_its_parents_roles<C: Chan>() {
    let (_cleanup, name) = fresh("contract-fork-tx");
    let mut rx = C::create_rx(&name, &C::options(8)).unwrap();
    spawn::<C>("send-fork-send", &name, 0).finish(PATIENCE);
    assert_eq!(
        C::try_iter(&rx),
        [0, 1],
        "nothing from the child, all from the parent"
    );
    assert_eq!(C::try_recv(&mut rx), Err(TryRecvError::Disconnected));
    drop(rx);

    let (_cleanup, name) = fresh("contract-fork-rx");
    let tx = C::create_tx(&name, &C::options(8)).unwrap();
    C::send(&tx, 0).unwrap();
    C::send(&tx, 1).unwrap();
    let peer = spawn::<C>("recv-fork-recv", &name, 0);
    // Once the peer took 1, its child has come and gone; its drop must not
    // have given the receiver's slot away.
    wait_until(PATIENCE, "the peer received 1", || {
        C::stats_tx(&tx).received >= 2
    });
    let stats = C::stats_tx(&tx);
    assert!(
        stats
            .endpoints
            .iter()
            .any(|e| e.role == "receiver" && e.alive),
        "{stats:?}"
    );
    assert_eq!(C::try_send(&tx, 2), Ok(()));
    peer.finish(PATIENCE);
}

/// Peers in another PID namespace (as in two containers sharing
/// `/dev/shm`): a sender whose pid means something else here is judged by
/// its lock, so its death is noticed and its slot freed. Skipped, saying
/// so, where the machine does not let us make a PID namespace.
fn a_peer_in_another_pid_namespace_is_judged_by_its_lock<C: Chan>() {
    let (_cleanup, name) = fresh("contract-pidns");
    let mut rx = C::create_rx(&name, &C::options(8)).unwrap();
    let Some(mut peer) = spawn_in_pid_namespace::<C>("send-then-hold", &name, 1) else {
        eprintln!(
            "skipped: unshare --pid --fork is not permitted here (no CAP_SYS_ADMIN, and no \
             unprivileged user namespaces)"
        );
        return;
    };
    assert_eq!(C::recv_timeout(&mut rx, PATIENCE), Ok(0));
    let stats = C::stats(&rx);
    let sender = stats
        .endpoints
        .iter()
        .find(|e| e.role == "sender")
        .unwrap_or_else(|| panic!("no sender in {stats:?}"));
    assert!(sender.alive, "{stats:?}");
    assert_eq!(
        sender.pid, 1,
        "the sender is pid 1 of its namespace, as it recorded itself"
    );
    peer.kill().expect("kill the namespace's parent");
    let _ = peer.wait();
    let (mut rx, result) = within(
        NOTICE,
        "a receive after the namespaced sender died",
        move || {
            let result = C::recv(&mut rx);
            (rx, result)
        },
    );
    assert_eq!(result, Err(RecvError));
    let tx = C::open_tx(&name).expect("the dead sender's slot is free");
    C::send(&tx, 9).unwrap();
    assert_eq!(C::try_recv(&mut rx), Ok(9));
}

/// Runs a peer as pid 1 of a new PID namespace, through `unshare`, which
/// SIGKILLs it when `unshare` itself dies; `None` if that is not permitted.
fn spawn_in_pid_namespace<C: Chan>(
    role: &str,
    name: &str,
    count: u64,
) -> Option<std::process::Child> {
    let exe = std::env::current_exe().unwrap();
    for extra in [&[][..], &["--user", "--map-root-user"][..]] {
        let probe = Command::new("unshare")
            .args(["--pid", "--fork"])
            .args(extra)
            .arg("true")
            .status();
        if !probe.is_ok_and(|status| status.success()) {
            continue;
        }
        let args = [C::FLAVOR, name, &count.to_string()].join("\u{1f}");
        let child = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child=SIGKILL"])
            .args(extra)
            .arg(&exe)
            .args([
                "--ignored",
                "--exact",
                "peer",
                "--nocapture",
                "--test-threads",
                "1",
                "-q",
            ])
            .env("SHMCHAN_TEST_ROLE", role)
            .env("SHMCHAN_TEST_ARGS", args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        return Some(child);
    }
    None
}

/// `create` over an object of the same name that is empty or all zeros
/// (another program's, as far as anyone can tell) refuses with
/// `AlreadyExists` and leaves it alone.
fn create_leaves_a_foreign_object_alone<C: Chan>() {
    let (_cleanup, name) = fresh("contract-foreign");
    let path = std::path::Path::new("/dev/shm").join(&name);
    let file = std::fs::File::create_new(&path).unwrap();
    file.set_len(4096).unwrap();
    for result in [
        C::create_rx(&name, &C::options(8)).map(drop),
        C::create_tx(&name, &C::options(8)).map(drop),
    ] {
        assert!(
            matches!(result, Err(Error::AlreadyExists { .. })),
            "{result:?}"
        );
    }
    assert!(path.exists(), "the foreign object was removed");
    assert_eq!(file.metadata().unwrap().len(), 4096, "and changed");
}

/// A mode that would lock the owner out is refused at `create`, saying why;
/// the owner's read and write bits suffice.
fn modes_without_owner_read_and_write_are_refused<C: Chan>() {
    for mode in [0o000, 0o200, 0o400, 0o066, 0o500] {
        let (_cleanup, name) = fresh("contract-mode");
        match C::create_rx(&name, &C::options(8).mode(mode)).map(drop) {
            Err(err @ Error::InvalidMode { .. }) => {
                assert!(err.to_string().contains("0o600"), "{err}")
            }
            other => panic!("mode {mode:o}: expected InvalidMode, got {other:?}"),
        }
        assert!(
            !common::segment_exists(&name),
            "mode {mode:o} left an object"
        );
    }
    let (_cleanup, name) = fresh("contract-mode-ok");
    let rx = C::create_rx(&name, &C::options(8).mode(0o600)).unwrap();
    assert_eq!(common::segment_mode(&name), 0o600);
    drop(rx);
}

/// A send or receive whose deadline has already passed makes no futex call
/// and issues no membarrier (only, at most once per 100 ms, the liveness
/// probe's `fcntl`). Traced with `strace`; skipped, saying so, without it.
fn expired_deadlines_cost_no_futex_and_no_barrier<C: Chan>() {
    let (_cleanup, name) = fresh("contract-expired");
    let trace = std::env::temp_dir().join(format!("{name}.strace"));
    let exe = std::env::current_exe().unwrap();
    let args = [C::FLAVOR, name.as_str(), "2000"].join("\u{1f}");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=futex,membarrier,write", "-o"])
        .arg(&trace)
        .arg(&exe)
        .args([
            "--ignored",
            "--exact",
            "peer",
            "--nocapture",
            "--test-threads",
            "1",
            "-q",
        ])
        .env("SHMCHAN_TEST_ROLE", "expired-deadlines")
        .env("SHMCHAN_TEST_ARGS", args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let Ok(status) = status else {
        eprintln!("skipped: strace is not installed");
        return;
    };
    let text = std::fs::read_to_string(&trace);
    let _ = std::fs::remove_file(&trace);
    if !status.success() {
        let text = text.unwrap_or_default();
        if text.contains("PTRACE") || text.is_empty() {
            eprintln!("skipped: strace cannot trace here ({status})");
            return;
        }
        panic!("the traced peer failed ({status}):\n{text}");
    }
    let text = text.unwrap();
    let thread = |line: &str| line.split_whitespace().next().unwrap_or("").to_owned();
    let begin = text
        .lines()
        .find(|line| line.contains("\"BEGIN\\n\""))
        .expect("the peer wrote BEGIN");
    let tid = thread(begin);
    let calls: Vec<&str> = text
        .lines()
        .filter(|line| thread(line) == tid)
        .skip_while(|line| !line.contains("\"BEGIN\\n\""))
        .take_while(|line| !line.contains("\"END\\n\""))
        .filter(|line| line.contains("futex(") || line.contains("membarrier("))
        .collect();
    assert!(
        calls.is_empty(),
        "4000 calls with expired deadlines made {} futex or membarrier calls: {:?}",
        calls.len(),
        &calls[..calls.len().min(5)]
    );
}

/// Instantiates every behaviour for every flavor: `spsc::send_fails_...`.
macro_rules! contract {
    ($($flavor:ident: $chan:ty),* $(,)?) => {$(
        mod $flavor {
            use super::*;

            #[test]
            fn send_fails_at_once_after_the_last_receiver_drops() {
                super::send_fails_at_once_after_the_last_receiver_drops::<$chan>();
            }
            #[test]
            fn send_fails_at_once_after_the_receiver_process_exits() {
                super::send_fails_at_once_after_the_receiver_process_exits::<$chan>();
            }
            #[test]
            fn recv_fails_at_once_after_the_last_sender_drops() {
                super::recv_fails_at_once_after_the_last_sender_drops::<$chan>();
            }
            #[test]
            fn recv_fails_at_once_after_the_sender_process_exits() {
                super::recv_fails_at_once_after_the_sender_process_exits::<$chan>();
            }
            #[test]
            fn the_other_side_is_awaited_before_it_first_attaches() {
                super::the_other_side_is_awaited_before_it_first_attaches::<$chan>();
            }
            #[test]
            fn iteration_ends_when_the_senders_are_gone() {
                super::iteration_ends_when_the_senders_are_gone::<$chan>();
            }
            #[test]
            fn timeouts_of_zero_tiny_and_huge_durations() {
                super::timeouts_of_zero_tiny_and_huge_durations::<$chan>();
            }
            #[test]
            fn every_kind_of_receive_notices_a_killed_sender() {
                super::every_kind_of_receive_notices_a_killed_sender::<$chan>();
            }
            #[test]
            fn every_kind_of_send_notices_a_killed_receiver() {
                super::every_kind_of_send_notices_a_killed_receiver::<$chan>();
            }
            #[test]
            fn exec_releases_the_role() {
                super::exec_releases_the_role::<$chan>();
            }
            #[test]
            fn a_forked_child_is_refused_its_parents_roles() {
                super::a_forked_child_is_refused_its_parents_roles::<$chan>();
            }
            #[test]
            fn a_peer_in_another_pid_namespace_is_judged_by_its_lock() {
                super::a_peer_in_another_pid_namespace_is_judged_by_its_lock::<$chan>();
            }
            #[test]
            fn create_leaves_a_foreign_object_alone() {
                super::create_leaves_a_foreign_object_alone::<$chan>();
            }
            #[test]
            fn modes_without_owner_read_and_write_are_refused() {
                super::modes_without_owner_read_and_write_are_refused::<$chan>();
            }
            #[test]
            fn expired_deadlines_cost_no_futex_and_no_barrier() {
                super::expired_deadlines_cost_no_futex_and_no_barrier::<$chan>();
            }
        }
    )*};
}

contract!(spsc: Spsc, mpsc: Mpsc, mpmc: Mpmc, bytes: Bytes, broadcast: Broadcast);
#[cfg(feature = "serde")]
contract!(serde: Serde);
