//! [`EntityRisk`]: each alert adds risk to its host and its user over a sliding window;
//! when an entity's sum crosses the threshold, a `high-risk entity` alert names it and
//! lists the alerts that added up, so analysts see first the few entities that matter.
//!
//! An alert's risk is its level's weight (informational 1, low 5, medium 15, high 35,
//! critical 60), half as much again when a rule tag names an ATT&CK technique
//! (`attack.tNNNN`). Each rule counts once per entity within the window (its highest
//! risk, its latest time): one noisy rule cannot make an entity risky alone, distinct
//! rules do. Time is the alerts' own (their events' time), so a replay adds up the same.
//! An entity is raised once when it crosses, and again only after it fell below.
//! Risk and silence alerts add no risk.

use std::collections::{BTreeSet, HashMap, VecDeque};

use vedette_core::alert::{Alert, DetectionKind, Level};

use super::stable_id;

/// Rule id of the alerts [`EntityRisk`] raises.
pub const RISK_RULE_ID: &str = "vedette-entity-risk";
/// Most event ids a risk alert lists.
const MAX_EVENT_IDS: usize = 100;

/// Settings of [`EntityRisk`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskConfig {
    /// Window over which an entity's risk adds up, in milliseconds; 0 turns risk off.
    pub window_ms: i64,
    /// Sum at which an entity is raised.
    pub threshold: f64,
    /// Entities tracked at most; the least recently touched go first.
    pub max_entities: usize,
}

/// Whether an entity is a host or a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    /// `host.name`.
    Host,
    /// `user.name`.
    User,
}

impl EntityKind {
    /// `host` or `user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::User => "user",
        }
    }
}

/// (tenant, kind, name)
type EntityKey = (String, EntityKind, String);

/// One rule's share of an entity's risk.
#[derive(Debug, Clone)]
struct Contribution {
    rule_id: String,
    time_ms: i64,
    risk: f64,
    alert_id: String,
    event_ids: Vec<String>,
    tags: Vec<String>,
}

#[derive(Debug, Default)]
struct Entity {
    contributions: Vec<Contribution>,
    raised: bool,
    touched: u64,
}

/// The risk of one alert.
pub fn alert_risk(alert: &Alert) -> f64 {
    let weight = match alert.level {
        Level::Informational => 1.0,
        Level::Low => 5.0,
        Level::Medium => 15.0,
        Level::High => 35.0,
        Level::Critical => 60.0,
    };
    let technique = alert.tags.iter().any(|t| {
        t.strip_prefix("attack.t")
            .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
    });
    if technique {
        weight * 1.5
    } else {
        weight
    }
}

/// The risk state.
#[derive(Debug)]
pub struct EntityRisk {
    config: RiskConfig,
    entities: HashMap<EntityKey, Entity>,
    /// Touches in order (stale when the entity was touched since).
    order: VecDeque<(u64, EntityKey)>,
    clock: u64,
    evicted: u64,
}

impl EntityRisk {
    /// Empty state.
    pub fn new(config: RiskConfig) -> Self {
        Self {
            config,
            entities: HashMap::new(),
            order: VecDeque::new(),
            clock: 0,
            evicted: 0,
        }
    }

    /// Adds `alert`'s risk to its entities; returns the risk alerts it raised.
    pub fn observe(&mut self, alert: &Alert) -> Vec<Alert> {
        if self.config.window_ms <= 0
            || matches!(alert.kind, DetectionKind::Risk | DetectionKind::Silence)
        {
            return Vec::new();
        }
        let mut raised = Vec::new();
        for (kind, name) in [
            (EntityKind::Host, &alert.host),
            (EntityKind::User, &alert.user),
        ] {
            let Some(name) = name.as_deref().filter(|n| !n.is_empty() && *n != "-") else {
                continue;
            };
            let key = (alert.tenant.clone(), kind, name.to_string());
            if let Some(a) = self.add(key, alert) {
                raised.push(a);
            }
        }
        raised
    }

    fn add(&mut self, key: EntityKey, alert: &Alert) -> Option<Alert> {
        self.clock += 1;
        let touched = self.clock;
        let window = self.config.window_ms;
        let entity = self.entities.entry(key.clone()).or_default();
        entity.touched = touched;
        let risk = alert_risk(alert);
        match entity
            .contributions
            .iter_mut()
            .find(|c| c.rule_id == alert.rule_id)
        {
            Some(c) => {
                if alert.time_ms >= c.time_ms {
                    c.time_ms = alert.time_ms;
                    c.alert_id = alert.id.clone();
                    c.event_ids = alert.event_ids.clone();
                }
                c.risk = c.risk.max(risk);
            }
            None => entity.contributions.push(Contribution {
                rule_id: alert.rule_id.clone(),
                time_ms: alert.time_ms,
                risk,
                alert_id: alert.id.clone(),
                event_ids: alert.event_ids.clone(),
                tags: alert.tags.clone(),
            }),
        }
        let latest = entity
            .contributions
            .iter()
            .map(|c| c.time_ms)
            .max()
            .unwrap_or(alert.time_ms);
        entity.contributions.retain(|c| latest - c.time_ms < window);
        let total: f64 = entity.contributions.iter().map(|c| c.risk).sum();
        let out = if total >= self.config.threshold {
            if entity.raised {
                None
            } else {
                entity.raised = true;
                Some(risk_alert(&key, entity, total, self.config.threshold))
            }
        } else {
            entity.raised = false;
            None
        };
        self.order.push_back((touched, key));
        self.evict();
        out
    }

    fn evict(&mut self) {
        while self.entities.len() > self.config.max_entities.max(1) {
            let Some((touched, key)) = self.order.pop_front() else {
                break;
            };
            if self
                .entities
                .get(&key)
                .is_some_and(|e| e.touched == touched)
            {
                self.entities.remove(&key);
                self.evicted += 1;
            }
        }
        // Stale touches would make `order` grow without bound.
        if self.order.len() > 4 * self.entities.len() + 1024 {
            let entities = &self.entities;
            self.order
                .retain(|(t, k)| entities.get(k).is_some_and(|e| e.touched == *t));
        }
    }

    /// The current risk of an entity.
    pub fn risk_of(&self, tenant: &str, kind: EntityKind, name: &str) -> f64 {
        self.entities
            .get(&(tenant.to_string(), kind, name.to_string()))
            .map_or(0.0, |e| e.contributions.iter().map(|c| c.risk).sum())
    }

    /// Entities tracked now.
    pub fn entities(&self) -> usize {
        self.entities.len()
    }

    /// Entities forgotten because `max_entities` was reached.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// The alert raised for `key`.
fn risk_alert(key: &EntityKey, entity: &Entity, total: f64, threshold: f64) -> Alert {
    let (tenant, kind, name) = key;
    let mut contributions = entity.contributions.clone();
    contributions.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
    let alert_ids: Vec<&str> = contributions.iter().map(|c| c.alert_id.as_str()).collect();
    let mut id_parts = vec![tenant.as_str(), kind.as_str(), name.as_str()];
    id_parts.extend(alert_ids.iter().copied());
    let tags: BTreeSet<&str> = contributions
        .iter()
        .flat_map(|c| c.tags.iter().map(String::as_str))
        .filter(|t| t.starts_with("attack."))
        .collect();
    let mut event_ids: Vec<String> = contributions
        .iter()
        .flat_map(|c| c.event_ids.iter().cloned())
        .collect();
    event_ids.truncate(MAX_EVENT_IDS);
    let matched = [
        ("entity.kind", kind.as_str().to_string()),
        ("entity.name", name.clone()),
        ("risk.score", format!("{total:.0}")),
        ("risk.threshold", format!("{threshold:.0}")),
        ("risk.alerts", alert_ids.join(",")),
        (
            "risk.rules",
            contributions
                .iter()
                .map(|c| c.rule_id.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Alert {
        id: stable_id(&id_parts),
        time_ms: contributions.iter().map(|c| c.time_ms).max().unwrap_or(0),
        tenant: tenant.clone(),
        kind: DetectionKind::Risk,
        rule_id: RISK_RULE_ID.into(),
        rule_title: format!("High-risk {}", kind.as_str()),
        rule_author: None,
        level: if total >= 2.0 * threshold {
            Level::Critical
        } else {
            Level::High
        },
        tags: tags.into_iter().map(str::to_string).collect(),
        host: (*kind == EntityKind::Host).then(|| name.clone()),
        user: (*kind == EntityKind::User).then(|| name.clone()),
        event_ids,
        matched,
        dedup_key: format!("{RISK_RULE_ID}|{}|{name}", kind.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::dedup::tests::alert;

    const HOUR: i64 = 3_600_000;

    fn config() -> RiskConfig {
        RiskConfig {
            window_ms: 24 * HOUR,
            threshold: 150.0,
            max_entities: 1000,
        }
    }

    #[test]
    fn distinct_rules_add_up_and_one_noisy_rule_does_not() {
        let mut r = EntityRisk::new(config());
        for i in 0..50 {
            assert!(r
                .observe(&alert(&format!("n{i}"), "noisy", "h1", i))
                .is_empty());
        }
        assert_eq!(r.risk_of("acme", EntityKind::Host, "h1"), 52.5);
        assert!(r.observe(&alert("x", "other", "h1", 100)).is_empty());
        let raised = r.observe(&alert("y", "third", "h1", 200));
        assert_eq!(raised.len(), 1);
        let a = &raised[0];
        assert_eq!(a.kind, DetectionKind::Risk);
        assert_eq!(a.host.as_deref(), Some("h1"));
        assert_eq!(a.level, Level::High);
        assert_eq!(a.matched["risk.score"], "158");
        assert_eq!(a.matched["risk.rules"], "noisy,other,third");
        assert_eq!(a.matched["risk.alerts"], "n49,x,y");
        assert_eq!(a.event_ids, ["e-n49", "e-x", "e-y"]);
        assert_eq!(a.tags, ["attack.t1059.001"]);
        assert!(
            r.observe(&alert("z", "fourth", "h1", 300)).is_empty(),
            "raised once"
        );
        assert!(r.observe(&raised[0]).is_empty(), "risk alerts add no risk");
        // The same alerts replayed give the same id.
        let mut again = EntityRisk::new(config());
        for (id, rule, t) in [
            ("n49", "noisy", 49),
            ("x", "other", 100),
            ("y", "third", 200),
        ] {
            let out = again.observe(&alert(id, rule, "h1", t));
            if id == "y" {
                assert_eq!(out[0].id, a.id);
            }
        }
    }

    #[test]
    fn risk_leaves_with_the_window_and_the_entity_can_be_raised_again() {
        let mut r = EntityRisk::new(config());
        for (i, rule) in ["a", "b"].iter().enumerate() {
            r.observe(&alert(&format!("{rule}1"), rule, "h", i as i64));
        }
        assert_eq!(r.observe(&alert("c1", "c", "h", 2)).len(), 1);
        // A day later the old alerts no longer count.
        assert!(r.observe(&alert("d1", "d", "h", 25 * HOUR)).is_empty());
        assert_eq!(r.risk_of("acme", EntityKind::Host, "h"), 52.5);
        r.observe(&alert("e1", "e", "h", 25 * HOUR + 1));
        assert_eq!(
            r.observe(&alert("f1", "f", "h", 25 * HOUR + 2)).len(),
            1,
            "raised again"
        );
    }

    #[test]
    fn hosts_and_users_are_entities_and_the_table_is_bounded() {
        let mut r = EntityRisk::new(RiskConfig {
            max_entities: 3,
            ..config()
        });
        let mut a = alert("u1", "r", "h", 0);
        a.user = Some("alice".into());
        r.observe(&a);
        assert_eq!(r.risk_of("acme", EntityKind::User, "alice"), 52.5);
        for h in 0..10 {
            r.observe(&alert(&format!("x{h}"), "r", &format!("host-{h}"), 1));
        }
        assert_eq!(r.entities(), 3);
        assert_eq!(r.evicted(), 9);
        assert_eq!(r.risk_of("acme", EntityKind::User, "alice"), 0.0);
        assert_eq!(
            alert_risk(&Alert {
                tags: vec![],
                ..alert("a", "r", "h", 0)
            }),
            35.0
        );
    }
}
