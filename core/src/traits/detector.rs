//! `Detector`: events in, alerts out.

use crate::alert::Alert;
use crate::batch::EventBatch;
use crate::error::CoreError;

/// A stateless detector: a batch in, the alerts it raises out.
///
/// Synchronous and `&self`: detectors run on a rayon pool behind a bounded channel,
/// never on async runtime threads. Stateful correlation is a separate type.
pub trait Detector: Send + Sync {
    /// Name of the detector, used in metrics.
    fn name(&self) -> &str;

    /// Evaluates every event of `batch`.
    fn detect(&self, batch: &EventBatch) -> Result<Vec<Alert>, CoreError>;
}
