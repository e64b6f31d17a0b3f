//! Opening the store `vedette run` and `vedette query` use: Parquet files under the data
//! folder (the default).

use std::sync::Arc;

use anyhow::bail;
use vedette_core::config::{Config, StoreKind};
use vedette_core::traits::EventStore;
use vedette_storage::parquet::ParquetStore;
use vedette_storage::QueryLimits;

/// The store of `config`.
pub(crate) fn open_store(
    config: &Config,
    limits: QueryLimits,
) -> anyhow::Result<Arc<dyn EventStore>> {
    match config.store.kind {
        StoreKind::Parquet => {
            let root = config.data_dir.join("store");
            let store = ParquetStore::open(&root, config.store.parquet.retention_days, limits)
                .map_err(|e| anyhow::anyhow!("cannot open the Parquet store in {}: {e}", root.display()))?;
            Ok(Arc::new(store))
        }
        StoreKind::Clickhouse => bail!(
            "store.kind = \"clickhouse\": this build has no ClickHouse store yet; use store.kind = \"parquet\""
        ),
    }
}
