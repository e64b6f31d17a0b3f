//! A literal prefilter in front of yara-x: most event fields are passed over without a
//! scan, because none of the rules could match them.
//!
//! A yara-x scan costs several microseconds even for two rules, and evaluates every
//! rule's condition whether or not its strings occur (185 µs per small field with the
//! 5,527 rules of signature-base). Yet a rule can match only if what its condition
//! needs is there ([`super::needs`]). One Aho-Corasick automaton holds every rule file's
//! atoms: a value none of whose atoms occurs cannot match any rule and is not scanned;
//! one that holds atoms is scanned with the rule files that need them, each compiled
//! alone ([`Candidates`]), so what matches is what yara-x says. The few rules that need
//! nothing that can be told (a condition on `filesize` alone, say; two of
//! signature-base's 1,299 generic rules) are compiled apart ([`open_rules_source`]) into
//! a small set scanned on every value; they are named in the log at load.

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use yara_x_parser::ast::{RuleFlags, AST};

use super::needs::{rule_needs, Atom};

/// Which rule files could match a value, as [`Prefilter::candidates`] tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Candidates {
    /// None could.
    None,
    /// Only these (indices of the sources given, ascending).
    Files(Vec<usize>),
    /// More than [`MAX_CANDIDATE_FILES`]: scan with the whole set at once.
    All,
}

/// Most rule files scanned one by one for a value; past this, the whole set scans it
/// once (each scan costs its fixed part, and a large value one pass per file).
pub(crate) const MAX_CANDIDATE_FILES: usize = 8;

/// The prefilter of a rule set: which atoms each rule file needs.
pub(crate) struct Prefilter {
    /// Rules (namespace-less identifiers) whose condition needs nothing that can be
    /// told: they are scanned apart, on every value ([`open_rules_source`]).
    pub(crate) open_rules: Vec<String>,
    /// Prefixes, each with the files that need it.
    prefixes: Vec<(Vec<u8>, Vec<usize>)>,
    /// Atoms found anywhere, and per atom (the automaton's pattern id) the files.
    anywhere: Option<AhoCorasick>,
    owners: Vec<Vec<usize>>,
    /// The automaton could not be built: nothing is passed over.
    blind: bool,
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefilter")
            .field("open_rules", &self.open_rules.len())
            .field("prefixes", &self.prefixes.len())
            .field("atoms", &self.owners.len())
            .finish_non_exhaustive()
    }
}

/// The source of a file's rules whose condition needs nothing that can be told, with
/// the file's imports if one of them names a module, to be scanned on every value:
/// `None` when it has none; the whole file when it cannot be read so, or has a `global`
/// rule (which applies to every rule of the file, so must come along).
pub(crate) fn open_rules_source(source: &str) -> Option<String> {
    let Ok(needs) = rule_needs(source) else {
        return Some(source.to_string());
    };
    if needs.iter().all(|(_, n)| n.is_some()) {
        return None;
    }
    let tree = AST::from(source);
    if tree.rules().any(|r| r.flags.contains(RuleFlags::Global)) {
        return Some(source.to_string());
    }
    // Which declarations to keep, in file order: the syntax tree's rules and the
    // concrete tree's declarations come in the same order.
    let open: Vec<bool> = tree
        .rules()
        .map(|rule| {
            !rule.flags.contains(RuleFlags::Private)
                && needs
                    .iter()
                    .any(|(name, n)| n.is_none() && name == rule.identifier.name)
        })
        .collect();
    // The imports only if a rule kept names a module: building a module's structure
    // (`pe`'s) would cost most of each scan, on every value.
    let Some((imports, declarations)) = super::units::imports_and_declarations(source) else {
        return Some(source.to_string());
    };
    let with_imports = declarations
        .iter()
        .zip(&open)
        .any(|(text, kept)| *kept && super::units::names_a_module(text, &imports));
    // More or fewer declarations than rules: read wrongly, so take it whole.
    Some(
        super::units::kept_declarations(source, &open, with_imports)
            .unwrap_or_else(|| source.to_string()),
    )
}

impl Prefilter {
    /// The prefilter of rule sources that compiled (a file's index is its place in
    /// `sources`). A source whose syntax tree has errors or an `include` is scanned on
    /// every value, whole.
    pub(crate) fn of_sources<'s>(sources: impl IntoIterator<Item = &'s str>) -> Self {
        let mut open_rules = Vec::new();
        let mut atoms: Vec<(Atom, usize)> = Vec::new();
        for (file, source) in sources.into_iter().enumerate() {
            match rule_needs(source) {
                Err(why) => open_rules.push(why.to_string()),
                Ok(rules) => {
                    for (rule, need) in rules {
                        match need {
                            Some(found) => atoms.extend(found.into_iter().map(|a| (a, file))),
                            None => open_rules.push(rule),
                        }
                    }
                }
            }
        }
        atoms.sort_unstable();
        atoms.dedup();
        let mut prefixes: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
        let mut anywhere: Vec<Vec<u8>> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        for (atom, file) in atoms {
            let (list, bytes) = match atom {
                Atom::Prefix(b) => (&mut prefixes, b),
                Atom::Anywhere(b) => {
                    if anywhere.last() != Some(&b) {
                        anywhere.push(b);
                        owners.push(Vec::new());
                    }
                    if let Some(o) = owners.last_mut() {
                        o.push(file);
                    }
                    continue;
                }
            };
            match list.last_mut() {
                Some((last, files)) if *last == bytes => files.push(file),
                _ => list.push((bytes, vec![file])),
            }
        }
        let mut blind = false;
        let anywhere = if anywhere.is_empty() {
            None
        } else {
            // A DFA where it fits (the fastest search: this runs over every value),
            // else whatever the builder picks.
            let build = |kind| {
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .kind(kind)
                    .build(&anywhere)
            };
            match build(Some(AhoCorasickKind::DFA)).or_else(|_| build(None)) {
                Ok(ac) => Some(ac),
                Err(e) => {
                    tracing::warn!(error = %e, "YARA prefilter: no automaton; every value is scanned");
                    blind = true;
                    None
                }
            }
        };
        Self {
            open_rules,
            prefixes,
            anywhere,
            owners,
            blind,
        }
    }

    /// The rule files (other than the open rules) that could match `data`.
    pub(crate) fn candidates(&self, data: &[u8]) -> Candidates {
        if self.blind {
            return Candidates::All;
        }
        let mut files: Vec<usize> = Vec::new();
        let add = |more: &[usize], files: &mut Vec<usize>| {
            for f in more {
                if let Err(at) = files.binary_search(f) {
                    files.insert(at, *f);
                }
            }
            files.len() > MAX_CANDIDATE_FILES
        };
        // The prefixes are sorted: an empty one first (any value starts so), then only
        // those that start with the value's first byte.
        for (_, owners) in self.prefixes.iter().take_while(|(p, _)| p.is_empty()) {
            if add(owners, &mut files) {
                return Candidates::All;
            }
        }
        if let Some(first) = data.first() {
            let from = self
                .prefixes
                .partition_point(|(p, _)| p.first() < Some(first));
            for (prefix, owners) in &self.prefixes[from..] {
                if prefix.first() != Some(first) {
                    break;
                }
                if data.starts_with(prefix) && add(owners, &mut files) {
                    return Candidates::All;
                }
            }
        }
        if let Some(ac) = &self.anywhere {
            for found in ac.find_overlapping_iter(data) {
                let owners = &self.owners[found.pattern().as_usize()];
                if add(owners, &mut files) {
                    return Candidates::All;
                }
            }
        }
        if files.is_empty() {
            Candidates::None
        } else {
            Candidates::Files(files)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use yara_x_parser::ast::Pattern;

    use super::super::needs::{hex_run, widened, Need};
    use super::*;

    #[test]
    fn open_rules_are_cut_out_by_declaration_and_global_rules_take_the_file() {
        let file = concat!(
            "import \"math\"\n",
            "rule told { strings: $a = \"abc\" condition: $a }\n",
            "rule /* a comment */ tiny : tag { condition: filesize < 9 }\n",
            "private rule helper { condition: filesize > 2 }\n",
        );
        let open = open_rules_source(file).unwrap();
        // No rule kept names `math`: the import is left out.
        assert!(!open.contains("import"), "{open}");
        assert!(open.contains("tiny"), "{open}");
        assert!(!open.contains("told") && !open.contains("helper"), "{open}");
        let reads_math =
            format!("{file}rule dense {{ condition: math.entropy(0, filesize) > 7 }}\n");
        let open = open_rules_source(&reads_math).unwrap();
        assert!(open.starts_with("import \"math\"\n"), "{open}");
        assert!(open.contains("tiny") && open.contains("dense"), "{open}");
        assert_eq!(
            open_rules_source("rule t { strings: $a = \"abc\" condition: $a }"),
            None
        );
        let with_global = concat!(
            "global private rule g { condition: uint16(0) == 0x5a4d }\n",
            "rule r { condition: filesize < 50 }\n",
        );
        assert_eq!(open_rules_source(with_global).as_deref(), Some(with_global));
    }

    fn corpora_root() -> PathBuf {
        std::env::var("VEDETTE_CORPORA")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora"))
    }

    /// Data made of some of a rule's strings: all of them, and each one left out.
    fn variants(source: &str) -> Vec<Vec<u8>> {
        let tree = AST::from(source);
        let mut out = Vec::new();
        for rule in tree.rules() {
            let parts: Vec<Vec<u8>> = rule
                .patterns
                .iter()
                .flatten()
                .filter_map(|p| match p {
                    Pattern::Text(t) if t.modifiers.wide().is_some() => {
                        Some(widened(&t.text.value))
                    }
                    Pattern::Text(t) => Some(t.text.value.to_vec()),
                    Pattern::Hex(h) => hex_run(&h.sub_patterns),
                    Pattern::Regexp(_) => None,
                })
                .take(8)
                .collect();
            for left_out in 0..=parts.len() {
                let data: Vec<u8> = parts
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != left_out)
                    .flat_map(|(_, p)| p.iter().copied().chain(*b" "))
                    .collect();
                let mut with_header = b"MZ\x90\x00".to_vec();
                with_header.extend_from_slice(&data);
                out.push(data);
                out.push(with_header);
            }
        }
        out
    }

    /// The prefilter's promise, against yara-x itself on signature-base's generic
    /// rules: data made of a rule's own strings, some left out, make rules match; the
    /// open rules and the units the prefilter names, each scanned alone, say what the
    /// whole set says; each rule that matches holds one of the atoms the prefilter says
    /// it needs.
    #[test]
    fn the_units_named_say_what_the_whole_set_says_and_each_match_holds_what_its_rule_needs() {
        let dir = corpora_root().join("yara/signature-base/yara");
        assert!(
            dir.is_dir(),
            "the YARA corpus is missing at {}: set VEDETTE_CORPORA (see README, \"Test data\")",
            dir.display()
        );
        // The files `YaraSet::load` reads (sorted), of the generic rules.
        let sources: Vec<(PathBuf, String)> = super::super::YaraSet::files(&[dir])
            .unwrap()
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("gen_"))
            })
            .map(|f| {
                let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
                (f, text)
            })
            .collect();
        let set = super::super::YaraSet::compile(&sources);
        assert!(set.rule_count() > 1000, "{} rules", set.rule_count());
        let mut rules: HashMap<(String, String), Need> = HashMap::new();
        let mut data = Vec::new();
        for (origin, text) in &sources {
            if set.errors.iter().any(|(e, _)| e == origin) {
                continue;
            }
            let ns = super::super::namespace(origin);
            for (rule, need) in rule_needs(text).unwrap() {
                rules.insert((ns.clone(), rule), need);
            }
            data.extend(variants(text));
        }
        let told = rules.values().filter(|n| n.is_some()).count();
        assert!(
            told * 10 >= rules.len() * 9,
            "{told} of {} rules",
            rules.len()
        );
        let cut = set.per_unit.len() - set.files;
        assert!(cut >= 10, "only {cut} files were cut in units");
        let mut open_scanner = set.open.as_ref().map(yara_x::Scanner::new);
        let mut scanner = yara_x::Scanner::new(&set.rules);
        let mut unit_scanners: Vec<Option<yara_x::Scanner<'_>>> =
            set.per_unit.iter().map(|_| None).collect();
        let mut relaxed_scanners: Vec<Option<yara_x::Scanner<'_>>> =
            set.per_unit.iter().map(|_| None).collect();
        let relaxed_units = set.relaxed.iter().flatten().count();
        assert!(relaxed_units >= 140, "only {relaxed_units} units relaxed");
        let mut relaxed_passed = 0;
        let matched = |results: yara_x::ScanResults<'_, '_>| -> Vec<String> {
            results
                .matching_rules()
                .map(|r| format!("{}:{}", r.namespace(), r.identifier()))
                .collect()
        };
        let (mut checked, mut passed_over) = (0, 0);
        let mut expected: Vec<(usize, String)> = Vec::new();
        for (i, d) in data.iter().enumerate() {
            // What the detector says (the open rules' matches and those of the units
            // the prefilter names, each scanned alone) is what the whole set says.
            let candidates = set.prefilter.candidates(d);
            let whole = {
                let mut w = matched(scanner.scan(d).unwrap());
                w.sort();
                w
            };
            expected.extend(whole.iter().map(|rule| (i, rule.clone())));
            if candidates != Candidates::All {
                let mut said: Vec<String> = match open_scanner.as_mut() {
                    Some(s) => matched(s.scan(d).unwrap()),
                    None => Vec::new(),
                };
                if let Candidates::Files(units) = &candidates {
                    for &u in units {
                        let rules = &set.per_unit[u];
                        let s = unit_scanners[u].get_or_insert_with(|| yara_x::Scanner::new(rules));
                        let by_unit = matched(s.scan(d).unwrap());
                        // The relaxed rules match wherever the unit's rules do.
                        if let Some(relaxed) = &set.relaxed[u] {
                            let r = relaxed_scanners[u]
                                .get_or_insert_with(|| yara_x::Scanner::new(relaxed));
                            let by_relaxed = matched(r.scan(d).unwrap());
                            if by_relaxed.is_empty() {
                                relaxed_passed += 1;
                            }
                            for rule in &by_unit {
                                assert!(
                                    by_relaxed.contains(rule),
                                    "{rule} matched {:?}, its relaxed form did not",
                                    String::from_utf8_lossy(d)
                                );
                            }
                        }
                        said.extend(by_unit);
                    }
                }
                if candidates == Candidates::None {
                    passed_over += 1;
                }
                said.sort();
                said.dedup();
                assert_eq!(
                    said,
                    whole,
                    "{:?} with candidates {candidates:?}",
                    String::from_utf8_lossy(d)
                );
            }
            let results = scanner.scan(d).unwrap();
            for rule in results.matching_rules() {
                let key = (rule.namespace().to_string(), rule.identifier().to_string());
                let Some(Some(atoms)) = rules.get(&key) else {
                    continue;
                };
                let held = atoms.iter().any(|a| match a {
                    Atom::Prefix(p) => d.starts_with(p),
                    Atom::Anywhere(b) => d
                        .to_ascii_lowercase()
                        .windows(b.len())
                        .any(|w| w == b.to_ascii_lowercase()),
                });
                assert!(
                    held,
                    "{key:?} matched {:?} without {atoms:?}",
                    String::from_utf8_lossy(d)
                );
                checked += 1;
            }
        }
        println!(
            "{} rules, {told} with a need; {} files, {cut} cut in two units, {relaxed_units} units relaxed; {} data, {passed_over} passed over, {relaxed_passed} unit scans passed over by relaxed rules; {checked} matches checked",
            rules.len(),
            set.files,
            data.len()
        );
        assert!(checked >= 500, "only {checked} matches checked");

        // The detector itself (which also gathers values for monotone units and scans
        // them together) says of each value what the whole set says; near misses too
        // (each value's first half: some of a rule's strings, or parts of them).
        let halves: Vec<Vec<u8>> = data.iter().map(|d| d[..d.len() / 2].to_vec()).collect();
        for (i, d) in halves.iter().enumerate() {
            expected.extend(
                matched(scanner.scan(d).unwrap())
                    .into_iter()
                    .map(|rule| (data.len() + i, rule)),
            );
        }
        let data: Vec<Vec<u8>> = data.into_iter().chain(halves).collect();
        let detector = super::super::YaraDetector::with_threads(
            super::super::YaraSet::compile(&sources),
            &["payload".to_string()],
            super::super::YaraLimits::default(),
            2,
        )
        .unwrap();
        let mut builder = vedette_core::event::EventBatchBuilder::new();
        for (i, d) in data.iter().enumerate() {
            builder.append(&vedette_core::event::Event {
                id: format!("{i}"),
                payload: Some(d.clone()),
                ..Default::default()
            });
        }
        let batch =
            vedette_core::batch::EventBatch::new(builder.finish().unwrap(), "t", "default", 0);
        use vedette_core::traits::Detector;
        let mut got: Vec<(usize, String)> = detector
            .detect(&batch)
            .unwrap()
            .into_iter()
            .filter(|a| {
                a.matched
                    .get("yara.fields")
                    .is_some_and(|f| f.split(',').any(|f| f == "payload"))
            })
            .map(|a| (a.event_ids[0].parse().unwrap(), a.rule_id))
            .collect();
        got.sort();
        // An empty value is not scanned at all (rules on `filesize` alone match one).
        expected.retain(|(i, _)| !data[*i].is_empty());
        expected.sort();
        let missing: Vec<_> = expected
            .iter()
            .filter(|e| !got.contains(e))
            .map(|(i, r)| (r, String::from_utf8_lossy(&data[*i])))
            .collect();
        let extra: Vec<_> = got.iter().filter(|g| !expected.contains(g)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {missing:?}, extra {extra:?}"
        );
        let grouped = detector
            .stats
            .group_scans
            .load(std::sync::atomic::Ordering::Relaxed);
        let group_passed = detector
            .stats
            .group_passed_over
            .load(std::sync::atomic::Ordering::Relaxed);
        println!("detector: {grouped} group scans, {group_passed} values passed over by them");
        assert!(grouped > 0 && group_passed > 0);
    }
}
