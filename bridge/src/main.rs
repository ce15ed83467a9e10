//! `shmchan-bridge`: carries a shmchan channel across hosts over Zenoh.

use clap::{Args, Parser, Subcommand};
use shmchan_zenoh::{Bridge, Error, Network, Options};
use std::process::ExitCode;
use std::time::Duration;

/// Carry a shmchan channel to another host over Zenoh: `export` on the
/// host where messages are sent, `import` on the host where they are
/// received.
#[derive(Parser)]
#[command(name = "shmchan-bridge", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drain the local channel NAME and publish its messages on KEY.
    Export {
        /// The local channel (its receiving end is taken).
        name: String,
        /// The Zenoh key to publish on.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        net: Net,
    },
    /// Send what arrives on KEY into the local channel NAME.
    Import {
        /// The Zenoh key to subscribe to.
        key: String,
        /// The local channel (its sending end is taken).
        #[arg(long = "into")]
        name: String,
        #[command(flatten)]
        net: Net,
    },
}

#[derive(Args)]
struct Net {
    /// Listen for the other bridge here (`tcp/0.0.0.0:7447`); repeatable.
    #[arg(long)]
    listen: Vec<String>,
    /// Connect to the other bridge here (`tcp/10.0.0.2:7447`), and
    /// reconnect when the link is lost; repeatable.
    #[arg(long)]
    connect: Vec<String>,
    /// Also find peers by UDP multicast scouting (off by default).
    #[arg(long)]
    scout: bool,
    /// Most messages in flight: what a crash or a lost connection can cost
    /// at most.
    #[arg(long, default_value_t = 4096)]
    window: u64,
}

impl Net {
    fn network(&self) -> Network {
        let mut network = Network::new().multicast_scouting(self.scout);
        for endpoint in &self.listen {
            network = network.listen(endpoint);
        }
        for endpoint in &self.connect {
            network = network.connect(endpoint);
        }
        network
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shmchan-bridge: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    let (Command::Export { net, .. } | Command::Import { net, .. }) = &cli.command;
    // Held while the bridge runs: its declarations live in it.
    let session = net.network().open()?;
    let options = Options::new().window(net.window);
    let bridge = match &cli.command {
        Command::Export { name, key, .. } => {
            let bridge = shmchan_zenoh::open::export(&session, name, key, &options)?;
            eprintln!("shmchan-bridge: exporting channel {name:?} on key {key:?}");
            bridge
        }
        Command::Import { key, name, .. } => {
            let bridge = shmchan_zenoh::open::import(&session, key, name, &options)?;
            eprintln!("shmchan-bridge: importing key {key:?} into channel {name:?}");
            bridge
        }
    };
    watch(bridge)
}

/// Runs until the bridge stops on an error (or the process is killed),
/// reporting an importer's refusal once.
fn watch(bridge: Bridge) -> Result<(), Error> {
    let mut told = None;
    while !bridge.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
        let refusal = bridge.stats().refusal;
        if refusal.is_some() && refusal != told {
            eprintln!(
                "shmchan-bridge: an importer refused this channel: {}",
                refusal.as_deref().unwrap_or_default()
            );
            told = refusal;
        }
    }
    bridge.stop().map(drop)
}
