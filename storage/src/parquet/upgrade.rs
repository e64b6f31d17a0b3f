//! Events files of an older layout rewritten in the current one when the store opens
//! (see [`super::shredding`]): files from before keys were shredded, or shredded with
//! another list of keys. Each is rewritten under its own name with its own footer
//! metadata (a merge's coverage), atomically, so a crash midway leaves every file
//! readable and the next start goes on.

use std::fs::File;
use std::path::Path;

use arrow::compute::concat_batches;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use vedette_core::CoreError;

use super::compaction::read_all;
use super::coverage::{origin, FileOrigin};
use super::files::{self, Codec};
use super::shredding::{file_schema, for_storage, is_current};
use super::visibility::list_folder;

/// Arrow's own footer key (the writer adds it again).
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

/// Rewrites the events files under `table_dir` not in the current layout; returns how
/// many.
pub(crate) fn upgrade_events_files(table_dir: &Path) -> Result<u64, CoreError> {
    let mut upgraded = 0;
    for folder in super::leaf_folders(table_dir)? {
        for file in list_folder(&folder)? {
            let opened = match File::open(&file.path) {
                Ok(f) => f,
                // Merged away by a running `vedette run` meanwhile: nothing to upgrade.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CoreError::io(format!("opening {}", file.path.display()), e)),
            };
            let reader = ParquetRecordBatchReaderBuilder::try_new(opened).map_err(|e| {
                CoreError::Internal(format!("reading {}: {e}", file.path.display()))
            })?;
            if is_current(reader.schema()) {
                continue;
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
            drop(reader);
            if upgraded == 0 {
                tracing::info!(
                    folder = %folder.display(),
                    "rewriting events files of an older layout in the current one"
                );
            }
            let stored = read_all(&file.path)?
                .iter()
                .map(for_storage)
                .collect::<Result<Vec<_>, _>>()?;
            let rows = concat_batches(&file_schema(), &stored).map_err(|e| {
                CoreError::Internal(format!("upgrading {}: {e}", file.path.display()))
            })?;
            let codec = match origin(&file.name) {
                FileOrigin::Compacted => Codec::Compact,
                FileOrigin::Bus(_) | FileOrigin::Loose => Codec::Fast,
            };
            files::write_file_with(&folder, &file.name, &rows, metadata, codec)?;
            tracing::debug!(file = %file.path.display(), "rewritten in the current layout");
            upgraded += 1;
        }
    }
    Ok(upgraded)
}
