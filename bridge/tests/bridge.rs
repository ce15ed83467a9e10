//! Channels carried between two bridges on 127.0.0.1: typed messages
//! through bridge processes running the library, `bytes` and serde channels
//! through the `shmchan-bridge` binary, a type mismatch, SIGKILLed bridges,
//! and backpressure from an absent importer.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{unique_name, wait_until, within, Cleanup, Peer};
use serde::{Deserialize, Serialize};
use shmchan_zenoh::{Network, Options};
use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A typed message whose last word checks the others.
#[derive(Clone, Copy, Debug, PartialEq, shmchan::ShmSafe)]
#[repr(C)]
struct Tick {
    seq: u64,
    value: u64,
    check: u64,
}

impl Tick {
    fn new(seq: u64) -> Self {
        let value = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            seq,
            value,
            check: checksum(seq, value),
        }
    }

    fn intact(&self) -> bool {
        self.check == checksum(self.seq, self.value)
    }
}

fn checksum(a: u64, b: u64) -> u64 {
    (a ^ b.rotate_left(17)).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// The same size as `Tick`, another type: its second field differs.
#[derive(Clone, Copy, Debug, PartialEq, shmchan::ShmSafe)]
#[repr(C)]
struct Quote {
    seq: u64,
    price: f64,
    check: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Event {
    Order {
        symbol: String,
        fills: Vec<(u32, f64)>,
    },
    Cancel(u64),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Other(String);

const LIMIT: Duration = Duration::from_secs(60);

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

fn endpoint(port: u16) -> String {
    format!("tcp/127.0.0.1:{port}")
}

/// The bridges' peer processes: each runs the library on a typed channel.
#[test]
#[ignore = "run as a peer process by the other tests"]
fn peer() {
    common::peer_main(|role, args| {
        let (name, key, net, window) = (&args[0], &args[1], &args[2], common::arg(args, 3));
        let options = Options::new().window(window);
        let network = if role.ends_with("listen") {
            Network::new().listen(net)
        } else {
            Network::new().connect(net)
        };
        let session = network.open().expect("open a Zenoh session");
        let bridge = if role.starts_with("export") {
            let rx = shmchan::spsc::Receiver::<Tick>::open(name).expect("open the source");
            shmchan_zenoh::export(&session, rx, key, &options).expect("start exporting")
        } else {
            let tx = shmchan::spsc::Sender::<Tick>::open(name).expect("open the sink");
            shmchan_zenoh::import(&session, key, tx, &options).expect("start importing")
        };
        while !bridge.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the bridge stopped: {:?}", bridge.stop());
    });
}

/// A `shmchan-bridge` process, killed when the test ends.
struct Binary(Child);

impl Binary {
    fn start(args: &[&str]) -> Self {
        Self(
            Command::new(env!("CARGO_BIN_EXE_shmchan-bridge"))
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start shmchan-bridge"),
        )
    }

    fn export(name: &str, key: &str, net: &[&str]) -> Self {
        Self::start(&[&["export", name, "--key", key], net].concat())
    }

    fn import(key: &str, name: &str, net: &[&str]) -> Self {
        Self::start(&[&["import", key, "--into", name], net].concat())
    }

    /// SIGKILL, and reap.
    fn kill(mut self) {
        self.0.kill().expect("SIGKILL the bridge");
        self.0.wait().expect("reap the bridge");
    }

    /// Waits for it to exit on its own; returns its success and its stderr.
    fn finish(mut self, limit: Duration) -> (bool, String) {
        let status = common::wait_for(&mut self.0, limit);
        let mut stderr = String::new();
        if let Some(mut pipe) = self.0.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        (status.success(), stderr)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn typed_messages_arrive_intact_and_in_order() {
    const COUNT: u64 = 100_000;
    let (a, b, key) = (
        unique_name("typed-a"),
        unique_name("typed-b"),
        unique_name("typed"),
    );
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let tx = shmchan::spsc::Sender::<Tick>::create(&a, 1024).unwrap();
    let rx = shmchan::spsc::Receiver::<Tick>::create(&b, 1024).unwrap();
    let net = endpoint(free_port());
    let _export = Peer::spawn("export-listen", &[&a, &key, &net, "4096"]);
    let _import = Peer::spawn("import-connect", &[&b, &key, &net, "4096"]);
    let producer = std::thread::spawn(move || {
        // Single sends and batches, as a user's producer mixes them.
        let mut seq = 0;
        while seq < COUNT {
            if seq % 3 == 0 {
                let batch: Vec<Tick> = (seq..(seq + 50).min(COUNT)).map(Tick::new).collect();
                tx.send_batch(&batch).unwrap();
                seq += batch.len() as u64;
            } else {
                tx.send(Tick::new(seq)).unwrap();
                seq += 1;
            }
        }
    });
    within(
        LIMIT,
        "receiving 100,000 ticks through two bridges",
        move || {
            for seq in 0..COUNT {
                let tick = rx.recv().unwrap();
                assert!(tick.intact(), "torn tick {tick:?}");
                assert_eq!(tick.seq, seq, "lost, duplicated or reordered");
            }
            assert!(rx.try_recv().is_err(), "a message beyond the last");
        },
    );
    producer.join().unwrap();
}

#[test]
fn bytes_and_serde_channels_cross_through_the_binary() {
    let names = ["bytes-a", "bytes-b", "serde-a", "serde-b"].map(unique_name);
    let _cleanup = names.clone().map(Cleanup);
    let [ba, bb, sa, sb] = &names;
    let tx = shmchan::bytes::Sender::create(ba, 1 << 16).unwrap();
    let mut rx = shmchan::bytes::Receiver::create(bb, 1 << 16).unwrap();
    let stx = shmchan::serde::Sender::<Event>::create(sa, 1 << 16).unwrap();
    let srx = shmchan::serde::Receiver::<Event>::create(sb, 1 << 16).unwrap();
    let (bytes_key, serde_key) = (unique_name("bytes"), unique_name("serde"));
    let (p1, p2) = (endpoint(free_port()), endpoint(free_port()));
    let _bridges = [
        Binary::export(ba, &bytes_key, &["--listen", &p1]),
        Binary::import(&bytes_key, bb, &["--connect", &p1]),
        Binary::export(sa, &serde_key, &["--listen", &p2]),
        Binary::import(&serde_key, sb, &["--connect", &p2]),
    ];
    let message = |i: u32| -> Vec<u8> { (0..i % 300).map(|j| (i + j) as u8).collect() };
    let event = |i: u64| match i % 2 {
        0 => Event::Order {
            symbol: format!("SYM{i}"),
            fills: (0..i % 5).map(|j| (j as u32, i as f64 / 2.0)).collect(),
        },
        _ => Event::Cancel(i),
    };
    let producers = [
        std::thread::spawn(move || (0..20_000).for_each(|i| tx.send(&message(i)).unwrap())),
        std::thread::spawn(move || (0..10_000).for_each(|i| stx.send(&event(i)).unwrap())),
    ];
    within(LIMIT, "receiving through the binary", move || {
        for i in 0..20_000u32 {
            assert_eq!(*rx.recv().unwrap(), message(i)[..], "bytes message {i}");
        }
        for i in 0..10_000u64 {
            assert_eq!(srx.recv().unwrap(), event(i), "serde message {i}");
        }
    });
    for producer in producers {
        producer.join().unwrap();
    }
}

#[test]
fn typed_channels_cross_through_the_binary() {
    // spsc on one side, mpsc on the other: the same message type.
    const COUNT: u64 = 100_000;
    let (a, b, key) = (
        unique_name("bin-a"),
        unique_name("bin-b"),
        unique_name("bin"),
    );
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let tx = shmchan::spsc::Sender::<Tick>::create(&a, 1024).unwrap();
    let rx = shmchan::mpsc::Receiver::<Tick>::create(&b, 1024).unwrap();
    let net = endpoint(free_port());
    let _bridges = [
        Binary::export(&a, &key, &["--listen", &net]),
        Binary::import(&key, &b, &["--connect", &net]),
    ];
    let producer =
        std::thread::spawn(move || (0..COUNT).for_each(|s| tx.send(Tick::new(s)).unwrap()));
    within(LIMIT, "typed messages through the binary", move || {
        for seq in 0..COUNT {
            let tick = rx.recv().unwrap();
            assert!(tick.intact() && tick.seq == seq, "{tick:?} for {seq}");
        }
    });
    producer.join().unwrap();

    // Another type on the far side: refused, naming both and the field.
    let (c, d, key) = (
        unique_name("bin-c"),
        unique_name("bin-d"),
        unique_name("bin-mis"),
    );
    let _cleanup = (Cleanup(c.clone()), Cleanup(d.clone()));
    let _ticks = shmchan::spsc::Sender::<Tick>::create(&c, 64).unwrap();
    let _quotes = shmchan::spsc::Receiver::<Quote>::create(&d, 64).unwrap();
    let net = endpoint(free_port());
    let _export = Binary::export(&c, &key, &["--listen", &net]);
    let (ok, stderr) = Binary::import(&key, &d, &["--connect", &net]).finish(LIMIT);
    assert!(!ok, "a Quote channel took Ticks: {stderr}");
    for needle in ["incompatible", "`Quote`", "`Tick`", "field 2"] {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }

    // Broadcast on both sides: the exporter is one of the first channel's
    // receivers, the importer the second channel's sender.
    let (f, g, key) = (
        unique_name("bin-f"),
        unique_name("bin-g"),
        unique_name("bin-bc"),
    );
    let _cleanup = (Cleanup(f.clone()), Cleanup(g.clone()));
    let options = shmchan::Options::new().capacity(256).receivers(2);
    let tx = shmchan::broadcast::Sender::<Tick>::create_with(&f, &options).unwrap();
    let rx = shmchan::broadcast::Receiver::<Tick>::create_with(&g, &options).unwrap();
    let net = endpoint(free_port());
    let _bridges = [
        Binary::export(&f, &key, &["--listen", &net]),
        Binary::import(&key, &g, &["--connect", &net]),
    ];
    let producer =
        std::thread::spawn(move || (0..10_000).for_each(|s| tx.send(Tick::new(s)).unwrap()));
    within(LIMIT, "broadcast messages through the binary", move || {
        for seq in 0..10_000 {
            let tick = rx.recv().unwrap();
            assert!(tick.intact() && tick.seq == seq, "{tick:?} for {seq}");
        }
    });
    producer.join().unwrap();

    // mpmc on both sides: the exporter is one of the first queue's
    // receivers, the importer one of the second's senders.
    let (h, i, key) = (
        unique_name("bin-h"),
        unique_name("bin-i"),
        unique_name("bin-q"),
    );
    let _cleanup = (Cleanup(h.clone()), Cleanup(i.clone()));
    let tx = shmchan::mpmc::Sender::<Tick>::create(&h, 256).unwrap();
    let rx = shmchan::mpmc::Receiver::<Tick>::create(&i, 256).unwrap();
    let net = endpoint(free_port());
    let _bridges = [
        Binary::export(&h, &key, &["--listen", &net]),
        Binary::import(&key, &i, &["--connect", &net]),
    ];
    let producer =
        std::thread::spawn(move || (0..10_000).for_each(|s| tx.send(Tick::new(s)).unwrap()));
    within(LIMIT, "mpmc messages through the binary", move || {
        for seq in 0..10_000 {
            let tick = rx.recv().unwrap();
            assert!(tick.intact() && tick.seq == seq, "{tick:?} for {seq}");
        }
    });
    producer.join().unwrap();
}

#[test]
fn a_mismatched_type_is_refused_with_the_open_error() {
    // Typed, through the library: the importer stops with `Incompatible`,
    // the exporter learns why, and nothing is delivered.
    let (a, b, key) = (
        unique_name("mis-a"),
        unique_name("mis-b"),
        unique_name("mis"),
    );
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let tx = shmchan::spsc::Sender::<Tick>::create(&a, 64).unwrap();
    let quotes = shmchan::spsc::Receiver::<Quote>::create(&b, 64).unwrap();
    tx.send(Tick::new(0)).unwrap();
    let net = endpoint(free_port());
    let sa = Network::new().listen(&net).open().unwrap();
    let sb = Network::new().connect(&net).open().unwrap();
    let rx = shmchan::spsc::Receiver::<Tick>::open(&a).unwrap();
    let exporter = shmchan_zenoh::export(&sa, rx, &key, &Options::new()).unwrap();
    let sink = shmchan::spsc::Sender::<Quote>::open(&b).unwrap();
    let importer = shmchan_zenoh::import(&sb, &key, sink, &Options::new()).unwrap();
    wait_until(LIMIT, "the importer refuses", || importer.is_finished());
    let err = importer.stop().expect_err("a Quote channel took Ticks");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            shmchan_zenoh::Error::Channel(shmchan::Error::Incompatible { .. })
        ),
        "{err:?}"
    );
    for needle in [
        "incompatible",
        "`Quote`",
        "`Tick`",
        "field 2",
        "price:f64@8",
        "value:u64@8",
    ] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
    wait_until(LIMIT, "the exporter hears the refusal", || {
        exporter.stats().refusal.is_some()
    });
    assert_eq!(exporter.stats().refusal.as_deref(), Some(text.as_str()));
    assert_eq!(exporter.stats().messages, 0, "sent to a refusing importer");
    assert!(quotes.try_recv().is_err());

    // Serde, through the binary: it exits non-zero, saying the same.
    let (c, d, key) = (
        unique_name("mis-c"),
        unique_name("mis-d"),
        unique_name("mis-serde"),
    );
    let _cleanup = (Cleanup(c.clone()), Cleanup(d.clone()));
    let _events = shmchan::serde::Sender::<Event>::create(&c, 4096).unwrap();
    let _others = shmchan::serde::Receiver::<Other>::create(&d, 4096).unwrap();
    let net = endpoint(free_port());
    let _export = Binary::export(&c, &key, &["--listen", &net]);
    let import = Binary::import(&key, &d, &["--connect", &net]);
    let (ok, stderr) = import.finish(LIMIT);
    assert!(!ok, "the binary accepted another serde type: {stderr}");
    for needle in ["incompatible", "`Event`", "`Other`"] {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}

/// Sends numbered messages of 16 bytes (sequence, checksum) until told to
/// stop; returns how many it sent.
fn numbered(seq: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&seq.to_le_bytes());
    out[8..].copy_from_slice(&checksum(seq, !seq).to_le_bytes());
    out
}

fn read_numbered(message: &[u8]) -> u64 {
    assert_eq!(message.len(), 16, "a message of the wrong length");
    let seq = u64::from_le_bytes(message[..8].try_into().unwrap());
    let check = u64::from_le_bytes(message[8..].try_into().unwrap());
    assert_eq!(check, checksum(seq, !seq), "corrupt message {seq}");
    seq
}

#[test]
fn killed_bridges_restart_losing_at_most_a_window_each() {
    const COUNT: u64 = 300_000;
    const WINDOW: &str = "512";
    let (a, b, key) = (
        unique_name("kill-a"),
        unique_name("kill-b"),
        unique_name("kill"),
    );
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let tx = shmchan::bytes::Sender::create(&a, 1 << 14).unwrap();
    let mut rx = shmchan::bytes::Receiver::create(&b, 1 << 14).unwrap();
    // The importer listens, so that a restarted exporter connects to it,
    // and the exporter connects, so that it finds a restarted importer.
    let net = endpoint(free_port());
    let export = || Binary::export(&a, &key, &["--connect", &net, "--window", WINDOW]);
    let import = || Binary::import(&key, &b, &["--listen", &net, "--window", WINDOW]);
    let mut exporter = export();
    let mut importer = import();
    let producer = std::thread::spawn(move || {
        for seq in 0..COUNT {
            // While the exporter is dead the channel has no receiver: as
            // with any consumer that crashed, the producer keeps its
            // message and tries again.
            while let Err(err) = tx.send(&numbered(seq)) {
                assert_eq!(err, shmchan::bytes::SendError::Disconnected);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    let consumer = std::thread::spawn(move || {
        let mut last = None::<u64>;
        let mut gaps = Vec::new();
        while last != Some(COUNT - 1) {
            // While the importer is dead the channel has no sender, and
            // once drained it reads as ended, until the importer is back.
            let seq = match rx.recv() {
                Ok(message) => read_numbered(&message),
                Err(shmchan::RecvError) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let expected = last.map_or(0, |l| l + 1);
            assert!(
                seq >= expected,
                "message {seq} after {last:?}: duplicated or reordered"
            );
            if seq > expected {
                gaps.push(seq - expected);
            }
            last = Some(seq);
        }
        gaps
    });
    // Mid-stream, kill each bridge in turn and start it again.
    let received = |name: &str| shmchan::inspect::channel(name).unwrap().stats.received;
    let started = Instant::now();
    wait_until(LIMIT, "a tenth has crossed", || received(&b) > COUNT / 10);
    exporter.kill();
    std::thread::sleep(Duration::from_millis(200));
    exporter = export();
    wait_until(LIMIT, "the stream resumes", || received(&b) > COUNT / 3);
    importer.kill();
    std::thread::sleep(Duration::from_millis(200));
    importer = import();
    let gaps = within(
        LIMIT.saturating_sub(started.elapsed()) + LIMIT,
        "the rest",
        move || consumer.join().unwrap(),
    );
    producer.join().unwrap();
    let lost: u64 = gaps.iter().sum();
    assert!(
        gaps.len() <= 2 && gaps.iter().all(|&g| g <= 512),
        "two crashes may lose at most a window (512) each; gaps: {gaps:?}"
    );
    eprintln!("two crashes lost {lost} of {COUNT} messages, in gaps {gaps:?}");
    drop((exporter, importer));
}

#[test]
fn an_absent_importer_holds_the_sender_back() {
    let (a, b, key) = (unique_name("bp-a"), unique_name("bp-b"), unique_name("bp"));
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let tx = shmchan::bytes::Sender::create(&a, 1 << 12).unwrap();
    let mut rx = shmchan::bytes::Receiver::create(&b, 1 << 12).unwrap();
    let net = endpoint(free_port());
    let _exporter = Binary::export(&a, &key, &["--listen", &net, "--window", "64"]);
    wait_until(LIMIT, "the exporter attaches", || {
        common::live(&shmchan::inspect::channel(&a).unwrap().stats, "receiver") == 1
    });
    // No importer: the ring fills and stays full; nothing is drained.
    let mut sent = 0u64;
    let give_up = Instant::now() + LIMIT;
    loop {
        match tx.try_send(&numbered(sent)) {
            Ok(()) => sent += 1,
            Err(shmchan::bytes::TrySendError::Full) => break,
            Err(err) => panic!("{err}"),
        }
        assert!(Instant::now() < give_up, "the ring never filled");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        tx.try_send(&numbered(sent)).is_err(),
        "drained with no importer"
    );
    assert_eq!(shmchan::inspect::channel(&a).unwrap().stats.received, 0);

    // An importer comes: everything arrives, none lost, in order.
    let importer = Binary::import(&key, &b, &["--connect", &net, "--window", "64"]);
    within(LIMIT, "the backlog", move || {
        for seq in 0..sent {
            assert_eq!(read_numbered(&rx.recv().unwrap()), seq);
        }
        rx
    });
    // It goes: at most a window more is taken, then the sender is held back.
    importer.kill();
    std::thread::sleep(Duration::from_millis(300));
    let mut more = 0u64;
    let give_up = Instant::now() + LIMIT;
    while more < 64 + 1024 {
        match tx.send_timeout(&numbered(sent + more), Duration::from_millis(500)) {
            Ok(()) => more += 1,
            Err(shmchan::bytes::SendTimeoutError::Timeout) => break,
            Err(err) => panic!("{err}"),
        }
        assert!(Instant::now() < give_up);
    }
    let ring = (1 << 12) / 24; // a 16-byte message takes 24 bytes of ring
    assert!(
        more <= ring + 64,
        "{more} messages went with no importer: more than the ring ({ring}) and a window (64)"
    );
}

/// A TCP relay between two bridges that can cut the link: each connection
/// it carries is shut down, and new ones are refused, until restored.
struct Relay {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start(target: u16) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let relay = Self {
            port,
            up: Default::default(),
            links: Default::default(),
        };
        relay.up.store(true, SeqCst);
        let (up, links) = (relay.up.clone(), relay.links.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                if !up.load(SeqCst) {
                    continue; // refused: both ends drop
                }
                let mut all = links.lock().unwrap();
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                all.extend([client, server]);
            }
        });
        relay
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            let _ = link.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_lost_link_costs_at_most_a_window_and_the_importer_counts_it() {
    const COUNT: u64 = 200_000;
    const WINDOW: u64 = 256;
    let (a, b, key) = (
        unique_name("link-a"),
        unique_name("link-b"),
        unique_name("link"),
    );
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let tx = shmchan::spsc::Sender::<Tick>::create(&a, 1024).unwrap();
    let rx = shmchan::spsc::Receiver::<Tick>::create(&b, 1024).unwrap();
    let port = free_port();
    let relay = Relay::start(port);
    let importing = Network::new().listen(endpoint(port)).open().unwrap();
    let exporting = Network::new().connect(endpoint(relay.port)).open().unwrap();
    let options = Options::new().window(WINDOW);
    let source = shmchan::spsc::Receiver::<Tick>::open(&a).unwrap();
    let exporter = shmchan_zenoh::export(&exporting, source, &key, &options).unwrap();
    let sink = shmchan::spsc::Sender::<Tick>::open(&b).unwrap();
    let importer = shmchan_zenoh::import(&importing, &key, sink, &options).unwrap();
    let producer =
        std::thread::spawn(move || (0..COUNT).for_each(|s| tx.send(Tick::new(s)).unwrap()));
    let consumer = std::thread::spawn(move || {
        let (mut next, mut gaps) = (0, Vec::new());
        while next < COUNT {
            let tick = rx.recv().unwrap();
            assert!(tick.intact(), "torn tick {tick:?}");
            assert!(
                tick.seq >= next,
                "tick {} after {next}: duplicated or reordered",
                tick.seq
            );
            if tick.seq > next {
                gaps.push(tick.seq - next);
            }
            next = tick.seq + 1;
        }
        gaps
    });
    let received = |name: &str| shmchan::inspect::channel(name).unwrap().stats.received;
    wait_until(LIMIT, "a quarter has crossed", || received(&b) > COUNT / 4);
    relay.cut();
    std::thread::sleep(Duration::from_millis(500));
    // With the importer out of reach, the exporter holds the sender back.
    let stalled = received(&a);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(received(&a), stalled, "drained with the link down");
    relay.restore();
    let gaps = within(LIMIT * 2, "the rest after the link returns", move || {
        consumer.join().unwrap()
    });
    producer.join().unwrap();
    let lost: u64 = gaps.iter().sum();
    assert!(
        gaps.len() <= 1 && lost <= WINDOW,
        "one lost link may cost at most a window ({WINDOW}); gaps: {gaps:?}"
    );
    assert_eq!(
        importer.stats().lost,
        lost,
        "the importer counts exactly what it missed"
    );
    drop((exporter, importer));
}

#[test]
fn hostile_samples_on_the_keys_are_counted_and_ignored() {
    use zenoh::Wait;
    const COUNT: u64 = 50_000;
    let (a, b, key) = (
        unique_name("evil-a"),
        unique_name("evil-b"),
        unique_name("evil"),
    );
    let _cleanup = (Cleanup(a.clone()), Cleanup(b.clone()));
    let tx = shmchan::spsc::Sender::<Tick>::create(&a, 1024).unwrap();
    let rx = shmchan::spsc::Receiver::<Tick>::create(&b, 1024).unwrap();
    let (net, net2) = (endpoint(free_port()), endpoint(free_port()));
    let exporting = Network::new().listen(&net).open().unwrap();
    let importing = Network::new().connect(&net).listen(&net2).open().unwrap();
    // Peers do not relay for each other: the attacker links to both.
    let attacker = Network::new().connect(&net).connect(&net2).open().unwrap();
    let source = shmchan::spsc::Receiver::<Tick>::open(&a).unwrap();
    let exporter = shmchan_zenoh::export(&exporting, source, &key, &Options::new()).unwrap();
    let sink = shmchan::spsc::Sender::<Tick>::open(&b).unwrap();
    let importer = shmchan_zenoh::import(&importing, &key, sink, &Options::new()).unwrap();
    // Garbage of every kind on both keys, from before the stream starts
    // until it ends: random bytes, and frames with a valid preamble and
    // lying fields.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let garbage = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut rng = common::Rng::new(7);
            let ack_key = format!("{key}/@shmchan/ack");
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut junk = vec![0u8; rng.below(64) as usize];
                rng.bytes(&mut junk);
                if i % 2 == 0 && junk.len() >= 6 {
                    junk[..6].copy_from_slice(b"SCZB\x01\x02"); // a "data frame"
                }
                attacker.put(key.as_str(), junk.clone()).wait().unwrap();
                attacker.put(ack_key.as_str(), junk).wait().unwrap();
                i += 1;
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    });
    wait_until(LIMIT, "the garbage reaches both bridges", || {
        importer.stats().malformed > 0 && exporter.stats().malformed > 0
    });
    let producer =
        std::thread::spawn(move || (0..COUNT).for_each(|s| tx.send(Tick::new(s)).unwrap()));
    within(LIMIT, "the real stream through the garbage", move || {
        for seq in 0..COUNT {
            let tick = rx.recv().unwrap();
            assert!(tick.intact() && tick.seq == seq, "{tick:?} for {seq}");
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    garbage.join().unwrap();
    producer.join().unwrap();
    assert_eq!(importer.stats().lost, 0);
    assert_eq!(importer.stats().messages, COUNT);
}
