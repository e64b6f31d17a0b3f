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
use crate::framing::{Step, StreamFramer};

/// How long accepting pauses after an accept fails.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);

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
                // Out of file descriptors (or another error that repeats at once): pause,
                // rather than spin on a failing accept and flood the log.
                tracing::warn!(error = %e, "syslog accept failed; pausing accepts");
                tokio::select! {
                    () = route.cancel.cancelled() => return,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
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
    let mut framer = StreamFramer::new(route.max_message_bytes);
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
        loop {
            let (take, hand_over) = match framer.next(&buf) {
                Step::Records(n) | Step::Oversized(n) => (n, true),
                Step::Discard(n) => (n, false),
                Step::Wait => break,
            };
            let bytes = buf.split_to(take).freeze();
            if hand_over {
                if route.sink.send(send(bytes, position)).await.is_err() {
                    return;
                }
                // From the hand-over, not before it: a send held by backpressure does
                // not count against the client.
                deadline = tokio::time::Instant::now() + route.idle_timeout;
            }
            position += take as u64;
        }
    }
    // A last record without its newline is still a record (what is left here is never
    // the rest of an oversized one: that is discarded as it arrives).
    if !buf.is_empty() {
        let _ = route.sink.send(send(buf.freeze(), position)).await;
    }
}
