//! Where a bridge's Zenoh session listens and connects.

use crate::Error;
use zenoh::Wait;

/// A Zenoh session's endpoints, in peer mode: no router needed.
///
/// ```no_run
/// let network = shmchan_zenoh::Network::new().listen("tcp/127.0.0.1:7447");
/// let session = network.open()?;
/// # Ok::<(), shmchan_zenoh::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    listen: Vec<String>,
    connect: Vec<String>,
    multicast_scouting: bool,
}

impl Network {
    /// No endpoints and no scouting: add at least one of each side.
    pub fn new() -> Self {
        Self::default()
    }

    /// Listens on `endpoint` (`tcp/127.0.0.1:7447`).
    pub fn listen(mut self, endpoint: impl Into<String>) -> Self {
        self.listen.push(endpoint.into());
        self
    }

    /// Connects to `endpoint`, and reconnects whenever the link is lost.
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.connect.push(endpoint.into());
        self
    }

    /// Finds peers by UDP multicast scouting too (off by default: a bridge
    /// talks to the endpoints it is given, not to whatever answers on the
    /// LAN).
    pub fn multicast_scouting(mut self, on: bool) -> Self {
        self.multicast_scouting = on;
        self
    }

    /// The Zenoh configuration these settings make.
    ///
    /// # Errors
    ///
    /// [`Error::Zenoh`] for an endpoint Zenoh cannot parse.
    pub fn config(&self) -> Result<zenoh::Config, Error> {
        let mut config = zenoh::Config::default();
        let json = |list: &[String]| {
            let quoted: Vec<String> = list.iter().map(|e| format!("{e:?}")).collect();
            format!("[{}]", quoted.join(","))
        };
        let settings = [
            ("mode", "\"peer\"".to_owned()),
            ("listen/endpoints", json(&self.listen)),
            ("connect/endpoints", json(&self.connect)),
            (
                "scouting/multicast/enabled",
                self.multicast_scouting.to_string(),
            ),
            // Gossip would make peers connect to whomever their peers
            // know; a bridge links exactly the endpoints it is given.
            ("scouting/gossip/enabled", "false".to_owned()),
        ];
        for (key, value) in settings {
            config
                .insert_json5(key, &value)
                .map_err(|err| Error::zenoh(&format!("set {key} to {value}"), err))?;
        }
        Ok(config)
    }

    /// Opens a Zenoh session with these settings.
    ///
    /// # Errors
    ///
    /// [`Error::Zenoh`] if an endpoint is malformed or cannot be listened on.
    pub fn open(&self) -> Result<zenoh::Session, Error> {
        zenoh::open(self.config()?)
            .wait()
            .map_err(|err| Error::zenoh("open a Zenoh session", err))
    }
}
