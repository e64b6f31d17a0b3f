//! How a record's payload is stored: as given, as one LZ4 block, or as one zstd frame.
//!
//! The bus compresses each record's IPC stream whole, as the log is configured to
//! (`bus.embedded.compression`): LZ4 by default, the least CPU; zstd at level 1 writes
//! about a third fewer bytes for about a quarter more CPU, for machines whose disk is
//! the limit. Compression writes into a caller's buffer; with [`compress_kept`] the
//! buffer keeps its length past the payload, so a producer reuses its memory from one
//! batch to the next instead of having fresh pages zeroed by the kernel each time.

use std::cell::RefCell;

use vedette_core::config::BusCompression;
use vedette_core::CoreError;

/// A payload's storage form, recorded as the record's body version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadCodec {
    /// Stored as given (body version 1).
    Plain,
    /// One LZ4 block, its uncompressed length prepended as a u32 (body version 2).
    Lz4Block,
    /// One zstd frame stating its content size (body version 3).
    Zstd,
}

/// zstd level of records: level 1 is the fastest of the positive levels.
const ZSTD_LEVEL: i32 = 1;

thread_local! {
    /// One zstd context per thread, reused: a fresh one per record costs its tables.
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

impl PayloadCodec {
    /// The body version a record of this codec carries.
    pub(crate) fn body_version(self) -> u8 {
        match self {
            Self::Plain => 1,
            Self::Lz4Block => 2,
            Self::Zstd => 3,
        }
    }

    /// The codec of a body version, if this build reads it.
    pub(crate) fn of_body_version(version: u8) -> Option<Self> {
        match version {
            1 => Some(Self::Plain),
            2 => Some(Self::Lz4Block),
            3 => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The codec of a compression setting.
    pub fn of(compression: BusCompression) -> Self {
        match compression {
            BusCompression::None => Self::Plain,
            BusCompression::Lz4 => Self::Lz4Block,
            BusCompression::Zstd => Self::Zstd,
        }
    }
}

/// Stores `plain` at the start of `out` with `codec` and returns the stored length:
/// the payload is `out[..length]`. For LZ4, `out` keeps its length past the payload, so a
/// buffer used again is not sized to LZ4's bound (and that much memory zeroed) for every
/// record: it only grows.
pub fn compress_kept(
    plain: &[u8],
    codec: PayloadCodec,
    out: &mut Vec<u8>,
) -> Result<usize, CoreError> {
    match codec {
        PayloadCodec::Plain => {
            out.clear();
            out.extend_from_slice(plain);
            Ok(out.len())
        }
        PayloadCodec::Lz4Block => {
            let stated = u32::try_from(plain.len()).map_err(|_| {
                CoreError::BadInput(format!("bus payload of {} bytes is too big", plain.len()))
            })?;
            let bound = 4 + lz4_flex::block::get_maximum_output_size(plain.len());
            if out.len() < bound {
                out.resize(bound, 0);
            }
            out[..4].copy_from_slice(&stated.to_le_bytes());
            let written = lz4_flex::block::compress_into(plain, &mut out[4..bound])
                .map_err(|e| CoreError::Internal(format!("LZ4 compression failed: {e}")))?;
            Ok(4 + written)
        }
        PayloadCodec::Zstd => {
            out.clear();
            out.reserve(zstd::zstd_safe::compress_bound(plain.len()));
            ZSTD.with(|cell| {
                let mut slot = cell.borrow_mut();
                let compressor = match slot.as_mut() {
                    Some(c) => c,
                    None => {
                        slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(zstd_error)?)
                    }
                };
                compressor
                    .compress_to_buffer(plain, out)
                    .map_err(zstd_error)
            })?;
            Ok(out.len())
        }
    }
}

fn zstd_error(e: std::io::Error) -> CoreError {
    CoreError::Internal(format!("zstd compression failed: {e}"))
}

/// The plain payload of a stored one; a stated size over `limit`, or bytes that do not
/// decompress to it, are damage.
pub(crate) fn decompress(
    codec: PayloadCodec,
    stored: &[u8],
    limit: usize,
) -> Result<Vec<u8>, CoreError> {
    match codec {
        PayloadCodec::Plain => Ok(stored.to_vec()),
        PayloadCodec::Lz4Block => {
            let stated = stored
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| CoreError::BadInput("bus record LZ4 block is cut short".into()))?;
            if stated > limit {
                return Err(CoreError::BadInput(format!(
                    "bus record LZ4 block says {stated} bytes, over the record limit"
                )));
            }
            let plain = lz4_flex::block::decompress_size_prepended(stored).map_err(|e| {
                CoreError::BadInput(format!("bus record LZ4 block does not decompress: {e}"))
            })?;
            if plain.len() != stated {
                return Err(CoreError::BadInput(format!(
                    "bus record LZ4 block gave {} bytes, it says {stated}",
                    plain.len()
                )));
            }
            Ok(plain)
        }
        PayloadCodec::Zstd => {
            let stated = zstd::zstd_safe::get_frame_content_size(stored)
                .ok()
                .flatten()
                .ok_or_else(|| {
                    CoreError::BadInput("bus record zstd frame states no valid size".into())
                })?;
            if stated > limit as u64 {
                return Err(CoreError::BadInput(format!(
                    "bus record zstd frame says {stated} bytes, over the record limit"
                )));
            }
            let plain = zstd::bulk::decompress(stored, stated as usize).map_err(|e| {
                CoreError::BadInput(format!("bus record zstd frame does not decompress: {e}"))
            })?;
            if plain.len() as u64 != stated {
                return Err(CoreError::BadInput(format!(
                    "bus record zstd frame gave {} bytes, it says {stated}",
                    plain.len()
                )));
            }
            Ok(plain)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [PayloadCodec; 3] = [
        PayloadCodec::Plain,
        PayloadCodec::Lz4Block,
        PayloadCodec::Zstd,
    ];

    fn sample(len: usize) -> Vec<u8> {
        let line = b"{\"EventID\":4688,\"NewProcessName\":\"C:\\\\Windows\\\\cmd.exe\",\"n\":";
        let mut out = Vec::with_capacity(len + 100);
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(line);
            out.extend_from_slice((i * 7919 % 100_003).to_string().as_bytes());
            out.push(b'\n');
            i += 1;
        }
        out.truncate(len);
        out
    }

    /// Stores `plain` into `out` (replacing what it held), cut to the stored payload.
    fn compress_into(
        plain: &[u8],
        codec: PayloadCodec,
        out: &mut Vec<u8>,
    ) -> Result<(), CoreError> {
        let stored = compress_kept(plain, codec, out)?;
        out.truncate(stored);
        Ok(())
    }

    #[test]
    fn a_kept_buffer_serves_records_of_any_size_in_turn() {
        let mut out = Vec::new();
        for codec in CODECS {
            for len in [3 << 20, 10, 300_000, 0, 1000] {
                let plain = sample(len);
                let stored = compress_kept(&plain, codec, &mut out).unwrap();
                assert!(stored <= out.len());
                assert_eq!(
                    decompress(codec, &out[..stored], 4 << 20).unwrap(),
                    plain,
                    "{codec:?} {len}"
                );
            }
        }
    }

    #[test]
    fn every_codec_round_trips_in_a_reused_buffer() {
        let mut out = Vec::new();
        for codec in CODECS {
            for len in [0, 1000, 300_000, 3 << 20, 10] {
                let plain = sample(len);
                compress_into(&plain, codec, &mut out).unwrap();
                if len > 1000 && codec != PayloadCodec::Plain {
                    assert!(
                        out.len() < plain.len() / 3,
                        "{codec:?} {len}: {}",
                        out.len()
                    );
                }
                assert_eq!(decompress(codec, &out, 16 << 20).unwrap(), plain, "{len}");
            }
        }
        assert_eq!(PayloadCodec::of(BusCompression::Zstd), PayloadCodec::Zstd);
        assert_eq!(
            PayloadCodec::of(BusCompression::Lz4),
            PayloadCodec::Lz4Block
        );
    }

    #[test]
    fn body_versions_round_trip() {
        for codec in CODECS {
            assert_eq!(
                PayloadCodec::of_body_version(codec.body_version()),
                Some(codec)
            );
        }
        assert_eq!(PayloadCodec::of_body_version(0), None);
        assert_eq!(PayloadCodec::of_body_version(4), None);
    }

    #[test]
    fn damage_and_stated_sizes_over_the_limit_are_errors() {
        let mut out = Vec::new();
        let plain = sample(300_000);
        for codec in [PayloadCodec::Lz4Block, PayloadCodec::Zstd] {
            compress_into(&plain, codec, &mut out).unwrap();
            assert!(decompress(codec, &out[..2], 1 << 20).is_err());
            assert!(decompress(codec, &out[..out.len() / 2], 1 << 20).is_err());
            let err = decompress(codec, &out, plain.len() - 1).unwrap_err();
            assert!(err.to_string().contains("over the record limit"), "{err}");
            let mut flipped = out.clone();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0x55;
            // A flipped bit may decompress to other bytes (the record's CRC catches
            // that before any decompression); it must not panic.
            let _ = decompress(codec, &flipped, 1 << 20);
        }
        let mut lying = Vec::new();
        compress_into(&sample(5000), PayloadCodec::Lz4Block, &mut lying).unwrap();
        lying[..4].copy_from_slice(&5010u32.to_le_bytes());
        assert!(decompress(PayloadCodec::Lz4Block, &lying, 1 << 20).is_err());
        let mut huge = Vec::new();
        compress_into(&sample(5000), PayloadCodec::Lz4Block, &mut huge).unwrap();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decompress(PayloadCodec::Lz4Block, &huge, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("over the record limit"), "{err}");
    }
}
