//! Building a plan's field matchers in parallel, fields with nearly the same
//! case-insensitive `contains` literals sharing one automaton: a rule field renamed on
//! another route (`CommandLine` as `process.command_line`) holds the same thousands of
//! literals, and its automaton is then built once.

use rustc_hash::FxHashSet;

use super::case_group::{PreparedGroup, SharedAnchors};
use super::compile::SlotMatcher;
use super::expr::TestId;
use super::field_matcher::{FieldMatcher, FieldMatcherParts};
use super::test_spec::TestSpec;

/// Tests built into one matcher, and the routes that read them.
pub(crate) struct Group {
    /// The field.
    pub(crate) slot: u32,
    /// Routes (ascending) whose rules read these tests.
    pub(crate) readers: Vec<u32>,
    /// The tests, by id.
    pub(crate) tests: Vec<(TestId, TestSpec)>,
}

/// Fields with fewer case-insensitive anchors than this build their own automaton.
const SHARE_MIN_ANCHORS: usize = 512;

/// A field joins another's automaton when at least this share (in percent) of its
/// anchors are in it already.
const SHARE_MIN_PERCENT: usize = 90;

/// One field's matcher, not built yet.
type Pending = (u32, Vec<u32>, FieldMatcherParts);

/// The matchers of `groups` (given biggest first, so the threads stay balanced), in
/// the order of [`share_clusters`]; `slot_of` resolves the fields that `fieldref`
/// tests name.
pub(crate) fn build_matchers(
    groups: Vec<Group>,
    slot_of: &(dyn Fn(&str) -> u32 + Sync),
) -> Result<Vec<SlotMatcher>, String> {
    use rayon::prelude::*;
    let pending: Vec<Pending> = groups
        .into_par_iter()
        .map(|g| (g.slot, g.readers, FieldMatcher::parts(&g.tests, slot_of)))
        .collect();
    let clusters = share_clusters(&pending);
    let mut pending: Vec<Option<Pending>> = pending.into_iter().map(Some).collect();
    let jobs: Vec<Vec<Pending>> = clusters
        .iter()
        .map(|members| {
            members
                .iter()
                .filter_map(|&i| pending.get_mut(i).and_then(Option::take))
                .collect()
        })
        .collect();
    let built: Vec<Vec<SlotMatcher>> = jobs
        .into_par_iter()
        .with_max_len(1)
        .map(build_cluster)
        .collect::<Result<_, String>>()?;
    Ok(built.into_iter().flatten().collect())
}

/// The fields (by index) that share an automaton, each list led by the first of its
/// members in `pending`; a field that shares with none is a list of its own. In the
/// order of the first member.
fn share_clusters(pending: &[Pending]) -> Vec<Vec<usize>> {
    let mut clusters: Vec<Vec<usize>> = Vec::new();
    // (cluster, the anchors of its members so far)
    let mut unions: Vec<(usize, FxHashSet<&[u8]>)> = Vec::new();
    for (i, (_, _, parts)) in pending.iter().enumerate() {
        let anchors = parts.insensitive_group().anchors();
        if anchors.len() >= SHARE_MIN_ANCHORS {
            let joined = unions.iter_mut().find(|(_, union)| {
                let known = anchors
                    .iter()
                    .filter(|a| union.contains(a.as_slice()))
                    .count();
                known * 100 >= anchors.len() * SHARE_MIN_PERCENT
            });
            if let Some((cluster, union)) = joined {
                union.extend(anchors.iter().map(Vec::as_slice));
                if let Some(members) = clusters.get_mut(*cluster) {
                    members.push(i);
                }
                continue;
            }
            unions.push((clusters.len(), anchors.iter().map(Vec::as_slice).collect()));
        }
        clusters.push(vec![i]);
    }
    clusters
}

/// Builds the matchers of one cluster, with one automaton for all when several.
fn build_cluster(members: Vec<Pending>) -> Result<Vec<SlotMatcher>, String> {
    let shared = if members.len() > 1 {
        let groups: Vec<&PreparedGroup> = members
            .iter()
            .map(|(_, _, parts)| parts.insensitive_group())
            .collect();
        Some(SharedAnchors::new(&groups)?)
    } else {
        None
    };
    members
        .into_iter()
        .map(|(slot, readers, parts)| {
            Ok(SlotMatcher {
                slot,
                readers,
                matcher: parts.build(shared.as_ref())?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigma::test_spec::Anchor;

    /// A case-insensitive `contains` test.
    fn contains(id: TestId, text: &str) -> (TestId, TestSpec) {
        let spec = TestSpec::Literal {
            bytes: text.as_bytes().to_vec(),
            anchor: Anchor::Contains,
            cased: false,
        };
        (id, spec)
    }

    /// A group on `slot` of `contains` tests numbered from `first`, one per word.
    fn group(slot: u32, first: TestId, words: &[String]) -> Group {
        let tests = (first..)
            .zip(words)
            .map(|(id, w)| contains(id, w))
            .collect();
        Group {
            slot,
            readers: vec![slot],
            tests,
        }
    }

    /// `n` literals longer than an anchor, each with first bytes of its own.
    fn words(prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{i:04}-{prefix}-word-with-a-long-tail"))
            .collect()
    }

    #[test]
    fn fields_with_nearly_the_same_literals_share_one_automaton_and_keep_their_answers() {
        let base = words("common", 600);
        let mut more = base.clone();
        more.extend(words("extra", 20));
        let other = words("other", 600);
        let groups = vec![
            group(0, 0, &more),
            group(1, 1000, &base),
            group(2, 2000, &other),
            group(3, 3000, &base[..10]),
        ];
        let slot_of = |_: &str| u32::MAX;
        let pending: Vec<Pending> = groups
            .iter()
            .map(|g| {
                (
                    g.slot,
                    g.readers.clone(),
                    FieldMatcher::parts(&g.tests, slot_of),
                )
            })
            .collect();
        // The small field builds its own; the unrelated big one too.
        assert_eq!(share_clusters(&pending), vec![vec![0, 1], vec![2], vec![3]]);
        let matchers = build_matchers(groups, &slot_of).expect("built");
        let slots: Vec<u32> = matchers.iter().map(|m| m.slot).collect();
        assert_eq!(slots, vec![0, 1, 2, 3]);
        let passed = |slot: usize, text: &str| matchers[slot].matcher.passed_by(text.as_bytes());
        // Each field answers with its own tests only, including for the literals the
        // shared automaton holds for the other; past the anchor, the rest must match.
        assert_eq!(
            passed(0, "x 0599-COMMON-word-with-a-long-tail y"),
            vec![599]
        );
        assert_eq!(
            passed(1, "x 0599-COMMON-word-with-a-long-tail y"),
            vec![1599]
        );
        assert!(passed(1, "0599-common-word-with-a-long-tale").is_empty());
        assert_eq!(passed(0, "0003-extra-word-with-a-long-tail"), vec![603]);
        assert!(passed(1, "0003-extra-word-with-a-long-tail").is_empty());
        let both = "0000-other-word-with-a-long-tail 0000-common-word-with-a-long-tail";
        assert_eq!(passed(2, both), vec![2000]);
        let adjacent = "0009-common-word-with-a-long-tail0010-common-word-with-a-long-tail";
        assert_eq!(passed(3, adjacent), vec![3009]);
    }
}
