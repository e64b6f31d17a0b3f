//! What the `bus-bench` and `store-bench` harnesses share: process CPU time, and the
//! events `store-bench` stores.

use std::time::Duration;

pub mod store_data;

/// CPU time of the process so far (user + system, all threads), from `/proc/self/stat`
/// (clock ticks of 10 ms on Linux: runs here last seconds).
pub fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
