//! Bounded reads: the only way Vedette reads a stream to its end.

use std::io::Read;

/// Reads `reader` to its end, failing with `FileTooLarge` once more than `limit` bytes
/// arrive instead of growing without bound.
pub fn read_capped(reader: impl Read, limit: u64) -> std::io::Result<Vec<u8>> {
    read_capped_into(reader, limit, Vec::new())
}

/// [`read_capped`] for a file: its size, when the file system tells it, sizes the
/// buffer, so a small file takes two reads instead of a growing series; a file
/// already over the limit is refused before any read.
pub fn read_file_capped(file: std::fs::File, limit: u64) -> std::io::Result<Vec<u8>> {
    let size = file.metadata().map_or(0, |m| m.len());
    if size > limit {
        return Err(too_large(limit));
    }
    // A file that grows while read still stops at the limit.
    read_capped_into(
        file,
        limit,
        Vec::with_capacity(usize::try_from(size).unwrap_or(0)),
    )
}

/// [`read_capped`] into `out` (empty, its capacity a guess of the size).
fn read_capped_into(reader: impl Read, limit: u64, mut out: Vec<u8>) -> std::io::Result<Vec<u8>> {
    // `take` caps the read at limit + 1 bytes: one more tells it was too large.
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    append_up_to(reader, &mut out, cap)?;
    if out.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

/// The error of an input over `limit` bytes.
fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!("input larger than the {limit}-byte limit"),
    )
}

/// Appends at most `limit` more bytes of `reader` to `buf`, straight into its spare
/// capacity; returns how many came (fewer than `limit` only at the end of `reader`).
pub fn append_up_to(reader: impl Read, buf: &mut Vec<u8>, limit: usize) -> std::io::Result<usize> {
    // The one sanctioned unbounded-looking read: `take` bounds it.
    #[allow(clippy::disallowed_methods)]
    reader.take(limit as u64).read_to_end(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_up_to_the_limit_and_refuses_more() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"abcd").expect("write");
        let open = || std::fs::File::open(&path).expect("open");
        assert_eq!(read_file_capped(open(), 4).ok(), Some(b"abcd".to_vec()));
        assert_eq!(read_file_capped(open(), 100).ok(), Some(b"abcd".to_vec()));
        let err = read_file_capped(open(), 3).err().map(|e| e.kind());
        assert_eq!(err, Some(std::io::ErrorKind::FileTooLarge));
        std::fs::write(&path, b"").expect("write");
        assert_eq!(read_file_capped(open(), 4).ok(), Some(Vec::new()));
    }

    #[test]
    fn reads_up_to_the_limit_and_refuses_more() {
        assert_eq!(read_capped(&b"abcd"[..], 4).ok(), Some(b"abcd".to_vec()));
        let err = read_capped(&b"abcde"[..], 4).err().map(|e| e.kind());
        assert_eq!(err, Some(std::io::ErrorKind::FileTooLarge));
        assert_eq!(read_capped(&b""[..], 0).ok(), Some(Vec::new()));
    }

    #[test]
    fn appends_at_most_the_limit() {
        let mut buf = b"x".to_vec();
        let mut reader = &b"abcdef"[..];
        assert_eq!(append_up_to(&mut reader, &mut buf, 4).ok(), Some(4));
        assert_eq!(append_up_to(&mut reader, &mut buf, 4).ok(), Some(2));
        assert_eq!(append_up_to(&mut reader, &mut buf, 4).ok(), Some(0));
        assert_eq!(buf, b"xabcdef");
    }
}
