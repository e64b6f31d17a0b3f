//! Correlation tests on event sequences written for each type of the specification,
//! including out-of-order arrival within the lateness, late hits, and restarts.

use vedette_core::event::{Event, EventBatchBuilder};

use crate::sigma::correlation::{
    compile_correlations, CorrelationAlert, CorrelationEngine, CorrelationLimits, CorrelationSet,
};
use crate::sigma::{CompileOptions, LoadedRules, LogsourceMap, SigmaDetector};

const BASE: &str = r#"
title: failed logon
id: failed
name: failed_logon
logsource: {product: windows, service: security}
detection:
    s: {EventID: 4625}
    condition: s
---
title: successful logon
id: success
name: successful_logon
logsource: {product: windows, service: security}
detection:
    s: {EventID: 4624}
    condition: s
---
title: recon a
id: recon_a
name: recon_cmd_a
logsource: {product: windows, service: security}
detection:
    s: {Cmd: whoami}
    condition: s
---
title: recon b
id: recon_b
name: recon_cmd_b
logsource: {product: windows, service: security}
detection:
    s: {Cmd: ipconfig}
    condition: s
---
title: traffic
id: traffic
name: website_access
logsource: {product: windows, service: security}
detection:
    s: {EventID: 5156}
    condition: s
"#;

const MAP: &str = "logsources:\n  - logsource: {product: windows, service: security}\n    when: {dataset: windows.security}\n";

struct Setup {
    detector: SigmaDetector,
    set: CorrelationSet,
}

fn setup(correlation: &str) -> Setup {
    let mut loaded = LoadedRules::default();
    loaded.add_text(&format!("{BASE}---\n{correlation}"), "t", "t".into());
    assert_eq!(loaded.correlations.len(), 1, "{:?}", loaded.files);
    let options = CompileOptions {
        logsources: LogsourceMap::from_yaml(MAP).unwrap(),
        ..CompileOptions::default()
    };
    let (detector, _) = SigmaDetector::new(loaded.rules, &options).unwrap();
    let (set, outcomes) = compile_correlations(loaded.correlations, detector.rules());
    assert_eq!(outcomes, vec![None]);
    Setup { detector, set }
}

/// An event at `secs` seconds with these fields.
fn ev(secs: i64, fields: &[(&str, &str)]) -> Event {
    Event {
        timestamp_ms: secs * 1000,
        dataset: "windows.security".into(),
        id: format!(
            "e{secs}-{}",
            fields.iter().map(|(_, v)| *v).collect::<Vec<_>>().join("-")
        ),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Event::default()
    }
}

/// Feeds events in batches of `batch` (in the given order); returns the alerts as
/// (time s, group values, value) and the engine.
fn run(
    s: &Setup,
    events: &[Event],
    batch: usize,
    limits: CorrelationLimits,
) -> (Vec<(i64, Vec<String>, f64)>, CorrelationEngine) {
    let mut engine = CorrelationEngine::new(&s.set, limits);
    let mut alerts: Vec<CorrelationAlert> = Vec::new();
    for chunk in events.chunks(batch) {
        let mut b = EventBatchBuilder::new();
        chunk.iter().for_each(|e| b.append(e));
        let records = b.finish().unwrap();
        let hits = s.detector.matches(&records).unwrap();
        alerts.extend(engine.observe(&s.set, &records, &hits).unwrap());
    }
    alerts.extend(engine.flush(&s.set));
    let out = alerts
        .into_iter()
        .map(|a| {
            (
                a.time_ms / 1000,
                a.group.into_iter().map(|(_, v)| v).collect(),
                a.value,
            )
        })
        .collect();
    (out, engine)
}

/// One batch of `events` and the detector's hits in it.
fn batch_of(
    s: &Setup,
    events: &[Event],
) -> (arrow::array::RecordBatch, Vec<crate::sigma::RuleHit>) {
    let mut b = EventBatchBuilder::new();
    events.iter().for_each(|e| b.append(e));
    let records = b.finish().unwrap();
    let hits = s.detector.matches(&records).unwrap();
    (records, hits)
}

fn limits(lateness_s: i64) -> CorrelationLimits {
    CorrelationLimits {
        lateness_ms: Some(lateness_s * 1000),
        ..CorrelationLimits::default()
    }
}

fn failed(secs: i64, host: &str) -> Event {
    ev(secs, &[("EventID", "4625"), ("Computer", host)])
}

const EVENT_COUNT: &str = "title: many failed\nid: many\ncorrelation:\n  type: event_count\n  rules: [failed_logon]\n  group-by: [Computer]\n  timespan: 60s\n  condition: {gte: 3}\n";

#[test]
fn event_count_per_group_within_timespan() {
    let s = setup(EVENT_COUNT);
    let events = vec![
        failed(0, "a"),
        failed(10, "a"),
        failed(15, "b"),
        failed(100, "a"), // the first two fell out of the window
        failed(120, "a"),
        failed(130, "a"), // 100, 120, 130: three in 60 s
        failed(131, "a"), // consumed: counting starts again
        failed(140, "b"),
    ];
    let (alerts, _) = run(&s, &events, 3, limits(30));
    assert_eq!(alerts, vec![(130, vec!["a".to_owned()], 3.0)]);
}

#[test]
fn any_arrival_order_within_lateness_gives_the_same_alerts() {
    let s = setup(EVENT_COUNT);
    let mut events: Vec<Event> = (0..40)
        .map(|i| failed(i * 7, if i % 3 == 0 { "a" } else { "b" }))
        .collect();
    let (expected, _) = run(&s, &events, 4, limits(60));
    assert!(!expected.is_empty());
    // Swap neighbours: each event at most 7 s out of place, well within 60 s.
    for i in (0..events.len() - 1).step_by(2) {
        events.swap(i, i + 1);
    }
    let (swapped, engine) = run(&s, &events, 4, limits(60));
    assert_eq!(swapped, expected);
    assert_eq!(engine.stats().late_hits, 0);
    // Reversed in batches of 5 (35 s spread), also within the lateness.
    let mut blocks: Vec<Event> = Vec::new();
    for chunk in events.chunks(5) {
        blocks.extend(chunk.iter().rev().cloned());
    }
    assert_eq!(run(&s, &blocks, 5, limits(60)).0, expected);
}

#[test]
fn late_hits_are_dropped_and_counted() {
    let s = setup(EVENT_COUNT);
    let events = vec![
        failed(1000, "a"),
        failed(0, "a"),
        failed(5, "a"),
        failed(1001, "a"),
    ];
    let (alerts, engine) = run(&s, &events, 1, limits(30));
    assert!(alerts.is_empty());
    assert_eq!(engine.stats().late_hits, 2);
}

#[test]
fn value_count_counts_distinct_values() {
    let s = setup("title: spray\nid: spray\ncorrelation:\n  type: value_count\n  rules: [failed_logon]\n  group-by: [IpAddress]\n  timespan: 1h\n  condition: {field: TargetUserName, gte: 3}\n");
    let f = |t, ip, user| {
        ev(
            t,
            &[
                ("EventID", "4625"),
                ("IpAddress", ip),
                ("TargetUserName", user),
            ],
        )
    };
    let events = vec![
        f(0, "10.0.0.1", "alice"),
        f(1, "10.0.0.1", "alice"),
        f(2, "10.0.0.1", "bob"),
        f(3, "10.0.0.2", "carol"),
        f(4, "10.0.0.1", "dave"),
    ];
    let (alerts, _) = run(&s, &events, 10, limits(0));
    assert_eq!(alerts, vec![(4, vec!["10.0.0.1".to_owned()], 3.0)]);
}

#[test]
fn temporal_needs_every_rule_in_any_order() {
    let corr = "title: recon\nid: recon\ncorrelation:\n  type: temporal\n  rules: [recon_cmd_a, recon_cmd_b]\n  group-by: [User]\n  timespan: 5m\n";
    let s = setup(corr);
    let c = |t, cmd, user| ev(t, &[("Cmd", cmd), ("User", user)]);
    let events = vec![
        c(0, "ipconfig", "u1"),
        c(10, "whoami", "u2"),
        c(20, "whoami", "u1"),
        c(400, "ipconfig", "u2"),
    ];
    let (alerts, _) = run(&s, &events, 10, limits(0));
    assert_eq!(alerts, vec![(20, vec!["u1".to_owned()], 2.0)]);
}

#[test]
fn temporal_ordered_needs_the_listed_order() {
    let corr = "title: brute then success\nid: bts\ncorrelation:\n  type: temporal_ordered\n  rules: [failed_logon, successful_logon]\n  group-by: [TargetUserName]\n  timespan: 10m\n";
    let s = setup(corr);
    let l = |t, id, user| ev(t, &[("EventID", id), ("TargetUserName", user)]);
    let events = vec![
        l(0, "4624", "bob"), // success before failure: no
        l(10, "4625", "bob"),
        l(20, "4625", "eve"),
        l(30, "4624", "eve"), // failure then success: yes
    ];
    let (alerts, _) = run(&s, &events, 1, limits(0));
    assert_eq!(alerts, vec![(30, vec!["eve".to_owned()], 2.0)]);
    // The same events in reverse order of arrival, within the lateness: same answer.
    let mut reversed = events.clone();
    reversed.reverse();
    assert_eq!(run(&s, &reversed, 1, limits(60)).0, alerts);
}

#[test]
fn value_sum_avg_and_median() {
    let base = |kind: &str, cond: &str| {
        format!("title: exfil\nid: exfil\ncorrelation:\n  type: {kind}\n  rules: [website_access]\n  group-by: [SourceIp]\n  timespan: 1h\n  condition: {{field: BytesSent, {cond}}}\n")
    };
    let t = |secs, bytes: &str| {
        ev(
            secs,
            &[("EventID", "5156"), ("SourceIp", "h"), ("BytesSent", bytes)],
        )
    };
    let events = vec![t(0, "400"), t(1, "500"), t(2, "0x100"), t(3, "n/a")];
    let sum = setup(&base("value_sum", "gt: 1000"));
    assert_eq!(
        run(&sum, &events, 10, limits(0)).0,
        vec![(2, vec!["h".to_owned()], 1156.0)]
    );
    let avg = setup(&base("value_avg", "gte: 450"));
    assert_eq!(
        run(&avg, &events, 10, limits(0)).0,
        vec![(1, vec!["h".to_owned()], 450.0)]
    );
    let median = setup(&base("value_median", "gte: 400"));
    assert_eq!(
        run(&median, &events[..1], 10, limits(0)).0,
        vec![(0, vec!["h".to_owned()], 400.0)]
    );
}

#[test]
fn aliases_join_different_field_names() {
    let corr = "title: aliased\nid: al\ncorrelation:\n  type: temporal\n  rules: [recon_cmd_a, recon_cmd_b]\n  group-by: [who]\n  timespan: 5m\n  aliases:\n    who:\n      recon_cmd_a: User\n      recon_cmd_b: Account\n";
    let s = setup(corr);
    let events = vec![
        ev(0, &[("Cmd", "whoami"), ("User", "x")]),
        ev(1, &[("Cmd", "ipconfig"), ("Account", "x")]),
    ];
    assert_eq!(
        run(&s, &events, 10, limits(0)).0,
        vec![(1, vec!["x".to_owned()], 2.0)]
    );
}

#[test]
fn a_restart_from_a_checkpoint_keeps_open_windows() {
    let s = setup(EVENT_COUNT);
    let events = vec![
        failed(0, "a"),
        failed(10, "a"),
        failed(20, "a"),
        failed(25, "b"),
    ];
    let (expected, _) = run(&s, &events, 1, limits(5));
    assert_eq!(expected.len(), 1);
    // Two events, checkpoint, a new engine from the bytes, the rest.
    let (first, engine) = {
        let mut engine = CorrelationEngine::new(&s.set, limits(5));
        let mut b = EventBatchBuilder::new();
        events[..2].iter().for_each(|e| b.append(e));
        let r = b.finish().unwrap();
        let hits = s.detector.matches(&r).unwrap();
        (engine.observe(&s.set, &r, &hits).unwrap(), engine)
    };
    assert!(first.is_empty());
    let bytes = engine.checkpoint().unwrap();
    drop(engine);
    let mut engine = CorrelationEngine::restore(&s.set, limits(5), &bytes).unwrap();
    let mut b = EventBatchBuilder::new();
    events[2..].iter().for_each(|e| b.append(e));
    let r = b.finish().unwrap();
    let hits = s.detector.matches(&r).unwrap();
    let mut alerts = engine.observe(&s.set, &r, &hits).unwrap();
    alerts.extend(engine.flush(&s.set));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].time_ms, expected[0].0 * 1000);
    // A checkpoint of another rule set is refused.
    assert!(CorrelationEngine::restore(&CorrelationSet::default(), limits(5), &bytes).is_err());
    assert!(CorrelationEngine::restore(&s.set, limits(5), b"garbage").is_err());
}

#[test]
fn state_is_bounded() {
    let s = setup(EVENT_COUNT);
    let events: Vec<Event> = (0..50).map(|i| failed(i, &format!("h{i}"))).collect();
    let small = CorrelationLimits {
        lateness_ms: None,
        max_groups: 10,
        max_hits_per_group: 2,
    };
    let (_, engine) = run(&s, &events, 50, small);
    assert_eq!(engine.stats().evicted_groups, 40);
    let same_host: Vec<Event> = (0..5).map(|i| failed(i, "h")).collect();
    let (alerts, engine) = run(&s, &same_host, 5, small);
    assert_eq!(engine.stats().dropped_hits, 3);
    assert!(alerts.is_empty(), "only 2 hits kept, the threshold is 3");
}

#[test]
fn unsupported_correlations_are_reported() {
    let mut loaded = LoadedRules::default();
    loaded.add_text(
        &format!("{BASE}---\ntitle: c\nid: c\ncorrelation:\n  type: event_count\n  rules: [nope]\n  group-by: [x]\n  timespan: 1m\n  condition: {{gte: 1}}\n"),
        "t",
        "t".into(),
    );
    let (detector, _) = SigmaDetector::new(loaded.rules, &CompileOptions::default()).unwrap();
    let (set, outcomes) = compile_correlations(loaded.correlations, detector.rules());
    assert!(set.is_empty());
    assert!(outcomes[0].as_deref().is_some_and(|r| r.contains("nope")));
}

#[test]
fn a_firing_becomes_an_alert_on_its_groups_entity_with_a_stable_id() {
    let s = setup(&EVENT_COUNT.replace("[Computer]", "[Computer, TargetUserName]"));
    let events: Vec<Event> = (0..3)
        .map(|i| {
            ev(
                i * 10,
                &[
                    ("EventID", "4625"),
                    ("Computer", "ws-1"),
                    ("TargetUserName", "bob"),
                ],
            )
        })
        .collect();
    let mut engine = CorrelationEngine::new(&s.set, limits(30));
    let mut b = EventBatchBuilder::new();
    events.iter().for_each(|e| b.append(e));
    let records = b.finish().unwrap();
    let hits = s.detector.matches(&records).unwrap();
    let mut fired = engine.observe(&s.set, &records, &hits).unwrap();
    fired.extend(engine.flush(&s.set));
    assert_eq!(fired.len(), 1);
    let alert = fired[0].to_alert(&s.set, "acme").unwrap();
    assert_eq!(
        (
            alert.rule_id.as_str(),
            alert.rule_title.as_str(),
            alert.kind
        ),
        (
            "many",
            "many failed",
            vedette_core::alert::DetectionKind::Correlation
        )
    );
    assert_eq!(alert.tenant, "acme");
    assert_eq!(alert.host.as_deref(), Some("ws-1"));
    assert_eq!(alert.user.as_deref(), Some("bob"));
    assert_eq!(alert.matched["TargetUserName"], "bob");
    assert_eq!(alert.matched["correlation.value"], "3");
    assert_eq!(alert.event_ids.len(), 3);
    assert_eq!(alert.dedup_key, "many|ws-1|bob");
    assert_eq!(alert.time_ms, 20_000);
    // The same firing gives the same id; another tenant's does not.
    assert_eq!(fired[0].to_alert(&s.set, "acme").unwrap().id, alert.id);
    assert_ne!(fired[0].to_alert(&s.set, "other").unwrap().id, alert.id);
    let mut foreign = fired[0].clone();
    foreign.correlation = 99;
    assert!(foreign.to_alert(&s.set, "acme").is_none());
}

#[test]
fn a_horizon_keeps_the_hits_of_a_partition_read_behind_from_being_late() {
    let s = setup(EVENT_COUNT);
    let batch = |events: &[Event]| batch_of(&s, events);
    // Partition 1 is read first and is far ahead in event time; partition 0's burst
    // (three hits at 0-2 s) comes after it.
    let ahead = batch(&[failed(1000, "a")]);
    let behind = batch(&[failed(0, "b"), failed(1, "b"), failed(2, "b")]);

    let mut plain = CorrelationEngine::new(&s.set, limits(10));
    plain.observe(&s.set, &ahead.0, &ahead.1).unwrap();
    assert!(plain
        .observe(&s.set, &behind.0, &behind.1)
        .unwrap()
        .is_empty());
    assert_eq!(plain.stats().late_hits, 3);

    let mut capped = CorrelationEngine::new(&s.set, limits(10));
    // Partition 0 has not been read yet: its newest event time is unknown, the horizon
    // is the oldest known (partition 1's own, once partition 0 reports 0 s).
    let fired = capped
        .observe_within(&s.set, &ahead.0, &ahead.1, Some(0))
        .unwrap();
    assert!(fired.is_empty());
    let fired = capped
        .observe_within(&s.set, &behind.0, &behind.1, Some(2_000))
        .unwrap();
    assert!(
        fired.is_empty(),
        "the burst's window is not past the watermark yet"
    );
    // Partition 0 moves on to 500 s: the horizon passes the burst plus the lateness.
    let later = batch(&[failed(500, "c")]);
    let fired = capped
        .observe_within(&s.set, &later.0, &later.1, Some(500_000))
        .unwrap();
    assert_eq!(capped.stats().late_hits, 0);
    let groups: Vec<Vec<String>> = fired
        .iter()
        .map(|a| a.group.iter().map(|(_, v)| v.clone()).collect())
        .collect();
    assert_eq!(groups, vec![vec!["b".to_string()]]);
}

#[test]
fn events_that_hit_no_rule_and_the_clock_close_windows() {
    let s = setup(EVENT_COUNT);
    let batch = |events: &[Event]| batch_of(&s, events);
    let burst = batch(&[failed(0, "a"), failed(1, "a"), failed(2, "a")]);
    // Another event that no rule counts, far later: it moves event time on.
    let quiet = batch(&[ev(200, &[("EventID", "4634"), ("Computer", "z")])]);
    let mut engine = CorrelationEngine::new(&s.set, limits(30));
    assert!(engine
        .observe(&s.set, &burst.0, &burst.1)
        .unwrap()
        .is_empty());
    assert!(quiet.1.is_empty());
    let fired = engine.observe(&s.set, &quiet.0, &quiet.1).unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");

    // No event after the burst at all: the wall clock moves event time on once the
    // stream has been silent longer than the lateness (and not before).
    let mut engine = CorrelationEngine::new(&s.set, limits(30));
    assert!(engine
        .observe(&s.set, &burst.0, &burst.1)
        .unwrap()
        .is_empty());
    assert!(engine.advance_idle(&s.set, 20_000).is_empty());
    assert_eq!(engine.advance_idle(&s.set, 100_000).len(), 1);
    assert!(engine.advance_idle(&s.set, 200_000).is_empty());
}

/// Alerts as (time s, group values).
fn timed(alerts: Vec<CorrelationAlert>) -> Vec<(i64, Vec<String>)> {
    alerts
        .into_iter()
        .map(|a| {
            (
                a.time_ms / 1000,
                a.group.into_iter().map(|(_, v)| v).collect(),
            )
        })
        .collect()
}

/// Feeds `events` to `engine` as one batch; the alerts as (time s, group values).
fn feed(s: &Setup, engine: &mut CorrelationEngine, events: &[Event]) -> Vec<(i64, Vec<String>)> {
    let (records, hits) = batch_of(s, events);
    timed(engine.observe(&s.set, &records, &hits).unwrap())
}

#[test]
fn windows_replayed_from_a_partition_taken_over_join_the_live_engine() {
    let s = setup(EVENT_COUNT);
    // This node's own partition: host b, up to 120 s.
    let mut live = CorrelationEngine::new(&s.set, limits(5));
    assert!(feed(&s, &mut live, &[failed(60, "b"), failed(120, "b")]).is_empty());
    // What the process that died had processed of host a's partition: a burst that
    // fired there (its alert was raised there), then two hits of a window still open.
    let mut replay = CorrelationEngine::new(&s.set, limits(5));
    let fired = feed(
        &s,
        &mut replay,
        &[
            failed(10, "a"),
            failed(20, "a"),
            failed(30, "a"),
            failed(100, "a"),
        ],
    );
    assert_eq!(fired, vec![(30, vec!["a".to_owned()])]);
    assert!(feed(&s, &mut replay, &[failed(110, "a")]).is_empty());
    live.absorb(replay);
    // The third hit of the open window arrives here: one alert, and the burst that
    // fired in the other process is not raised again.
    let mut alerts = feed(&s, &mut live, &[failed(125, "a")]);
    alerts.extend(timed(live.flush(&s.set)));
    assert_eq!(alerts, vec![(125, vec!["a".to_owned()])]);
}

#[test]
fn replayed_hits_the_other_process_had_not_evaluated_are_evaluated_here() {
    let s = setup(EVENT_COUNT);
    let mut live = CorrelationEngine::new(&s.set, limits(5));
    assert!(feed(&s, &mut live, &[failed(90, "b")]).is_empty());
    // The other process read three hits in 60 s but died before its watermark (newest
    // time less the lateness) passed the last two.
    let mut replay = CorrelationEngine::new(&s.set, limits(5));
    assert!(feed(
        &s,
        &mut replay,
        &[failed(100, "a"), failed(110, "a"), failed(112, "a")]
    )
    .is_empty());
    live.absorb(replay);
    // Event time moves on here: the window completed at 112 s fires once.
    let alerts = feed(&s, &mut live, &[failed(130, "b")]);
    assert_eq!(alerts, vec![(112, vec!["a".to_owned()])]);
    assert!(live.flush(&s.set).is_empty());
}

#[test]
fn a_group_both_engines_hold_keeps_each_hit_once() {
    let s = setup(EVENT_COUNT);
    let mut live = CorrelationEngine::new(&s.set, limits(5));
    assert!(feed(&s, &mut live, &[failed(100, "a"), failed(110, "a")]).is_empty());
    // The replay holds the same event at 110 (read by both before the partition moved).
    let mut replay = CorrelationEngine::new(&s.set, limits(5));
    assert!(feed(&s, &mut replay, &[failed(110, "a")]).is_empty());
    live.absorb(replay);
    // Two hits, not three: the window completes only with the next one.
    let alerts = feed(&s, &mut live, &[failed(112, "a"), failed(130, "b")]);
    assert_eq!(alerts, vec![(112, vec!["a".to_owned()])]);
}
