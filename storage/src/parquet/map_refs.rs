//! Entries of the `fields` map that repeat a common column of their event, stored once.
//!
//! A firewall record's `src` is its `source.ip`, an auditd record's `exe` its
//! `process.executable`, a CloudTrail record's `awsRegion` its `cloud.region`: parsers
//! fill the common columns from these fields. Where an entry left in the map (not a
//! shredded key) has a key of [`MAP_SAME_AS`] and a value that is, as text, its source
//! column's, the file stores the entry as a reference: key `src\0source.ip`, value
//! null. An original key that holds a NUL byte is stored with one more NUL in front,
//! so stored keys read back without doubt ([`StoredKey::read`]). Only files with the
//! flag columns of [`super::same_as`] store keys this way ([`super::same_as::has_flags`]);
//! the keys of older files are read as they are, and those files are rewritten when the
//! store opens.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use std::fmt::Write;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int64Type};
use vedette_core::CoreError;

use super::key_table::KeyTable;

/// Keys of the `fields` map and the common column whose value they usually repeat.
pub(crate) const MAP_SAME_AS: &[(&str, &str)] = &[
    ("src", "source.ip"),
    ("dst", "destination.ip"),
    ("sport", "source.port"),
    ("dport", "destination.port"),
    ("spt", "source.port"),
    ("dpt", "destination.port"),
    ("SourcePort", "source.port"),
    ("client.ipAddress", "source.ip"),
    ("srcuser", "user.name"),
    ("suser", "user.name"),
    ("action", "event.action"),
    ("act", "event.action"),
    ("subtype", "event.code"),
    ("proto", "network.transport"),
    ("Protocol", "network.transport"),
    ("exe", "process.executable"),
    ("pid", "process.pid"),
    ("syslog.procid", "process.pid"),
    ("node", "host.name"),
    ("NewProcessName", "process.executable"),
    ("ParentProcessName", "process.parent.executable"),
    ("TargetDomainName", "user.domain"),
    ("SubjectDomainName", "user.domain"),
    ("displayMessage", "message"),
    ("actor.alternateId", "user.name"),
    ("actor.displayName", "user.name"),
    ("userIdentity.userName", "user.name"),
    ("userIdentity.accountId", "cloud.account.id"),
    ("recipientAccountId", "cloud.account.id"),
    ("awsRegion", "cloud.region"),
    ("logset", "tenant"),
];

/// What separates a reference's key from its source column.
const MARK: char = '\0';

/// A stored key, read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoredKey<'a> {
    /// An entry as it was: its key.
    Plain(Cow<'a, str>),
    /// An entry whose value is its row's `source` column, as text.
    Reference {
        /// The entry's key.
        key: &'a str,
        /// The common column that holds its value.
        source: &'a str,
    },
}

impl<'a> StoredKey<'a> {
    /// Reads a key as a file stores it.
    pub(crate) fn read(stored: &'a str) -> Self {
        if let Some(original) = stored.strip_prefix(MARK) {
            return StoredKey::Plain(Cow::Borrowed(original));
        }
        match stored.split_once(MARK) {
            Some((key, source)) => StoredKey::Reference { key, source },
            None => StoredKey::Plain(Cow::Borrowed(stored)),
        }
    }
}

/// The key under which a file stores an entry kept as it is.
pub(crate) fn plain_key(key: &str) -> Cow<'_, str> {
    if key.contains(MARK) {
        Cow::Owned(format!("{MARK}{key}"))
    } else {
        Cow::Borrowed(key)
    }
}

/// Finds a key's pair in [`MAP_SAME_AS`] and its stored reference key.
pub(crate) struct RefIndex {
    table: KeyTable<(usize, String)>,
}

impl RefIndex {
    /// The index, built once.
    pub(crate) fn get() -> &'static RefIndex {
        static INDEX: OnceLock<RefIndex> = OnceLock::new();
        INDEX.get_or_init(|| RefIndex {
            table: KeyTable::new(
                MAP_SAME_AS
                    .iter()
                    .enumerate()
                    .map(|(i, (k, s))| (*k, (i, format!("{k}{MARK}{s}")))),
            ),
        })
    }

    /// The pair of `key` (its index in [`MAP_SAME_AS`]) and its reference key.
    pub(crate) fn find(&self, key: &str) -> Option<(usize, &str)> {
        self.table
            .find(key.as_bytes())
            .map(|(i, r)| (*i, r.as_str()))
    }
}

/// The name under which [`super::shredded_read::MergeFields`] is handed source column
/// `name` (shredded keys' names never start with the mark).
pub(crate) fn source_argument(name: &str) -> String {
    format!("{MARK}{name}")
}

/// The source column an argument name of [`source_argument`] names.
pub(crate) fn parse_source_argument(argument: &str) -> Option<&str> {
    argument.strip_prefix(MARK)
}

/// The longest source column name of [`MAP_SAME_AS`]: a reference key is at most this
/// and one byte longer than its key.
pub(crate) fn longest_source() -> usize {
    MAP_SAME_AS.iter().map(|(_, s)| s.len()).max().unwrap_or(0)
}

/// The distinct source columns of [`MAP_SAME_AS`].
pub(crate) fn source_columns() -> Vec<&'static str> {
    let mut names: Vec<&str> = MAP_SAME_AS.iter().map(|(_, s)| *s).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// A source column of some rows, read as text.
pub(crate) enum SourceColumn {
    /// A text column.
    Text(StringArray),
    /// A 64-bit integer column, written in decimal where a value is asked for.
    Integer(Int64Array),
    /// Any other column, cast to text.
    Cast(StringArray),
}

impl SourceColumn {
    /// `column` read as text.
    fn of(column: &ArrayRef) -> Result<Self, CoreError> {
        Ok(match column.data_type() {
            DataType::Utf8 => SourceColumn::Text(column.as_string::<i32>().clone()),
            DataType::Int64 => SourceColumn::Integer(column.as_primitive::<Int64Type>().clone()),
            _ => SourceColumn::Cast(super::same_as::as_text(column)?),
        })
    }

    /// The value at `row` as text (written into `buf` where it must be), if there is one.
    pub(crate) fn text<'a>(&'a self, row: usize, buf: &'a mut String) -> Option<&'a str> {
        match self {
            SourceColumn::Text(c) | SourceColumn::Cast(c) => {
                (row < c.len() && c.is_valid(row)).then(|| c.value(row))
            }
            SourceColumn::Integer(c) => {
                if row >= c.len() || c.is_null(row) {
                    return None;
                }
                buf.clear();
                write!(buf, "{}", c.value(row)).ok()?;
                Some(buf.as_str())
            }
        }
    }
}

/// The source columns of [`MAP_SAME_AS`] of some rows, by name.
#[derive(Default)]
pub(crate) struct Sources {
    columns: HashMap<String, SourceColumn>,
}

impl Sources {
    /// The source columns `batch` has.
    pub(crate) fn of(batch: &RecordBatch) -> Result<Self, CoreError> {
        let mut sources = Sources::default();
        for (_, name) in MAP_SAME_AS {
            if let Some(column) = batch.column_by_name(name) {
                sources.add(name, column)?;
            }
        }
        Ok(sources)
    }

    /// Adds source column `name`.
    pub(crate) fn add(&mut self, name: &str, column: &ArrayRef) -> Result<(), CoreError> {
        if !self.columns.contains_key(name) {
            self.columns
                .insert(name.to_string(), SourceColumn::of(column)?);
        }
        Ok(())
    }

    /// The value of source `name` at `row` as text (written into `buf` where it must
    /// be), if the column is there and not null.
    pub(crate) fn value<'a>(
        &'a self,
        name: &str,
        row: usize,
        buf: &'a mut String,
    ) -> Option<&'a str> {
        self.columns.get(name)?.text(row, buf)
    }

    /// The sources of [`MAP_SAME_AS`] by pair: per pair, its column if there is one.
    pub(crate) fn by_pair(&self) -> Vec<Option<&SourceColumn>> {
        MAP_SAME_AS
            .iter()
            .map(|(_, s)| self.columns.get(*s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_read_back_without_doubt() {
        assert_eq!(
            StoredKey::read("src"),
            StoredKey::Plain(Cow::Borrowed("src"))
        );
        let (_, reference) = RefIndex::get().find("src").unwrap();
        assert_eq!(
            StoredKey::read(reference),
            StoredKey::Reference {
                key: "src",
                source: "source.ip"
            }
        );
        // Keys holding the mark are kept, escaped, and come back as they were.
        for key in ["a\0b", "\0", "\0source.ip", "x\0\0"] {
            let stored = plain_key(key);
            assert_eq!(
                StoredKey::read(&stored),
                StoredKey::Plain(Cow::Borrowed(key))
            );
        }
        assert!(matches!(plain_key("src"), Cow::Borrowed("src")));
        assert!(RefIndex::get().find("Image").is_none());
    }

    #[test]
    fn sources_are_read_as_text() {
        let batch = RecordBatch::try_from_iter([
            (
                "source.port",
                std::sync::Arc::new(arrow::array::Int64Array::from(vec![Some(443), None]))
                    as ArrayRef,
            ),
            (
                "source.ip",
                std::sync::Arc::new(StringArray::from(vec!["10.0.0.1", "10.0.0.2"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let sources = Sources::of(&batch).unwrap();
        let mut buf = String::new();
        assert_eq!(sources.value("source.port", 0, &mut buf), Some("443"));
        assert_eq!(sources.value("source.port", 1, &mut buf), None);
        assert_eq!(sources.value("source.ip", 1, &mut buf), Some("10.0.0.2"));
        assert_eq!(sources.value("source.ip", 2, &mut buf), None);
        assert_eq!(sources.value("user.name", 0, &mut buf), None);
        let stamps: ArrayRef = std::sync::Arc::new(arrow::array::Int32Array::from(vec![-7]));
        let mut other = Sources::default();
        other.add("event.code", &stamps).unwrap();
        assert_eq!(other.value("event.code", 0, &mut buf), Some("-7"));
        let by_pair = sources.by_pair();
        assert!(by_pair[0].is_some() && by_pair[2].is_some());
    }
}
