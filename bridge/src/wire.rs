//! What the bridges say to each other, inside Zenoh samples.
//!
//! Every sample starts with [`MAGIC`], a version byte and a kind byte;
//! numbers are little-endian. On the data key the exporter publishes
//! [`Hello`]s (its message type and where its sequence stands) and
//! [`Data`] frames (a run of consecutive messages); on the ack key the
//! importers publish [`Ack`]s and [`Refusal`]s.
//!
//! The network is untrusted input, as shared memory is: every length and
//! count is checked against the bytes actually received before it is used,
//! and a sample that does not parse is an error naming what is wrong, never
//! a panic.

use shmchan::inspect::MessageType;

/// The first four bytes of every sample: `SCZB`.
pub const MAGIC: [u8; 4] = *b"SCZB";
/// The protocol version; a bridge refuses samples of another.
pub const VERSION: u8 = 1;

const HELLO: u8 = 1;
const DATA: u8 = 2;
const ACK: u8 = 3;
const REFUSAL: u8 = 4;

/// Bytes before a data frame's messages: preamble, epoch, first, count, size.
pub const DATA_HEADER: usize = 6 + 8 + 8 + 4 + 4;

/// The exporter's introduction, sent to each importer before any data: the
/// message type it carries and the sequence number of its next message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The exporter's identity for this run: a restarted exporter has a new one.
    pub epoch: u64,
    /// Sequence number of the next message it will publish.
    pub next: u64,
    /// Most messages it keeps unacknowledged: an importer acknowledges at
    /// least every quarter of this.
    pub window: u64,
    /// What its channel carries.
    pub message_type: MessageType,
}

/// A run of consecutive messages, borrowed from a received sample.
#[derive(Debug, PartialEq, Eq)]
pub struct Data<'a> {
    pub epoch: u64,
    /// Sequence number of the first message.
    pub first: u64,
    pub count: u32,
    /// Bytes of each message, or 0 if each is prefixed by its `u32` length.
    pub size: u32,
    /// The messages themselves.
    pub body: &'a [u8],
}

/// An importer's report: it has delivered every message before `next` of
/// epoch `epoch` into its local channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    pub importer: u64,
    pub epoch: u64,
    pub next: u64,
}

/// An importer's refusal of an exporter's message type, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub importer: u64,
    pub epoch: u64,
    pub reason: String,
}

/// A sample that is not what a bridge of this version sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

/// A sample on the data key.
#[derive(Debug, PartialEq, Eq)]
pub enum Downstream<'a> {
    Hello(Hello),
    Data(Data<'a>),
}

/// A sample on the ack key.
#[derive(Debug, PartialEq, Eq)]
pub enum Upstream {
    Ack(Ack),
    Refusal(Refusal),
}

/// Builds a data frame: a header, then messages appended one by one.
#[derive(Debug)]
pub struct Frame {
    buf: Vec<u8>,
    count: u32,
    size: u32,
}

impl Frame {
    /// An empty frame for messages of `size` bytes each (0: of any length).
    pub fn new(size: u32) -> Self {
        let mut frame = Self {
            buf: Vec::with_capacity(64 * 1024),
            count: 0,
            size,
        };
        frame.clear();
        frame
    }

    /// Messages appended since the last [`clear`](Self::clear).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Bytes of messages appended so far.
    pub fn body_len(&self) -> usize {
        self.buf.len() - DATA_HEADER
    }

    /// Starts a new frame: room for the header, no message.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.resize(DATA_HEADER, 0);
        self.count = 0;
    }

    /// Appends one message. A frame of fixed-size messages takes exactly
    /// that many bytes (the caller's type guarantees it).
    pub fn push(&mut self, message: &[u8]) {
        debug_assert!(self.size == 0 || message.len() == self.size as usize);
        self.push_with(message.len(), |room| room.copy_from_slice(message));
    }

    /// Room to append one message of `len` bytes in place: for sources
    /// that copy straight out of their ring.
    pub fn push_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) {
        self.try_push_with(len, |room| {
            fill(room);
            true
        });
    }

    /// As [`push_with`](Self::push_with), for a `fill` that may find
    /// nothing to write: if it returns `false`, the frame is left as it
    /// was. Returns what `fill` returned.
    pub fn try_push_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> bool) -> bool {
        let before = self.buf.len();
        if self.size == 0 {
            self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        }
        let start = self.buf.len();
        self.buf.resize(start + len, 0);
        if fill(&mut self.buf[start..]) {
            self.count += 1;
            true
        } else {
            self.buf.truncate(before);
            false
        }
    }

    /// The finished frame, numbered `first` in epoch `epoch`: its header
    /// written in place.
    pub fn seal(&mut self, epoch: u64, first: u64) -> &[u8] {
        let fields: [&[u8]; 6] = [
            &MAGIC,
            &[VERSION, DATA],
            &epoch.to_le_bytes(),
            &first.to_le_bytes(),
            &self.count.to_le_bytes(),
            &self.size.to_le_bytes(),
        ];
        let mut at = 0;
        for field in fields {
            self.buf[at..at + field.len()].copy_from_slice(field);
            at += field.len();
        }
        debug_assert_eq!(at, DATA_HEADER);
        &self.buf
    }
}

fn preamble(out: &mut Vec<u8>, kind: u8) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind);
}

fn text(out: &mut Vec<u8>, text: &str) {
    // Texts are cut at 1 KiB, at a character boundary: they are for people.
    let mut len = text.len().min(1024);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..len]);
}

impl Hello {
    pub fn encode(&self) -> Vec<u8> {
        let t = &self.message_type;
        let mut out = Vec::with_capacity(64 + t.name.len() + t.layout.len());
        preamble(&mut out, HELLO);
        for word in [
            self.epoch,
            self.next,
            self.window,
            t.size,
            t.align,
            t.schema,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.push(u8::from(t.serde));
        text(&mut out, &t.name);
        text(&mut out, &t.layout);
        out
    }
}

impl Ack {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(30);
        preamble(&mut out, ACK);
        for word in [self.importer, self.epoch, self.next] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out
    }
}

impl Refusal {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.reason.len());
        preamble(&mut out, REFUSAL);
        for word in [self.importer, self.epoch] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        text(&mut out, &self.reason);
        out
    }
}

/// Reads fields off the front of a received sample, checking each length.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed(format!(
                "{what}: needs {n} more bytes, {} left",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self, what: &str) -> Result<u64, Malformed> {
        let bytes = self.take(8, what)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Malformed> {
        let bytes = self.take(4, what)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    fn text(&mut self, what: &str) -> Result<String, Malformed> {
        let len = self.take(2, what)?;
        let len = u16::from_le_bytes([len[0], len[1]]) as usize;
        Ok(String::from_utf8_lossy(self.take(len, what)?).into_owned())
    }

    /// The preamble's kind byte.
    fn kind(&mut self) -> Result<u8, Malformed> {
        let preamble = self.take(6, "preamble")?;
        if preamble[..4] != MAGIC {
            return Err(Malformed(
                "not a shmchan bridge sample (wrong magic bytes): is another program \
                 publishing on this key?"
                    .into(),
            ));
        }
        if preamble[4] != VERSION {
            return Err(Malformed(format!(
                "protocol version {}, this bridge speaks version {VERSION}: run the same \
                 shmchan-bridge version on both hosts",
                preamble[4]
            )));
        }
        Ok(preamble[5])
    }
}

impl<'a> Downstream<'a> {
    /// Parses a sample received on the data key.
    pub fn decode(sample: &'a [u8]) -> Result<Self, Malformed> {
        let mut r = Reader(sample);
        match r.kind()? {
            HELLO => {
                let epoch = r.u64("hello")?;
                let next = r.u64("hello")?;
                let window = r.u64("hello")?;
                let size = r.u64("hello")?;
                let align = r.u64("hello")?;
                let schema = r.u64("hello")?;
                let serde = r.take(1, "hello")?[0] != 0;
                let name = r.text("hello: type name")?;
                let layout = r.text("hello: layout")?;
                Ok(Self::Hello(Hello {
                    epoch,
                    next,
                    window,
                    message_type: MessageType {
                        name,
                        layout,
                        size,
                        align,
                        schema,
                        serde,
                    },
                }))
            }
            DATA => {
                let epoch = r.u64("data")?;
                let first = r.u64("data")?;
                let count = r.u32("data")?;
                let size = r.u32("data")?;
                if first.checked_add(count.into()).is_none() {
                    return Err(Malformed(format!(
                        "data frame numbers {count} messages from {first}, past the last number"
                    )));
                }
                let body = r.0;
                let data = Data {
                    epoch,
                    first,
                    count,
                    size,
                    body,
                };
                // Walk the messages once now, so that `messages` can trust
                // the frame.
                let mut n = 0;
                for message in data.iter() {
                    message?;
                    n += 1;
                }
                if n != count {
                    return Err(Malformed(format!(
                        "data frame says {count} messages, holds {n}"
                    )));
                }
                Ok(Self::Data(data))
            }
            kind => Err(Malformed(format!(
                "unknown sample kind {kind} on the data key"
            ))),
        }
    }
}

impl<'a> Data<'a> {
    /// The frame's messages, in order; each checked against the frame's end.
    pub fn iter(&self) -> impl Iterator<Item = Result<&'a [u8], Malformed>> + 'a {
        let mut rest = self.body;
        let size = self.size as usize;
        core::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let len = if size == 0 {
                let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                    rest = &[];
                    return Some(Err(Malformed("data frame: a length cut short".into())));
                };
                rest = tail;
                u32::from_le_bytes(*len) as usize
            } else {
                size
            };
            if rest.len() < len {
                rest = &[];
                return Some(Err(Malformed(format!(
                    "data frame: a message of {len} bytes, {} left",
                    rest.len()
                ))));
            }
            let (message, tail) = rest.split_at(len);
            rest = tail;
            Some(Ok(message))
        })
    }
}

impl Upstream {
    /// Parses a sample received on the ack key.
    pub fn decode(sample: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader(sample);
        match r.kind()? {
            ACK => Ok(Self::Ack(Ack {
                importer: r.u64("ack")?,
                epoch: r.u64("ack")?,
                next: r.u64("ack")?,
            })),
            REFUSAL => Ok(Self::Refusal(Refusal {
                importer: r.u64("refusal")?,
                epoch: r.u64("refusal")?,
                reason: r.text("refusal")?,
            })),
            kind => Err(Malformed(format!(
                "unknown sample kind {kind} on the ack key"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick() -> MessageType {
        MessageType::of::<[u64; 3]>()
    }

    #[test]
    fn hello_ack_and_refusal_round_trip() {
        let hello = Hello {
            epoch: 7,
            next: 42,
            window: 4096,
            message_type: tick(),
        };
        assert_eq!(
            Downstream::decode(&hello.encode()),
            Ok(Downstream::Hello(hello))
        );
        let ack = Ack {
            importer: 1,
            epoch: 7,
            next: 99,
        };
        assert_eq!(Upstream::decode(&ack.encode()), Ok(Upstream::Ack(ack)));
        let refusal = Refusal {
            importer: 1,
            epoch: 7,
            reason: "é".repeat(600),
        };
        let Ok(Upstream::Refusal(back)) = Upstream::decode(&refusal.encode()) else {
            panic!("refusal did not decode");
        };
        assert_eq!(
            back.reason,
            "é".repeat(512),
            "cut at 1 KiB, on a char boundary"
        );
    }

    #[test]
    fn frames_of_both_shapes_round_trip() {
        let mut fixed = Frame::new(3);
        fixed.push(b"abc");
        fixed.push_with(3, |room| room.copy_from_slice(b"def"));
        assert!(!fixed.try_push_with(3, |room| {
            room.copy_from_slice(b"xyz");
            false
        }));
        let sealed = fixed.seal(5, 10).to_vec();
        let Ok(Downstream::Data(data)) = Downstream::decode(&sealed) else {
            panic!("fixed frame did not decode");
        };
        assert_eq!((data.epoch, data.first, data.count), (5, 10, 2));
        let messages: Vec<_> = data.iter().map(Result::unwrap).collect();
        assert_eq!(messages, [&b"abc"[..], b"def"]);

        let mut var = Frame::new(0);
        var.push(b"");
        var.push(b"hello");
        let sealed = var.seal(5, 12).to_vec();
        let Ok(Downstream::Data(data)) = Downstream::decode(&sealed) else {
            panic!("variable frame did not decode");
        };
        let messages: Vec<_> = data.iter().map(Result::unwrap).collect();
        assert_eq!(messages, [&b""[..], b"hello"]);
        var.clear();
        assert_eq!((var.count(), var.body_len()), (0, 0));
    }

    #[test]
    fn hostile_samples_are_errors_not_panics() {
        let mut frame = Frame::new(0);
        frame.push(b"hello");
        let good = frame.seal(1, 0).to_vec();
        // Every truncation, every single-byte change of the header, and a
        // count that lies.
        for cut in 0..good.len() {
            let _ = Downstream::decode(&good[..cut]);
        }
        for i in 0..good.len() {
            for byte in [0, 1, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = byte;
                let _ = Downstream::decode(&bad);
                let _ = Upstream::decode(&bad);
            }
        }
        let mut lying = good.clone();
        lying[DATA_HEADER - 8..DATA_HEADER - 4].copy_from_slice(&5u32.to_le_bytes());
        assert!(Downstream::decode(&lying).is_err());
        let mut long = good.clone();
        long[DATA_HEADER..DATA_HEADER + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Downstream::decode(&long).is_err());
        let mut last = good.clone();
        last[14..22].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Downstream::decode(&last)
            .unwrap_err()
            .0
            .contains("past the last"));
        assert!(Downstream::decode(b"SCZB\x02\x02")
            .unwrap_err()
            .0
            .contains("version"));
        assert!(Downstream::decode(b"nope!!")
            .unwrap_err()
            .0
            .contains("magic"));
    }
}
