//! Appends of many bus batches at once. The rows that all the batches have for one
//! folder (day, dataset) go into a single file, which names in its footer the bus
//! positions it holds, as a merge's file does ([`super::coverage`]). A file per folder
//! per group instead of per batch: agents send small batches, and a file per batch and
//! folder cost the service more CPU than detection (a profile of `vedette run` put 22 %
//! of it in writing those files and 17 % more in merging them).
//!
//! A batch read again after a crash is recognised by the coverage of the files already
//! in its folder, however the batches are grouped the second time, and its rows there
//! are not written again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use vedette_core::batch::EventBatch;
use vedette_core::traits::Table;
use vedette_core::CoreError;

use super::coverage::{BusKey, Coverage, COVERS_KEY, REPLACES_KEY};
use super::files::{self, Codec, PartitionKey, SORT_COLUMNS};
use super::visibility::{list_folder, FileInFolder};
use super::{check_columns, layout, Files, TIME_COLUMN};

impl Files {
    /// Writes batches read from the bus, one file per folder they touch; a batch
    /// without a bus position makes it one write per batch. Returns the files written.
    pub(super) fn write_all(
        &self,
        table: Table,
        batches: &[EventBatch],
    ) -> Result<Vec<PathBuf>, CoreError> {
        let keys: Option<Vec<BusKey>> = batches
            .iter()
            .map(|b| {
                b.position.as_ref().map(|p| BusKey {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    offset: p.offset,
                })
            })
            .collect();
        let Some(keys) = keys.filter(|_| batches.len() > 1) else {
            let mut written = Vec::new();
            for batch in batches {
                written.extend(self.write(table, batch)?);
            }
            return Ok(written);
        };
        let l = layout(table);
        for batch in batches {
            check_columns(table, &l, batch)?;
        }
        let mut coverage = Coverage::default();
        let mut parts: BTreeMap<PartitionKey, Vec<(usize, RecordBatch)>> = BTreeMap::new();
        for (i, batch) in batches.iter().enumerate() {
            coverage.add_position(&keys[i]);
            for (key, rows) in files::split(&batch.records, TIME_COLUMN, l.dataset_column)? {
                parts.entry(key).or_default().push((i, rows));
            }
        }
        let (covers, replaces) = coverage.encode();
        let table_dir = self.root.join(table.name());
        let _folders = self.folders.read().unwrap_or_else(|p| p.into_inner());
        let mut written = Vec::new();
        for (key, rows) in parts {
            let folder = key.folder(&table_dir);
            let present = self.visibility.coverages(&list_folder(&folder)?);
            let fresh: Vec<RecordBatch> = rows
                .into_iter()
                .filter(|(i, _)| !present.iter().any(|(_, c)| c.covers(&keys[*i])))
                .map(|(_, r)| r)
                .collect();
            let Some(first) = fresh.first() else {
                tracing::debug!(folder = %folder.display(), "already stored: not written again");
                continue;
            };
            let all = concat_batches(&first.schema(), &fresh)
                .map_err(|e| CoreError::Internal(format!("joining batches: {e}")))?;
            let rows = files::sorted(&all, SORT_COLUMNS)?;
            let name = self.compacted_name();
            let path = files::write_file_with(
                &folder,
                &name,
                &rows,
                vec![
                    (COVERS_KEY.to_string(), covers.clone()),
                    (REPLACES_KEY.to_string(), replaces.clone()),
                ],
                Codec::Fast,
            )?;
            // Known at once, so a batch read again is recognised without a listing.
            self.visibility
                .coverage_of(&FileInFolder::stat(&name, path.clone())?)?;
            written.push(path);
        }
        Ok(written)
    }
}
