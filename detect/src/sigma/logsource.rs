//! Log-source routing: which events a rule sees, from its `logsource`.
//!
//! The map (bundled as `rules/logsources/sigma.yml`) lists, for each Sigma
//! product/category/service, the rows it means: event datasets, Windows channels and
//! event ids, extra field conditions, and field renames for that route. A rule is
//! routed to every entry whose `logsource` equals its own; a rule whose category or
//! service the map does not know sees every event of its product; a rule whose
//! product the map does not know (or, with no product, its category or service) sees
//! only the events whose dataset bears that name (`cisco`, `cisco.*`), as the spec
//! means a log source to restrict a rule, not to widen it; a rule with an empty log
//! source sees every event. The fallbacks are reported by `vedette rules check`, and an
//! entry with an empty `when` in the map sends a log source to every event.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use rsigma_parser::LogSource;
use serde::Deserialize;

use crate::error::DetectError;

/// The file format of the map.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    logsources: Vec<EntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    logsource: KeyFile,
    #[serde(default)]
    when: WhenFile,
    #[serde(default)]
    conditions: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    field_mappings: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    product: Option<String>,
    category: Option<String>,
    service: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhenFile {
    #[serde(default)]
    dataset: OneOrMany,
    #[serde(default)]
    channel: OneOrMany,
    #[serde(default)]
    event_id: OneOrMany,
}

/// A YAML scalar or list of scalars, as strings.
#[derive(Debug, Default, Deserialize)]
#[serde(from = "yaml_serde::Value")]
struct OneOrMany(Vec<String>);

impl From<yaml_serde::Value> for OneOrMany {
    fn from(v: yaml_serde::Value) -> Self {
        fn scalar(v: &yaml_serde::Value) -> Option<String> {
            match v {
                yaml_serde::Value::String(s) => Some(s.clone()),
                yaml_serde::Value::Number(n) => Some(n.to_string()),
                yaml_serde::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        }
        match &v {
            yaml_serde::Value::Sequence(items) => {
                OneOrMany(items.iter().filter_map(scalar).collect())
            }
            other => OneOrMany(scalar(other).into_iter().collect()),
        }
    }
}

/// A product/category/service triple, lowercased.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LogsourceKey {
    /// Sigma `product`.
    pub product: Option<String>,
    /// Sigma `category`.
    pub category: Option<String>,
    /// Sigma `service`.
    pub service: Option<String>,
}

impl LogsourceKey {
    /// The key of a rule's log source.
    pub fn of(ls: &LogSource) -> Self {
        let low = |s: &Option<String>| s.as_ref().map(|v| v.to_ascii_lowercase());
        Self {
            product: low(&ls.product),
            category: low(&ls.category),
            service: low(&ls.service),
        }
    }
}

impl std::fmt::Display for LogsourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (k, v) in [
            ("product", &self.product),
            ("category", &self.category),
            ("service", &self.service),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}: {v}"));
            }
        }
        write!(f, "{{{}}}", parts.join(", "))
    }
}

/// Whether a rule's log source has every value given (case-insensitive); `None` asks
/// for nothing. Pipelines' `rule_conditions` and filters' `logsource` select rules so.
pub(crate) fn logsource_has(
    product: &Option<String>,
    category: &Option<String>,
    service: &Option<String>,
    rule: &LogSource,
) -> bool {
    let eq = |want: &Option<String>, have: &Option<String>| match want {
        None => true,
        Some(w) => have.as_ref().is_some_and(|h| h.eq_ignore_ascii_case(w)),
    };
    eq(product, &rule.product) && eq(category, &rule.category) && eq(service, &rule.service)
}

/// The rows one route selects, and how rule fields are named on them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Route {
    /// Accepted `event.dataset` values; a trailing `*` makes a prefix. Empty: any.
    pub datasets: Vec<String>,
    /// Accepted Windows channels (case-insensitive). Empty: any.
    pub channels: Vec<String>,
    /// Accepted event codes (`event.code`). Empty: any.
    pub event_ids: Vec<String>,
    /// Extra field equality conditions ANDed into the rule.
    pub conditions: Vec<(String, Vec<String>)>,
    /// Rule field name to event field name, for this route.
    pub field_mappings: HashMap<String, String>,
}

impl Route {
    /// Whether a row with these routing values belongs to the route.
    pub fn accepts(&self, dataset: &str, channel: Option<&str>, event_code: Option<&str>) -> bool {
        let dataset_ok = self.datasets.is_empty()
            || self.datasets.iter().any(|d| match d.strip_suffix('*') {
                Some(prefix) => dataset.starts_with(prefix),
                None => d == dataset,
            });
        let channel_ok = self.channels.is_empty()
            || channel.is_some_and(|c| self.channels.iter().any(|x| x.eq_ignore_ascii_case(c)));
        let code_ok = self.event_ids.is_empty()
            || event_code.is_some_and(|c| self.event_ids.iter().any(|x| x == c));
        dataset_ok && channel_ok && code_ok
    }

    /// The route that accepts every row.
    pub fn everything() -> Self {
        Self::default()
    }

    /// The route of the datasets that bear `name`: `name` itself and `name.*`.
    pub fn named(name: &str) -> Self {
        Self {
            datasets: vec![name.to_string(), format!("{name}.*")],
            ..Self::default()
        }
    }
}

/// The route a rule is compiled for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteRef {
    /// An entry of the map, by index.
    Entry(usize),
    /// The datasets bearing a name ([`Route::named`]).
    Named(String),
    /// Every row.
    Everything,
}

impl RouteRef {
    /// The route itself: borrowed from the map for its entries.
    pub fn resolve<'m>(&self, map: &'m LogsourceMap) -> Cow<'m, Route> {
        match self {
            RouteRef::Entry(e) => map
                .route(*e)
                .map_or_else(|| Cow::Owned(Route::everything()), Cow::Borrowed),
            RouteRef::Named(name) => Cow::Owned(Route::named(name)),
            RouteRef::Everything => Cow::Owned(Route::everything()),
        }
    }
}

/// How a rule was routed.
#[derive(Debug, Clone, PartialEq)]
pub enum Routing {
    /// By entries of the map for its exact log source.
    Mapped(Vec<usize>),
    /// Its category/service is not in the map: every event of its product.
    ProductOnly(Vec<usize>),
    /// Its log source is not in the map at all: the events whose dataset bears its
    /// product's name (its category's or service's without a product).
    ByName(String),
    /// Its log source is empty: every event.
    Everything,
}

impl Routing {
    /// The routes a rule so routed is compiled for.
    pub fn routes(&self) -> Vec<RouteRef> {
        match self {
            Routing::Mapped(e) | Routing::ProductOnly(e) => {
                e.iter().copied().map(RouteRef::Entry).collect()
            }
            Routing::ByName(name) => vec![RouteRef::Named(name.clone())],
            Routing::Everything => vec![RouteRef::Everything],
        }
    }
}

/// The log-source map.
#[derive(Debug, Clone, Default)]
pub struct LogsourceMap {
    entries: Vec<(LogsourceKey, Route)>,
}

impl LogsourceMap {
    /// Parses a map file.
    pub fn from_yaml(text: &str) -> Result<Self, DetectError> {
        let file: MapFile = yaml_serde::from_str(text).map_err(|e| DetectError::Invalid {
            what: "log-source map".into(),
            reason: e.to_string(),
        })?;
        let mut entries = Vec::with_capacity(file.logsources.len());
        for e in file.logsources {
            let low = |s: Option<String>| s.map(|v| v.to_ascii_lowercase());
            let key = LogsourceKey {
                product: low(e.logsource.product),
                category: low(e.logsource.category),
                service: low(e.logsource.service),
            };
            if key == LogsourceKey::default() {
                return Err(DetectError::Invalid {
                    what: "log-source map".into(),
                    reason: "an entry has an empty `logsource`".into(),
                });
            }
            let route = Route {
                datasets: e.when.dataset.0,
                channels: e.when.channel.0,
                event_ids: e.when.event_id.0,
                conditions: e.conditions.into_iter().map(|(k, v)| (k, v.0)).collect(),
                field_mappings: e.field_mappings.into_iter().collect(),
            };
            entries.push((key, route));
        }
        Ok(Self { entries })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry: the log source it names and its route.
    pub fn entries(&self) -> impl Iterator<Item = (&LogsourceKey, &Route)> {
        self.entries.iter().map(|(k, r)| (k, r))
    }

    /// The route of entry `index`.
    pub fn route(&self, index: usize) -> Option<&Route> {
        self.entries.get(index).map(|(_, r)| r)
    }

    /// Routes a rule by its log source.
    pub fn routing(&self, key: &LogsourceKey) -> Routing {
        let exact: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| k == key)
            .map(|(i, _)| i)
            .collect();
        if !exact.is_empty() {
            return Routing::Mapped(exact);
        }
        if key.product.is_some() {
            let product_only = LogsourceKey {
                product: key.product.clone(),
                category: None,
                service: None,
            };
            let entries: Vec<usize> = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| *k == product_only)
                .map(|(i, _)| i)
                .collect();
            if !entries.is_empty() {
                return Routing::ProductOnly(entries);
            }
        }
        match key
            .product
            .as_ref()
            .or(key.category.as_ref())
            .or(key.service.as_ref())
        {
            Some(name) => Routing::ByName(name.clone()),
            None => Routing::Everything,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = r#"
logsources:
  - logsource: {product: windows, category: process_creation}
    when: {channel: [Microsoft-Windows-Sysmon/Operational], event_id: [1]}
  - logsource: {product: windows, category: process_creation}
    when: {channel: Security, event_id: 4688}
    field_mappings: {Image: NewProcessName}
  - logsource: {product: windows}
    when: {dataset: "windows.*"}
"#;

    fn key(p: Option<&str>, c: Option<&str>, s: Option<&str>) -> LogsourceKey {
        LogsourceKey {
            product: p.map(str::to_owned),
            category: c.map(str::to_owned),
            service: s.map(str::to_owned),
        }
    }

    #[test]
    fn routes_exact_then_product_then_by_name() {
        let map = LogsourceMap::from_yaml(MAP).unwrap();
        assert_eq!(
            map.routing(&key(Some("windows"), Some("process_creation"), None)),
            Routing::Mapped(vec![0, 1])
        );
        assert_eq!(
            map.routing(&key(Some("windows"), Some("unheard_of"), None)),
            Routing::ProductOnly(vec![2])
        );
        // An unknown product: only the datasets that bear its name.
        let cisco = map.routing(&key(Some("cisco"), Some("aaa"), None));
        assert_eq!(cisco, Routing::ByName("cisco".into()));
        let route = cisco.routes()[0].resolve(&map);
        assert!(route.accepts("cisco", None, None));
        assert!(route.accepts("cisco.ios", None, None));
        assert!(!route.accepts("ciscoish", None, None));
        assert!(!route.accepts("windows.powershell", None, None));
        // No product: its category names the datasets.
        assert_eq!(
            map.routing(&key(None, Some("proxy"), None)),
            Routing::ByName("proxy".into())
        );
        // An empty log source restricts nothing.
        assert_eq!(map.routing(&key(None, None, None)), Routing::Everything);
        let security = map.route(1).unwrap();
        assert!(security.accepts("windows.security", Some("security"), Some("4688")));
        assert!(!security.accepts("windows.security", Some("Security"), Some("4624")));
        assert_eq!(security.field_mappings["Image"], "NewProcessName");
        let windows = map.route(2).unwrap();
        assert!(windows.accepts("windows.sysmon", None, None));
        assert!(!windows.accepts("linux.auditd", None, None));
    }

    #[test]
    fn bad_map_is_an_error() {
        assert!(LogsourceMap::from_yaml("logsources: [{when: {}}]").is_err());
        assert!(LogsourceMap::from_yaml("logsources: [{logsource: {}}]").is_err());
        assert!(LogsourceMap::from_yaml("nope: 1").is_err());
    }
}
