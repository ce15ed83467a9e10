//! The events of the `orders` example and the `serde` bench: the serde
//! types a trading gateway has (strings, vectors, options, enums), and a
//! deterministic stream of them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub symbol: String,
    pub side: Side,
    pub qty: u32,
    pub limit: Option<f64>,
    pub account: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub qty: u32,
    pub price: f64,
    pub venue: String,
}

/// What a gateway publishes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    New(Order),
    Filled { order: u64, fills: Vec<Fill> },
    Cancel { order: u64, reason: String },
    Heartbeat { seq: u64 },
}

pub const SYMBOLS: [&str; 6] = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI", "VANDELAY"];
pub const VENUES: [&str; 3] = ["XNAS", "XNYS", "BATS"];

/// The `i`th event the gateway sends: half new orders, fills of one to four
/// executions, cancels, heartbeats; every field depends on `i`.
pub fn event(i: u64) -> Event {
    let symbol = SYMBOLS[(i % 6) as usize];
    match i % 10 {
        0..=4 => Event::New(Order {
            id: i,
            symbol: symbol.to_owned(),
            side: if i % 3 == 0 { Side::Sell } else { Side::Buy },
            qty: (i % 500) as u32 + 1,
            limit: (i % 4 != 0).then_some(100.0 + (i % 977) as f64 * 0.25),
            account: format!("acct-{}", i % 37),
        }),
        5..=7 => Event::Filled {
            order: i - 5,
            fills: (0..i % 4 + 1)
                .map(|k| Fill {
                    qty: (i % 100 + k) as u32 + 1,
                    price: 100.0 + (i % 977) as f64 * 0.25 + k as f64 * 0.01,
                    venue: VENUES[((i + k) % 3) as usize].to_owned(),
                })
                .collect(),
        },
        8 => Event::Cancel {
            order: i - 8,
            reason: format!("client request {}", i % 1000),
        },
        _ => Event::Heartbeat { seq: i },
    }
}

/// What the echo peer sends back.
pub fn echo(event: Event) -> Event {
    match event {
        Event::Heartbeat { seq } => Event::Heartbeat { seq: seq + 1 },
        other => other,
    }
}
