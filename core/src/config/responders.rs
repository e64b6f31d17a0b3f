//! `[[responders]]`: webhooks that receive alerts, each with its filter, payload form,
//! signing secret and retry policy.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Level};

/// One webhook responder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponderConfig {
    /// Name, unique among responders: in metrics, audit records and idempotency keys.
    pub name: String,
    /// Where alerts are POSTed: `https://…` (or `http://…` with `insecure_http`).
    pub url: String,
    /// Environment variable holding the HMAC-SHA256 signing secret (at least 16
    /// bytes). Required: the secret never lives in the config file.
    pub secret_env: String,
    /// Payload form. Default: `generic`.
    #[serde(default)]
    pub template: PayloadTemplate,
    /// Only alerts of this level or above. Default: every level.
    #[serde(default)]
    pub min_level: Option<Level>,
    /// Only alerts carrying at least one of these tags (e.g. `attack.t1059.001`).
    /// Default: any tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only alerts of these rule ids. Default: any rule.
    #[serde(default)]
    pub rule_ids: Vec<String>,
    /// Only alerts of this tenant. Default: every tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Attempts before a delivery goes to the dead letters. Default: 8.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay in milliseconds, doubled at each attempt (with jitter).
    /// Default: 1000.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Longest retry delay in milliseconds. Default: 300000 (5 minutes).
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Time allowed for one attempt, in milliseconds. Default: 10000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Deliveries in flight to this responder at once. Default: 8.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// PEM file of CA certificates trusted besides the public roots (a private PKI).
    /// Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow a plain `http://` URL (test receivers, a sidecar on loopback). Default:
    /// false.
    #[serde(default)]
    pub insecure_http: bool,
}

fn default_max_attempts() -> u32 {
    8
}
fn default_backoff_ms() -> u64 {
    1000
}
fn default_max_backoff_ms() -> u64 {
    300_000
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_concurrency() -> usize {
    8
}

/// The body a responder receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadTemplate {
    /// `{"version":1,"responder":…,"alert":{…}}`: the whole alert as JSON.
    #[default]
    Generic,
    /// A Slack incoming-webhook message (`text` and `blocks`).
    Slack,
}

impl ResponderConfig {
    /// Whether `alert` passes this responder's filter.
    pub fn accepts(&self, alert: &Alert) -> bool {
        self.min_level.is_none_or(|min| alert.level >= min)
            && (self.tags.is_empty() || alert.tags.iter().any(|t| self.tags.contains(t)))
            && (self.rule_ids.is_empty() || self.rule_ids.contains(&alert.rule_id))
            && self.tenant.as_ref().is_none_or(|t| *t == alert.tenant)
    }

    /// Checks the values of responder `i`.
    pub(crate) fn validate(&self, i: usize) -> Result<(), String> {
        let key = |k: &str| format!("responders[{i}].{k}");
        let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.name.is_empty() || self.name.len() > 64 || !self.name.chars().all(safe) {
            return Err(format!(
                "{}: 1 to 64 letters, digits, `-`, `_` or `.`",
                key("name")
            ));
        }
        let lower = self.url.to_ascii_lowercase();
        if lower.starts_with("http://") {
            if !self.insecure_http {
                return Err(format!(
                    "{}: plain http sends alerts unencrypted; use https, or set insecure_http = true",
                    key("url")
                ));
            }
        } else if !lower.starts_with("https://") {
            return Err(format!("{}: must start with https://", key("url")));
        }
        if self.secret_env.trim().is_empty() {
            return Err(format!(
                "{}: name the environment variable holding the signing secret",
                key("secret_env")
            ));
        }
        if self.max_attempts == 0 {
            return Err(format!("{}: at least 1", key("max_attempts")));
        }
        if self.backoff_ms == 0 || self.max_backoff_ms < self.backoff_ms {
            return Err(format!(
                "{}: backoff_ms must be above 0 and at most max_backoff_ms",
                key("backoff_ms")
            ));
        }
        if self.timeout_ms == 0 {
            return Err(format!("{}: above 0", key("timeout_ms")));
        }
        if self.concurrency == 0 || self.concurrency > 1024 {
            return Err(format!("{}: 1 to 1024", key("concurrency")));
        }
        Ok(())
    }
}

/// Checks every responder and that their names are unique.
pub(crate) fn validate_all(responders: &[ResponderConfig]) -> Result<(), String> {
    for (i, r) in responders.iter().enumerate() {
        r.validate(i)?;
        if responders[..i].iter().any(|o| o.name == r.name) {
            return Err(format!("responders[{i}].name: `{}` is used twice", r.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responder() -> ResponderConfig {
        toml::from_str(
            "name = \"soar\"\nurl = \"https://soar.example/hook\"\nsecret_env = \"SOAR_SECRET\"",
        )
        .unwrap()
    }

    fn alert(level: Level, tags: &[&str], rule: &str, tenant: &str) -> Alert {
        Alert {
            id: "a".into(),
            time_ms: 0,
            tenant: tenant.into(),
            kind: crate::alert::DetectionKind::Sigma,
            rule_id: rule.into(),
            rule_title: "t".into(),
            rule_author: None,
            level,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            host: None,
            user: None,
            event_ids: Vec::new(),
            matched: Default::default(),
            dedup_key: String::new(),
        }
    }

    #[test]
    fn defaults_and_filters() {
        let mut r = responder();
        assert_eq!(r.max_attempts, 8);
        assert_eq!(r.template, PayloadTemplate::Generic);
        assert!(r.accepts(&alert(Level::Low, &[], "x", "t")));
        r.min_level = Some(Level::High);
        r.tags = vec!["attack.execution".into()];
        r.rule_ids = vec!["r1".into()];
        r.tenant = Some("acme".into());
        assert!(r.accepts(&alert(Level::Critical, &["attack.execution"], "r1", "acme")));
        assert!(!r.accepts(&alert(Level::Medium, &["attack.execution"], "r1", "acme")));
        assert!(!r.accepts(&alert(Level::High, &["attack.t1003"], "r1", "acme")));
        assert!(!r.accepts(&alert(Level::High, &["attack.execution"], "r2", "acme")));
        assert!(!r.accepts(&alert(Level::High, &["attack.execution"], "r1", "other")));
    }

    #[test]
    fn bad_values_are_named() {
        let mut r = responder();
        r.url = "http://soar.example/hook".into();
        assert!(r.validate(0).unwrap_err().contains("insecure_http"));
        r.insecure_http = true;
        assert!(r.validate(0).is_ok());
        r.url = "ftp://x".into();
        assert!(r.validate(0).unwrap_err().contains("responders[0].url"));
        let mut r = responder();
        r.name = "a b".into();
        assert!(r.validate(0).unwrap_err().contains("responders[0].name"));
        let mut r = responder();
        r.backoff_ms = 10_000;
        r.max_backoff_ms = 1000;
        assert!(r.validate(0).unwrap_err().contains("backoff_ms"));
        let twice = validate_all(&[responder(), responder()]).unwrap_err();
        assert!(twice.contains("used twice"), "{twice}");
    }
}
