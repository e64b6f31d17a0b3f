//! Sigma correlation rules (`event_count`, `value_count`, `temporal`,
//! `temporal_ordered`, `value_sum`, `value_avg`, `value_median`, `value_percentile`),
//! evaluated in **event time** over the hits of the detection rules they name.
//!
//! Semantics, chosen so that the same input gives the same alerts in any arrival
//! order within the allowed lateness:
//!
//! - The **watermark** is the largest event time seen minus the allowed lateness. A
//!   hit older than the watermark is late: it is dropped and counted.
//! - Per correlation and group (the `group-by` values, through `aliases`), hits are
//!   kept sorted by (time, rule, value, event id). Each hit time `t` at or below the
//!   watermark is evaluated once, over the window `(t - timespan, t]`; ties at `t`
//!   are all in the window.
//! - When the condition holds, one alert is raised at `t` and the group's hits up to
//!   `t` are consumed, so a burst raises one alert per threshold crossing, not one
//!   per event.
//! - State is bounded: groups per correlation and hits per group are capped (the
//!   oldest go first, counted), and hits that no future window can reach are pruned
//!   as the watermark moves. [`CorrelationEngine::checkpoint`] and
//!   [`CorrelationEngine::restore`] keep open windows across a restart.
//!
//! Correlations of correlations (chaining) are reported unsupported.

mod alert;
mod compile;
mod engine;
mod window;

pub use compile::{compile_correlations, CorrelationSet};
pub use engine::{CorrelationAlert, CorrelationEngine, CorrelationLimits, CorrelationStats};

#[cfg(test)]
mod tests;
