//! `shmchan watch`: a channel's rates over time.

use crate::show::{unix_seconds, utc};
use serde_json::json;
use shmchan::inspect;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime};

/// Samples the channel `name` every `interval`, `count` times (or until
/// interrupted), printing messages per second in (sent) and out
/// (received), the length and the high-water mark: in place on a terminal,
/// a line per sample otherwise, a JSON object per line with `json`.
pub fn watch(name: &str, interval: Duration, count: Option<u64>, json: bool) -> crate::Result {
    let mut last = inspect::channel(name)?;
    let mut last_at = Instant::now();
    let in_place = !json && std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    if !json {
        writeln!(
            out,
            "{} ({} {}, capacity {}), every {} ms",
            last.name,
            last.flavor,
            last.type_name,
            last.stats.capacity,
            interval.as_millis()
        )?;
    }
    let mut taken = 0u64;
    while count.is_none_or(|count| taken < count) {
        std::thread::sleep(interval);
        let now = inspect::channel(name)?;
        let at = Instant::now();
        let seconds = at
            .duration_since(last_at)
            .as_secs_f64()
            .max(f64::MIN_POSITIVE);
        let sent = now.stats.sent.wrapping_sub(last.stats.sent);
        let received = now.stats.received.wrapping_sub(last.stats.received);
        let (in_rate, out_rate) = (sent as f64 / seconds, received as f64 / seconds);
        let stats = &now.stats;
        if json {
            let sample = json!({
                "name": now.name,
                "time": unix_seconds(SystemTime::now()),
                "interval_s": seconds,
                "sent": stats.sent,
                "received": stats.received,
                "in_per_s": in_rate.round(),
                "out_per_s": out_rate.round(),
                "len": stats.len,
                "high_water": stats.high_water,
                "refusals": stats.full,
                "stale": now.stale(),
            });
            writeln!(out, "{sample}")?;
        } else {
            let line = format!(
                "{}  in {:>12}/s  out {:>12}/s  len {:>8}  high water {:>8}  {}",
                utc(SystemTime::now()),
                rate(in_rate),
                rate(out_rate),
                stats.len,
                stats.high_water,
                if now.stale() { "stale" } else { "live" }
            );
            if in_place {
                write!(out, "\r\x1b[2K{line}")?;
            } else {
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        last = now;
        last_at = at;
        taken += 1;
    }
    if in_place {
        writeln!(out)?;
    }
    Ok(())
}

/// `1234567` as `1.23 M`.
fn rate(per_second: f64) -> String {
    match per_second {
        r if r >= 1e9 => format!("{:.2} G", r / 1e9),
        r if r >= 1e6 => format!("{:.2} M", r / 1e6),
        r if r >= 1e3 => format!("{:.2} k", r / 1e3),
        r => format!("{r:.0}"),
    }
}
