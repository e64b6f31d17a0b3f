//! Where literal tests are found: exact values by hash, prefixes and suffixes by trie
//! walks from either end, and only the `contains` literals (plus the literal
//! triggers of wildcard patterns and regexes) by a full Aho-Corasick scan.

use rustc_hash::FxHashMap;

/// A byte trie walked from one end of a value; each node lists what ends there.
#[derive(Debug, Default)]
pub(crate) struct Trie<T> {
    /// Children per node, `(byte, node)` sorted by byte.
    children: Vec<Vec<(u8, u32)>>,
    /// Values per node.
    ends: Vec<Vec<T>>,
}

impl<T: Copy> Trie<T> {
    /// An empty trie (a root node).
    pub(crate) fn new() -> Self {
        Self {
            children: vec![Vec::new()],
            ends: vec![Vec::new()],
        }
    }

    /// Adds `value` at the end of `key`.
    pub(crate) fn insert(&mut self, key: impl Iterator<Item = u8>, value: T) {
        let mut node = 0usize;
        for b in key {
            let kids = &self.children[node];
            node = match kids.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => kids[i].1 as usize,
                Err(i) => {
                    let next = self.children.len();
                    self.children[node].insert(i, (b, next as u32));
                    self.children.push(Vec::new());
                    self.ends.push(Vec::new());
                    next
                }
            };
        }
        self.ends[node].push(value);
    }

    /// Whether nothing was inserted.
    pub(crate) fn is_empty(&self) -> bool {
        self.children.len() == 1 && self.ends[0].is_empty()
    }

    /// Calls `f` with every value whose key is a prefix of `bytes` (in walk order).
    pub(crate) fn walk(&self, bytes: impl Iterator<Item = u8>, mut f: impl FnMut(T)) {
        let mut node = 0usize;
        self.ends[0].iter().for_each(|v| f(*v));
        for b in bytes {
            let kids = &self.children[node];
            match kids.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => node = kids[i].1 as usize,
                Err(_) => return,
            }
            self.ends[node].iter().for_each(|v| f(*v));
        }
    }
}

/// Exact values by their (possibly lowercased) bytes.
pub(crate) type ExactMap<T> = FxHashMap<Vec<u8>, Vec<T>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_finds_every_prefix() {
        let mut t: Trie<u32> = Trie::new();
        t.insert(b"ab".iter().copied(), 1);
        t.insert(b"abc".iter().copied(), 2);
        t.insert(b"b".iter().copied(), 3);
        let mut seen = Vec::new();
        t.walk(b"abcd".iter().copied(), |v| seen.push(v));
        assert_eq!(seen, vec![1, 2]);
        seen.clear();
        t.walk(b"dcba".iter().rev().copied(), |v| seen.push(v));
        assert_eq!(seen, vec![1, 2]);
        seen.clear();
        t.walk(b"x".iter().copied(), |v| seen.push(v));
        assert!(seen.is_empty());
        assert!(!t.is_empty());
        assert!(Trie::<u32>::new().is_empty());
    }
}
