//! New terms: the first value of a field for an entity (a new parent process on a
//! host, a new country for a user), once the entity's learning window is over. Terms
//! are kept exactly (64-bit hashes) up to `max_exact_terms` per entity, then in a Bloom
//! filter of 32 Kibit (four hashes): past that point a new term is missed with the
//! filter's false-positive rate (about 2 % at 4,000 terms), never raised twice.

use serde::{Deserialize, Serialize};

use super::definition::NewTermsDef;
use super::Bounded;

/// Bloom filter words (64 bits each).
const BLOOM_WORDS: usize = 512;

/// One entity's terms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Terms {
    first_ms: i64,
    exact: Vec<u64>,
    bloom: Option<Vec<u64>>,
}

impl Terms {
    fn contains(&self, h: u64) -> bool {
        if self.exact.binary_search(&h).is_ok() {
            return true;
        }
        self.bloom
            .as_ref()
            .is_some_and(|b| bloom_bits(h).all(|(w, bit)| b[w] & bit != 0))
    }

    fn insert(&mut self, h: u64, max_exact: usize) {
        if let Some(b) = &mut self.bloom {
            for (w, bit) in bloom_bits(h) {
                b[w] |= bit;
            }
            return;
        }
        if let Err(i) = self.exact.binary_search(&h) {
            self.exact.insert(i, h);
        }
        if self.exact.len() > max_exact {
            let mut b = vec![0u64; BLOOM_WORDS];
            for &t in &self.exact {
                for (w, bit) in bloom_bits(t) {
                    b[w] |= bit;
                }
            }
            self.exact = Vec::new();
            self.bloom = Some(b);
        }
    }
}

/// The four (word, bit) positions of `h`.
fn bloom_bits(h: u64) -> impl Iterator<Item = (usize, u64)> {
    let (a, b) = (h, h.rotate_left(32) | 1);
    (0..4u64).map(move |i| {
        let bit = a.wrapping_add(i.wrapping_mul(b)) % (BLOOM_WORDS as u64 * 64);
        ((bit / 64) as usize, 1u64 << (bit % 64))
    })
}

/// The state of one new-terms baseline.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct NewTermsState {
    pub(crate) entities: Bounded<Terms>,
}

impl NewTermsState {
    /// Whether `term` (hashed) is new for `entity` at `time_ms`, after its learning.
    pub(crate) fn observe(
        &mut self,
        def: &NewTermsDef,
        entity: u64,
        time_ms: i64,
        term: u64,
    ) -> bool {
        let terms = self.entities.get_or_insert(entity, || Terms {
            first_ms: time_ms,
            ..Terms::default()
        });
        terms.first_ms = terms.first_ms.min(time_ms);
        if terms.contains(term) {
            return false;
        }
        terms.insert(term, def.max_exact_terms);
        time_ms - terms.first_ms >= i64::from(def.learning_hours) * 3_600_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::tests::Rng;

    fn def(max_exact_terms: usize) -> NewTermsDef {
        NewTermsDef {
            field: "ParentImage".into(),
            learning_hours: 24,
            max_exact_terms,
        }
    }

    /// 50 hosts each run 30 usual parents during learning and after; 5 hosts get one
    /// new parent each after the learning: found exactly.
    #[test]
    fn new_terms_after_learning_are_found_and_usual_ones_are_not() {
        let mut rng = Rng(3);
        let mut s = NewTermsState::default();
        let d = def(1024);
        let hour = 3_600_000;
        let mut raised = Vec::new();
        for t in 0..72i64 {
            for host in 0..50u64 {
                // The first hour shows every usual parent; later hours pick at random.
                if t == 0 {
                    for usual in 1000..1030 {
                        assert!(!s.observe(&d, host, 0, usual));
                    }
                }
                let usual = 1000 + rng.below(30) as u64;
                if s.observe(&d, host, t * hour, usual) {
                    raised.push((host, usual));
                }
                // Learning-time rarities are learned, not raised.
                if t == 3 && s.observe(&d, host, t * hour, 5000 + host) {
                    raised.push((host, 5000 + host));
                }
                if t == 48 && host % 10 == 0 && s.observe(&d, host, t * hour, 9000 + host) {
                    raised.push((host, 9000 + host));
                }
            }
        }
        raised.sort_unstable();
        assert_eq!(
            raised,
            [(0, 9000), (10, 9010), (20, 9020), (30, 9030), (40, 9040)]
        );
    }

    #[test]
    fn past_the_exact_cap_terms_go_to_a_bloom_filter_and_are_still_known() {
        let mut s = NewTermsState::default();
        let d = def(16);
        for term in 0..100u64 {
            s.observe(&d, 1, 0, term * 7919);
        }
        let terms = s.entities.get(1).unwrap();
        assert!(terms.bloom.is_some() && terms.exact.is_empty());
        for term in 0..100u64 {
            assert!(
                !s.observe(&d, 1, 100 * 3_600_000, term * 7919),
                "term {term} known"
            );
        }
        assert!(s.observe(&d, 1, 100 * 3_600_000, 123_456_789));
    }
}
