//! What every analyst query goes through, on either store: read-only SQL (DDL, DML and
//! other statements refused with a clear error), a row limit, and a time limit.

use std::time::Duration;

use arrow::array::RecordBatch;
use futures::stream::{self, BoxStream, StreamExt};
use vedette_core::traits::RecordBatchStream;
use vedette_core::CoreError;

/// Bounds of one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Rows returned at most; the rest is cut off (with a warning in the log).
    pub max_rows: usize,
    /// Time allowed from the first result poll to the last.
    pub timeout: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A stream of results cut at `limits.max_rows` rows and failing once `limits.timeout`
/// has passed.
pub fn bounded(
    inner: BoxStream<'static, Result<RecordBatch, CoreError>>,
    limits: QueryLimits,
) -> RecordBatchStream {
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let state = (inner, limits.max_rows, false);
    stream::unfold(state, move |(mut inner, remaining, done)| async move {
        if done {
            return None;
        }
        if remaining == 0 {
            tracing::warn!(
                max_rows = limits.max_rows,
                "query results cut at the row limit"
            );
            return None;
        }
        match tokio::time::timeout_at(deadline, inner.next()).await {
            Err(_) => Some((
                Err(CoreError::BadInput(format!(
                    "query exceeded its time limit of {} s",
                    limits.timeout.as_secs()
                ))),
                (inner, 0, true),
            )),
            Ok(None) => None,
            Ok(Some(Err(e))) => Some((Err(e), (inner, 0, true))),
            Ok(Some(Ok(batch))) => {
                let batch = if batch.num_rows() > remaining {
                    batch.slice(0, remaining)
                } else {
                    batch
                };
                let left = remaining - batch.num_rows();
                Some((Ok(batch), (inner, left, false)))
            }
        }
    })
    // Fused: polling after the end answers the end again instead of panicking.
    .fuse()
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap()
    }

    #[tokio::test]
    async fn rows_are_cut_at_the_limit() {
        let inner = stream::iter(vec![Ok(batch(3)), Ok(batch(3)), Ok(batch(3))]).boxed();
        let limits = QueryLimits {
            max_rows: 5,
            timeout: Duration::from_secs(5),
        };
        let out: Vec<_> = bounded(inner, limits).collect().await;
        let rows: usize = out.iter().map(|b| b.as_ref().unwrap().num_rows()).sum();
        assert_eq!(rows, 5);
    }

    #[tokio::test]
    async fn a_slow_query_times_out() {
        let inner = stream::pending().boxed();
        let limits = QueryLimits {
            max_rows: 5,
            timeout: Duration::from_millis(20),
        };
        let out: Vec<_> = bounded(inner, limits).collect().await;
        assert_eq!(out.len(), 1);
        let err = out[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("time limit"), "{err}");
    }
}
