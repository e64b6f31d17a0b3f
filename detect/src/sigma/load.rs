//! Reading Sigma rule files: single files or folders (recursively, `.yml`/`.yaml`),
//! each parsed with `rsigma-parser` into detection, correlation and filter rules.

use std::path::{Path, PathBuf};

use rsigma_parser::{parse_sigma_yaml, CorrelationRule, FilterRule, SigmaRule};
use vedette_core::io::read_capped;

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
    /// Parse errors and warnings, in the parser's words.
    pub problems: Vec<String>,
}

impl FileReport {
    /// Whether the file yielded nothing usable: invalid YAML or not a Sigma document.
    pub fn is_invalid(&self) -> bool {
        self.rules + self.correlations + self.filters == 0
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
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DetectError> {
        let read = |source| DetectError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read)?;
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if is_rule_file(&p) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn is_rule_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))
}

/// Reads and parses every rule file under `paths`. A file that cannot be read is an
/// error; a file that does not parse is reported in [`LoadedRules::files`].
pub fn load_rules(paths: &[PathBuf]) -> Result<LoadedRules, DetectError> {
    let mut out = LoadedRules::default();
    for path in rule_files(paths)? {
        let text = read_rule_file(&path)?;
        let source = path.display().to_string();
        out.add_text(&text, &source, path);
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
    let bytes = read_capped(file, MAX_RULE_FILE_BYTES).map_err(read)?;
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
        self.files.push(report);
    }
}
