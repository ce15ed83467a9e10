//! Bridges over channels named at run time, whatever their flavor: what the
//! `shmchan-bridge` command runs.

use crate::{export as export_source, import as import_sink, Bridge, Error, Options};
use shmchan::inspect;
use std::time::{Duration, Instant};
use zenoh::Session;

/// How long [`export`] and [`import`] wait for a channel that does not
/// exist yet (its producer or consumer may be starting too).
pub const WAIT_FOR_CHANNEL: Duration = Duration::from_secs(10);

/// Exports the channel `name`, taking its receiving end, whatever its
/// flavor: see [`crate::export`].
///
/// # Errors
///
/// [`Error::Channel`] if the channel does not appear within
/// [`WAIT_FOR_CHANNEL`] or cannot be opened (its receiver is held, say);
/// otherwise as [`crate::export`].
pub fn export(
    session: &Session,
    name: &str,
    key: &str,
    options: &Options,
) -> Result<Bridge, Error> {
    match flavor(name)? {
        "bytes" => export_source(session, shmchan::bytes::Receiver::open(name)?, key, options),
        "serde" => export_source(
            session,
            shmchan::bytes::Receiver::open_serde(name)?,
            key,
            options,
        ),
        // The typed flavors: spsc, mpsc, mpmc, broadcast.
        _ => export_source(
            session,
            shmchan::untyped::Receiver::open(name)?,
            key,
            options,
        ),
    }
}

/// Imports `key` into the channel `name`, taking a sending end of it,
/// whatever its flavor: see [`crate::import`].
///
/// # Errors
///
/// As [`export`], and as [`crate::import`].
pub fn import(
    session: &Session,
    key: &str,
    name: &str,
    options: &Options,
) -> Result<Bridge, Error> {
    match flavor(name)? {
        "bytes" => import_sink(session, key, shmchan::bytes::Sender::open(name)?, options),
        "serde" => import_sink(
            session,
            key,
            shmchan::bytes::Sender::open_serde(name)?,
            options,
        ),
        // The typed flavors: spsc, mpsc, mpmc, broadcast.
        _ => import_sink(session, key, shmchan::untyped::Sender::open(name)?, options),
    }
}

/// The flavor of channel `name`, waiting for it to be created.
fn flavor(name: &str) -> Result<&'static str, Error> {
    let give_up = Instant::now() + WAIT_FOR_CHANNEL;
    loop {
        match inspect::channel(name) {
            Ok(channel) => return Ok(channel.flavor),
            Err(shmchan::Error::NotFound { .. }) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => return Err(err.into()),
        }
    }
}
