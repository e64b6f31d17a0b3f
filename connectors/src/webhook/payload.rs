//! The bodies responders receive: the generic JSON form (the whole alert) and a Slack
//! incoming-webhook message. Both are documented in `docs/responders.md`.

use serde_json::{json, Value};
use vedette_core::alert::Alert;
use vedette_core::config::PayloadTemplate;

/// Version of the generic payload; bumped only on incompatible changes.
pub const PAYLOAD_VERSION: u32 = 1;

/// The body of a delivery of `alert` to responder `responder` under idempotency key
/// `key`, in the form `template`.
pub fn payload(template: PayloadTemplate, responder: &str, key: &str, alert: &Alert) -> Vec<u8> {
    let value = match template {
        PayloadTemplate::Generic => generic(responder, key, alert),
        PayloadTemplate::Slack => slack(alert),
    };
    // Serializing a `Value` cannot fail.
    serde_json::to_vec(&value).unwrap_or_default()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn generic(responder: &str, key: &str, alert: &Alert) -> Value {
    json!({
        "version": PAYLOAD_VERSION,
        "responder": responder,
        "idempotency_key": key,
        "alert": {
            "id": alert.id,
            "time": rfc3339(alert.time_ms),
            "tenant": alert.tenant,
            "kind": alert.kind.as_str(),
            "rule": {
                "id": alert.rule_id,
                "title": alert.rule_title,
                "author": alert.rule_author,
                "level": alert.level.as_str(),
                "tags": alert.tags,
            },
            "host": alert.host,
            "user": alert.user,
            "event_ids": alert.event_ids,
            "matched": alert.matched,
            "dedup_key": alert.dedup_key,
        }
    })
}

/// Text safe in Slack `mrkdwn`: `&`, `<` and `>` escaped as Slack asks.
fn slack_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack(alert: &Alert) -> Value {
    let level = alert.level.as_str().to_ascii_uppercase();
    let title = slack_text(&alert.rule_title);
    let mut about = Vec::new();
    if let Some(h) = &alert.host {
        about.push(format!("host `{}`", slack_text(h)));
    }
    if let Some(u) = &alert.user {
        about.push(format!("user `{}`", slack_text(u)));
    }
    let summary = if about.is_empty() {
        format!("[{level}] {title}")
    } else {
        format!("[{level}] {title} on {}", about.join(", "))
    };
    let mut details = vec![
        format!("*rule* `{}`", slack_text(&alert.rule_id)),
        format!("*alert* `{}`", slack_text(&alert.id)),
        format!("*tenant* `{}`", slack_text(&alert.tenant)),
        format!("*time* {}", rfc3339(alert.time_ms)),
    ];
    if !alert.tags.is_empty() {
        details.push(format!("*tags* {}", slack_text(&alert.tags.join(", "))));
    }
    json!({
        "text": summary,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{summary}*")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": details.join("\n")}},
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use vedette_core::alert::{DetectionKind, Level};

    fn alert() -> Alert {
        Alert {
            id: "a1".into(),
            time_ms: 1_764_201_600_123,
            tenant: "acme".into(),
            kind: DetectionKind::Sigma,
            rule_id: "r-1".into(),
            rule_title: "Encoded <PowerShell> & friends".into(),
            rule_author: Some("Vedette".into()),
            level: Level::High,
            tags: vec!["attack.execution".into()],
            host: Some("ws1".into()),
            user: None,
            event_ids: vec!["e1".into(), "e2".into()],
            matched: BTreeMap::from([("Image".into(), "powershell.exe".into())]),
            dedup_key: "k".into(),
        }
    }

    #[test]
    fn generic_carries_the_whole_alert() {
        let body = payload(PayloadTemplate::Generic, "soar", "a1-soar", &alert());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["idempotency_key"], "a1-soar");
        assert_eq!(v["alert"]["time"], "2025-11-27T00:00:00.123Z");
        assert_eq!(v["alert"]["rule"]["level"], "high");
        assert_eq!(v["alert"]["rule"]["tags"][0], "attack.execution");
        assert_eq!(v["alert"]["event_ids"][1], "e2");
        assert_eq!(v["alert"]["matched"]["Image"], "powershell.exe");
        assert_eq!(v["alert"]["user"], Value::Null);
    }

    #[test]
    fn slack_escapes_its_markup() {
        let body = payload(PayloadTemplate::Slack, "chat", "a1-chat", &alert());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["text"],
            "[HIGH] Encoded &lt;PowerShell&gt; &amp; friends on host `ws1`"
        );
        let details = v["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(details.contains("*rule* `r-1`"), "{details}");
        assert!(details.contains("*tags* attack.execution"), "{details}");
    }
}
