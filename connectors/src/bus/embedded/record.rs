//! One record of a segment file: a fixed prefix (body length, CRC32C of the body) and a
//! body (format version, offset, times, schema version, tenant, source, dataset, then
//! the Arrow IPC payload). All integers little-endian.
//!
//! The body version says how the payload is stored ([`PayloadCodec`]): 1 as given (an
//! IPC stream; this build writes it for payloads it was not asked to compress), 2 one
//! LZ4 block of the IPC stream with its length prepended, 3 one zstd frame of it. One
//! block or frame per record costs far less than compressing each Arrow buffer apart,
//! which for the small batches of a live flow spent more time setting up compressors
//! than compressing.

use vedette_core::CoreError;

use super::payload::PayloadCodec;
use crate::bus::codec::BatchHeader;

/// Bytes before the body: length (u32) and CRC32C (u32).
pub(crate) const PREFIX_BYTES: usize = 8;
/// Fixed part of the body: version, offset, append time, schema version, ingest time.
const FIXED_BODY_BYTES: usize = 1 + 8 + 8 + 2 + 8;
/// Largest body accepted, written or read: anything larger in a file is damage.
pub(crate) const MAX_BODY_BYTES: usize = 512 * 1024 * 1024;
/// Longest tenant, source or dataset name.
const MAX_NAME_BYTES: usize = u16::MAX as usize;

/// What a record says about itself, apart from its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordMeta {
    /// Offset within the partition.
    pub(crate) offset: u64,
    /// When the log appended it, Unix ms.
    pub(crate) append_time_ms: i64,
    /// The batch header.
    pub(crate) header: BatchHeader,
    /// How the payload is stored (the body version).
    pub(crate) codec: PayloadCodec,
}

/// Encodes a whole record, prefix included.
#[cfg(test)]
pub(crate) fn encode(meta: &RecordMeta, payload: &[u8]) -> Result<Vec<u8>, CoreError> {
    let mut out = encode_head(meta, payload)?;
    out.extend_from_slice(payload);
    Ok(out)
}

/// Encodes everything of a record before its payload (prefix, CRC over the whole body
/// payload included, header fields); write the payload right after it.
pub(crate) fn encode_head(meta: &RecordMeta, payload: &[u8]) -> Result<Vec<u8>, CoreError> {
    let h = &meta.header;
    for (what, name) in [
        ("tenant", &h.tenant),
        ("source", &h.source),
        ("dataset", &h.dataset),
    ] {
        if name.len() > MAX_NAME_BYTES {
            return Err(CoreError::BadInput(format!(
                "bus record {what} is {} bytes, the limit is {MAX_NAME_BYTES}",
                name.len()
            )));
        }
    }
    let head_body = FIXED_BODY_BYTES + 6 + h.tenant.len() + h.source.len() + h.dataset.len();
    let body_len = head_body + payload.len();
    if body_len > MAX_BODY_BYTES {
        return Err(CoreError::BadInput(format!(
            "bus record is {body_len} bytes, the limit is {MAX_BODY_BYTES}"
        )));
    }
    let mut out = Vec::with_capacity(PREFIX_BYTES + head_body);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(meta.codec.body_version());
    out.extend_from_slice(&meta.offset.to_le_bytes());
    out.extend_from_slice(&meta.append_time_ms.to_le_bytes());
    out.extend_from_slice(&h.schema_version.to_le_bytes());
    out.extend_from_slice(&h.ingest_time_ms.to_le_bytes());
    for name in [&h.tenant, &h.source, &h.dataset] {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[PREFIX_BYTES..]), payload);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The body length and CRC of a prefix, if the length is plausible.
pub(crate) fn read_prefix(prefix: [u8; PREFIX_BYTES]) -> Option<(usize, u32)> {
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let crc = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    (FIXED_BODY_BYTES + 6..=MAX_BODY_BYTES)
        .contains(&len)
        .then_some((len, crc))
}

/// Whether a body matches its CRC.
pub(crate) fn crc_matches(body: &[u8], crc: u32) -> bool {
    crc32c::crc32c(body) == crc
}

/// Little cursor over a body.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CoreError> {
        if self.bytes.len() < n {
            return Err(CoreError::BadInput("bus record body is cut short".into()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CoreError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn name(&mut self) -> Result<String, CoreError> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| CoreError::BadInput("bus record name is not UTF-8".into()))
    }
}

/// Decodes a body (already checked against its CRC) into its meta and payload.
pub(crate) fn decode_body(body: &[u8]) -> Result<(RecordMeta, &[u8]), CoreError> {
    let mut c = Cursor { bytes: body };
    let [version] = c.array::<1>()?;
    let codec = PayloadCodec::of_body_version(version).ok_or_else(|| {
        CoreError::BadInput(format!(
            "bus record body version {version} is not supported (this build reads 1 to 3)"
        ))
    })?;
    let offset = u64::from_le_bytes(c.array()?);
    let append_time_ms = i64::from_le_bytes(c.array()?);
    let schema_version = u16::from_le_bytes(c.array()?);
    let ingest_time_ms = i64::from_le_bytes(c.array()?);
    let tenant = c.name()?;
    let source = c.name()?;
    let dataset = c.name()?;
    let meta = RecordMeta {
        offset,
        append_time_ms,
        header: BatchHeader {
            schema_version,
            tenant,
            source,
            dataset,
            ingest_time_ms,
        },
        codec,
    };
    Ok((meta, c.bytes))
}

/// The offset and append time of a body, read from its first bytes only.
pub(crate) fn peek_body(start: &[u8]) -> Option<(u64, i64)> {
    if start.len() < 17 || PayloadCodec::of_body_version(start[0]).is_none() {
        return None;
    }
    let mut offset = [0; 8];
    offset.copy_from_slice(&start[1..9]);
    let mut time = [0; 8];
    time.copy_from_slice(&start[9..17]);
    Some((u64::from_le_bytes(offset), i64::from_le_bytes(time)))
}

/// Bytes of a body needed by [`peek_body`].
pub(crate) const PEEK_BYTES: usize = 17;

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RecordMeta {
        RecordMeta {
            offset: 7,
            append_time_ms: 1_700_000_000_000,
            header: BatchHeader {
                schema_version: 1,
                tenant: "acme".into(),
                source: "syslog-udp".into(),
                dataset: "syslog".into(),
                ingest_time_ms: 5,
            },
            codec: PayloadCodec::Plain,
        }
    }

    #[test]
    fn round_trip_and_crc() {
        let bytes = encode(&meta(), b"payload").unwrap();
        let mut prefix = [0; PREFIX_BYTES];
        prefix.copy_from_slice(&bytes[..PREFIX_BYTES]);
        let (len, crc) = read_prefix(prefix).unwrap();
        let body = &bytes[PREFIX_BYTES..];
        assert_eq!(len, body.len());
        assert!(crc_matches(body, crc));
        let (m, payload) = decode_body(body).unwrap();
        assert_eq!((m, payload), (meta(), &b"payload"[..]));
        assert_eq!(peek_body(body), Some((7, 1_700_000_000_000)));
        let mut flipped = body.to_vec();
        flipped[20] ^= 1;
        assert!(!crc_matches(&flipped, crc));
    }

    #[test]
    fn implausible_lengths_and_short_bodies_are_rejected() {
        assert!(read_prefix([0; 8]).is_none());
        assert!(read_prefix([0xff; 8]).is_none());
        assert!(decode_body(&[1, 1, 2]).is_err());
        for codec in [PayloadCodec::Lz4Block, PayloadCodec::Zstd] {
            let compressed = RecordMeta { codec, ..meta() };
            let bytes = encode(&compressed, b"block").unwrap();
            assert_eq!(decode_body(&bytes[PREFIX_BYTES..]).unwrap().0, compressed);
        }
        assert!(decode_body(&[9; 40]).is_err());
    }
}
