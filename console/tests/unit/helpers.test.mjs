// helpers.test.mjs — the other pure helpers: NDJSON parsing and problem lines (api.js), health
// metrics (metrics.js), ATT&CK tags (attack.js), matched-field highlighting (matching.js), sorting
// (table.js), hash routes (route.js), session expiry (session.js), the alerts query and when live
// updates stop (pages/alerts.js), the hunt's truncation (pages/search.js) and triage (triage.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, parseNdjson, problemLines } from '../../src/api.js';
import { describeTag, TACTICS } from '../../src/attack.js';
import { eventEntries, matcher, sameField } from '../../src/matching.js';
import { counterRates, gaugeSums, ledger, ledgerVerdict, parseSeries, storeLatency } from '../../src/metrics.js';
import { alertsPath, deliverySummary, filtersToQuery, readFilters, stopsPolling } from '../../src/pages/alerts.js';
import { entityEventsSql } from '../../src/pages/entity.js';
import { hitsSql, rulePathProblem } from '../../src/pages/rules.js';
import { huntTruncation } from '../../src/pages/search.js';
import { buildHash, entityLinkQuery, parseHash } from '../../src/route.js';
import { apiFiltersEntity, entityAlertsQuery } from '../../src/risk.js';
import { expiryReason, IDLE_MS, MAX_SESSION_MS } from '../../src/session.js';
import { compareValues, sortRows } from '../../src/table.js';
import { ACK_FP_HINT, ackBlocked } from '../../src/triage.js';

test('NDJSON rows, blank lines, and a trailing error line', () => {
  assert.deepEqual(parseNdjson('{"a":1}\n\n{"a":2}\n'), { rows: [{ a: 1 }, { a: 2 }], error: null });
  assert.deepEqual(parseNdjson('{"a":1}\n{"error":"disk full"}\n'), { rows: [{ a: 1 }], error: 'disk full' });
  assert.deepEqual(parseNdjson('{"error":"x"}\n{"error":"y"}\n'), { rows: [{ error: 'x' }, { error: 'y' }], error: null });
  assert.deepEqual(parseNdjson(''), { rows: [], error: null });
  assert.throws(() => parseNdjson('{"a":1}\nnot json\n'));
});

test('problems as lines', () => {
  assert.deepEqual(problemLines({ 'a.yml': ['bad key', 'no condition'] }), ['a.yml: bad key', 'a.yml: no condition']);
  assert.deepEqual(problemLines(['one', 'two']), ['one', 'two']);
  assert.deepEqual(problemLines(undefined), []);
});

test('metric series names', () => {
  assert.deepEqual(parseSeries('vedette_ingest_dead_letters_total{source="http",reason="invalid JSON"}'), {
    metric: 'vedette_ingest_dead_letters_total',
    labels: { source: 'http', reason: 'invalid JSON' },
  });
  assert.deepEqual(parseSeries('vedette_store_seconds_sum'), { metric: 'vedette_store_seconds_sum', labels: {} });
  assert.deepEqual(parseSeries('x{a="q\\"uote",b="c,d"}').labels, { a: 'q"uote', b: 'c,d' });
});

test('counter rates, gauges, latency and the ledger', () => {
  /** @type {import('../../src/metrics.js').Sample[]} */
  const samples = [
    { t: 0, values: { 'vedette_ingest_events_total{source="http"}': 100, 'vedette_ingest_events_total{source="syslog"}': 0, vedette_store_seconds_sum: 1, vedette_store_seconds_count: 10, 'vedette_bus_consumer_lag_records{group="g",topic="events",partition="0"}': 5, 'vedette_bus_consumer_lag_records{group="g",topic="events",partition="1"}': 2 } },
    { t: 5000, values: { 'vedette_ingest_events_total{source="http"}': 150, 'vedette_ingest_events_total{source="syslog"}': 10, vedette_store_seconds_sum: 2, vedette_store_seconds_count: 20, 'vedette_bus_consumer_lag_records{group="g",topic="events",partition="0"}': 1 } },
    { t: 10000, values: { 'vedette_ingest_events_total{source="http"}': 20, 'vedette_ingest_events_total{source="tcp"}': 15, vedette_store_seconds_sum: 2, vedette_store_seconds_count: 20 } },
  ];
  const rates = counterRates(samples, 'vedette_ingest_events_total', 'source');
  assert.deepEqual(rates.times, [5000, 10000]);
  const http = rates.series.find((s) => s.name === 'http');
  const syslog = rates.series.find((s) => s.name === 'syslog');
  assert.deepEqual(http?.values, [10, 4], 'a counter that went down (restart) counts from zero');
  assert.deepEqual(syslog?.values, [2, null]);
  const tcp = rates.series.find((s) => s.name === 'tcp');
  assert.deepEqual(tcp?.values, [null, 3], 'a series that appears counts from zero');
  const lag = gaugeSums(samples, 'vedette_bus_consumer_lag_records', 'topic');
  assert.deepEqual(lag.series, [{ name: 'events', values: [7, 1, null] }]);
  const lat = storeLatency(samples);
  assert.deepEqual(lat.series[0].values, [0.1, null]);
  const l = ledger({
    t: 0,
    values: {
      'vedette_ledger_received_total{source="http"}': 10,
      'vedette_ledger_received_total{source="syslog"}': 5,
      'vedette_ledger_appended_total{source="http"}': 9,
      'vedette_ledger_appended_total{source="syslog"}': 4,
      'vedette_ledger_dead_lettered_total{source="http"}': 1,
      'vedette_ledger_rejected_total{source="syslog"}': 1,
      'vedette_ledger_stored_total{table="events"}': 13,
    },
  });
  assert.equal(l.received, 15);
  assert.equal(l.balanced, true);
  assert.equal(l.storedEvents, 13);
  assert.equal(ledger({ t: 0, values: { 'vedette_ledger_received_total{source="a"}': 3 } }).difference, 3);
});

test('the ledger verdict: a difference is in flight until it holds over 3 samples', () => {
  /** @param {number} t @param {number} received @param {number} appended */
  const sample = (t, received, appended) => ({
    t,
    values: { 'vedette_ledger_received_total{source="http"}': received, 'vedette_ledger_appended_total{source="http"}': appended },
  });
  assert.deepEqual(ledgerVerdict([]), { state: 'balanced', difference: 0 });
  assert.deepEqual(ledgerVerdict([sample(0, 5, 3), sample(5, 10, 10)]), { state: 'balanced', difference: 0 });
  assert.deepEqual(ledgerVerdict([sample(0, 10, 10), sample(5, 20, 17)]), { state: 'in_flight', difference: 3 });
  assert.deepEqual(ledgerVerdict([sample(0, 10, 8), sample(5, 20, 17)]), { state: 'in_flight', difference: 3 }, 'two samples are not enough');
  assert.deepEqual(ledgerVerdict([sample(0, 10, 9), sample(5, 20, 17), sample(10, 30, 27)]), { state: 'in_flight', difference: 3 }, 'the difference moved');
  assert.deepEqual(ledgerVerdict([sample(0, 10, 7), sample(5, 20, 17), sample(10, 30, 27)]), { state: 'stuck', difference: 3 });
  assert.deepEqual(ledgerVerdict([sample(0, 10, 7), sample(5, 20, 17), sample(10, 30, 27), sample(15, 30, 30)]), { state: 'balanced', difference: 0 });
});

test('live updates stop on 400 and 403, not on network errors or 5xx', () => {
  assert.ok(stopsPolling(new ApiError(400, 'entity: quotes are not accepted')));
  assert.ok(stopsPolling(new ApiError(403, 'tenant')));
  assert.ok(!stopsPolling(new ApiError(0, 'the server could not be reached')));
  assert.ok(!stopsPolling(new ApiError(502, 'bad gateway')));
  assert.ok(!stopsPolling(new ApiError(429, 'too many requests')));
  assert.ok(!stopsPolling(new Error('x')));
});

test('why a hunt stopped', () => {
  assert.equal(huntTruncation({ truncated: false, truncated_reason: null }, 3), null);
  assert.equal(huntTruncation({ truncated: true, truncated_reason: 'max_alerts' }, 500), 'stopped after 500 matches');
  assert.equal(huntTruncation({ truncated: true, truncated_reason: 'time' }, 12), 'stopped at the 25 s read limit; narrow the time range');
  assert.equal(huntTruncation({ truncated: true }, 500), 'stopped after 500 matches', 'an older service without the reason');
  assert.equal(huntTruncation(null, 0), null);
});

test('a false-positive alert cannot be acknowledged', () => {
  assert.equal(ackBlocked('false_positive'), ACK_FP_HINT);
  assert.match(ACK_FP_HINT, /^Reopen it first: a false-positive mark suppresses later alerts$/);
  assert.equal(ackBlocked('open'), null);
  assert.equal(ackBlocked(undefined), null);
  assert.ok(ackBlocked('acknowledged'));
});

test('ATT&CK tags', () => {
  assert.equal(Object.keys(TACTICS).length, 14);
  assert.deepEqual(describeTag('attack.t1059.001'), { kind: 'technique', id: 'T1059.001', text: 'T1059.001 PowerShell', url: 'https://attack.mitre.org/techniques/T1059/001/' });
  assert.deepEqual(describeTag('attack.t1003'), { kind: 'technique', id: 'T1003', text: 'T1003 OS Credential Dumping', url: 'https://attack.mitre.org/techniques/T1003/' });
  assert.equal(describeTag('attack.t9999').text, 'T9999');
  assert.deepEqual(describeTag('attack.execution'), { kind: 'tactic', id: 'TA0002', text: 'Execution', url: 'https://attack.mitre.org/tactics/TA0002/' });
  assert.equal(describeTag('attack.defense-evasion').text, 'Defense Evasion');
  assert.equal(describeTag('attack.command_and_control').text, 'Command and Control');
  assert.match(describeTag('attack.command_and_control').text, /Command/);
  assert.equal(/** @type {any} */ (describeTag('attack.command_and_control')).id, 'TA0011');
  assert.deepEqual(describeTag('cve.2021-44228'), { kind: 'other', text: 'cve.2021-44228' });
  assert.deepEqual(describeTag('attack.g0016'), { kind: 'other', text: 'attack.g0016' });
});

test('matched fields across ECS and original names', () => {
  assert.ok(sameField('CommandLine', 'commandline'));
  assert.ok(sameField('CommandLine', 'process.command_line'));
  assert.ok(sameField('process.executable', 'Image'));
  assert.ok(sameField('CommandLine|contains', 'CommandLine'));
  assert.ok(!sameField('process.executable', 'process.parent.executable'));
  assert.ok(!sameField('host.name', 'user.name'));
  assert.ok(!sameField('user.name', 'Name'));
  const isMatched = matcher({ CommandLine: 'x', 'process.executable': 'y' });
  const entries = eventEntries(
    { '@timestamp': 't', 'host.name': 'h', 'process.command_line': 'x', 'process.executable': 'y', message: null, fields: { Image: 'y', Other: 'o', CommandLine: 'x' } },
    isMatched,
  );
  assert.deepEqual(
    entries.map((e) => [e.key, e.hit]),
    [['process.command_line', true], ['process.executable', true], ['Image', true], ['CommandLine', true], ['@timestamp', false], ['host.name', false], ['Other', false]],
  );
});

test('matched values highlight fields of unknown names', () => {
  const isMatched = matcher({ Payload: 'Invoke-Mimikatz -DumpCreds', EventID: '1' });
  assert.ok(isMatched('ScriptBlockText', 'invoke-mimikatz -dumpcreds'));
  assert.ok(isMatched('event.code', '1'), 'the alias of EventID');
  assert.ok(!isMatched('ProcessId', '1'), 'short values do not match by value');
});

test('entity alert queries', () => {
  assert.equal(entityAlertsQuery('WS01', 0, null).toString(), 'entity=WS01&from=0&limit=1000');
  assert.equal(entityAlertsQuery('CORP\\alice', 5, 9).toString(), 'from=5&to=9&limit=1000');
  assert.equal(entityAlertsQuery("o'brien", 5, 9).get('entity'), null);
  assert.equal(entityAlertsQuery('WS01', 5, null, 'acme').toString(), 'entity=WS01&from=5&tenant=acme&limit=1000');
  assert.equal(entityAlertsQuery('WS01', -86_400_000, null).get('from'), '0', 'a window before 1970 starts at 0');
  assert.ok(apiFiltersEntity('WS01') && apiFiltersEntity('<img src=x onerror=alert(1)>'));
  assert.ok(!apiFiltersEntity('CORP\\alice') && !apiFiltersEntity("o'brien") && !apiFiltersEntity('x'.repeat(1025)));
});

test('links from alerts to entity pages carry the alert\'s tenant', () => {
  assert.deepEqual(entityLinkQuery({ range: '7d' }, 'acme'), { range: '7d', tenant: 'acme' });
  assert.deepEqual(entityLinkQuery({}, null), { tenant: null });
  assert.equal(buildHash(['entity', 'user', '<img src=x>'], entityLinkQuery({ range: 'all' }, 'acme')), '#/entity/user/%3Cimg%20src%3Dx%3E?range=all&tenant=acme');
  assert.equal(parseHash('#/entity/host/WS01?range=7d&tenant=acme').query.get('tenant'), 'acme');
});

test('sorting: numbers as numbers, text as text, empty last', () => {
  assert.ok(compareValues(9, 10) < 0);
  assert.ok(compareValues('9', '10') < 0);
  assert.ok(compareValues('host-9', 'host-10') < 0);
  assert.ok(compareValues('b', 'A') > 0);
  const rows = [{ n: 3 }, { n: null }, { n: 20 }, { n: 1 }];
  assert.deepEqual(sortRows(rows, 'n', 'asc').map((r) => r.n), [1, 3, 20, null]);
  assert.deepEqual(sortRows(rows, 'n', 'desc').map((r) => r.n), [20, 3, 1, null]);
});

test('hash routes', () => {
  assert.deepEqual(parseHash('#/entity/host/WS%2F01?range=7d').path, ['entity', 'host', 'WS/01']);
  assert.equal(parseHash('#/alerts?level=high,critical').query.get('level'), 'high,critical');
  assert.equal(buildHash(['alerts'], { range: '7d', level: null, rule: '' }), '#/alerts?range=7d');
  assert.equal(buildHash(['entity', 'user', "o'brien x"]), "#/entity/user/o'brien%20x");
});

test('session expiry', () => {
  const s = { signedInAt: 0 };
  assert.equal(expiryReason(s, 0, 1000), null);
  assert.match(String(expiryReason(s, MAX_SESSION_MS - 1, MAX_SESSION_MS)), /8 hours/);
  assert.match(String(expiryReason(s, 0, IDLE_MS)), /30 minutes/);
  assert.equal(expiryReason(s, IDLE_MS, IDLE_MS + 1000), null);
});

test('alert filters round-trip through the hash and become API queries', () => {
  const f = readFilters(new URLSearchParams('range=7d&level=critical,high,bogus&status=open&kind=silence&group=rule&tenant=acme&limit=500'));
  assert.deepEqual(f.levels, ['critical', 'high']);
  assert.equal(f.limit, 500);
  assert.deepEqual(filtersToQuery(f), { range: '7d', from: null, to: null, level: 'critical,high', rule: null, entity: null, status: 'open', kind: 'silence', tenant: 'acme', group: 'rule', limit: '500' });
  const now = Date.UTC(2026, 0, 1);
  const path = alertsPath(f, false, now);
  assert.equal(path, `/v1/alerts?from=${now - 7 * 86_400_000}&level=critical%2Chigh&status=open&kind=silence&limit=500`);
  assert.match(alertsPath(f, true, now), /tenant=acme/);
  assert.match(alertsPath(readFilters(new URLSearchParams('range=all')), false, now), /^\/v1\/alerts\?from=0&limit=100$/);
  assert.equal(deliverySummary({ 'alert.id': 'x', '@timestamp': 0, deliveries: [{ outcome: 'delivered' }, { outcome: 'dead_lettered' }, { outcome: 'delivered' }] }), '2 delivered, 1 dead-lettered');
});

test('generated SQL escapes names', () => {
  const sql = entityEventsSql('user', "o'brien", 0, 1500);
  assert.equal(sql, `SELECT "@timestamp", "event.dataset" FROM events WHERE "user.name" = 'o''brien' AND "@timestamp" >= '1970-01-01 00:00:00' AND "@timestamp" < '1970-01-01 00:00:02' ORDER BY "@timestamp" DESC LIMIT 10000`);
  const tenanted = entityEventsSql('user', 'CORP\\alice', 0, 1000, "ac'me", 'parquet');
  assert.equal(tenanted, `SELECT "@timestamp", "event.dataset" FROM events WHERE "user.name" = 'CORP\\alice' AND tenant = 'ac''me' AND "@timestamp" >= '1970-01-01 00:00:00' AND "@timestamp" < '1970-01-01 00:00:01' ORDER BY "@timestamp" DESC LIMIT 10000`);
  const clickhouse = entityEventsSql('host', 'CORP\\ws\\', 0, 1000, 'acme', 'clickhouse');
  assert.match(clickhouse, /WHERE "host\.name" = 'CORP\\\\ws\\\\' AND tenant = 'acme' AND/);
  assert.equal(hitsSql(0), `SELECT "rule.id" AS rule, count(*) AS hits, max("@timestamp") AS last FROM alerts WHERE "@timestamp" >= '1970-01-01 00:00:00' GROUP BY "rule.id"`);
});

test('rule paths', () => {
  assert.equal(rulePathProblem('console-test/e2e.yml'), null);
  assert.ok(rulePathProblem('/etc/x.yml'));
  assert.ok(rulePathProblem('../x.yml'));
  assert.ok(rulePathProblem('a//x.yml'));
  assert.ok(rulePathProblem('x.txt'));
});
