//! Finding rule files: a path that is a file is taken as it is; a folder is searched
//! recursively for files with one of the given extensions. Sorted, so rule sets load in
//! the same order everywhere.

use std::path::{Path, PathBuf};

use crate::error::DetectError;

/// The rule files under `paths` (files, or folders searched for `extensions`).
pub(crate) fn rule_files(
    paths: &[PathBuf],
    extensions: &[&str],
) -> Result<Vec<PathBuf>, DetectError> {
    let mut out = Vec::new();
    for path in paths {
        collect(path, extensions, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn collect(path: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) -> Result<(), DetectError> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|source| DetectError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, extensions, out)?;
        } else if path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| e == *x))
        {
            out.push(path);
        }
    }
    Ok(())
}
