//! What the `demo` and `lines` examples share: their `main`, the peer
//! process (the example run again as `<example> --peer <role> ...`), and
//! the placement of the two processes on CPUs.

#[path = "../../benches/common/cpus.rs"]
pub mod cpus;

use cpus::{allowed_cpus, pin_to};
use std::error::Error;
use std::fs::File;
use std::os::fd::AsFd;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub type Res<T> = Result<T, Box<dyn Error>>;

/// The example's `main`: `peer` with the arguments after `--peer` if the
/// first is that, an error said after `peer_label(those arguments)`; else
/// `run` with all of them, an error said after "`name` FAILED".
pub fn main(
    name: &str,
    peer_label: fn(&[String]) -> String,
    peer: fn(&[String]) -> Res<()>,
    run: fn(&[String]) -> Res<()>,
) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--peer") {
        return match peer(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{}: {err}", peer_label(&args[1..]));
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name} FAILED: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Argument `i` of a peer.
pub fn arg(args: &[String], i: usize) -> Res<&str> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| "missing argument".into())
}

/// A count given on the command line (`_` separators allowed), at least 2,
/// or `default` if none was given; `what` and `usage` explain a bad one.
pub fn count(arg: Option<&String>, default: u64, what: &str, usage: &str) -> Res<u64> {
    let Some(arg) = arg else {
        return Ok(default);
    };
    match arg.replace('_', "").parse::<u64>() {
        Ok(n) if n >= 2 => Ok(n),
        _ => Err(
            format!("{what} must be a number of at least 2, not {arg:?}\nusage: {usage}").into(),
        ),
    }
}

/// A fresh channel name for `example`: the pid keeps two runs apart, the
/// counter the channels of one run.
pub fn fresh_name(example: &str, tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("shmchan-{example}-{}-{tag}-{n}", std::process::id())
}

/// Standard output as an unbuffered `File` (std's `Stdout` is line-buffered).
pub fn stdout_file() -> Res<File> {
    Ok(File::from(std::io::stdout().as_fd().try_clone_to_owned()?))
}

/// How one example names its environment variables.
pub struct Example {
    /// The peer's CPU, when pinned.
    pub peer_cpu_var: &'static str,
    /// Set (to anything) to turn pinning off.
    pub no_pin_var: &'static str,
}

impl Example {
    /// Starts a peer in `role` with `args` and, if given, its CPU.
    pub fn spawn(
        &self,
        role: &'static str,
        args: &[&str],
        cpu: Option<usize>,
        stdin: Stdio,
        stdout: Stdio,
    ) -> Res<Peer> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("--peer").arg(role).args(args);
        if let Some(cpu) = cpu {
            command.env(self.peer_cpu_var, cpu.to_string());
        }
        command.stdin(stdin).stdout(stdout);
        let child = command
            .spawn()
            .map_err(|err| format!("could not start the peer process: {err}"))?;
        // `command`, dropped here, held our copy of the peer's standard
        // input and output, so a socket ends when the peer closes it.
        Ok(Peer { child, role })
    }

    /// The peer's start: pins it to its CPU, if the parent chose one.
    pub fn pin_peer(&self) -> Res<()> {
        if let Some(cpu) = std::env::var(self.peer_cpu_var)
            .ok()
            .and_then(|v| v.parse().ok())
        {
            pin_to(&[cpu])?;
        }
        Ok(())
    }

    /// Pins this process to one CPU and picks another for the peer, if
    /// there are two and pinning is not turned off, and says what it did,
    /// naming this process `who` and ending with `note`. Returns the CPUs
    /// this process was allowed at start, and this process's CPU and the
    /// peer's, when pinned.
    pub fn place(&self, who: &str, note: &str) -> (Vec<usize>, Option<(usize, usize)>) {
        let all = allowed_cpus();
        let no_pin_var = self.no_pin_var;
        let pinned = if std::env::var_os(no_pin_var).is_some() {
            println!("  not pinned ({no_pin_var} is set)");
            None
        } else if all.len() < 2 {
            println!("  not pinned: {} CPU available", all.len());
            None
        } else if let Err(err) = pin_to(&all[..1]) {
            println!("  not pinned: sched_setaffinity failed: {err}");
            None
        } else {
            println!(
                "  pinned: {who} on CPU {}, its peer on CPU {} (of {} CPUs){note}",
                all[0],
                all[1],
                all.len()
            );
            Some((all[0], all[1]))
        };
        (all, pinned)
    }
}

/// A peer process; killed and reaped if dropped before [`Peer::finish`].
pub struct Peer {
    pub child: Child,
    pub role: &'static str,
}

impl Peer {
    /// Fails if the peer has exited.
    pub fn alive(&mut self) -> Res<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(format!("peer {} exited early ({status})", self.role).into()),
        }
    }

    /// Waits for the peer to exit (it does once its channels disconnect or
    /// its work is done) and fails unless it succeeded.
    pub fn finish(mut self) -> Res<()> {
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("peer {} failed ({status})", self.role).into())
                };
            }
            if Instant::now() > give_up {
                return Err(format!("peer {} did not exit", self.role).into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
