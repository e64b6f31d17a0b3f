//! TLS material for syslog over TLS: server certificate and key, and optionally the CA
//! that client certificates must chain to (mutual TLS).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use vedette_core::config::SyslogTlsConfig;

use crate::error::ConnectorError;

/// Builds the rustls server configuration from the PEM files of `[ingest.syslog.tls]`.
pub fn load_server_config(config: &SyslogTlsConfig) -> Result<ServerConfig, ConnectorError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ConnectorError::Tls(format!("certificate {}: {e}", config.cert.display())))?;
    if certs.is_empty() {
        return Err(ConnectorError::Tls(format!(
            "no certificate in {}",
            config.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(|e| ConnectorError::Tls(format!("private key {}: {e}", config.key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::Tls(e.to_string()))?;
    let builder = match &config.client_ca {
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
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ConnectorError::Tls(format!("client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| ConnectorError::Tls(format!("certificate and key: {e}")))
}
