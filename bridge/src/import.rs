//! The importer: sends what arrives on a Zenoh key into a local channel,
//! after checking the exporter's message type, and acknowledges what it
//! delivered.

use crate::local::{Sink, SinkError};
use crate::wire::{Ack, Data, Downstream, Hello, Refusal};
use crate::{control_key, random_id, Bridge, Error, Options, Shared};
use shmchan::inspect::MessageType;
use std::time::Duration;
use zenoh::handlers::{FifoChannel, FifoChannelHandler};
use zenoh::liveliness::LivelinessToken;
use zenoh::qos::CongestionControl;
use zenoh::sample::Sample;
use zenoh::{Session, Wait};

/// How long one wait (for a sample, for room in the local channel) lasts
/// before the importer looks at its stop flag again.
const POLL: Duration = Duration::from_millis(20);

/// Starts sending what arrives on `key` of `session` into `sink`, on a
/// thread of its own, until the returned [`Bridge`] is stopped or dropped.
///
/// The exporter's message type is checked against `sink`'s before any
/// message is delivered; if they differ, the bridge stops with
/// [`Error::Channel`] holding [`shmchan::Error::Incompatible`], tells the
/// exporter why, and delivers nothing. (`options` matters only to
/// exporters; it is taken here for symmetry.)
///
/// # Errors
///
/// [`Error::Channel`] if the channel's type cannot be read,
/// [`Error::Zenoh`] if `key` is not a valid key expression or Zenoh refuses
/// a declaration.
pub fn import<K: Sink>(
    session: &Session,
    key: &str,
    sink: K,
    options: &Options,
) -> Result<Bridge, Error> {
    let _ = options;
    let local = sink.message_type()?;
    let id = random_id();
    let data = session
        .declare_subscriber(key.to_owned())
        .with(FifoChannel::new(256))
        .wait()
        .map_err(|err| Error::zenoh(&format!("subscribe to {key:?}"), err))?;
    let acks = session
        .declare_publisher(control_key(key, "ack"))
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(|err| Error::zenoh("publish acknowledgements", err))?;
    // Declared last: it is what tells exporters to start sending.
    let token = session
        .liveliness()
        .declare_token(control_key(key, &format!("importer/{id:016x}")))
        .wait()
        .map_err(|err| Error::zenoh("announce this importer", err))?;
    let importer = Importer {
        id,
        local,
        data,
        acks,
        _token: token,
        stream: None,
        acked: 0,
    };
    let name = format!("import {}", sink.name());
    Bridge::spawn(name, move |shared| importer.run(sink, shared))
}

/// Where the importer stands in one exporter's sequence.
struct Stream {
    epoch: u64,
    /// The sequence number of the next message to deliver.
    next: u64,
    /// Acknowledge at least this often.
    ack_every: u64,
}

struct Importer {
    id: u64,
    local: MessageType,
    data: zenoh::pubsub::Subscriber<FifoChannelHandler<Sample>>,
    acks: zenoh::pubsub::Publisher<'static>,
    /// Held while the importer runs: exporters see it and send to it.
    _token: LivelinessToken,
    /// The exporter whose introduction was accepted, if any.
    stream: Option<Stream>,
    /// What was last acknowledged.
    acked: u64,
}

impl Importer {
    fn run<K: Sink>(mut self, mut sink: K, shared: &Shared) -> Result<(), Error> {
        while !shared.stopping() {
            let sample = match self.data.try_recv() {
                Ok(Some(sample)) => sample,
                _ => {
                    // Caught up: say so, so an exporter waiting on its
                    // window goes on.
                    self.ack(false)?;
                    match self.data.recv_timeout(POLL) {
                        Ok(Some(sample)) => sample,
                        Ok(None) => continue,
                        Err(err) => return Err(Error::zenoh("receive", err)),
                    }
                }
            };
            let payload = sample.payload().to_bytes();
            match Downstream::decode(&payload) {
                Ok(Downstream::Hello(hello)) => self.hello(hello, &sink, shared)?,
                Ok(Downstream::Data(data)) => self.deliver(&data, &mut sink, shared)?,
                Err(_) => Shared::add(&shared.malformed, 1),
            }
        }
        Ok(())
    }

    /// An exporter's introduction: its type is checked once per epoch.
    fn hello<K: Sink>(&mut self, hello: Hello, sink: &K, shared: &Shared) -> Result<(), Error> {
        if self.stream.as_ref().is_some_and(|s| s.epoch == hello.epoch) {
            // Sent again: for another importer, or for us after the link
            // was lost (the exporter then forgot us). Accept again.
            return self.send_ack();
        }
        if let Err(err) = self.local.expect(sink.name(), &hello.message_type) {
            let refusal = Refusal {
                importer: self.id,
                epoch: hello.epoch,
                reason: err.to_string(),
            };
            // Best effort: the error is this importer's to report anyway.
            let _ = self.acks.put(refusal.encode()).wait();
            return Err(Error::Channel(err));
        }
        self.stream = Some(Stream {
            epoch: hello.epoch,
            next: hello.next,
            ack_every: (hello.window / 4).max(1),
        });
        // The first ack accepts the type: only now is data sent to us.
        self.send_ack()?;
        // Relaxed: a statistic.
        shared.peers.store(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Delivers a frame's messages that are new, in order, and counts any
    /// gap before them as lost.
    fn deliver<K: Sink>(
        &mut self,
        data: &Data<'_>,
        sink: &mut K,
        shared: &Shared,
    ) -> Result<(), Error> {
        let Some(stream) = self.stream.as_mut().filter(|s| s.epoch == data.epoch) else {
            // Not introduced (sent before this importer came, or by an
            // exporter whose introduction is still on its way): not ours.
            return Ok(());
        };
        if sink.fixed_size().unwrap_or(0) != data.size {
            Shared::add(&shared.malformed, 1);
            return Ok(());
        }
        if data.first > stream.next {
            Shared::add(&shared.lost, data.first - stream.next);
            stream.next = data.first;
        }
        Shared::add(&shared.frames, 1);
        for (seq, message) in (data.first..).zip(data.iter()) {
            // `Downstream::decode` walked the frame already.
            let Ok(message) = message else { break };
            if seq >= stream.next {
                // Never resent, so never a duplicate; but a frame from
                // before a gap is not delivered twice either.
                if !send(sink, message, shared)? {
                    return Ok(()); // stopping
                }
                stream.next = seq + 1;
                Shared::add(&shared.messages, 1);
            }
        }
        self.ack(true)
    }

    /// Acknowledges what was delivered, if there is news; when `lazily`,
    /// only every quarter window.
    fn ack(&mut self, lazily: bool) -> Result<(), Error> {
        let Some(stream) = &self.stream else {
            return Ok(());
        };
        let news = stream.next.saturating_sub(self.acked);
        if news == 0 || (lazily && news < stream.ack_every) {
            return Ok(());
        }
        self.send_ack()
    }

    /// Tells the exporter where this importer stands.
    fn send_ack(&mut self) -> Result<(), Error> {
        let Some(stream) = &self.stream else {
            return Ok(());
        };
        let ack = Ack {
            importer: self.id,
            epoch: stream.epoch,
            next: stream.next,
        };
        self.acks
            .put(ack.encode())
            .wait()
            .map_err(|err| Error::zenoh("acknowledge", err))?;
        self.acked = stream.next;
        Ok(())
    }
}

/// Sends one message into the local channel, waiting while it is full or
/// has no receiver. Returns `false` if the bridge was stopped first.
fn send<K: Sink>(sink: &mut K, message: &[u8], shared: &Shared) -> Result<bool, Error> {
    while !shared.stopping() {
        match sink.send(message, POLL) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            // No receiver now: keep the message for the next one.
            Err(SinkError::Closed) => std::thread::sleep(POLL),
            Err(SinkError::TooLarge { len, max }) => {
                return Err(Error::TooLarge {
                    channel: sink.name().to_owned(),
                    len,
                    max,
                })
            }
        }
    }
    Ok(false)
}
