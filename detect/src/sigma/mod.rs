//! The Sigma engine: rules compiled once into a columnar plan, evaluated on Arrow
//! event batches.
//!
//! Parsing uses `rsigma-parser` (MIT): it gives a typed AST for detection rules,
//! correlation rules and filters, including condition expressions, which a compiler
//! needs; `sigma-rust` only offers a per-event matcher with no AST, correlations or
//! pipelines. Evaluation is ours:
//!
//! 1. **Routing** ([`logsource`]): each rule is bound to the rows its `logsource`
//!    means (dataset, Windows channel and event id), with per-route field renames.
//! 2. **One pass per field** ([`field_matcher`]): the tests of all rules on a field
//!    are matched together (one Aho-Corasick automaton for literals, a regex set for
//!    `re`, parsed numbers and addresses), giving one row bitmap per distinct test.
//! 3. **Conditions on bitmaps** ([`expr`]): each rule's condition combines its tests'
//!    bitmaps; a rule whose tests hit nothing costs a few pointer checks.
//!
//! [`SigmaDetector`] implements `vedette_core::traits::Detector`.

mod batch_fields;
mod bitset;
mod case_group;
pub mod compile;
pub mod correlation;
mod detector;
mod evaluate;
mod expr;
mod field_matcher;
mod filters;
mod glob;
pub mod harness;
mod literal_index;
pub mod load;
pub mod logsource;
mod matcher_build;
mod numbering;
pub mod pipeline;
mod rule_ir;
pub mod rule_meta;
pub mod test_spec;
mod value_pieces;

pub use compile::{compile, CompileOptions, CompileOutcome, Plan};
pub use correlation::{
    compile_correlations, CorrelationAlert, CorrelationEngine, CorrelationLimits, CorrelationSet,
};
pub use detector::SigmaDetector;
pub use evaluate::RuleHit;
pub use load::{load_rules, FileReport, LoadedRules};
pub use logsource::{LogsourceKey, LogsourceMap, Route, Routing};
pub use pipeline::Pipeline;
pub use rule_meta::RuleMeta;
pub use test_spec::ExpandValues;

#[cfg(test)]
mod tests;
