//! A channel carried through two bridges on 127.0.0.1, against what a
//! program would otherwise do with the same 24-byte messages: publish each
//! on Zenoh itself, or write them to a TCP socket.
//!
//! - `throughput/*`: time per message, one way, many in flight.
//! - `round_trip/*`: one message there and one back, timed per round trip.
//!
//! Every path has its two Zenoh sessions (or its socket pair) set up once,
//! outside the timing. DESIGN §7: the bridge at least 80% of plain Zenoh's
//! throughput.

use criterion::{Criterion, Throughput};
use shmchan_zenoh::{Bridge, Network, Options};
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use zenoh::handlers::FifoChannel;
use zenoh::qos::CongestionControl;
use zenoh::Wait;

/// The message: 24 bytes, as the core benches' `Tick`.
#[derive(Clone, Copy, Debug, PartialEq, shmchan::ShmSafe)]
#[repr(C)]
struct Tick {
    seq: u64,
    px: f64,
    qty: u64,
}

fn tick(seq: u64) -> Tick {
    Tick {
        seq,
        px: seq as f64,
        qty: 1,
    }
}

fn name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("bench-bridge-{tag}-{}-{n}", std::process::id())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// Two Zenoh sessions linked over loopback TCP.
fn sessions() -> (zenoh::Session, zenoh::Session) {
    let endpoint = format!("tcp/127.0.0.1:{}", free_port());
    let a = Network::new().listen(&endpoint).open().unwrap();
    let b = Network::new().connect(&endpoint).open().unwrap();
    // Let the link come up before anything is timed.
    std::thread::sleep(Duration::from_millis(300));
    (a, b)
}

/// spsc `from` on one side, carried on `key`, into spsc `to` on the
/// other: its two ends, and what keeps it running.
fn carried(
    a: &zenoh::Session,
    b: &zenoh::Session,
) -> (
    shmchan::spsc::Sender<Tick>,
    shmchan::spsc::Receiver<Tick>,
    Running,
) {
    let names = [name("from"), name("to")];
    let key = name("key");
    let tx = shmchan::spsc::Sender::<Tick>::create(&names[0], 4096).unwrap();
    let rx = shmchan::spsc::Receiver::<Tick>::create(&names[1], 4096).unwrap();
    let source = shmchan::spsc::Receiver::<Tick>::open(&names[0]).unwrap();
    let sink = shmchan::spsc::Sender::<Tick>::open(&names[1]).unwrap();
    let exporter = shmchan_zenoh::export(a, source, &key, &Options::new()).unwrap();
    let importer = shmchan_zenoh::import(b, &key, sink, &Options::new()).unwrap();
    // The first message waits for the importer to be introduced.
    tx.send(tick(0)).unwrap();
    rx.recv().unwrap();
    (
        tx,
        rx,
        Running {
            _bridges: (exporter, importer),
            names,
        },
    )
}

/// Two bridges, and the channels' names to remove when they stop.
struct Running {
    _bridges: (Bridge, Bridge),
    names: [String; 2],
}

impl Drop for Running {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = shmchan::unlink(name);
        }
    }
}

/// A thread that sends as many messages as it is asked for, with `send`.
fn producer<F: FnMut(u64) + Send + 'static>(mut send: F) -> std::sync::mpsc::Sender<u64> {
    let (ask, asked) = std::sync::mpsc::channel::<u64>();
    std::thread::spawn(move || {
        for n in asked {
            (0..n).for_each(&mut send);
        }
    });
    ask
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));

    let (a, b) = sessions();
    let (tx, rx, running) = carried(&a, &b);
    let ask = producer(move |i| tx.send(tick(i)).unwrap());
    group.bench_function("bridge", |bench| {
        bench.iter_custom(|n| {
            let start = Instant::now();
            ask.send(n).unwrap();
            for _ in 0..n {
                rx.recv().unwrap();
            }
            start.elapsed()
        });
    });
    drop((ask, rx, running));

    let key = name("zenoh");
    let publisher = a
        .declare_publisher(key.clone())
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    let subscriber = b
        .declare_subscriber(key)
        .with(FifoChannel::new(4096))
        .wait()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    group.bench_function("zenoh_put", |bench| {
        bench.iter_custom(|n| {
            let start = Instant::now();
            std::thread::scope(|s| {
                s.spawn(|| {
                    for i in 0..n {
                        let payload = shmchan::bytes_of(&tick(i)).to_vec();
                        publisher.put(payload).wait().unwrap();
                    }
                });
                for _ in 0..n {
                    let sample = subscriber.recv().unwrap();
                    assert_eq!(sample.payload().len(), 24);
                }
            });
            start.elapsed()
        });
    });
    drop((publisher, subscriber));

    let (mut writer, mut reader) = tcp_pair();
    group.bench_function("tcp_buffered", |bench| {
        bench.iter_custom(|n| {
            let start = Instant::now();
            std::thread::scope(|s| {
                let writer = &mut writer;
                s.spawn(move || {
                    let mut out = BufWriter::with_capacity(64 * 1024, writer);
                    for i in 0..n {
                        out.write_all(shmchan::bytes_of(&tick(i))).unwrap();
                    }
                    out.flush().unwrap();
                });
                let mut buf = [0u8; 24];
                for _ in 0..n {
                    reader.read_exact(&mut buf).unwrap();
                }
            });
            start.elapsed()
        });
    });
    group.finish();
}

/// A connected TCP pair on loopback: (writer, buffered reader).
fn tcp_pair() -> (TcpStream, BufReader<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (reader, _) = listener.accept().unwrap();
    writer.set_nodelay(true).unwrap();
    reader.set_nodelay(true).unwrap();
    (writer, BufReader::with_capacity(64 * 1024, reader))
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));

    // There through one pair of bridges, back through another; an echo
    // thread on the far side.
    let (a, b) = sessions();
    let (there_tx, there_rx, there) = carried(&a, &b);
    let (back_tx, back_rx, back) = carried(&b, &a);
    let echo = std::thread::spawn(move || {
        while let Ok(t) = there_rx.recv() {
            if t.seq == u64::MAX || back_tx.send(t).is_err() {
                break;
            }
        }
    });
    group.bench_function("bridge", |bench| {
        bench.iter(|| {
            there_tx.send(tick(1)).unwrap();
            back_rx.recv().unwrap()
        });
    });
    there_tx.send(tick(u64::MAX)).unwrap();
    echo.join().unwrap();
    drop((there, back));

    let (ping, pong) = (name("ping"), name("pong"));
    let ping_pub = a
        .declare_publisher(ping.clone())
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    let pong_sub = a
        .declare_subscriber(pong.clone())
        .with(FifoChannel::new(16))
        .wait()
        .unwrap();
    let ping_sub = b
        .declare_subscriber(ping)
        .with(FifoChannel::new(16))
        .wait()
        .unwrap();
    let pong_pub = b
        .declare_publisher(pong)
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::thread::scope(|s| {
        s.spawn(|| {
            while let Ok(sample) = ping_sub.recv() {
                let payload = sample.payload().to_bytes().into_owned();
                let last = payload.first() == Some(&0xff);
                pong_pub.put(payload).wait().unwrap();
                if last {
                    break;
                }
            }
        });
        group.bench_function("zenoh_put", |bench| {
            bench.iter(|| {
                ping_pub
                    .put(shmchan::bytes_of(&tick(1)).to_vec())
                    .wait()
                    .unwrap();
                pong_sub.recv().unwrap()
            });
        });
        ping_pub.put(vec![0xff; 24]).wait().unwrap();
    });

    let (mut out, mut back_in) = tcp_pair();
    let (mut echo_out, mut echo_in) = {
        let (w, r) = tcp_pair();
        (w, r)
    };
    // Wire: out -> back_in (echo reads) -> echo_out -> echo_in (we read).
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut buf = [0u8; 24];
            while back_in.read_exact(&mut buf).is_ok() {
                if echo_out.write_all(&buf).is_err() || buf[0] == 0xff {
                    break;
                }
            }
        });
        group.bench_function("tcp", |bench| {
            let mut buf = [0u8; 24];
            bench.iter(|| {
                out.write_all(shmchan::bytes_of(&tick(1))).unwrap();
                echo_in.read_exact(&mut buf).unwrap();
            });
        });
        out.write_all(&[0xff; 24]).unwrap();
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    round_trip(&mut c);
    c.final_summary();
}
