//! Standard input as a source: read to its end in chunks of whole lines.

use std::io::Read;

use bytes::Bytes;
use vedette_core::traits::RawChunk;

use crate::chunk::{now_ms, ChunkSender};

/// Source name of stdin chunks.
pub const STDIN_SOURCE: &str = "stdin";

/// Bytes read from stdin at once.
const READ_CHUNK: usize = 4 * 1024 * 1024;

/// Reads `reader` (stdin in production) to its end, sending chunks that end at
/// newlines (the last one may not); blocking, so run it on a blocking thread.
pub fn read_all(mut reader: impl Read, tenant: &str, sink: &ChunkSender) -> std::io::Result<u64> {
    let mut carry: Vec<u8> = Vec::new();
    let mut position = 0u64;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = reader.read(&mut buf)?;
        if n > 0 {
            carry.extend_from_slice(&buf[..n]);
        }
        let cut = if n == 0 {
            carry.len()
        } else {
            match memchr::memrchr(b'\n', &carry) {
                Some(i) => i + 1,
                None if carry.len() >= READ_CHUNK => carry.len(),
                None => continue,
            }
        };
        if cut > 0 {
            let rest = carry.split_off(cut);
            let bytes = std::mem::replace(&mut carry, rest);
            let len = bytes.len() as u64;
            let chunk = RawChunk {
                source: STDIN_SOURCE.into(),
                origin: "stdin".into(),
                tenant: tenant.to_string(),
                bytes: Bytes::from(bytes),
                position,
                received_ms: now_ms(),
            };
            if sink.blocking_send(chunk).is_err() {
                return Ok(position);
            }
            position += len;
        }
        if n == 0 {
            return Ok(position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::channel;
    use vedette_core::traits::Source;

    #[tokio::test]
    async fn lines_then_the_unterminated_rest() {
        let (tx, mut source) = channel(8);
        let reader = std::io::Cursor::new(b"a\nb\nc".to_vec());
        let total = tokio::task::spawn_blocking(move || read_all(reader, "t", &tx))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(total, 5);
        let mut all = Vec::new();
        while let Ok(Some(c)) = source.next_chunk().await {
            all.extend_from_slice(&c.bytes);
        }
        assert_eq!(all, b"a\nb\nc");
    }
}
