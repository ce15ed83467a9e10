//! The `shmchan` binary, run as a user runs it, against live channels of
//! every flavor held by other processes: what `ls` and `stat` report,
//! before and after a SIGKILL; `watch`'s rates against what a peer sent;
//! `clean` against stale, live and foreign objects; hostile headers; and a
//! channel that streams on, unchanged, while it is watched.
//!
//! Peers are this test binary run again (the root crate's test harness,
//! shared through `#[path]`). No timing is pass/fail.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::shm::{read_bytes, shm_path, write_bytes, write_u32, write_u64};
use common::{sleep_forever, unique_name, wait_until, within, Cleanup, Peer};
use serde_json::Value;
use shmchan::{bytes, mpmc, mpsc, spsc, Options};
use std::process::{Command, Output};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(30);

/// `clean` removes every stale segment on the host, those that another test
/// of this binary is looking at included: the tests take turns.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the `shmchan` binary with `args`.
fn shmchan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmchan"))
        .args(args)
        .output()
        .expect("run the shmchan binary")
}

/// Runs it, expecting success, and returns its standard output.
fn stdout_of(args: &[&str]) -> String {
    let output = shmchan(args);
    assert!(
        output.status.success(),
        "shmchan {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn json(args: &[&str]) -> Value {
    let text = stdout_of(args);
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{args:?}: {err}: {text}"))
}

/// `ls --json`'s entry for `name`.
fn listed(name: &str) -> Option<Value> {
    let all = json(&["ls", "--json"]);
    all.as_array()
        .expect("an array")
        .iter()
        .find(|entry| entry["name"] == name)
        .cloned()
}

#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let name = args[0].as_str();
        let count: u64 = args.get(1).map_or(0, |n| n.parse().unwrap());
        match role {
            // Creates a channel of the flavor `args[2]` (capacity 64 of
            // u64, bytes and serde `String`s: 1 KiB), a sender and a
            // receiver here, sends
            // `count`, holds.
            "hold" => match args[2].as_str() {
                "spsc" => {
                    let (tx, rx) = spsc::channel::<u64>(name, 64).unwrap();
                    (0..count).for_each(|i| tx.send(i).unwrap());
                    sleep_forever((tx, rx))
                }
                "mpsc" => {
                    let (tx, rx) = mpsc::channel::<u64>(name, 64).unwrap();
                    (0..count).for_each(|i| tx.send(i).unwrap());
                    sleep_forever((tx, rx))
                }
                "mpmc" => {
                    let (tx, rx) = mpmc::channel::<u64>(name, 64).unwrap();
                    (0..count).for_each(|i| tx.send(i).unwrap());
                    sleep_forever((tx, rx))
                }
                "bytes" => {
                    let (tx, rx) = bytes::channel(name, 1024).unwrap();
                    (0..count).for_each(|i| tx.send(&i.to_le_bytes()).unwrap());
                    sleep_forever((tx, rx))
                }
                "serde" => {
                    let (tx, rx) = shmchan::serde::channel::<String>(name, 1024).unwrap();
                    (0..count).for_each(|i| tx.send(&format!("message {i}")).unwrap());
                    sleep_forever((tx, rx))
                }
                "broadcast" => {
                    let (tx, rx) = shmchan::broadcast::channel::<u64>(name, 64).unwrap();
                    (0..count).for_each(|i| tx.send(i).unwrap());
                    sleep_forever((tx, rx))
                }
                other => panic!("no flavor {other}"),
            },
            // Sends and receives through an spsc channel of its own,
            // without pause, until killed.
            "churn" => {
                let (tx, rx) = spsc::channel::<u64>(name, 64).unwrap();
                for i in 0.. {
                    tx.send(i).unwrap();
                    assert_eq!(rx.recv(), Ok(i));
                }
            }
            // Opens the sender of the spsc channel `name` and sends
            // 0..count.
            "send" => {
                let tx = spsc::Sender::<u64>::open(name).unwrap();
                (0..count).for_each(|i| tx.send(i).unwrap());
            }
            other => panic!("unknown role {other}"),
        }
    });
}

const FLAVORS: [(&str, &str, u64); 6] = [
    ("spsc", "u64", 64),
    ("mpsc", "u64", 64),
    ("mpmc", "u64", 64),
    ("bytes", "bytes", 1024),
    ("serde", "String", 1024),
    ("broadcast", "u64", 64),
];

/// `ls` and `stat` describe channels of every flavor held by another
/// process: flavor, message type, capacity, length, endpoints (role, pid,
/// alive); after the holder is SIGKILLed, the same endpoints, dead, and
/// the channel stale. The listing as a table names them too.
#[test]
fn ls_and_stat_describe_every_flavor_alive_and_after_a_kill() {
    let _turn = serial();
    for (flavor, type_name, capacity) in FLAVORS {
        let name = unique_name(&format!("cli-{flavor}"));
        let _cleanup = Cleanup(name.clone());
        let peer = Peer::spawn("hold", &[&name, "3", flavor]);
        let pid = peer.pid();
        wait_until(PATIENCE, "the peer's channel is listed", || {
            listed(&name).is_some_and(|entry| entry["sent"] == 3)
        });
        let entry = listed(&name).unwrap();
        let stat = json(&["stat", &name, "--json"]);
        for view in [&entry, &stat] {
            assert_eq!(view["status"], "channel", "{view}");
            assert_eq!(view["flavor"], flavor, "{view}");
            assert_eq!(view["type"], type_name, "{view}");
            assert_eq!(view["capacity"], capacity, "{view}");
            assert_eq!(
                (view["len"].clone(), view["sent"].clone()),
                (3.into(), 3.into())
            );
            assert_eq!(view["received"], 0, "{view}");
            assert_eq!(view["stale"], false, "{view}");
            let endpoints = view["endpoints"].as_array().unwrap();
            let mut roles: Vec<&str> = endpoints
                .iter()
                .map(|e| e["role"].as_str().unwrap())
                .collect();
            roles.sort_unstable();
            assert_eq!(roles, ["receiver", "sender"], "{view}");
            assert!(
                endpoints
                    .iter()
                    .all(|e| e["pid"] == pid && e["alive"] == true),
                "{view}"
            );
        }
        assert_eq!(stat["creator_pid"], pid);
        assert_eq!(stat["mode"], "0600");
        let table = stdout_of(&["ls"]);
        let line = table
            .lines()
            .find(|line| line.starts_with(&name))
            .unwrap_or_else(|| panic!("{name} not in\n{table}"));
        assert!(line.contains(flavor) && line.ends_with("live"), "{line}");
        let text = stdout_of(&["stat", &name]);
        assert!(text.contains(&format!("sender pid {pid} alive")), "{text}");

        peer.kill();
        let stat = json(&["stat", &name, "--json"]);
        assert_eq!(stat["stale"], true, "{stat}");
        assert!(
            stat["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["pid"] == pid && e["alive"] == false),
            "{stat}"
        );
        assert!(stdout_of(&["stat", &name]).contains("stale"));
    }
}

/// `watch --json --count 3` prints three samples whose counters are the
/// channel's, and whose rates are the differences of those counters over
/// the time between samples, while a peer sends without pause; once the
/// peer is gone, the rates are zero.
#[test]
fn watch_reports_the_rates_a_peer_sends_at() {
    let _turn = serial();
    let name = unique_name("cli-watch");
    let _cleanup = Cleanup(name.clone());
    let peer = Peer::spawn("churn", &[&name]);
    wait_until(PATIENCE, "the peer streams", || {
        listed(&name).is_some_and(|entry| entry["sent"].as_u64() > Some(1000))
    });
    let samples = watch_json(&name, 3);
    assert_eq!(samples.len(), 3);
    let mut previous: Option<&Value> = None;
    for sample in &samples {
        let (sent, received) = (
            sample["sent"].as_u64().unwrap(),
            sample["received"].as_u64().unwrap(),
        );
        let rate = sample["in_per_s"].as_f64().unwrap();
        let seconds = sample["interval_s"].as_f64().unwrap();
        assert!(rate > 0.0, "a peer sending without pause: {sample}");
        assert!(sample["out_per_s"].as_f64().unwrap() > 0.0, "{sample}");
        assert!(sent >= received && sent - received <= 64, "{sample}");
        if let Some(previous) = previous {
            let delta = sent - previous["sent"].as_u64().unwrap();
            let expected = delta as f64 / seconds;
            assert!(
                (rate - expected).abs() <= 1.0 + expected * 1e-6,
                "rate {rate} for {delta} messages in {seconds} s: {sample}"
            );
        }
        previous = Some(sample);
    }
    peer.kill();
    let quiet = watch_json(&name, 2);
    assert!(
        quiet
            .iter()
            .all(|s| s["in_per_s"] == 0.0 && s["stale"] == true),
        "{quiet:?}"
    );
}

fn watch_json(name: &str, count: u64) -> Vec<Value> {
    let text = stdout_of(&[
        "watch",
        name,
        "--json",
        "--interval",
        "100",
        "--count",
        &count.to_string(),
    ]);
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect()
}

/// `clean` removes a stale segment (its holder SIGKILLed) and leaves a
/// live channel and another program's object alone; `--dry-run` removes
/// nothing and says what it would remove.
#[test]
fn clean_removes_stale_segments_only() {
    let _turn = serial();
    let (stale, live, foreign) = (
        unique_name("cli-stale"),
        unique_name("cli-live"),
        unique_name("cli-foreign"),
    );
    let _cleanups = [
        Cleanup(stale.clone()),
        Cleanup(live.clone()),
        Cleanup(foreign.clone()),
    ];
    let dead = Peer::spawn("hold", &[&stale, "1", "mpsc"]);
    let _alive = Peer::spawn("hold", &[&live, "1", "spsc"]);
    std::fs::write(shm_path(&foreign), [0xABu8; 4096]).unwrap();
    wait_until(PATIENCE, "both channels exist", || {
        listed(&stale).is_some() && listed(&live).is_some()
    });
    dead.kill();
    assert_eq!(listed(&foreign).unwrap()["status"], "foreign");

    let dry = stdout_of(&["clean", "--dry-run"]);
    assert!(dry.contains(&format!("would remove {stale}")), "{dry}");
    assert!(!dry.contains(&live) && !dry.contains(&foreign), "{dry}");
    assert!(listed(&stale).is_some(), "a dry run removed something");

    let done = stdout_of(&["clean"]);
    assert!(done.contains(&format!("removed {stale}")), "{done}");
    assert!(listed(&stale).is_none());
    assert_eq!(listed(&live).unwrap()["stale"], false);
    assert!(
        shm_path(&foreign).exists(),
        "clean removed a foreign object"
    );
    assert_eq!(std::fs::read(shm_path(&foreign)).unwrap(), [0xABu8; 4096]);
}

/// `unlink` removes a name; `stat` of a missing name fails, saying so.
#[test]
fn unlink_removes_a_name_and_stat_of_a_missing_one_fails() {
    let _turn = serial();
    let name = unique_name("cli-unlink");
    let _cleanup = Cleanup(name.clone());
    let (tx, rx) = spsc::channel::<u64>(&name, 8).unwrap();
    assert!(stdout_of(&["unlink", &name]).contains("removed"));
    assert!(listed(&name).is_none());
    tx.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1), "the endpoints keep working");
    let missing = shmchan(&["stat", &name]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no channel named"), "{err}");
}

/// Hostile headers, read by the tool: reported (damaged or foreign), never
/// trusted, and the tool exits promptly with the listing intact. Random
/// bytes; our magic and init word over huge counts; a header that claims a
/// ring far beyond the object's end.
#[test]
fn hostile_headers_are_reported_not_trusted() {
    let _turn = serial();
    let model = unique_name("cli-model");
    let _model_cleanup = Cleanup(model.clone());
    let rx = spsc::Receiver::<u64>::create(&model, 64).unwrap();
    let header: [u8; 576] = read_bytes(&common::shm::shm_file(&model), 0);
    drop(rx);
    let mut rng = common::Rng::new(0xC11);
    type Scribble<'a> = Box<dyn Fn(&std::fs::File) + 'a>;
    let cases: Vec<(&str, Scribble)> = vec![
        (
            "random bytes",
            Box::new(|file| {
                let mut bytes = vec![0u8; 8192];
                common::Rng::new(7).bytes(&mut bytes);
                write_bytes(file, 0, &bytes);
            }),
        ),
        (
            "huge counts",
            Box::new(|file| {
                write_bytes(file, 0, &header);
                write_u32(file, 72, u32::MAX); // endpoints
                write_u32(file, 76, u32::MAX); // rings
                write_u64(file, 16, 1 << 62); // capacity
            }),
        ),
        (
            "ring beyond the end",
            Box::new(|file| {
                write_bytes(file, 0, &header);
                write_u64(file, 16, 1 << 30);
            }),
        ),
        (
            "huge type name length",
            Box::new(|file| {
                write_bytes(file, 0, &header);
                write_u32(file, 80, u32::MAX);
            }),
        ),
    ];
    for (what, scribble) in cases {
        let name = unique_name("cli-hostile");
        let _cleanup = Cleanup(name.clone());
        let file = std::fs::File::create_new(shm_path(&name)).unwrap();
        file.set_len(4096 + rng.below(8192)).unwrap();
        scribble(&file);
        let name2 = name.clone();
        let (entry, stat) = within(PATIENCE, what, move || {
            (listed(&name2), shmchan(&["stat", &name2, "--json"]))
        });
        let entry = entry.unwrap_or_else(|| panic!("{what}: not listed"));
        assert_ne!(entry["status"], "channel", "{what}: trusted: {entry}");
        assert!(!stat.status.success(), "{what}: stat succeeded");
        assert!(!stat.stderr.is_empty());
    }
}

/// A channel streams a million messages, every one in order, while `watch`
/// samples it every millisecond beside it; the tool never attaches (the
/// endpoint table is the same during the stream), and it saw the traffic.
#[test]
fn a_watched_channel_streams_on_unchanged() {
    let _turn = serial();
    use std::io::BufRead;
    const COUNT: u64 = 1_000_000;
    let name = unique_name("cli-watched");
    let _cleanup = Cleanup(name.clone());
    let rx = spsc::Receiver::<u64>::create_with(&name, &Options::new().capacity(1024)).unwrap();
    let mut watcher = Command::new(env!("CARGO_BIN_EXE_shmchan"))
        .args(["watch", &name, "--json", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run shmchan watch");
    let mut lines = std::io::BufReader::new(watcher.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first sample").unwrap();
    let reader = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let sender = Peer::spawn("send", &[&name, &COUNT.to_string()]);
    let (got, rx) = within(PATIENCE * 4, "streaming while watched", move || {
        let mut next = 0u64;
        for value in &rx {
            assert_eq!(value, next, "out of order while watched");
            next += 1;
            if next == COUNT / 2 {
                let stats = rx.stats();
                assert_eq!(stats.endpoints.len(), 2, "the watcher attached: {stats:?}");
            }
        }
        (next, rx)
    });
    assert_eq!(got, COUNT);
    sender.finish(PATIENCE);
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    drop(rx);
    let samples: Vec<Value> = std::iter::once(first)
        .chain(reader.join().unwrap())
        .map(|line| serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    assert!(
        samples
            .iter()
            .any(|sample| sample["in_per_s"].as_f64() > Some(0.0)),
        "the watcher saw no traffic in {} samples",
        samples.len()
    );
    let sent: Vec<u64> = samples
        .iter()
        .map(|s| s["sent"].as_u64().unwrap())
        .collect();
    assert!(sent.windows(2).all(|w| w[0] <= w[1]), "{sent:?}");
}
