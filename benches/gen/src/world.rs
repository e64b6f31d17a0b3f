//! The simulated estate: Windows workstations and servers, Linux servers, users, and the
//! clock of the stream. Names are stable functions of an index, so a seed and a scenario
//! give the same estate everywhere.

use chrono::{DateTime, Utc};

/// How large the estate is and how the stream's clock runs.
#[derive(Debug, Clone)]
pub struct World {
    /// Windows hosts (one in ten is a server).
    pub windows_hosts: u32,
    /// Linux hosts.
    pub linux_hosts: u32,
    /// User accounts.
    pub users: u32,
    /// Event time of the first event, Unix milliseconds.
    pub start_ms: i64,
    /// Event time between two consecutive events of the stream, milliseconds.
    pub event_ms: i64,
}

impl World {
    /// Event time of the event at stream position `index`.
    pub fn time_of(&self, index: u64) -> i64 {
        self.start_ms + index as i64 * self.event_ms
    }

    /// Whether Windows host `i` is a server (it runs services, not a desktop session).
    pub fn is_server(i: u32) -> bool {
        i.is_multiple_of(10)
    }

    /// The name of Windows host `i`.
    pub fn windows_host(i: u32) -> String {
        if Self::is_server(i) {
            format!("srv-{i:05}.corp.example")
        } else {
            format!("ws-{i:05}.corp.example")
        }
    }

    /// The name of Linux host `i`.
    pub fn linux_host(i: u32) -> String {
        format!("lnx-{i:04}")
    }

    /// The account name of user `i`.
    pub fn user(i: u32) -> String {
        format!("u{i:05}")
    }
}

/// `ms` as RFC 3339 UTC with milliseconds (`2026-10-01T08:00:00.000Z`).
pub fn iso_ms(ms: i64) -> String {
    at(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `ms` formatted with a chrono pattern, in UTC.
pub fn format_ms(ms: i64, pattern: &str) -> String {
    at(ms).format(pattern).to_string()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
