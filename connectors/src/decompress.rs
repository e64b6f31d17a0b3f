//! Gzip and zstd decompression with a cap on the output.

use std::io::Read;

use vedette_core::io::read_capped;

/// A compression a body or file may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Recognized from the first bytes.
    pub fn sniff(bytes: &[u8]) -> Self {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    /// From an HTTP `Content-Encoding` value; None for one Vedette does not accept.
    pub fn from_content_encoding(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Self::None),
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// Decompresses `raw`, failing once the output passes `limit` bytes (a decompression
/// bomb stops there instead of exhausting memory).
pub fn decompress(raw: &[u8], compression: Compression, limit: u64) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => {
            if raw.len() as u64 > limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    format!("input larger than the {limit}-byte limit"),
                ));
            }
            Ok(raw.to_vec())
        }
        Compression::Gzip => read_capped(flate2::read::MultiGzDecoder::new(raw), limit),
        Compression::Zstd => {
            let decoder: Box<dyn Read> = Box::new(zstd::stream::read::Decoder::new(raw)?);
            read_capped(decoder, limit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trips_and_caps() -> std::io::Result<()> {
        let text = b"{\"a\":1}\n".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text)?;
        let gz = gz.finish()?;
        assert_eq!(Compression::sniff(&gz), Compression::Gzip);
        assert_eq!(decompress(&gz, Compression::Gzip, 1 << 20)?, text);
        let zst = zstd::encode_all(text.as_slice(), 1)?;
        assert_eq!(Compression::sniff(&zst), Compression::Zstd);
        assert_eq!(decompress(&zst, Compression::Zstd, 1 << 20)?, text);
        // A small compressed body that expands past the limit is refused.
        let too_large = decompress(&gz, Compression::Gzip, 100)
            .err()
            .map(|e| e.kind());
        assert_eq!(too_large, Some(std::io::ErrorKind::FileTooLarge));
        assert_eq!(
            Compression::from_content_encoding("GZIP"),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_content_encoding("br"), None);
        Ok(())
    }
}
