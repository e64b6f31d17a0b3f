//! [`AlertDedup`]: alerts of the same tenant, rule and dedup key (the rule and its
//! entity) within a window are folded into the first one.
//!
//! The first alert of a key opens a window and goes on at once (no delay for the
//! analyst); repeats within the window are held back and counted. When the window
//! closes, a [`DedupSummary`] says how many were folded into the kept alert, between
//! which times; `vedette run` writes it to the audit log, and the alerts API shows it as
//! the kept alert's `suppressed` count. The alert that opened a window passes again if
//! it comes again (a replay after a restart has the same alert id).

use std::collections::{HashMap, VecDeque};

use vedette_core::alert::Alert;

/// Settings of [`AlertDedup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupConfig {
    /// Window length in milliseconds; 0 turns dedup off.
    pub window_ms: i64,
    /// Open windows kept at most; the oldest closes early past it.
    pub max_keys: usize,
}

/// (tenant, rule id, dedup key)
type Key = (String, String, String);

/// One open window.
#[derive(Debug, Clone)]
struct Window {
    kept_id: String,
    opened_ms: i64,
    first_ms: i64,
    last_ms: i64,
    suppressed: u64,
}

/// Alerts folded into a kept one over a closed window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupSummary {
    /// Id of the alert that went on.
    pub kept_id: String,
    /// Tenant.
    pub tenant: String,
    /// Rule id.
    pub rule_id: String,
    /// Dedup key.
    pub dedup_key: String,
    /// Alerts folded into it.
    pub suppressed: u64,
    /// Earliest time (of the events) among the folded alerts and the kept one.
    pub first_ms: i64,
    /// Latest such time.
    pub last_ms: i64,
}

/// What became of one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// It goes on.
    Kept,
    /// Folded into the alert of this id.
    Suppressed {
        /// The kept alert.
        kept_id: String,
    },
}

/// The dedup state.
#[derive(Debug)]
pub struct AlertDedup {
    config: DedupConfig,
    open: HashMap<Key, Window>,
    /// Windows in opening order (an entry is stale when its key reopened since).
    order: VecDeque<(i64, Key)>,
    closed: Vec<DedupSummary>,
    evicted: u64,
}

impl AlertDedup {
    /// Empty state.
    pub fn new(config: DedupConfig) -> Self {
        Self {
            config,
            open: HashMap::new(),
            order: VecDeque::new(),
            closed: Vec::new(),
            evicted: 0,
        }
    }

    /// Decides about `alert` at time `now_ms`.
    pub fn admit(&mut self, alert: &Alert, now_ms: i64) -> Admission {
        if self.config.window_ms <= 0 {
            return Admission::Kept;
        }
        let key = (
            alert.tenant.clone(),
            alert.rule_id.clone(),
            alert.dedup_key.clone(),
        );
        if let Some(w) = self.open.get_mut(&key) {
            if now_ms - w.opened_ms < self.config.window_ms {
                if w.kept_id == alert.id {
                    return Admission::Kept;
                }
                w.suppressed += 1;
                w.first_ms = w.first_ms.min(alert.time_ms);
                w.last_ms = w.last_ms.max(alert.time_ms);
                return Admission::Suppressed {
                    kept_id: w.kept_id.clone(),
                };
            }
            self.close(&key);
        }
        self.open.insert(
            key.clone(),
            Window {
                kept_id: alert.id.clone(),
                opened_ms: now_ms,
                first_ms: alert.time_ms,
                last_ms: alert.time_ms,
                suppressed: 0,
            },
        );
        self.order.push_back((now_ms, key));
        while self.open.len() > self.config.max_keys.max(1) {
            let Some((opened, key)) = self.order.pop_front() else {
                break;
            };
            if self.open.get(&key).is_some_and(|w| w.opened_ms == opened) {
                self.close(&key);
                self.evicted += 1;
            }
        }
        Admission::Kept
    }

    /// Keeps the alerts that go on, in order; returns them and how many were folded.
    pub fn filter(&mut self, alerts: Vec<Alert>, now_ms: i64) -> (Vec<Alert>, u64) {
        let mut folded = 0;
        let kept = alerts
            .into_iter()
            .filter(|a| match self.admit(a, now_ms) {
                Admission::Kept => true,
                Admission::Suppressed { .. } => {
                    folded += 1;
                    false
                }
            })
            .collect();
        (kept, folded)
    }

    fn close(&mut self, key: &Key) {
        if let Some(w) = self.open.remove(key) {
            if w.suppressed > 0 {
                self.closed.push(DedupSummary {
                    kept_id: w.kept_id,
                    tenant: key.0.clone(),
                    rule_id: key.1.clone(),
                    dedup_key: key.2.clone(),
                    suppressed: w.suppressed,
                    first_ms: w.first_ms,
                    last_ms: w.last_ms,
                });
            }
        }
    }

    /// Closes the windows that ended by `now_ms` and returns the summaries of every
    /// window closed since the last call that folded at least one alert.
    pub fn close_due(&mut self, now_ms: i64) -> Vec<DedupSummary> {
        while let Some((opened, _)) = self.order.front() {
            if now_ms - opened < self.config.window_ms {
                break;
            }
            let Some((opened, key)) = self.order.pop_front() else {
                break;
            };
            if self.open.get(&key).is_some_and(|w| w.opened_ms == opened) {
                self.close(&key);
            }
        }
        std::mem::take(&mut self.closed)
    }

    /// Closes every window (at shutdown, or the end of a replay).
    pub fn close_all(&mut self) -> Vec<DedupSummary> {
        let keys: Vec<Key> = self.open.keys().cloned().collect();
        for key in keys {
            self.close(&key);
        }
        self.order.clear();
        std::mem::take(&mut self.closed)
    }

    /// Windows open now.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }

    /// Windows closed early because `max_keys` was reached.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vedette_core::alert::{DetectionKind, Level};

    pub(crate) fn alert(id: &str, rule: &str, host: &str, time_ms: i64) -> Alert {
        Alert {
            id: id.into(),
            time_ms,
            tenant: "acme".into(),
            kind: DetectionKind::Sigma,
            rule_id: rule.into(),
            rule_title: format!("rule {rule}"),
            rule_author: None,
            level: Level::High,
            tags: vec!["attack.t1059.001".into()],
            host: Some(host.into()),
            user: None,
            event_ids: vec![format!("e-{id}")],
            matched: Default::default(),
            dedup_key: format!("{rule}|{host}"),
        }
    }

    #[test]
    fn repeats_fold_into_the_first_until_the_window_ends() {
        let mut d = AlertDedup::new(DedupConfig {
            window_ms: 1000,
            max_keys: 100,
        });
        let burst = vec![
            alert("a1", "r", "h1", 10),
            alert("a2", "r", "h1", 12),
            alert("b1", "r", "h2", 11),
            alert("a3", "r", "h1", 5),
            alert("c1", "q", "h1", 13),
        ];
        let (kept, folded) = d.filter(burst, 0);
        let ids: Vec<&str> = kept.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["a1", "b1", "c1"]);
        assert_eq!(folded, 2);
        assert_eq!(
            d.admit(&alert("a1", "r", "h1", 10), 500),
            Admission::Kept,
            "a replay of the kept alert passes"
        );
        assert!(d.close_due(999).is_empty());
        let summaries = d.close_due(1000);
        assert_eq!(
            summaries,
            [DedupSummary {
                kept_id: "a1".into(),
                tenant: "acme".into(),
                rule_id: "r".into(),
                dedup_key: "r|h1".into(),
                suppressed: 2,
                first_ms: 5,
                last_ms: 12,
            }]
        );
        assert_eq!(d.open_windows(), 0);
        assert_eq!(
            d.admit(&alert("a4", "r", "h1", 2000), 1001),
            Admission::Kept,
            "a new window"
        );
    }

    #[test]
    fn a_full_table_closes_its_oldest_window_first() {
        let mut d = AlertDedup::new(DedupConfig {
            window_ms: 10_000,
            max_keys: 2,
        });
        d.admit(&alert("a", "r", "h1", 0), 0);
        d.admit(&alert("a-again", "r", "h1", 0), 1);
        d.admit(&alert("b", "r", "h2", 0), 2);
        d.admit(&alert("c", "r", "h3", 0), 3);
        assert_eq!(d.open_windows(), 2);
        assert_eq!(d.evicted(), 1);
        let closed = d.close_due(4);
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].kept_id.as_str(), closed[0].suppressed), ("a", 1));
        assert_eq!(
            d.admit(&alert("a-later", "r", "h1", 0), 5),
            Admission::Kept,
            "the evicted key opens again"
        );
        assert_eq!(d.close_all().len(), 0);
    }

    #[test]
    fn a_zero_window_keeps_everything() {
        let mut d = AlertDedup::new(DedupConfig {
            window_ms: 0,
            max_keys: 10,
        });
        let (kept, folded) = d.filter(vec![alert("a", "r", "h", 0), alert("b", "r", "h", 0)], 0);
        assert_eq!((kept.len(), folded), (2, 0));
    }
}
