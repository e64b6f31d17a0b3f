//! TLS material for the listeners (syslog over TLS, the HTTP API): server certificate
//! and key, and optionally the CA that client certificates must chain to (mutual TLS).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use vedette_core::config::SyslogTlsConfig;

use crate::error::ConnectorError;

/// Builds the rustls server configuration from the PEM files of `[ingest.syslog.tls]`
/// (a configured client CA makes client certificates required).
pub fn load_server_config(config: &SyslogTlsConfig) -> Result<ServerConfig, ConnectorError> {
    server_config(&config.cert, &config.key, config.client_ca.as_deref(), true)
}

/// A rustls server configuration from PEM files: certificate chain `cert_path`, key
/// `key_path`, and when `client_ca` is given, client certificates verified against it
/// (required when `client_cert_required`, else verified only when presented).
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
    client_ca: Option<&Path>,
    client_cert_required: bool,
) -> Result<ServerConfig, ConnectorError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ConnectorError::Tls(format!("certificate {}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(ConnectorError::Tls(format!(
            "no certificate in {}",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| ConnectorError::Tls(format!("private key {}: {e}", key_path.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::Tls(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .map_err(|e| ConnectorError::Tls(format!("client CA {}: {e}", ca.display())))?
            {
                let cert = cert
                    .map_err(|e| ConnectorError::Tls(format!("client CA {}: {e}", ca.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| ConnectorError::Tls(format!("client CA {}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_cert_required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| ConnectorError::Tls(format!("client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| ConnectorError::Tls(format!("certificate and key: {e}")))
}
