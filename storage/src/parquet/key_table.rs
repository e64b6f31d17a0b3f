//! A table of short keys known when the program is built (the shredded keys, the keys
//! of map references): a key is probed by its length and an integer made of its bytes
//! (all of them up to eight, else the first eight), and the rest compared only when
//! those match. Every entry of every map is looked up as a file is written, and most
//! match nothing: a failed probe costs an integer comparison per key of its length, not
//! a call to `memcmp` per candidate.

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

/// An integer that, among keys of one length, tells the key apart for keys of up to
/// eight bytes, and stands for its first eight bytes beyond: loads of fixed size, no
/// loop over the bytes.
#[inline]
fn head(key: &[u8]) -> u64 {
    if let Some(first) = key.first_chunk::<8>() {
        return u64::from_le_bytes(*first);
    }
    match (key.first_chunk::<4>(), key.last_chunk::<4>()) {
        // Four to seven bytes: the first four and the last four cover them all.
        (Some(first), Some(last)) => {
            u64::from(u32::from_le_bytes(*first)) | u64::from(u32::from_le_bytes(*last)) << 32
        }
        // Up to three: the first, the middle and the last byte.
        _ => match (key.first(), key.last()) {
            (Some(&first), Some(&last)) => {
                u64::from(first) | u64::from(key[key.len() / 2]) << 8 | u64::from(last) << 16
            }
            _ => 0,
        },
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
            ("srd", None),
            ("Event\0D", None),
            ("EventIE", None),
            ("FventID", None),
            ("Chxnnel", None),
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
