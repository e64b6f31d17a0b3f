//! The ClickHouse tables: their columns for each server profile, and their DDL.
//!
//! Every table is created from the Arrow schema of its Vedette table, so the two stores
//! always hold the same columns. Two profiles:
//! - **portable** (any server, tested on 18.16): `DateTime('UTC')` (seconds), maps as
//!   `Nested(key, value)` arrays, no TTL (retention drops partitions), no skip indexes;
//! - **modern** (22.3 and later): `DateTime64(3, 'UTC')`, `LowCardinality` for
//!   low-cardinality text, `Map(LowCardinality(String), String)`, ZSTD codecs, TTL
//!   retention, skip indexes for the columns analysts search.
//!
//! Both add `_partition` and `_offset` (the bus position of the row's batch) and a
//! ledger table `<table>_batches` filled by a materialized view, which makes appends
//! idempotent (see the module above).

use arrow::datatypes::{DataType, SchemaRef};
use vedette_core::alert::alert_schema;
use vedette_core::audit::audit_schema;
use vedette_core::dead_letter::dead_letter_schema;
use vedette_core::schema::event_schema;
use vedette_core::traits::Table;
use vedette_core::CoreError;

/// Which SQL dialect a table was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Types every server has (18.16 and later).
    Portable,
    /// Types and features of current servers (22.3 and later).
    Modern,
}

impl Profile {
    /// The profile for a server version such as `18.16.1` or `26.9.2.1`.
    pub fn for_version(version: &str) -> Profile {
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let major = parts.next().unwrap_or(0);
        let minor = parts.next().unwrap_or(0);
        if (major, minor) >= (22, 3) {
            Profile::Modern
        } else {
            Profile::Portable
        }
    }

    /// The profile an existing table was created with, from the type of its time
    /// column.
    pub fn of_time_type(ch_type: &str) -> Profile {
        if ch_type.starts_with("DateTime64") {
            Profile::Modern
        } else {
            Profile::Portable
        }
    }
}

/// Bus offset written for rows that came from no bus position (e.g. retro-hunt alerts).
pub(crate) const NO_OFFSET: u64 = u64::MAX;

/// How one ClickHouse column is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    /// Text or binary of Arrow column `i`.
    Str { index: usize, nullable: bool },
    /// Int64 of Arrow column `i`.
    Int64 { index: usize, nullable: bool },
    /// UInt64 of Arrow column `i`.
    UInt64 { index: usize },
    /// Timestamp of Arrow column `i` as `DateTime` (seconds).
    Seconds { index: usize, nullable: bool },
    /// Timestamp of Arrow column `i` as `DateTime64(3)`.
    Millis { index: usize, nullable: bool },
    /// List of text of Arrow column `i` as `Array(String)`.
    StrList { index: usize },
    /// Map of Arrow column `i` as `Map(String, String)`.
    Map { index: usize },
    /// Keys of the map in Arrow column `i` as `Array(String)`.
    MapKeys { index: usize },
    /// Values of the map in Arrow column `i` as `Array(String)`.
    MapValues { index: usize },
    /// The batch's bus partition.
    Partition,
    /// The batch's bus offset.
    Offset,
}

/// One column of a ClickHouse table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    /// Name, as in the Arrow schema (dots included).
    pub(crate) name: String,
    /// ClickHouse type.
    pub(crate) ch_type: String,
    /// Where its values come from.
    pub(crate) fill: Fill,
}

/// Columns kept as `LowCardinality` on modern servers: few distinct values each.
const LOW_CARDINALITY: &[&str] = &[
    "event.dataset",
    "event.kind",
    "event.category",
    "event.action",
    "event.outcome",
    "event.code",
    "event.provider",
    "host.name",
    "user.domain",
    "network.transport",
    "cloud.provider",
    "cloud.region",
    "cloud.account.id",
    "tenant",
    "detection.kind",
    "rule.level",
    "source",
    "stage",
    "actor.role",
    "action",
    "outcome",
];

/// The Arrow schema a table stores.
pub(crate) fn arrow_schema(table: Table) -> SchemaRef {
    match table {
        Table::Events => event_schema(),
        Table::Alerts => alert_schema(),
        Table::DeadLetters => dead_letter_schema(),
        Table::Audit => audit_schema(),
    }
}

/// The columns of `table` under `profile`, in insert order.
pub(crate) fn columns(table: Table, profile: Profile) -> Result<Vec<Column>, CoreError> {
    let schema = arrow_schema(table);
    let mut out = Vec::new();
    for (index, field) in schema.fields().iter().enumerate() {
        let name = field.name().clone();
        let nullable = field.is_nullable();
        let text = |nullable: bool| {
            let base = if nullable {
                "Nullable(String)"
            } else {
                "String"
            };
            if profile == Profile::Modern && LOW_CARDINALITY.contains(&name.as_str()) {
                format!("LowCardinality({base})")
            } else {
                base.to_string()
            }
        };
        match field.data_type() {
            DataType::Utf8 | DataType::Binary => out.push(Column {
                ch_type: text(nullable),
                name,
                fill: Fill::Str { index, nullable },
            }),
            DataType::Int64 => out.push(Column {
                ch_type: if nullable { "Nullable(Int64)" } else { "Int64" }.into(),
                name,
                fill: Fill::Int64 { index, nullable },
            }),
            DataType::UInt64 => out.push(Column {
                ch_type: "UInt64".into(),
                name,
                fill: Fill::UInt64 { index },
            }),
            DataType::Timestamp(..) => {
                let (base, fill) = match profile {
                    Profile::Portable => ("DateTime('UTC')", Fill::Seconds { index, nullable }),
                    Profile::Modern => ("DateTime64(3, 'UTC')", Fill::Millis { index, nullable }),
                };
                out.push(Column {
                    ch_type: if nullable {
                        format!("Nullable({base})")
                    } else {
                        base.to_string()
                    },
                    name,
                    fill,
                })
            }
            DataType::List(_) => out.push(Column {
                ch_type: "Array(String)".into(),
                name,
                fill: Fill::StrList { index },
            }),
            DataType::Map(..) => match profile {
                Profile::Modern => out.push(Column {
                    ch_type: "Map(LowCardinality(String), String)".into(),
                    name,
                    fill: Fill::Map { index },
                }),
                Profile::Portable => {
                    out.push(Column {
                        name: format!("{name}.key"),
                        ch_type: "Array(String)".into(),
                        fill: Fill::MapKeys { index },
                    });
                    out.push(Column {
                        name: format!("{name}.value"),
                        ch_type: "Array(String)".into(),
                        fill: Fill::MapValues { index },
                    });
                }
            },
            other => {
                return Err(CoreError::Internal(format!(
                    "clickhouse: no column type for {name} ({other})"
                )))
            }
        }
    }
    out.push(Column {
        name: "_partition".into(),
        ch_type: "UInt32".into(),
        fill: Fill::Partition,
    });
    out.push(Column {
        name: "_offset".into(),
        ch_type: "UInt64".into(),
        fill: Fill::Offset,
    });
    Ok(out)
}

/// The map columns of `table` (looked up as `name['key']`).
pub(crate) fn map_columns(table: Table) -> Vec<String> {
    arrow_schema(table)
        .fields()
        .iter()
        .filter(|f| matches!(f.data_type(), DataType::Map(..)))
        .map(|f| f.name().clone())
        .collect()
}

/// `name` quoted as a ClickHouse identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// The sorting key of a table: the columns its common queries filter on first.
fn order_by(table: Table) -> &'static str {
    match table {
        Table::Events => "(`event.dataset`, ifNull(`host.name`, ''), `@timestamp`, `event.id`)",
        Table::Alerts => "(`rule.id`, `@timestamp`, `alert.id`)",
        Table::DeadLetters => "(`source`, `@timestamp`, `position`)",
        Table::Audit => "(`action`, `@timestamp`, `audit.id`)",
    }
}

/// Skip indexes of a table on modern servers: bloom filters for the values analysts
/// look up exactly. (N-gram indexes for `LIKE '%x%'` would need non-nullable text
/// columns; the columns stay nullable so `IS NULL` means the same on both stores.)
fn skip_indexes(table: Table) -> &'static [&'static str] {
    match table {
        Table::Events => &[
            "INDEX idx_user `user.name` TYPE bloom_filter(0.01) GRANULARITY 4",
            "INDEX idx_source_ip `source.ip` TYPE bloom_filter(0.01) GRANULARITY 4",
            "INDEX idx_destination_ip `destination.ip` TYPE bloom_filter(0.01) GRANULARITY 4",
            "INDEX idx_hash `file.hash.sha256` TYPE bloom_filter(0.01) GRANULARITY 4",
        ],
        Table::Alerts => &["INDEX idx_host `host.name` TYPE bloom_filter(0.01) GRANULARITY 4"],
        Table::DeadLetters | Table::Audit => &[],
    }
}

/// Whether a table deduplicates rows with equal sorting keys in the background (a
/// second guard besides the ledger; dead letters have no unique key).
fn replacing(table: Table) -> bool {
    !matches!(table, Table::DeadLetters)
}

/// `CREATE TABLE IF NOT EXISTS` for `table`.
pub(crate) fn create_table(
    database: &str,
    table: Table,
    profile: Profile,
    retention_days: u32,
) -> Result<String, CoreError> {
    let mut lines = Vec::new();
    let mut nested_done = Vec::new();
    for c in columns(table, profile)? {
        match c.fill {
            Fill::MapKeys { .. } | Fill::MapValues { .. } => {
                let base = c.name.rsplit_once('.').map(|(b, _)| b).unwrap_or(&c.name);
                if !nested_done.contains(&base.to_string()) {
                    lines.push(format!(
                        "    {} Nested(key String, value String)",
                        quote(base)
                    ));
                    nested_done.push(base.to_string());
                }
            }
            _ => {
                let codec = match (profile, c.fill) {
                    (Profile::Portable, _) => String::new(),
                    (Profile::Modern, Fill::Millis { .. }) => " CODEC(Delta, ZSTD(3))".into(),
                    (Profile::Modern, Fill::Offset) => " CODEC(Delta, ZSTD(3))".into(),
                    (Profile::Modern, _) => " CODEC(ZSTD(3))".into(),
                };
                lines.push(format!("    {} {}{codec}", quote(&c.name), c.ch_type));
            }
        }
    }
    if profile == Profile::Modern {
        lines.extend(skip_indexes(table).iter().map(|i| format!("    {i}")));
    }
    let engine = if replacing(table) {
        "ReplacingMergeTree"
    } else {
        "MergeTree"
    };
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (\n{}\n) ENGINE = {engine}\nPARTITION BY toYYYYMMDD(`@timestamp`)\nORDER BY {}",
        quote(database),
        quote(table.name()),
        lines.join(",\n"),
        order_by(table)
    );
    if profile == Profile::Modern {
        sql.push_str(&format!(
            "\nTTL toDateTime(`@timestamp`) + INTERVAL {retention_days} DAY DELETE"
        ));
    }
    Ok(sql)
}

/// The ledger table of `table`: one row per bus position stored.
pub(crate) fn create_ledger(database: &str, table: Table) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{} \
         (_partition UInt32, _offset UInt64, rows UInt64, stored DateTime('UTC')) \
         ENGINE = ReplacingMergeTree PARTITION BY toYYYYMMDD(stored) ORDER BY (_partition, _offset)",
        quote(database),
        quote(&ledger_name(table))
    )
}

/// The materialized view that fills the ledger of `table` within each insert.
pub(crate) fn create_ledger_view(database: &str, table: Table) -> String {
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view} TO {db}.{ledger} AS \
         SELECT _partition, _offset, count() AS rows, now() AS stored FROM {db}.{table} \
         WHERE _offset != {NO_OFFSET} GROUP BY _partition, _offset",
        db = quote(database),
        view = quote(&format!("{}_mv", ledger_name(table))),
        ledger = quote(&ledger_name(table)),
        table = quote(table.name()),
    )
}

/// Name of the ledger table of `table`.
pub(crate) fn ledger_name(table: Table) -> String {
    format!("{}_batches", table.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_pick_profiles() {
        assert_eq!(Profile::for_version("18.16.1"), Profile::Portable);
        assert_eq!(Profile::for_version("21.8.15.7"), Profile::Portable);
        assert_eq!(Profile::for_version("22.3.1"), Profile::Modern);
        assert_eq!(Profile::for_version("26.9.2.1"), Profile::Modern);
        assert_eq!(Profile::for_version("garbage"), Profile::Portable);
        assert_eq!(
            Profile::of_time_type("DateTime64(3, 'UTC')"),
            Profile::Modern
        );
        assert_eq!(Profile::of_time_type("DateTime('UTC')"), Profile::Portable);
    }

    #[test]
    fn every_arrow_column_has_a_clickhouse_column() {
        for table in Table::ALL {
            for profile in [Profile::Portable, Profile::Modern] {
                let cols = columns(table, profile).unwrap();
                let maps = map_columns(table).len();
                let extra = if profile == Profile::Portable {
                    maps
                } else {
                    0
                };
                assert_eq!(cols.len(), arrow_schema(table).fields().len() + extra + 2);
                let ddl = create_table("vedette", table, profile, 30).unwrap();
                assert!(ddl.contains(table.name()), "{ddl}");
                assert_eq!(ddl.contains("TTL"), profile == Profile::Modern);
            }
        }
    }

    #[test]
    fn portable_maps_are_nested_arrays() {
        let ddl = create_table("vedette", Table::Events, Profile::Portable, 30).unwrap();
        assert!(
            ddl.contains("`fields` Nested(key String, value String)"),
            "{ddl}"
        );
        let cols = columns(Table::Events, Profile::Portable).unwrap();
        assert!(cols.iter().any(|c| c.name == "fields.key"));
        assert_eq!(quote("a`b"), "`a\\`b`");
    }
}
