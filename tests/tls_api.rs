//! The API over TLS (`[http.tls]`): HTTPS with the server's certificate, plain HTTP
//! refused on that port, and `POST /v1/ingest` only for clients with a certificate
//! signed by the configured CA when `ingest_requires_client_cert` is on.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_addr, Service};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A CA, a server certificate for `localhost` and a client certificate, as PEM files.
struct Pki {
    ca: String,
    client_cert: String,
    client_key: String,
}

fn pki(dir: &Path) -> Pki {
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
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = sign("localhost");
    let (client_cert, client_key) = sign("agent-7");
    for (name, text) in [
        ("server.pem", &server_cert),
        ("server.key", &server_key),
        ("ca.pem", &ca.pem()),
    ] {
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    Pki {
        ca: ca.pem(),
        client_cert,
        client_key,
    }
}

fn client(pki: &Pki, with_cert: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca.as_bytes()) {
        roots
            .add(cert.unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots);
    Arc::new(if with_cert {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pki.client_cert.as_bytes())
                .map(|c| c.unwrap_or_else(|e| panic!("{e}")))
                .collect();
        let key = PrivateKeyDer::from_pem_slice(pki.client_key.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        builder
            .with_client_auth_cert(certs, key)
            .unwrap_or_else(|e| panic!("{e}"))
    } else {
        builder.with_no_client_auth()
    })
}

/// One HTTPS request; the status and the raw response.
fn https(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let connection = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = StreamOwned::new(connection, tcp);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())?;
    tls.write_all(body)?;
    tls.flush()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A peer closing without close_notify still sent the whole answer.
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    Ok((status, text))
}

#[test]
fn the_api_speaks_https_and_ingest_wants_a_client_certificate() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pki = pki(tmp.path());
    let dir = tmp.path().display();
    std::fs::write(
        tmp.path().join("v.toml"),
        format!(
            "data_dir = \"data\"\n[http.tls]\ncert = \"{dir}/server.pem\"\nkey = \"{dir}/server.key\"\nclient_ca = \"{dir}/ca.pem\"\ningest_requires_client_cert = true\n{}",
            common::syslog_config(free_addr(), free_addr())
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let service = Service::start(tmp.path(), &["--config", "v.toml"]);
    let (anonymous, agent) = (client(&pki, false), client(&pki, true));
    let admin = common::ADMIN_TOKEN;
    let start = Instant::now();
    loop {
        if let Ok((200, _)) = https(service.addr, anonymous.clone(), "GET", "/health", "", b"") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no HTTPS /health"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Tokens alone open the other endpoints.
    let (code, _) = https(service.addr, anonymous.clone(), "GET", "/ready", admin, b"")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200);
    // Ingest: the token is not enough without a client certificate.
    let line = b"{\"message\":\"over tls\",\"host\":\"h\"}\n";
    let (code, answer) = https(
        service.addr,
        anonymous,
        "POST",
        "/v1/ingest?format=json",
        admin,
        line,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("client certificate"), "{answer}");
    let (code, answer) = https(
        service.addr,
        agent.clone(),
        "POST",
        "/v1/ingest?format=json",
        admin,
        line,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{answer}");
    // ... and a certificate is not enough without a token.
    let (code, _) = https(
        service.addr,
        agent,
        "POST",
        "/v1/ingest?format=json",
        "",
        line,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 401);
    // Plain HTTP on the HTTPS port gets no answer.
    assert!(!matches!(
        common::http_get(service.addr, "/health"),
        Ok((200, _))
    ));
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn unreadable_tls_files_fail_the_start() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let stderr = common::start_fails(
        tmp.path(),
        "[http.tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n",
    );
    assert!(
        stderr.contains("http.tls") && stderr.contains("/nonexistent/c.pem"),
        "{stderr}"
    );
}
