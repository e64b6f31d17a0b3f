//! Opening the store `vedette run`, `vedette query` and `vedette hunt` use: Parquet
//! files under the data folder (the default), or ClickHouse.

use std::sync::Arc;

use std::time::Duration;

use anyhow::Context;
use vedette_core::config::{Config, StoreKind};
use vedette_core::traits::{EventStore, WriteBatching};
use vedette_storage::clickhouse::{ClickHouseOptions, ClickHouseStore};
use vedette_storage::parquet::ParquetStore;
use vedette_storage::QueryLimits;

/// The store of `config`.
pub(crate) async fn open_store(
    config: &Config,
    limits: QueryLimits,
) -> anyhow::Result<Arc<dyn EventStore>> {
    match config.store.kind {
        StoreKind::Parquet => {
            let root = config.data_dir.join("store");
            let store = ParquetStore::open(&root, config.store.parquet.retention_days, limits)
                .map_err(|e| {
                    anyhow::anyhow!("cannot open the Parquet store in {}: {e}", root.display())
                })?;
            store.set_cold_after(Duration::from_secs(
                config.store.parquet.merge_quiet_seconds,
            ));
            store
                .set_zstd_level(config.store.parquet.zstd_level)
                .map_err(|e| anyhow::anyhow!("store.parquet.zstd_level: {e}"))?;
            Ok(Arc::new(store))
        }
        StoreKind::Clickhouse => {
            let ch = config
                .store
                .clickhouse
                .as_ref()
                .context("store.clickhouse: required when store.kind = \"clickhouse\"")?;
            let password = match &ch.password_env {
                Some(var) => Some(std::env::var(var).with_context(|| {
                    format!("store.clickhouse.password_env: environment variable {var} is not set")
                })?),
                None => None,
            };
            let options = ClickHouseOptions {
                url: ch.url.clone(),
                database: ch.database.clone(),
                user: ch.user.clone(),
                password,
                retention_days: ch.retention_days,
                limits,
                batching: WriteBatching {
                    max_rows: ch.batch_rows,
                    max_bytes: ch.batch_bytes,
                    max_age: Duration::from_millis(ch.batch_ms),
                },
            };
            let store = ClickHouseStore::open(options)
                .await
                .with_context(|| format!("cannot open the ClickHouse store at {}", ch.url))?;
            Ok(Arc::new(store))
        }
    }
}
