//! Syslog listeners: UDP (one datagram, one chunk), TCP and TLS (a stream framed by
//! newline or octet counting into chunks of whole records).
//!
//! Limits: at most `max_connections` TCP/TLS connections at once (more are closed at
//! accept), an idle timeout per connection, and at most `max_message_bytes` buffered
//! per connection without a record boundary. Past that the bytes are handed over as
//! they are, to be dead-lettered by the parser's size limit, and the rest of that
//! record is discarded as it arrives (to its declared length when octet-counted, else
//! to its newline), so the stream resumes at the next record.

mod stream;
mod udp;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vedette_core::config::SyslogConfig;

use crate::chunk::ChunkSender;
use crate::error::ConnectorError;

pub use crate::tls::load_server_config;

/// Source names used in chunks, metrics and dead letters.
pub const UDP_SOURCE: &str = "syslog-udp";
/// TCP source name.
pub const TCP_SOURCE: &str = "syslog-tcp";
/// TLS source name.
pub const TLS_SOURCE: &str = "syslog-tls";

/// What a listener needs to know about where its chunks go.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) sink: ChunkSender,
    pub(crate) tenant: String,
    pub(crate) max_message_bytes: usize,
    pub(crate) idle_timeout: std::time::Duration,
    pub(crate) cancel: CancellationToken,
}

/// Running syslog listeners and the addresses they are bound to.
#[derive(Debug)]
pub struct SyslogListeners {
    /// Bound UDP address, if UDP is on.
    pub udp: Option<SocketAddr>,
    /// Bound TCP address, if TCP is on.
    pub tcp: Option<SocketAddr>,
    /// Bound TLS address, if TLS is on.
    pub tls: Option<SocketAddr>,
    /// Datagrams dropped because the pipeline was full (UDP cannot push back).
    pub udp_dropped: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl SyslogListeners {
    /// Waits for every listener task to end (after cancellation).
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, ConnectorError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ConnectorError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Binds every configured listener (failing fast on a taken port or bad TLS material)
/// and starts serving; chunks go to `sink` until `cancel` fires.
pub async fn start(
    config: &SyslogConfig,
    tenant: &str,
    sink: ChunkSender,
    cancel: CancellationToken,
) -> Result<SyslogListeners, ConnectorError> {
    let route = Route {
        sink,
        tenant: tenant.to_string(),
        max_message_bytes: config.max_message_bytes,
        idle_timeout: std::time::Duration::from_secs(config.idle_timeout_secs),
        cancel,
    };
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let mut listeners = SyslogListeners {
        udp: None,
        tcp: None,
        tls: None,
        udp_dropped: Arc::default(),
        tasks: Vec::new(),
    };
    if config.udp {
        let socket =
            UdpSocket::bind(config.udp_addr)
                .await
                .map_err(|source| ConnectorError::Bind {
                    addr: config.udp_addr.to_string(),
                    source,
                })?;
        listeners.udp = socket.local_addr().ok();
        listeners.tasks.push(tokio::spawn(udp::serve(
            socket,
            route.clone(),
            listeners.udp_dropped.clone(),
        )));
    }
    if config.tcp {
        let listener = bind_tcp(config.tcp_addr).await?;
        listeners.tcp = listener.local_addr().ok();
        listeners.tasks.push(tokio::spawn(stream::serve_tcp(
            listener,
            None,
            route.clone(),
            connections.clone(),
        )));
    }
    if let Some(tls) = &config.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(load_server_config(tls)?));
        let listener = bind_tcp(tls.addr).await?;
        listeners.tls = listener.local_addr().ok();
        listeners.tasks.push(tokio::spawn(stream::serve_tcp(
            listener,
            Some(acceptor),
            route.clone(),
            connections,
        )));
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests;
