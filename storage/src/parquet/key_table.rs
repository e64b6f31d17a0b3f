//! A table of short keys known when the program is built (the shredded keys, the keys
//! of map references): a key is probed by its length and its first eight bytes, and
//! the rest compared only when those match. Every entry of every map is looked up as a
//! file is written, and most match nothing: a failed probe costs two integer
//! comparisons, not a call to `memcmp` per candidate.

/// Keys and what each stands for.
pub(crate) struct KeyTable<T> {
    /// Per key length, the (head, key, value) of the keys of that length.
    by_length: Vec<Vec<(u64, &'static [u8], T)>>,
}

impl<T> KeyTable<T> {
    /// The table of `entries`; a key given twice keeps its first value.
    pub(crate) fn new(entries: impl IntoIterator<Item = (&'static str, T)>) -> Self {
        let mut by_length: Vec<Vec<(u64, &'static [u8], T)>> = Vec::new();
        for (key, value) in entries {
            let key = key.as_bytes();
            if by_length.len() <= key.len() {
                by_length.resize_with(key.len() + 1, Vec::new);
            }
            by_length[key.len()].push((head(key), key, value));
        }
        KeyTable { by_length }
    }

    /// What `key` stands for, if it is in the table.
    #[inline]
    pub(crate) fn find(&self, key: &[u8]) -> Option<&T> {
        let bucket = self.by_length.get(key.len())?;
        let h = head(key);
        bucket
            .iter()
            .find(|(kh, k, _)| *kh == h && k.get(8..) == key.get(8..))
            .map(|(_, _, v)| v)
    }
}

/// The first eight bytes of `key` (fewer, zero-padded) as one integer.
#[inline]
fn head(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(first) => u64::from_le_bytes(*first),
        None => key
            .iter()
            .enumerate()
            .fold(0, |h, (i, &b)| h | (u64::from(b) << (8 * i))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_their_whole_bytes_not_only_their_head() {
        let table = KeyTable::new([
            ("EventID", 0),
            ("Channel", 1),
            ("TimeCreated", 2),
            ("TimeCreated_SystemTime", 3),
            ("src", 4),
            ("", 5),
        ]);
        for (key, want) in [
            ("EventID", Some(0)),
            ("Channel", Some(1)),
            ("TimeCreated", Some(2)),
            ("TimeCreated_SystemTime", Some(3)),
            ("src", Some(4)),
            ("", Some(5)),
            // Same length and head, another tail.
            ("TimeCreatex", None),
            ("TimeCreated_SystemTimf", None),
            // Same head, another length.
            ("TimeCreated_", None),
            ("EventIDs", None),
            ("Event", None),
            ("sr\0", None),
            ("a much longer key than any in the table", None),
        ] {
            assert_eq!(table.find(key.as_bytes()).copied(), want, "{key:?}");
        }
    }

    #[test]
    fn a_key_given_twice_keeps_its_first_value() {
        let table = KeyTable::new([("exe", 1), ("exe", 2)]);
        assert_eq!(table.find(b"exe"), Some(&1));
    }
}
