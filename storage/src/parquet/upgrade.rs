//! Events files of an older layout rewritten in the current one when the store opens
//! (see [`super::shredding`]): files from before keys were shredded, or shredded with
//! another list of keys. Each is rewritten under its own name with its own footer
//! metadata (a merge's coverage), atomically, so a crash midway leaves every file
//! readable and the next start goes on; processes opening one store at once take turns
//! (a lock file), so each file is rewritten once. Once every file is in the current
//! layout, a marker naming it is written, and later opens read no footer at all.

use std::fs::File;
use std::path::Path;

use arrow::compute::concat_batches;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use vedette_core::CoreError;

use super::coverage::{origin, FileOrigin};
use super::files::{self, Codec};
use super::message_tail::{self, TAIL_KEYS};
use super::same_as::{self, SAME_AS};
use super::shredding::{file_schema, for_storage, is_current, SHREDDED_KEYS};
use super::visibility::{list_folder, FileInFolder};

/// Arrow's own footer key (the writer adds it again).
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

/// The lock two processes opening one store take in turn, so a file is upgraded once.
const LOCK_FILE: &str = ".upgrade.lock";

/// Names the layout every events file is in, once that is so (the shredded keys).
const LAYOUT_FILE: &str = ".layout";

/// The marker's text for the current layout.
fn layout_tag() -> String {
    let tails = TAIL_KEYS
        .iter()
        .map(|k| format!("\n{}", message_tail::column_name(k)));
    let flags = SAME_AS
        .iter()
        .map(|(k, s)| format!("\n{}", same_as::column_name(k, s)));
    SHREDDED_KEYS.join("\n") + &tails.chain(flags).collect::<String>()
}

/// Rewrites the events files under `table_dir` not in the current layout; returns how
/// many. A file that cannot be read is logged and left as it is (a query of it reads
/// the shredded keys as null); it does not keep the store from opening.
pub(crate) fn upgrade_events_files(table_dir: &Path) -> Result<u64, CoreError> {
    let lock_path = table_dir.join(LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| CoreError::io(format!("opening {}", lock_path.display()), e))?;
    lock.lock()
        .map_err(|e| CoreError::io(format!("locking {}", lock_path.display()), e))?;
    let marker = table_dir.join(LAYOUT_FILE);
    if std::fs::read_to_string(&marker).is_ok_and(|t| t == layout_tag()) {
        return Ok(0);
    }
    let (mut upgraded, mut failed) = (0, false);
    for folder in super::leaf_folders(table_dir)? {
        for file in list_folder(&folder)? {
            match upgrade_file(&folder, &file) {
                Ok(true) => {
                    if upgraded == 0 {
                        tracing::info!(
                            folder = %folder.display(),
                            "rewriting events files of an older layout in the current one"
                        );
                    }
                    upgraded += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    failed = true;
                    tracing::warn!(
                        file = %file.path.display(),
                        error = %e,
                        "an events file of an older layout could not be rewritten"
                    )
                }
            }
        }
    }
    if !failed {
        // A marker lost in a crash only makes the next open look again.
        let tmp = table_dir.join(format!(".{LAYOUT_FILE}.tmp"));
        std::fs::write(&tmp, layout_tag())
            .and_then(|()| std::fs::rename(&tmp, &marker))
            .map_err(|e| CoreError::io(format!("writing {}", marker.display()), e))?;
    }
    Ok(upgraded)
}

/// Rewrites `file` in the current layout if it is not; whether it did. A file merged
/// away meanwhile (by a running `vedette run`) is left alone.
fn upgrade_file(folder: &Path, file: &FileInFolder) -> Result<bool, CoreError> {
    let opened = match File::open(&file.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(CoreError::io(format!("opening {}", file.path.display()), e)),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(opened)
        .map_err(|e| CoreError::Internal(format!("reading {}: {e}", file.path.display())))?;
    if is_current(reader.schema()) {
        return Ok(false);
    }
    let metadata: Vec<(String, String)> = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter(|kv| kv.key != ARROW_SCHEMA_KEY)
        .filter_map(|kv| kv.value.clone().map(|v| (kv.key.clone(), v)))
        .collect();
    let read = reader
        .with_batch_size(64 * 1024)
        .build()
        .and_then(|r| r.collect::<Result<Vec<_>, _>>().map_err(Into::into))
        .map_err(|e| CoreError::Internal(format!("reading {}: {e}", file.path.display())))?;
    let stored = read
        .iter()
        .map(for_storage)
        .collect::<Result<Vec<_>, _>>()?;
    let rows = concat_batches(&file_schema(), &stored)
        .map_err(|e| CoreError::Internal(format!("upgrading {}: {e}", file.path.display())))?;
    let codec = match origin(&file.name) {
        FileOrigin::Compacted => Codec::Compact(files::DEFAULT_ZSTD_LEVEL),
        FileOrigin::Bus(_) | FileOrigin::Loose => Codec::Fast,
    };
    files::write_file_with(folder, &file.name, &rows, metadata, codec)?;
    tracing::debug!(file = %file.path.display(), "rewritten in the current layout");
    Ok(true)
}
