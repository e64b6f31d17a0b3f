//! What an alert needs to know about the rule that raised it.

use rsigma_parser::SigmaRule;
use vedette_core::alert::Level;

/// Identity and metadata of a compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMeta {
    /// Rule `id` (the title when the rule has none).
    pub id: String,
    /// Rule `title`.
    pub title: String,
    /// Rule `name`, by which correlation rules may refer to it.
    pub name: Option<String>,
    /// Rule `author`, kept in alerts as the Detection Rule License asks.
    pub author: Option<String>,
    /// Rule `level` (medium when absent).
    pub level: Level,
    /// Rule `tags`.
    pub tags: Vec<String>,
    /// Where the rule was read from.
    pub source: String,
}

impl RuleMeta {
    /// The metadata of `rule`, read from `source`.
    pub fn of(rule: &SigmaRule, source: String) -> Self {
        let level = rule
            .level
            .as_ref()
            .and_then(|l| l.as_str().parse().ok())
            .unwrap_or(Level::Medium);
        Self {
            id: rule.id.clone().unwrap_or_else(|| rule.title.clone()),
            title: rule.title.clone(),
            name: rule.name.clone(),
            author: rule.author.clone(),
            level,
            tags: rule.tags.clone(),
            source,
        }
    }
}
