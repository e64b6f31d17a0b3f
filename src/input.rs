//! Reading an input file (or stdin) whole for `vedette parse`, decompressing gzip and
//! zstd.

use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::Context;
use bytes::Bytes;
use vedette_connectors::decompress::{decompress, Compression};
use vedette_core::io::read_capped;

/// Largest input read (after decompression): 16 GiB.
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// An input's bytes and when it was last written (the anchor for year-less times).
#[derive(Debug)]
pub(crate) struct InputBytes {
    /// The (decompressed) content.
    pub(crate) bytes: Bytes,
    /// Modification time of the file (now, for stdin), Unix ms.
    pub(crate) modified_ms: i64,
}

/// Reads `path` (`-` for stdin) whole, decompressing gzip and zstd by magic bytes.
pub(crate) fn read_input(path: &Path) -> anyhow::Result<InputBytes> {
    let now = chrono::Utc::now().timestamp_millis();
    let (raw, modified_ms) = if path.as_os_str() == "-" {
        (read_capped(std::io::stdin().lock(), MAX_INPUT_BYTES)?, now)
    } else {
        let file = std::fs::File::open(path)?;
        let modified = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(now, |d| i64::try_from(d.as_millis()).unwrap_or(now));
        (read_capped(file, MAX_INPUT_BYTES)?, modified)
    };
    let compression = Compression::sniff(&raw);
    let bytes = match compression {
        Compression::None => raw,
        other => decompress(&raw, other, MAX_INPUT_BYTES).context("decompressing")?,
    };
    Ok(InputBytes {
        bytes: Bytes::from(bytes),
        modified_ms,
    })
}
