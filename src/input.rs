//! Reading an input file (or stdin) whole, decompressing gzip and zstd.

use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::Context;
use bytes::Bytes;
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
    let bytes = decompress(raw).context("decompressing")?;
    Ok(InputBytes {
        bytes: Bytes::from(bytes),
        modified_ms,
    })
}

/// Gzip (`1f 8b`) and zstd (`28 b5 2f fd`) content decompressed, with the same cap;
/// anything else returned as it is.
pub(crate) fn decompress(raw: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::read::MultiGzDecoder::new(raw.as_slice());
        return Ok(read_capped(decoder, MAX_INPUT_BYTES)?);
    }
    if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::new(raw.as_slice())?;
        return Ok(read_capped(decoder, MAX_INPUT_BYTES)?);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_and_zstd_are_decompressed() -> anyhow::Result<()> {
        let text = b"{\"a\":1}\n".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text)?;
        assert_eq!(decompress(gz.finish()?)?, text);
        let zst = zstd::encode_all(text.as_slice(), 1)?;
        assert_eq!(decompress(zst)?, text);
        assert_eq!(decompress(b"plain".to_vec())?, b"plain");
        Ok(())
    }
}
