use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_util::sync::CancellationToken;
use vedette_core::config::{SyslogConfig, SyslogTlsConfig};
use vedette_core::traits::{RawChunk, Source};

use super::*;
use crate::chunk::{channel, ChannelSource};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn config() -> SyslogConfig {
    SyslogConfig {
        udp_addr: loopback(),
        tcp_addr: loopback(),
        ..SyslogConfig::default()
    }
}

async fn next(source: &mut ChannelSource) -> RawChunk {
    match tokio::time::timeout(Duration::from_secs(5), source.next_chunk()).await {
        Ok(Ok(Some(chunk))) => chunk,
        other => panic!("no chunk: {other:?}"),
    }
}

/// Everything received until `total` bytes arrived.
async fn collect(source: &mut ChannelSource, total: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < total {
        out.extend_from_slice(&next(source).await.bytes);
    }
    out
}

#[tokio::test]
async fn udp_datagrams_become_chunks() {
    let (tx, mut source) = channel(16);
    let cancel = CancellationToken::new();
    let listeners = start(&config(), "t1", tx, cancel.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listeners.udp.unwrap_or_else(|| panic!("udp not bound"));
    let client = UdpSocket::bind(loopback())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .send_to(b"<34>Oct 11 22:14:15 host su: one", addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let chunk = next(&mut source).await;
    assert_eq!(&chunk.bytes[..], b"<34>Oct 11 22:14:15 host su: one");
    assert_eq!(
        (chunk.source.as_str(), chunk.tenant.as_str()),
        (UDP_SOURCE, "t1")
    );
    cancel.cancel();
    listeners.join().await;
}

#[tokio::test]
async fn udp_datagrams_beyond_a_full_pipeline_are_dropped_and_counted() {
    let (tx, mut source) = channel(1);
    let cancel = CancellationToken::new();
    let listeners = start(&config(), "t1", tx, cancel.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listeners.udp.unwrap_or_else(|| panic!("udp not bound"));
    let client = UdpSocket::bind(loopback())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..5 {
        client
            .send_to(format!("<34>Oct 11 22:14:15 host su: {i}").as_bytes(), addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let dropped = listeners.udp_dropped.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while dropped.load(std::sync::atomic::Ordering::Relaxed) < 4
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dropped.load(std::sync::atomic::Ordering::Relaxed), 4);
    // The first one went through.
    assert!(next(&mut source).await.bytes.ends_with(b"su: 0"));
    cancel.cancel();
    listeners.join().await;
}

/// Listeners started with `cfg`, and a TCP client connected to them.
async fn connected(
    cfg: &SyslogConfig,
) -> (ChannelSource, CancellationToken, SyslogListeners, TcpStream) {
    let (tx, source) = channel(16);
    let cancel = CancellationToken::new();
    let listeners = start(cfg, "t", tx, cancel.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listeners.tcp.unwrap_or_else(|| panic!("tcp not bound"));
    let stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (source, cancel, listeners, stream)
}

/// Writes each part as a read of its own (a pause after each).
async fn send_parts<P: AsRef<[u8]>>(stream: &mut TcpStream, parts: &[P]) {
    for part in parts {
        stream
            .write_all(part.as_ref())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        stream.flush().await.unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn tcp_stream_is_framed_into_whole_records() {
    let (mut source, cancel, listeners, mut stream) = connected(&config()).await;
    // A record split across writes, an octet-counted frame with a newline inside, and
    // a last record without its newline.
    let parts: [&[u8]; 3] = [b"<1>first rec", b"ord\n12 <2>two\nlines", b"<3>last"];
    send_parts(&mut stream, &parts).await;
    drop(stream);
    let expected = b"<1>first record\n12 <2>two\nlines<3>last";
    let all = collect(&mut source, expected.len()).await;
    assert_eq!(all, expected);
    cancel.cancel();
    listeners.join().await;
}

#[tokio::test]
async fn after_an_oversized_record_the_stream_resumes_at_the_next_one() {
    let cfg = SyslogConfig {
        udp: false,
        max_message_bytes: 1000,
        ..config()
    };
    let (mut source, cancel, listeners, mut stream) = connected(&cfg).await;
    // Octet-counted frames and no newline anywhere, as RFC 6587 senders send: one of
    // 5,000 bytes (over the limit), then a normal one. Then a newline-framed line over
    // the limit whose tail looks like a record of its own, then a normal line.
    let body = format!("<13>{}", "a".repeat(4996));
    let oversized = format!("{} {body}", body.len());
    let tail = format!(
        "<13>{} <13>Oct 11 22:14:15 forged su: tail\n",
        "b".repeat(1200)
    );
    // Each oversized record is cut so that its start fills a read and its rest shares
    // the next read with the record after it.
    let parts = [
        oversized.as_bytes()[..1500].to_vec(),
        [&oversized.as_bytes()[1500..], &b"8 <14>next"[..]].concat(),
        tail.as_bytes()[..1100].to_vec(),
        [&tail.as_bytes()[1100..], &b"<15>last line\n"[..]].concat(),
    ];
    send_parts(&mut stream, &parts).await;
    drop(stream);
    let mut chunks = Vec::new();
    while !chunks
        .iter()
        .any(|c: &Vec<u8>| c.ends_with(b"<15>last line\n"))
    {
        chunks.push(next(&mut source).await.bytes.to_vec());
    }
    let records: Vec<&[u8]> = chunks
        .iter()
        .filter(|c| c.len() <= 1000)
        .map(Vec::as_slice)
        .collect();
    assert_eq!(records, [&b"8 <14>next"[..], b"<15>last line\n"]);
    let oversized_chunks = chunks.iter().filter(|c| c.len() > 1000).count();
    assert_eq!(
        oversized_chunks, 2,
        "each oversized record handed over once"
    );
    cancel.cancel();
    listeners.join().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_a_record_is_disconnected() {
    let cfg = SyslogConfig {
        udp: false,
        idle_timeout_secs: 1,
        ..config()
    };
    let (mut source, cancel, listeners, mut stream) = connected(&cfg).await;
    let started = std::time::Instant::now();
    // One byte every 100 ms for 5 s, never a newline: every read is recent, but no
    // record ever completes.
    let trickle = tokio::spawn(async move {
        for _ in 0..50 {
            if stream.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // Closing the connection hands over the partial bytes: that happens after about
    // the idle timeout, long before the client is done.
    let chunk = next(&mut source).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "closed only after {elapsed:?}"
    );
    assert!(!chunk.bytes.is_empty() && chunk.bytes.len() < 50);
    trickle.abort();
    cancel.cancel();
    listeners.join().await;
}

#[tokio::test]
async fn a_taken_port_fails_fast() {
    let taken = std::net::TcpListener::bind(loopback()).unwrap_or_else(|e| panic!("{e}"));
    let addr = taken.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let cfg = SyslogConfig {
        udp: false,
        tcp_addr: addr,
        ..config()
    };
    let (tx, _source) = channel(1);
    let err = start(&cfg, "t", tx, CancellationToken::new())
        .await
        .err()
        .map(|e| e.to_string());
    assert!(err
        .unwrap_or_default()
        .contains(&format!("cannot listen on {addr}")));
}

fn tls_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    let cert_pem = certified.cert.pem();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap_or_else(|e| panic!("{e}"));
    (cert, key, cert_pem)
}

/// Connects to `addr` as `localhost` with `client`, sends `bytes` and closes cleanly.
async fn send_over_tls(addr: SocketAddr, client: ClientConfig, bytes: &[u8]) {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name = ServerName::try_from("localhost").unwrap_or_else(|e| panic!("{e}"));
    let mut tls = connector
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tls.write_all(bytes).await.unwrap_or_else(|e| panic!("{e}"));
    tls.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

/// A config with only the TLS listener on.
fn tls_only(
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    client_ca: Option<std::path::PathBuf>,
) -> SyslogConfig {
    SyslogConfig {
        udp: false,
        tcp: false,
        tls: Some(SyslogTlsConfig {
            addr: loopback(),
            cert,
            key,
            client_ca,
        }),
        ..config()
    }
}

fn client_config(ca_pem: &str) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[tokio::test]
async fn tls_records_arrive_and_plain_tcp_on_the_tls_port_does_not() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key, cert_pem) = tls_files(dir.path());
    let cfg = tls_only(cert, key, None);
    let (tx, mut source) = channel(16);
    let cancel = CancellationToken::new();
    let listeners = start(&cfg, "t", tx, cancel.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listeners.tls.unwrap_or_else(|| panic!("tls not bound"));

    // Plain text on the TLS port is not a record.
    let mut plain = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = plain.write_all(b"<1>not tls\n").await;
    drop(plain);

    send_over_tls(
        addr,
        client_config(&cert_pem),
        b"<13>1 2026-11-27T12:00:00Z h app - - - over tls\n",
    )
    .await;
    let chunk = next(&mut source).await;
    assert_eq!(chunk.source, TLS_SOURCE);
    assert_eq!(
        &chunk.bytes[..],
        b"<13>1 2026-11-27T12:00:00Z h app - - - over tls\n"
    );
    cancel.cancel();
    listeners.join().await;
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key, cert_pem) = tls_files(dir.path());
    let cfg = tls_only(cert.clone(), key, Some(cert));
    let (tx, mut source) = channel(16);
    let cancel = CancellationToken::new();
    let listeners = start(&cfg, "t", tx, cancel.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listeners.tls.unwrap_or_else(|| panic!("tls not bound"));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&cert_pem)));
    let tcp = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name = ServerName::try_from("localhost").unwrap_or_else(|e| panic!("{e}"));
    if let Ok(mut tls) = connector.connect(name, tcp).await {
        // TLS 1.3 reports the refusal on first use.
        let _ = tls.write_all(b"<1>should not arrive\n").await;
        let _ = tls.shutdown().await;
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), source.next_chunk()).await;
    assert!(
        nothing.is_err(),
        "a record arrived without a client certificate"
    );
    cancel.cancel();
    listeners.join().await;
}

#[tokio::test]
async fn mutual_tls_accepts_a_client_certificate_signed_by_the_ca() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fail = |e: rcgen::Error| -> ! { panic!("{e}") };
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail(e));
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap_or_else(|e| fail(e));
    let sign = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail(e));
        let params =
            rcgen::CertificateParams::new(vec![name.to_string()]).unwrap_or_else(|e| fail(e));
        let cert = params.signed_by(&key, &ca).unwrap_or_else(|e| fail(e));
        (cert, key)
    };
    let (server_cert, server_key) = sign("localhost");
    let (client_cert, client_key) = sign("agent-1");
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        path
    };
    let cfg = tls_only(
        write("server.pem", server_cert.pem()),
        write("server.key", server_key.serialize_pem()),
        Some(write("ca.pem", ca.pem())),
    );
    let (tx, mut source) = channel(16);
    let cancel = CancellationToken::new();
    let listeners = start(&cfg, "t", tx, cancel.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listeners.tls.unwrap_or_else(|| panic!("tls not bound"));

    let mut roots = RootCertStore::empty();
    roots
        .add(ca.der().clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let key =
        rustls_pki_types::PrivateKeyDer::from_pem_slice(client_key.serialize_pem().as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![client_cert.der().clone()], key)
        .unwrap_or_else(|e| panic!("{e}"));
    send_over_tls(
        addr,
        client,
        b"<13>1 2026-11-27T12:00:00Z agent-1 app - - - hello over mtls\n",
    )
    .await;
    let chunk = next(&mut source).await;
    assert_eq!(chunk.source, TLS_SOURCE);
    assert!(chunk.bytes.ends_with(b"hello over mtls\n"));
    cancel.cancel();
    listeners.join().await;
}

#[test]
fn bad_tls_material_is_a_clear_error() {
    let cfg = SyslogTlsConfig {
        addr: loopback(),
        cert: "/nonexistent/cert.pem".into(),
        key: "/nonexistent/key.pem".into(),
        client_ca: None,
    };
    let err = load_server_config(&cfg)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}
