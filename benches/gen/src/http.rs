//! A minimal HTTP/1.1 client for the harness (one request per connection, as an agent
//! that reconnects would), Prometheus text reading, and a webhook receiver that notes
//! when each story's alert was delivered.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// One request on a new connection (with a bearer token unless `token` is empty); the
/// status and the body (chunked bodies decoded).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.set_nodelay(true)?;
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let raw = vedette_core::io::read_capped(&mut s, 512 << 20)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("an answer without a header end")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    let body = &raw[end + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

/// Decodes a chunked transfer-encoded body.
fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk without its size line")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("a bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            bail!("a chunk cut short");
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The sum of every sample of the metric `name` (with any labels; a `name{...}` prefix
/// selects by label); 0 when absent.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| name.ends_with('}') || rest.starts_with([' ', '{']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// A free TCP port on loopback.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// When the first delivery naming each story token (`atk-NNNNNN`) arrived.
pub type Deliveries = Arc<Mutex<HashMap<String, Instant>>>;

/// A webhook receiver on loopback that notes, for each story token in a delivery, when
/// it first arrived. Returns its address.
pub fn webhook_receiver(deliveries: Deliveries) -> anyhow::Result<SocketAddr> {
    webhook_receiver_with(move |body, arrived| {
        if let Ok(mut d) = deliveries.lock() {
            for token in crate::recall::tokens(body) {
                d.entry(token).or_insert(arrived);
            }
        }
    })
}

/// A webhook receiver on loopback: answers 200 to every request and hands each body,
/// with when it arrived, to `on_delivery`. Returns its address.
pub fn webhook_receiver_with(
    on_delivery: impl Fn(&str, Instant) + Send + Sync + 'static,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let on_delivery = Arc::new(on_delivery);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let on_delivery = on_delivery.clone();
            std::thread::spawn(move || serve_webhooks(stream, &*on_delivery));
        }
    });
    Ok(addr)
}

fn serve_webhooks(mut stream: TcpStream, on_delivery: &dyn Fn(&str, Instant)) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let arrived = Instant::now();
        let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
        buf.drain(..end + 4 + len);
        on_delivery(&body, arrived);
        if stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// CPU seconds and peak RSS (MiB) of process `pid`, from `/proc`.
pub fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let cpu = (ticks(11) + ticks(12)) as f64 / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm_kib / 1024.0)
}

/// The `p` quantile (0..=1) of sorted durations (zero when empty).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_sum_over_labels_and_chunked_bodies_decode() {
        let text = "# HELP x\nvedette_a_total{s=\"1\"} 2\nvedette_a_total{s=\"2\"} 3\nvedette_ab_total 7\nvedette_a_total 1\n";
        assert_eq!(metric(text, "vedette_a_total"), 6);
        assert_eq!(metric(text, "vedette_a_total{s=\"2\"}"), 3);
        assert_eq!(metric(text, "vedette_missing"), 0);
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"9\r\nabc").is_err());
    }
}
