//! Reading Sigma rule files: single files or folders (recursively, `.yml`/`.yaml`),
//! each parsed with `rsigma-parser` into detection, correlation and filter rules.

use std::path::{Path, PathBuf};

use rsigma_parser::{parse_sigma_yaml, CorrelationRule, FilterRule, SigmaRule};
use vedette_core::io::read_file_capped;

use crate::error::DetectError;

/// Largest rule file read.
const MAX_RULE_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// What one file held.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Detection rules parsed from it.
    pub rules: usize,
    /// Correlation rules parsed from it.
    pub correlations: usize,
    /// Filters parsed from it.
    pub filters: usize,
    /// Parse errors and warnings, in the parser's words, one line each.
    pub problems: Vec<String>,
    /// Set when the file is well-formed but uses a construct the engine does not
    /// evaluate (the deprecated aggregation or `near` conditions): why.
    pub unsupported: Option<String>,
}

impl FileReport {
    /// Whether the file yielded nothing usable: invalid YAML or not a Sigma document.
    pub fn is_invalid(&self) -> bool {
        self.rules + self.correlations + self.filters == 0 && self.unsupported.is_none()
    }
}

/// Everything read from a set of paths.
#[derive(Debug, Default)]
pub struct LoadedRules {
    /// Detection rules with the file they came from.
    pub rules: Vec<(SigmaRule, String)>,
    /// Correlation rules with their file.
    pub correlations: Vec<(CorrelationRule, String)>,
    /// Filters with their file.
    pub filters: Vec<(FilterRule, String)>,
    /// One report per file.
    pub files: Vec<FileReport>,
}

/// The rule files under `paths`, sorted within each folder.
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DetectError> {
    map_rule_files(paths, &Ok)
}

/// `each` applied to every rule file under `paths`, in the order of [`rule_files`]:
/// folders are listed, and files handed to `each`, on all threads at once.
fn map_rule_files<T: Send>(
    paths: &[PathBuf],
    each: &(dyn Fn(PathBuf) -> Result<T, DetectError> + Sync),
) -> Result<Vec<T>, DetectError> {
    use rayon::prelude::*;
    let parts: Vec<Vec<T>> = paths
        .par_iter()
        .map(|p| {
            if p.is_dir() {
                map_folder(p, each)
            } else {
                each(p.clone()).map(|one| vec![one])
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(parts.into_iter().flatten().collect())
}

/// [`map_rule_files`] for one folder.
fn map_folder<T: Send>(
    dir: &Path,
    each: &(dyn Fn(PathBuf) -> Result<T, DetectError> + Sync),
) -> Result<Vec<T>, DetectError> {
    use rayon::prelude::*;
    let read = |source| DetectError::Read {
        path: dir.to_owned(),
        source,
    };
    // The entry's own type, as the folder listing gives it: no `stat` per file. A
    // symbolic link is followed (one `stat`), as `Path::is_dir` would.
    let mut entries: Vec<(PathBuf, bool)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let path = entry.path();
        // An entry whose type cannot be told (gone since listed) is taken for a file:
        // a rule file then fails to read, anything else is skipped.
        let is_dir = entry
            .file_type()
            .is_ok_and(|kind| kind.is_dir() || (kind.is_symlink() && path.is_dir()));
        entries.push((path, is_dir));
    }
    entries.sort();
    let parts: Vec<Vec<T>> = entries
        .into_par_iter()
        .map(|(p, is_dir)| {
            if is_dir {
                map_folder(&p, each)
            } else if is_rule_file(&p) {
                each(p).map(|one| vec![one])
            } else {
                Ok(Vec::new())
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(parts.into_iter().flatten().collect())
}

/// Whether `p` names a rule file (`.yml` or `.yaml`).
fn is_rule_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))
}

/// Reads and parses every rule file under `paths`. A file that cannot be read is an
/// error; a file that does not parse is reported in [`LoadedRules::files`].
pub fn load_rules(paths: &[PathBuf]) -> Result<LoadedRules, DetectError> {
    // Files are parsed as the folders are listed, in parallel; then merged in file
    // order.
    let parts = map_rule_files(paths, &|path| {
        let text = read_rule_file(&path)?;
        let source = path.display().to_string();
        let mut one = LoadedRules::default();
        one.add_text(&text, &source, path);
        Ok(one)
    })?;
    let mut out = LoadedRules::default();
    for p in parts {
        out.rules.extend(p.rules);
        out.correlations.extend(p.correlations);
        out.filters.extend(p.filters);
        out.files.extend(p.files);
    }
    Ok(out)
}

/// Reads one rule file, capped in size.
pub fn read_rule_file(path: &Path) -> Result<String, DetectError> {
    let read = |source| DetectError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let bytes = read_file_capped(file, MAX_RULE_FILE_BYTES).map_err(read)?;
    String::from_utf8(bytes).map_err(|e| {
        read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8: {e}"),
        ))
    })
}

impl LoadedRules {
    /// Parses one file's text.
    pub fn add_text(&mut self, text: &str, source: &str, path: PathBuf) {
        let mut report = FileReport {
            path,
            rules: 0,
            correlations: 0,
            filters: 0,
            problems: Vec::new(),
            unsupported: None,
        };
        match parse_sigma_yaml(text) {
            Ok(c) => {
                report.rules = c.rules.len();
                report.correlations = c.correlations.len();
                report.filters = c.filters.len();
                report.problems = c.errors;
                self.rules
                    .extend(c.rules.into_iter().map(|r| (r, source.to_owned())));
                self.correlations
                    .extend(c.correlations.into_iter().map(|r| (r, source.to_owned())));
                self.filters
                    .extend(c.filters.into_iter().map(|r| (r, source.to_owned())));
            }
            Err(e) => report.problems.push(e.to_string()),
        }
        report.problems = report.problems.iter().map(|p| one_line(p)).collect();
        if report.rules + report.correlations + report.filters == 0 {
            report.unsupported = legacy_condition(text);
        }
        self.files.push(report);
    }
}

/// A message on one line, runs of white space collapsed.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why a rule that did not parse uses a construct of Sigma 1 that the engine does not
/// evaluate: aggregations (`| count() > 5`) and `near`, both replaced by correlation
/// rules in Sigma 2.
fn legacy_condition(text: &str) -> Option<String> {
    let doc: yaml_serde::Value = yaml_serde::from_str(text).ok()?;
    let condition = doc.get("detection")?.get("condition")?;
    let conditions: Vec<&str> = match condition {
        yaml_serde::Value::String(s) => vec![s.as_str()],
        yaml_serde::Value::Sequence(list) => list.iter().filter_map(|v| v.as_str()).collect(),
        _ => return None,
    };
    if conditions.iter().any(|c| c.contains(" near ")) {
        return Some(
            "near operator in the condition (Sigma 1; use a temporal correlation rule)".into(),
        );
    }
    if conditions.iter().any(|c| c.contains('|')) {
        return Some("aggregation in the condition (Sigma 1; use a correlation rule)".into());
    }
    None
}
