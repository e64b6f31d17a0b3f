//! The client against a real HTTP receiver on loopback.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vedette_core::config::ResponderConfig;

use super::sign::verify;
use super::*;

const SECRET: &[u8] = b"0123456789abcdef-secret";

fn config(url: String) -> ResponderConfig {
    let mut c: ResponderConfig = toml::from_str(&format!(
        "name = \"t\"\nurl = \"{url}\"\nsecret_env = \"X\"\ninsecure_http = true\ntimeout_ms = 500"
    ))
    .unwrap();
    c.insecure_http = true;
    c
}

/// Answers one request with `answer` (a whole HTTP response) after checking its
/// signature; returns the request's headers and body.
async fn receiver(answer: &'static str) -> (String, tokio::task::JoinHandle<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body) = loop {
            let n = s.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if buf.len() >= end + 4 + len {
                    break (
                        text[..end].to_string(),
                        buf[end + 4..end + 4 + len].to_vec(),
                    );
                }
            }
        };
        s.write_all(answer.as_bytes()).await.unwrap();
        s.shutdown().await.unwrap();
        (head, body)
    });
    (url, task)
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

#[tokio::test]
async fn a_delivery_is_signed_and_keyed() {
    let (url, rx) = receiver("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
    let client = WebhookClient::new(&config(url), SECRET).unwrap();
    let sent = client.send(br#"{"x":1}"#, "a1-t", 1).await;
    assert_eq!(sent.outcome, AttemptOutcome::Delivered { status: 204 });
    let (head, body) = rx.await.unwrap();
    assert_eq!(body, br#"{"x":1}"#);
    assert_eq!(header(&head, "idempotency-key"), "a1-t");
    assert_eq!(header(&head, "x-vedette-attempt"), "1");
    let now = chrono::Utc::now().timestamp();
    verify(
        SECRET,
        header(&head, "x-vedette-timestamp"),
        header(&head, "x-vedette-signature"),
        &body,
        now,
        60,
    )
    .unwrap();
}

#[tokio::test]
async fn server_errors_retry_and_client_errors_refuse() {
    let (url, _rx) = receiver(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 7\r\ncontent-length: 4\r\n\r\nbusy",
    )
    .await;
    let sent = WebhookClient::new(&config(url), SECRET)
        .unwrap()
        .send(b"{}", "k", 2)
        .await;
    assert_eq!(
        sent.outcome,
        AttemptOutcome::Retry {
            status: Some(503),
            reason: "answered 503: busy".into(),
            retry_after: Some(Duration::from_secs(7)),
        }
    );
    let (url, _rx) =
        receiver("HTTP/1.1 401 Unauthorized\r\ncontent-length: 9\r\n\r\nbad token").await;
    let sent = WebhookClient::new(&config(url), SECRET)
        .unwrap()
        .send(b"{}", "k", 1)
        .await;
    assert_eq!(
        sent.outcome,
        AttemptOutcome::Refused {
            status: 401,
            reason: "answered 401: bad token".into(),
        }
    );
}

#[tokio::test]
async fn no_receiver_and_a_silent_one_are_retried() {
    // A port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let sent = WebhookClient::new(&config(format!("http://{addr}/")), SECRET)
        .unwrap()
        .send(b"{}", "k", 1)
        .await;
    assert!(
        matches!(&sent.outcome, AttemptOutcome::Retry { status: None, reason, .. } if reason.contains("sending failed")),
        "{sent:?}"
    );
    // A receiver that accepts and never answers: the attempt times out.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(s);
    });
    let sent = WebhookClient::new(&config(url), SECRET)
        .unwrap()
        .send(b"{}", "k", 1)
        .await;
    assert!(
        matches!(&sent.outcome, AttemptOutcome::Retry { reason, .. } if reason.contains("no answer within 500 ms")),
        "{sent:?}"
    );
    assert!(sent.latency >= Duration::from_millis(500));
}

#[test]
fn weak_secrets_plain_http_and_bad_urls_are_refused() {
    let mut c = config("http://127.0.0.1:1/".into());
    let weak = WebhookClient::new(&c, b"short").unwrap_err().to_string();
    assert!(weak.contains("at least 16 bytes"), "{weak}");
    c.url = "not a url".into();
    assert!(WebhookClient::new(&c, SECRET).is_err());
}

#[tokio::test]
async fn https_only_refuses_a_plain_url_at_send() {
    let (url, _rx) = receiver("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let mut c = config(url);
    c.insecure_http = false;
    let sent = WebhookClient::new(&c, SECRET)
        .unwrap()
        .send(b"{}", "k", 1)
        .await;
    assert!(
        matches!(&sent.outcome, AttemptOutcome::Retry { reason, .. } if reason.contains("sending failed")),
        "{sent:?}"
    );
}
