//! A fixed-size row bitmap for one batch.

/// One bit per row of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    /// All rows clear.
    pub(crate) fn empty(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// All rows set.
    pub(crate) fn full(len: usize) -> Self {
        let mut set = Self {
            words: vec![u64::MAX; len.div_ceil(64)],
            len,
        };
        set.trim();
        set
    }

    fn trim(&mut self) {
        let rem = self.len % 64;
        if rem != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << rem) - 1;
            }
        }
    }

    /// Sets row `row`.
    pub(crate) fn set(&mut self, row: usize) {
        if let Some(w) = self.words.get_mut(row / 64) {
            *w |= 1u64 << (row % 64);
        }
    }

    /// Whether row `row` is set.
    pub(crate) fn get(&self, row: usize) -> bool {
        self.words
            .get(row / 64)
            .is_some_and(|w| w & (1u64 << (row % 64)) != 0)
    }

    /// Number of rows set.
    pub(crate) fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether no row is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Keeps rows set in both.
    pub(crate) fn and_with(&mut self, other: &Bitset) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    /// Adds rows set in `other`.
    pub(crate) fn or_with(&mut self, other: &Bitset) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Flips every row.
    pub(crate) fn invert(&mut self) {
        for w in &mut self.words {
            *w = !*w;
        }
        self.trim();
    }

    /// The set rows, ascending.
    pub(crate) fn rows(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut word = w;
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(i * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ops_and_iteration() {
        let mut a = Bitset::empty(130);
        a.set(0);
        a.set(64);
        a.set(129);
        a.set(500); // out of range: ignored
        assert_eq!(a.rows().collect::<Vec<_>>(), vec![0, 64, 129]);
        assert_eq!(a.count(), 3);
        let mut b = Bitset::full(130);
        b.and_with(&a);
        assert_eq!(b, a);
        b.invert();
        assert!(!b.get(0) && b.get(1) && !b.get(129));
        assert_eq!(b.rows().count(), 127);
        let mut c = Bitset::empty(130);
        assert!(c.is_empty());
        c.or_with(&a);
        assert!(c.get(64));
    }
}
