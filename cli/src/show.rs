//! How channels and other entries look: as text for people, as JSON for
//! programs (the fields DESIGN §13 names, and a few more).

use serde_json::{json, Value};
use shmchan::inspect::{Channel, Entry};
use shmchan::EndpointInfo;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The fields every channel has in JSON, `ls` and `stat` alike.
fn channel_fields(channel: &Channel) -> serde_json::Map<String, Value> {
    let stats = &channel.stats;
    let endpoints: Vec<Value> = stats
        .endpoints
        .iter()
        .map(|e| json!({ "role": e.role, "pid": e.pid, "alive": e.alive }))
        .collect();
    let value = json!({
        "name": channel.name,
        "status": "channel",
        "flavor": channel.flavor,
        "type": channel.type_name,
        "layout": channel.layout,
        "capacity": stats.capacity,
        "len": stats.len,
        "sent": stats.sent,
        "received": stats.received,
        "high_water": stats.high_water,
        "refusals": stats.full,
        "endpoints": endpoints,
        "stale": channel.stale(),
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// `ls --json`: one array, channels and the rest.
pub fn entries_json(entries: &[Entry]) -> String {
    let values: Vec<Value> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Channel(channel) => Value::Object(channel_fields(channel)),
            other => {
                let (status, detail) = other_status(other);
                json!({ "name": other.name(), "status": status, "detail": detail })
            }
        })
        .collect();
    Value::Array(values).to_string()
}

/// What an entry that is not a channel is, in a word, and why.
fn other_status(entry: &Entry) -> (&'static str, &str) {
    match entry {
        Entry::Foreign { detail, .. } => ("foreign", detail),
        Entry::Damaged { detail, .. } => ("damaged", detail),
        Entry::Unreadable { detail, .. } => ("unreadable", detail),
        Entry::Channel(_) => ("channel", ""),
        _ => ("unknown", ""),
    }
}

/// `ls`: a table, one line per object.
pub fn entries_table(entries: &[Entry]) -> String {
    let mut rows = vec![[
        "NAME",
        "FLAVOR",
        "TYPE",
        "CAPACITY",
        "LEN",
        "ENDPOINTS",
        "STATE",
    ]
    .map(str::to_owned)];
    for entry in entries {
        rows.push(match entry {
            Entry::Channel(channel) => [
                channel.name.clone(),
                channel.flavor.to_owned(),
                channel.type_name.clone(),
                channel.stats.capacity.to_string(),
                channel.stats.len.to_string(),
                endpoints_brief(&channel.stats.endpoints),
                if channel.stale() { "stale" } else { "live" }.to_owned(),
            ],
            other => {
                let (status, detail) = other_status(other);
                let dash = || "-".to_owned();
                [
                    other.name().to_owned(),
                    dash(),
                    dash(),
                    dash(),
                    dash(),
                    dash(),
                    format!("{status}: {detail}"),
                ]
            }
        });
    }
    if entries.is_empty() {
        return "no shared-memory objects\n".to_owned();
    }
    table(&rows)
}

/// `sender 1234, receiver 5678 (dead)`.
fn endpoints_brief(endpoints: &[EndpointInfo]) -> String {
    if endpoints.is_empty() {
        return "none".to_owned();
    }
    endpoints
        .iter()
        .map(|e| {
            let dead = if e.alive { "" } else { " (dead)" };
            format!("{} {}{dead}", e.role, e.pid)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Left-aligned columns, two spaces apart; the last one as it is.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push('\n');
    }
    out
}

/// `stat --json`: the common fields and the header's.
pub fn channel_json(channel: &Channel) -> String {
    let mut fields = channel_fields(channel);
    let extra = json!({
        "elem_size": channel.elem_size,
        "elem_align": channel.elem_align,
        "schema": format!("{:#018x}", channel.schema),
        "rings": channel.rings,
        "mode": format!("{:04o}", channel.mode),
        "uid": channel.uid,
        "size": channel.size,
        "creator_pid": channel.creator_pid,
        "created": utc(channel.created),
        "created_unix": unix_seconds(channel.created),
    });
    if let Value::Object(extra) = extra {
        fields.extend(extra);
    }
    Value::Object(fields).to_string()
}

/// `stat`: one field a line.
pub fn channel_text(channel: &Channel) -> String {
    let stats = &channel.stats;
    let unit = if channel.flavor == "bytes" {
        "bytes".to_owned()
    } else {
        format!("messages of {} bytes", channel.elem_size)
    };
    let per = if channel.flavor == "mpsc" {
        format!(" per sender, {} senders at most", channel.rings)
    } else {
        String::new()
    };
    let mut lines: Vec<(&str, String)> = vec![
        ("channel", channel.name.clone()),
        ("flavor", channel.flavor.to_owned()),
        ("type", channel.type_name.clone()),
        ("layout", channel.layout.clone()),
        ("capacity", format!("{} {unit}{per}", stats.capacity)),
        ("schema", format!("{:#018x}", channel.schema)),
        (
            "mode",
            format!("{:04o}, owner uid {}", channel.mode, channel.uid),
        ),
        ("size", format!("{} bytes", channel.size)),
        (
            "created",
            format!("{} by pid {}", utc(channel.created), channel.creator_pid),
        ),
        ("sent", stats.sent.to_string()),
        ("received", stats.received.to_string()),
        ("len", stats.len.to_string()),
        ("high water", stats.high_water.to_string()),
        (
            "refusals",
            format!("{} (try_send on a full channel)", stats.full),
        ),
    ];
    if stats.endpoints.is_empty() {
        lines.push(("endpoints", "none".to_owned()));
    }
    for (i, e) in stats.endpoints.iter().enumerate() {
        let state = if e.alive { "alive" } else { "dead" };
        let label = if i == 0 { "endpoints" } else { "" };
        lines.push((label, format!("{} pid {} {state}", e.role, e.pid)));
    }
    let state = if channel.stale() {
        "stale: every endpoint is dead (`shmchan clean` removes it)"
    } else {
        "live"
    };
    lines.push(("state", state.to_owned()));
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (label, value) in lines {
        let _ = writeln!(out, "{label:<width$}  {value}");
    }
    out
}

pub fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// `2026-12-06T05:40:12Z`.
pub fn utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_gregorian() {
        let at = |secs| utc(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_796_535_612), "2026-12-06T05:40:12Z");
    }

    #[test]
    fn tables_align_their_columns() {
        let rows = [
            ["a".to_owned(), "bb".to_owned(), "c".to_owned()],
            ["dddd".to_owned(), "e".to_owned(), "ffffff".to_owned()],
        ];
        assert_eq!(table(&rows), "a     bb  c\ndddd  e   ffffff\n");
    }
}
