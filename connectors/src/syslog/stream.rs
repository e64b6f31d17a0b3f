//! Syslog over TCP and TLS: a byte stream framed into chunks of whole records.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use vedette_core::traits::RawChunk;

use super::{Route, TCP_SOURCE, TLS_SOURCE};
use crate::chunk::now_ms;
use crate::framing::complete_prefix;

/// Accepts connections until cancelled; TLS when an acceptor is given.
pub(crate) async fn serve_tcp(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    route: Route,
    slots: Arc<Semaphore>,
) {
    loop {
        let accepted = tokio::select! {
            () = route.cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "syslog accept failed");
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "syslog connection refused: max_connections reached");
            drop(stream);
            continue;
        };
        let route = route.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let origin = peer.to_string();
            match tls {
                None => read_stream(stream, TCP_SOURCE, origin, route).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        () = route.cancel.cancelled() => return,
                        h = tokio::time::timeout(route.idle_timeout, acceptor.accept(stream)) => h,
                    };
                    match handshake {
                        Ok(Ok(tls_stream)) => {
                            read_stream(tls_stream, TLS_SOURCE, origin, route).await
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "syslog tls handshake failed")
                        }
                        Err(_) => tracing::warn!(%peer, "syslog tls handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Reads one connection, handing over whole records as they complete.
async fn read_stream<S: AsyncRead + Unpin>(
    mut stream: S,
    source: &str,
    origin: String,
    route: Route,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut position = 0u64;
    let send = |bytes: Bytes, position: u64| RawChunk {
        source: source.to_string(),
        origin: origin.clone(),
        tenant: route.tenant.clone(),
        bytes,
        position,
        received_ms: now_ms(),
    };
    // The idle timeout runs from the last complete record, not the last byte: a client
    // trickling bytes without ever finishing a record (slowloris) loses its slot too.
    let mut deadline = tokio::time::Instant::now() + route.idle_timeout;
    loop {
        let read = tokio::select! {
            () = route.cancel.cancelled() => break,
            r = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => r,
        };
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%origin, error = %e, "syslog connection read failed");
                break;
            }
            Err(_) => {
                tracing::debug!(%origin, "syslog connection idle, closing");
                break;
            }
        };
        if n == 0 {
            break;
        }
        let complete = complete_prefix(&buf);
        let take = if complete > 0 {
            complete
        } else if buf.len() > route.max_message_bytes {
            // No boundary within the limit: hand the bytes over to be dead-lettered.
            buf.len()
        } else {
            continue;
        };
        let chunk = buf.split_to(take).freeze();
        let len = chunk.len() as u64;
        deadline = tokio::time::Instant::now() + route.idle_timeout;
        if route.sink.send(send(chunk, position)).await.is_err() {
            return;
        }
        position += len;
    }
    // A last record without its newline is still a record.
    if !buf.is_empty() {
        let _ = route.sink.send(send(buf.freeze(), position)).await;
    }
}
