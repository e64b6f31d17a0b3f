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

use std::path::PathBuf;

use arrow::array::RecordBatch;
use vedette_core::batch::EventBatch;
use vedette_core::traits::Table;
use vedette_core::CoreError;

use super::coverage::{BusKey, Coverage, COVERS_KEY, REPLACES_KEY};
use super::durable;
use super::files::{self, Codec};
use super::rows;
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
        for key in &keys {
            coverage.add_position(key);
        }
        let records: Vec<RecordBatch> = batches.iter().map(|b| b.records.clone()).collect();
        let parts = rows::partition_rows(&records, TIME_COLUMN, l.dataset_column)?;
        let (covers, replaces) = coverage.encode();
        let table_dir = self.root.join(table.name());
        let _folders = self.folders.read().unwrap_or_else(|p| p.into_inner());
        let mut todo = Vec::new();
        for (key, mut part) in parts {
            let folder = key.folder(&table_dir);
            let present = self.visibility.coverages(&list_folder(&folder)?);
            let stored: Vec<bool> = keys
                .iter()
                .map(|k| present.iter().any(|(_, c)| c.covers(k)))
                .collect();
            part.retain(|&(b, _)| !stored[b]);
            if part.is_empty() {
                tracing::debug!(folder = %folder.display(), "already stored: not written again");
                continue;
            }
            todo.push((folder, self.compacted_name(), part));
        }
        // The files of the folders are gathered and encoded in parallel, one folder per
        // task, the biggest first: a thread that runs out of work steals single folders
        // from the other's queue, so the two big folders of a group cannot end up in one
        // half of a split by position while the other thread waits. Each is committed by
        // one of a few threads as soon as it is written ([`durable::write_durably`]).
        todo.sort_by_key(|(_, _, part)| std::cmp::Reverse(part.len()));
        let names: Vec<String> = todo.iter().map(|(_, name, _)| name.clone()).collect();
        let written = durable::write_durably(todo, |(folder, name, part)| {
            let rows = super::shredding::gather(&records, &part)?;
            drop(part);
            files::write_unsynced(
                &folder,
                &name,
                &rows,
                vec![
                    (COVERS_KEY.to_string(), covers.clone()),
                    (REPLACES_KEY.to_string(), replaces.clone()),
                ],
                Codec::Fast,
            )
        })?;
        // Known at once, so a batch read again is recognised without a listing.
        for (name, path) in names.iter().zip(&written) {
            self.visibility
                .coverage_of(&FileInFolder::stat(name, path.clone())?)?;
        }
        Ok(written)
    }
}
