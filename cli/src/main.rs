//! `shmchan`: see the shmchan channels of this host from a shell.
//!
//! ```text
//! shmchan ls [--json]                    every segment: channels, stale ones, foreign objects
//! shmchan stat NAME [--json]             one channel: header, counters, endpoints
//! shmchan watch NAME [--interval MS] [--count N] [--json]
//!                                        rates over time
//! shmchan unlink NAME                    remove one name
//! shmchan clean [--dry-run]              remove every stale segment, never a live one
//! ```
//!
//! Segments are read without attaching (see `shmchan::inspect`): a channel
//! being looked at behaves exactly as one that is not.

mod show;
mod watch;

use clap::{Parser, Subcommand};
use shmchan::inspect::{self, Entry};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "shmchan",
    version,
    about = "List, inspect, watch and clean shmchan channels (shared memory in /dev/shm)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every shared-memory object: channels (flavor, message type,
    /// capacity, length, endpoints, stale or not), damaged segments and
    /// foreign objects.
    Ls {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one channel: its header, counters and endpoints.
    Stat {
        /// The channel's name.
        name: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show a channel's rates over time: messages per second in and out,
    /// length and high-water mark.
    Watch {
        /// The channel's name.
        name: String,
        /// Milliseconds between samples.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        interval: u64,
        /// Stop after this many samples (default: until interrupted).
        #[arg(long)]
        count: Option<u64>,
        /// One JSON object per line instead of a line refreshed in place.
        #[arg(long)]
        json: bool,
    },
    /// Remove one channel's name (its endpoints keep working; the memory
    /// goes with the last of them).
    Unlink {
        /// The channel's name.
        name: String,
    },
    /// Remove every stale segment: channels whose endpoints all died, and
    /// segments of ours that no live process holds but nobody can use.
    /// Never a live channel, never another program's object.
    Clean {
        /// Say what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shmchan: {err}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn run(command: Command) -> Result {
    match command {
        Command::Ls { json } => {
            let entries = inspect::list()?;
            if json {
                println!("{}", show::entries_json(&entries));
            } else {
                print!("{}", show::entries_table(&entries));
            }
        }
        Command::Stat { name, json } => {
            let channel = inspect::channel(&name)?;
            if json {
                println!("{}", show::channel_json(&channel));
            } else {
                print!("{}", show::channel_text(&channel));
            }
        }
        Command::Watch {
            name,
            interval,
            count,
            json,
        } => watch::watch(&name, Duration::from_millis(interval), count, json)?,
        Command::Unlink { name } => {
            shmchan::unlink(&name)?;
            println!("removed {}", name.trim_start_matches('/'));
        }
        Command::Clean { dry_run } => clean(dry_run)?,
    }
    Ok(())
}

/// Removes (or, dry, lists) every stale channel and every damaged segment
/// that no live process holds; `remove_if_stale` decides under the
/// segment's lock, so a channel that came back to life meanwhile is kept.
fn clean(dry_run: bool) -> Result {
    let mut candidates = 0;
    for entry in inspect::list()? {
        let why = match &entry {
            Entry::Channel(channel) if channel.stale() => {
                "stale: every endpoint is dead".to_owned()
            }
            Entry::Damaged { detail, .. } => format!("damaged: {detail}"),
            _ => continue,
        };
        candidates += 1;
        let name = entry.name();
        if dry_run {
            println!("would remove {name} ({why})");
            continue;
        }
        match inspect::remove_if_stale(name) {
            Ok(true) => println!("removed {name} ({why})"),
            Ok(false) => println!("kept {name}: it is in use, or not provably ours"),
            Err(shmchan::Error::NotFound { .. }) => {}
            Err(err) => eprintln!("shmchan: {err}"),
        }
    }
    if candidates == 0 {
        println!("nothing to clean");
    }
    Ok(())
}
