//! The exporter: drains a local channel onto a Zenoh key, keeping at most a
//! window of messages unacknowledged by the slowest importer.

use crate::local::{Limit, Source};
use crate::wire::{Frame, Hello, Upstream};
use crate::{control_key, random_id, Bridge, Error, Options, Shared};
use std::collections::HashMap;
use std::time::Duration;
use zenoh::handlers::{FifoChannel, FifoChannelHandler};
use zenoh::qos::CongestionControl;
use zenoh::sample::{Sample, SampleKind};
use zenoh::{Session, Wait};

/// How long one wait (for a message, an ack, an importer) lasts before the
/// exporter looks at its other inputs and its stop flag again.
const POLL: Duration = Duration::from_millis(20);

/// Starts draining `source` onto `key` of `session`, on a thread of its
/// own, until the returned [`Bridge`] is stopped or dropped.
///
/// Nothing is drained while no importer listens on `key`, and at most
/// [`Options::window`] messages are ever unacknowledged by the slowest
/// importer: the local sender is held back, not its messages dropped.
///
/// # Errors
///
/// [`Error::Channel`] if the channel's type cannot be read,
/// [`Error::Zenoh`] if `key` is not a valid key expression or Zenoh refuses
/// a declaration.
pub fn export<S: Source>(
    session: &Session,
    source: S,
    key: &str,
    options: &Options,
) -> Result<Bridge, Error> {
    let message_type = source.message_type()?;
    let exporter = Exporter::declare(session, key, options)?;
    let hello = Hello {
        epoch: random_id(),
        next: 0,
        window: options.window,
        message_type,
    };
    let name = format!("export {}", source.name());
    Bridge::spawn(name, move |shared| exporter.run(source, hello, shared))
}

/// The exporter's Zenoh declarations and its view of the importers.
struct Exporter {
    publisher: zenoh::pubsub::Publisher<'static>,
    acks: zenoh::pubsub::Subscriber<FifoChannelHandler<Sample>>,
    importers: zenoh::pubsub::Subscriber<FifoChannelHandler<Sample>>,
    options: Options,
    /// Each importer present, by identity, and the sequence number up to
    /// which it has acknowledged (never ahead of what was published);
    /// `None` until it accepts this channel's type with its first ack.
    acked: HashMap<u64, Option<u64>>,
}

impl Exporter {
    fn declare(session: &Session, key: &str, options: &Options) -> Result<Self, Error> {
        let publisher = session
            .declare_publisher(key.to_owned())
            // Lossless while connected: a full transport queue blocks the
            // publication instead of dropping it.
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(|err| Error::zenoh(&format!("publish on {key:?}"), err))?;
        let acks = session
            .declare_subscriber(control_key(key, "ack"))
            .with(FifoChannel::new(1024))
            .wait()
            .map_err(|err| Error::zenoh("subscribe to acknowledgements", err))?;
        let importers = session
            .liveliness()
            .declare_subscriber(control_key(key, "importer/*"))
            .history(true)
            .with(FifoChannel::new(64))
            .wait()
            .map_err(|err| Error::zenoh("watch for importers", err))?;
        Ok(Self {
            publisher,
            acks,
            importers,
            options: options.clone(),
            acked: HashMap::new(),
        })
    }

    fn run<S: Source>(
        mut self,
        mut source: S,
        mut hello: Hello,
        shared: &Shared,
    ) -> Result<(), Error> {
        let mut frame = Frame::new(source.fixed_size().unwrap_or(0));
        while !shared.stopping() {
            self.take_news(&hello, shared, Duration::ZERO)?;
            let Some(floor) = self.acked.values().flatten().min().copied() else {
                // No importer has accepted this channel: drain nothing, so
                // the local sender waits (and a refusing importer costs no
                // message).
                self.take_news(&hello, shared, POLL)?;
                continue;
            };
            let in_flight = hello.next - floor;
            if in_flight >= self.options.window {
                self.take_news(&hello, shared, POLL)?;
                continue;
            }
            frame.clear();
            let limit = Limit {
                messages: (self.options.window - in_flight) as usize,
                bytes: self.options.frame_bytes,
            };
            let n = source.drain(&mut frame, limit, POLL);
            if n == 0 {
                continue;
            }
            let sample = frame.seal(hello.epoch, hello.next).to_vec();
            self.publisher
                .put(sample)
                .wait()
                .map_err(|err| Error::zenoh("publish a frame", err))?;
            hello.next += n as u64;
            Shared::add(&shared.messages, n as u64);
            Shared::add(&shared.frames, 1);
        }
        Ok(())
    }

    /// Takes in importers that came or went and their acknowledgements,
    /// waiting at most `wait` for the first piece of news.
    fn take_news(&mut self, hello: &Hello, shared: &Shared, wait: Duration) -> Result<(), Error> {
        let mut waited = wait.is_zero();
        loop {
            if let Ok(Some(sample)) = self.importers.try_recv() {
                self.importer_news(&sample, hello, shared)?;
                continue;
            }
            if let Ok(Some(sample)) = self.acks.try_recv() {
                self.ack_news(&sample, hello, shared);
                continue;
            }
            if waited {
                return Ok(());
            }
            waited = true;
            // Acks are what a waiting exporter mostly waits for.
            if let Ok(Some(sample)) = self.acks.recv_timeout(wait) {
                self.ack_news(&sample, hello, shared);
            }
        }
    }

    /// An importer's liveliness token appeared or vanished.
    fn importer_news(
        &mut self,
        sample: &Sample,
        hello: &Hello,
        shared: &Shared,
    ) -> Result<(), Error> {
        let key = sample.key_expr().as_str();
        let Some(id) = key
            .rsplit('/')
            .next()
            .and_then(|id| u64::from_str_radix(id, 16).ok())
        else {
            Shared::add(&shared.malformed, 1);
            return Ok(());
        };
        match sample.kind() {
            SampleKind::Put => {
                // Not sent to until it accepts the type (see `ack_news`).
                self.acked.insert(id, None);
                // Before any data it is sent, per key in order: the type
                // and where the sequence stands.
                self.publisher
                    .put(hello.encode())
                    .wait()
                    .map_err(|err| Error::zenoh("introduce this channel", err))?;
            }
            SampleKind::Delete => {
                self.acked.remove(&id);
            }
        }
        // Relaxed: a statistic.
        self.count_peers(shared);
        Ok(())
    }

    /// Publishes how many importers have accepted this channel.
    fn count_peers(&self, shared: &Shared) {
        let accepted = self.acked.values().flatten().count() as u64;
        // Relaxed: a statistic.
        shared
            .peers
            .store(accepted, std::sync::atomic::Ordering::Relaxed);
    }

    fn ack_news(&mut self, sample: &Sample, hello: &Hello, shared: &Shared) {
        match Upstream::decode(&sample.payload().to_bytes()) {
            Ok(Upstream::Ack(ack)) if ack.epoch == hello.epoch => {
                if let Some(acked) = self.acked.get_mut(&ack.importer) {
                    // A first ack accepts the type. The importer owes
                    // nothing published before: what was in flight went to
                    // the others, or to nobody (a link lost and found
                    // again), and will never be acknowledged. Later acks
                    // move it on, never past what was published, whatever
                    // they say.
                    *acked = Some(match *acked {
                        None => hello.next,
                        Some(acked) => acked.max(ack.next.min(hello.next)),
                    });
                    self.count_peers(shared);
                }
            }
            // From an importer of a previous run of this exporter.
            Ok(Upstream::Ack(_)) => {}
            Ok(Upstream::Refusal(refusal)) => {
                *shared
                    .refusal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(refusal.reason);
            }
            Err(_) => Shared::add(&shared.malformed, 1),
        }
    }
}
