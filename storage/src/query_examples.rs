//! The example queries a SOC runs (`docs/queries.md`), in each store's dialect: shown
//! to users, run by the tests on both stores and timed by the store benchmark.

/// Which store's SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// DataFusion (the Parquet store).
    DataFusion,
    /// ClickHouse.
    ClickHouse,
}

/// The text of `docs/queries.md`.
pub const QUERIES_MD: &str = include_str!("../../docs/queries.md");

/// The queries of a `queries.md`-style text in `dialect`: every ```` ```sql ```` block,
/// except that a ```` ```sql clickhouse ```` block right after one replaces it on
/// ClickHouse.
pub fn query_examples(markdown: &str, dialect: Dialect) -> Vec<String> {
    titled_query_examples(markdown, dialect)
        .into_iter()
        .map(|(_, sql)| sql)
        .collect()
}

/// [`query_examples`] with each query's title: the `##` heading above it.
pub fn titled_query_examples(markdown: &str, dialect: Dialect) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut title = String::new();
    let mut current: Option<(bool, String)> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim()) {
            (None, "```sql") => current = Some((false, String::new())),
            (None, "```sql clickhouse") => current = Some((true, String::new())),
            (Some(_), "```") => {
                if let Some((clickhouse_only, block)) = current.take() {
                    match (clickhouse_only, dialect, out.last_mut()) {
                        (false, _, _) => out.push((title.clone(), block)),
                        (true, Dialect::ClickHouse, Some(last)) => last.1 = block,
                        (true, Dialect::ClickHouse, None) => out.push((title.clone(), block)),
                        (true, Dialect::DataFusion, _) => {}
                    }
                }
            }
            (Some((_, block)), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, heading) if heading.starts_with("## ") => {
                title = heading.trim_start_matches('#').trim().to_string();
            }
            (None, _) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_the_heading_above() {
        let md = "## One\n```sql\nSELECT 1\n```\n```sql clickhouse\nSELECT 2\n```\n## Two\n```sql\nSELECT 3\n```\n";
        assert_eq!(
            titled_query_examples(md, Dialect::ClickHouse),
            [
                ("One".to_string(), "SELECT 2\n".to_string()),
                ("Two".to_string(), "SELECT 3\n".to_string())
            ]
        );
    }

    #[test]
    fn clickhouse_blocks_replace_the_one_before() {
        let md = "# x\n```sql\nSELECT 1\n```\n```sql clickhouse\nSELECT 2\n```\ntext\n```sql\nSELECT 3\n```\n";
        assert_eq!(
            query_examples(md, Dialect::DataFusion),
            ["SELECT 1\n", "SELECT 3\n"]
        );
        assert_eq!(
            query_examples(md, Dialect::ClickHouse),
            ["SELECT 2\n", "SELECT 3\n"]
        );
    }

    #[test]
    fn the_documented_examples_are_found() {
        assert!(query_examples(QUERIES_MD, Dialect::DataFusion).len() >= 7);
        assert_eq!(
            query_examples(QUERIES_MD, Dialect::DataFusion).len(),
            query_examples(QUERIES_MD, Dialect::ClickHouse).len()
        );
    }
}
