//! Syslog over UDP: each datagram is one chunk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use vedette_core::traits::RawChunk;

use super::{Route, UDP_SOURCE};
use crate::chunk::now_ms;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// Receives datagrams until cancelled. A sender cannot be slowed down over UDP, so
/// when the pipeline is full a datagram is dropped and counted in `dropped` rather than
/// left to overflow the kernel's buffer uncounted.
pub(crate) async fn serve(socket: UdpSocket, route: Route, dropped: Arc<AtomicU64>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut sequence = 0u64;
    loop {
        let received = tokio::select! {
            () = route.cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let (len, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "syslog udp receive failed");
                continue;
            }
        };
        if len == 0 {
            continue;
        }
        let chunk = RawChunk {
            source: UDP_SOURCE.into(),
            origin: peer.to_string(),
            tenant: route.tenant.clone(),
            bytes: Bytes::copy_from_slice(&buf[..len]),
            position: sequence,
            received_ms: now_ms(),
        };
        sequence += 1;
        match route.sink.try_send(chunk) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(10_000)
                {
                    tracing::warn!("syslog udp: the pipeline is full, dropping datagrams");
                }
            }
            Err(TrySendError::Closed(_)) => return,
        }
    }
}
