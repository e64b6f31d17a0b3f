//! One segment file: records with consecutive offsets from the segment's base offset,
//! which is also its file name (`00000000000000000042.log`).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vedette_core::CoreError;

use super::io;

use super::record::{self, PEEK_BYTES, PREFIX_BYTES};

/// File name suffix of segments.
pub(crate) const SEGMENT_SUFFIX: &str = ".log";

/// Where a record sits in its file.
#[derive(Debug, Clone)]
pub(crate) struct RecordLocation {
    /// The open segment file (kept alive even if retention deletes its name).
    pub(crate) file: Arc<File>,
    /// Offset of the record.
    pub(crate) offset: u64,
    /// File position of its prefix.
    pub(crate) position: u64,
}

/// What recovery found in a segment file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Bytes cut from the end: a torn or damaged tail.
    pub(crate) truncated_bytes: u64,
}

/// One segment file and the position of each of its records.
#[derive(Debug)]
pub(crate) struct Segment {
    base: u64,
    path: PathBuf,
    file: Arc<File>,
    positions: Vec<u64>,
    end: u64,
    last_append_ms: i64,
}

/// The file name of the segment starting at `base`.
pub(crate) fn segment_name(base: u64) -> String {
    format!("{base:020}{SEGMENT_SUFFIX}")
}

/// The base offset a segment file name declares.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

impl Segment {
    /// Creates an empty segment file (the caller syncs the folder).
    pub(crate) fn create(dir: &Path, base: u64) -> Result<Self, CoreError> {
        let path = dir.join(segment_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(format!("creating segment {}", path.display())))?;
        Ok(Self {
            base,
            path,
            file: Arc::new(file),
            positions: Vec::new(),
            end: 0,
            last_append_ms: 0,
        })
    }

    /// Opens a segment and indexes its records. With `verify`, every record's CRC is
    /// checked and the file is cut at the first torn or damaged record; without it
    /// (sealed segments, fsynced before the next one began), only the record framing is
    /// walked and a damaged frame also cuts the file there.
    pub(crate) fn open(
        path: &Path,
        base: u64,
        verify: bool,
    ) -> Result<(Self, Recovery), CoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(format!("opening segment {}", path.display())))?;
        let len = file
            .metadata()
            .map_err(io(format!("reading size of {}", path.display())))?
            .len();
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut positions = Vec::new();
        let mut end = 0u64;
        let mut last_append_ms = 0;
        let mut body = Vec::new();
        loop {
            let expected = base + positions.len() as u64;
            match read_one(&mut reader, end, len, verify, &mut body)? {
                Some((offset, time, size)) if offset == expected => {
                    positions.push(end);
                    end += size;
                    last_append_ms = time;
                }
                _ => break,
            }
        }
        drop(reader);
        let mut recovery = Recovery::default();
        if end < len {
            recovery.truncated_bytes = len - end;
            file.set_len(end).map_err(io(format!(
                "truncating the torn tail of {}",
                path.display()
            )))?;
            file.sync_all()
                .map_err(io(format!("syncing {}", path.display())))?;
        }
        Ok((
            Self {
                base,
                path: path.to_path_buf(),
                file: Arc::new(file),
                positions,
                end,
                last_append_ms,
            },
            recovery,
        ))
    }

    /// The first offset.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// One past the last offset.
    pub(crate) fn next_offset(&self) -> u64 {
        self.base + self.positions.len() as u64
    }

    /// Bytes of whole records.
    pub(crate) fn size(&self) -> u64 {
        self.end
    }

    /// Number of records.
    pub(crate) fn records(&self) -> u64 {
        self.positions.len() as u64
    }

    /// Append time of the newest record (0 if none).
    pub(crate) fn last_append_ms(&self) -> i64 {
        self.last_append_ms
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record (its encoded head, then its payload) whose offset is
    /// [`Self::next_offset`]. On a failed write the file is cut back, so no partial
    /// record stays behind.
    pub(crate) fn append(
        &mut self,
        head: &[u8],
        payload: &[u8],
        append_ms: i64,
    ) -> Result<(), CoreError> {
        let mut file = self.file.as_ref();
        let written = file
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| file.write_all(head))
            .and_then(|()| file.write_all(payload));
        if let Err(e) = written {
            let _ = self.file.set_len(self.end);
            return Err(CoreError::io(
                format!("appending to {}", self.path.display()),
                e,
            ));
        }
        self.positions.push(self.end);
        self.end += (head.len() + payload.len()) as u64;
        self.last_append_ms = append_ms;
        Ok(())
    }

    /// Flushes the file's data to disk.
    pub(crate) fn sync(&self) -> Result<(), CoreError> {
        self.file
            .sync_data()
            .map_err(io(format!("syncing {}", self.path.display())))
    }

    /// A handle to sync without holding the segment.
    pub(crate) fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Bytes of the records from `offset` to the end (all of them below the base, none
    /// past the last record).
    pub(crate) fn bytes_from(&self, offset: u64) -> u64 {
        let Some(index) = offset.checked_sub(self.base) else {
            return self.end;
        };
        usize::try_from(index)
            .ok()
            .and_then(|i| self.positions.get(i))
            .map_or(0, |&position| self.end - position)
    }

    /// Where the record at `offset` is, if this segment holds it.
    pub(crate) fn locate(&self, offset: u64) -> Option<RecordLocation> {
        let index = offset.checked_sub(self.base)? as usize;
        self.positions.get(index).map(|&position| RecordLocation {
            file: self.file.clone(),
            offset,
            position,
        })
    }
}

/// Reads the record at `pos`: its offset, append time and whole size, or `None` if the
/// file ends or the record is torn or damaged there.
fn read_one(
    reader: &mut BufReader<&File>,
    pos: u64,
    file_len: u64,
    verify: bool,
    body: &mut Vec<u8>,
) -> Result<Option<(u64, i64, u64)>, CoreError> {
    let mut prefix = [0; PREFIX_BYTES];
    if file_len - pos < PREFIX_BYTES as u64 || reader.read_exact(&mut prefix).is_err() {
        return Ok(None);
    }
    let Some((len, crc)) = record::read_prefix(prefix) else {
        return Ok(None);
    };
    if file_len - pos - (PREFIX_BYTES as u64) < len as u64 {
        return Ok(None);
    }
    let peeked = if verify {
        body.resize(len, 0);
        if reader.read_exact(body).is_err() || !record::crc_matches(body, crc) {
            return Ok(None);
        }
        record::peek_body(body)
    } else {
        let mut start = [0; PEEK_BYTES];
        if reader.read_exact(&mut start).is_err() {
            return Ok(None);
        }
        let rest = (len - PEEK_BYTES) as i64;
        reader
            .seek_relative(rest)
            .map_err(|e| CoreError::io("skipping a record", e))?;
        record::peek_body(&start)
    };
    Ok(peeked.map(|(offset, time)| (offset, time, (PREFIX_BYTES + len) as u64)))
}

/// Reads and checks the record at a location: its body, or why it cannot be served.
pub(crate) fn read_record(location: &RecordLocation) -> Result<Vec<u8>, CoreError> {
    let mut prefix = [0; PREFIX_BYTES];
    location
        .file
        .read_exact_at(&mut prefix, location.position)
        .map_err(|e| CoreError::io("reading a bus record", e))?;
    let (len, crc) = record::read_prefix(prefix).ok_or_else(|| {
        CoreError::BadInput(format!(
            "bus record {} has a damaged length",
            location.offset
        ))
    })?;
    let mut body = vec![0; len];
    location
        .file
        .read_exact_at(&mut body, location.position + PREFIX_BYTES as u64)
        .map_err(|e| CoreError::io("reading a bus record", e))?;
    if !record::crc_matches(&body, crc) {
        return Err(CoreError::BadInput(format!(
            "bus record {} fails its CRC check",
            location.offset
        )));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::codec::BatchHeader;
    use crate::bus::embedded::record::RecordMeta;

    fn rec(offset: u64, payload: &[u8]) -> Vec<u8> {
        let meta = RecordMeta {
            offset,
            append_time_ms: offset as i64,
            header: BatchHeader {
                schema_version: 1,
                tenant: "t".into(),
                source: "s".into(),
                dataset: String::new(),
                ingest_time_ms: 0,
            },
            codec: crate::bus::embedded::payload::PayloadCodec::Plain,
        };
        record::encode(&meta, payload).unwrap()
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
    }

    #[test]
    fn torn_tail_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 10).unwrap();
        for o in 10..13 {
            s.append(&rec(o, b"hello"), &[], 1).unwrap();
        }
        let whole = s.size();
        let path = s.path().to_path_buf();
        drop(s);
        // Half of a fourth record.
        let half = rec(13, b"world");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&half[..half.len() / 2]).unwrap();
        drop(f);
        for verify in [true, false] {
            let (s, recovery) = Segment::open(&path, 10, verify).unwrap();
            assert_eq!(s.next_offset(), 13);
            assert_eq!(s.size(), whole);
            // The first open (verifying) cuts the torn half; the second finds it gone.
            let expected = if verify { half.len() as u64 / 2 } else { 0 };
            assert_eq!(recovery.truncated_bytes, expected);
            let body = read_record(&s.locate(12).unwrap()).unwrap();
            assert!(body.ends_with(b"hello"));
            assert!(s.locate(13).is_none());
        }
    }

    #[test]
    fn flipped_bit_cuts_at_the_damaged_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 0).unwrap();
        for o in 0..3 {
            s.append(&rec(o, b"abcdefgh"), &[], 1).unwrap();
        }
        let second = s.locate(1).unwrap().position;
        let path = s.path().to_path_buf();
        drop(s);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"X", second + 40).unwrap();
        drop(f);
        let (s, recovery) = Segment::open(&path, 0, true).unwrap();
        assert_eq!(s.next_offset(), 1);
        assert!(recovery.truncated_bytes > 0);
    }
}
