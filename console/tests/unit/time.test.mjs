// time.test.mjs — parsing the API's UTC timestamps, UTC SQL literals, placeholders and ranges (src/time.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fillTimePlaceholders, formatDuration, formatUtc, parseApiTime, resolveRange, sqlString, sqlTime, urlTime, utcLiteral } from '../../src/time.js';

test('strings without a zone are UTC; numbers are Unix ms', () => {
  const t = Date.UTC(2025, 11, 16, 10, 11, 12, 345);
  assert.equal(parseApiTime('2025-12-16T10:11:12.345'), t);
  assert.equal(parseApiTime('2025-12-16 10:11:12.345'), t);
  assert.equal(parseApiTime('2025-12-16T10:11:12.345678901'), t);
  assert.equal(parseApiTime('2025-12-16T10:11:12.345Z'), t);
  assert.equal(parseApiTime('2025-12-16T11:11:12.345+01:00'), t);
  assert.equal(parseApiTime('2025-12-16T05:11:12.345-0500'), t);
  assert.equal(parseApiTime(t), t);
  assert.equal(parseApiTime(String(t)), t);
  assert.equal(parseApiTime('2025-12-16T10:11Z'), Date.UTC(2025, 11, 16, 10, 11));
  assert.equal(parseApiTime('2025-12-16'), Date.UTC(2025, 11, 16));
});

test('unreadable times give null', () => {
  assert.equal(parseApiTime(''), null);
  assert.equal(parseApiTime(null), null);
  assert.equal(parseApiTime('yesterday-ish'), null);
  assert.equal(parseApiTime({}), null);
  assert.equal(parseApiTime(Number.NaN), null);
});

test('UTC literals to the second', () => {
  assert.equal(utcLiteral(Date.UTC(2025, 0, 2, 3, 4, 5, 999)), '2025-01-02 03:04:05');
  assert.equal(utcLiteral(0), '1970-01-01 00:00:00');
  assert.equal(sqlTime(0), "'1970-01-01 00:00:00'");
  assert.equal(formatUtc(Date.UTC(2025, 0, 2, 3, 4, 5, 7)), '2025-01-02 03:04:05.007 UTC');
  assert.equal(urlTime(Date.UTC(2025, 11, 16, 10, 11, 59)), '2025-12-16T10:11Z');
});

test('placeholders become quoted literals; {to} rounds up to the second', () => {
  const from = Date.UTC(2025, 11, 1);
  const to = Date.UTC(2025, 11, 2, 0, 0, 0, 1);
  const sql = fillTimePlaceholders('SELECT * FROM events WHERE "@timestamp" >= {from} AND "@timestamp" < {to} -- {from}', from, to);
  assert.equal(sql, `SELECT * FROM events WHERE "@timestamp" >= '2025-12-01 00:00:00' AND "@timestamp" < '2025-12-02 00:00:01' -- '2025-12-01 00:00:00'`);
});

test('string literals escape quotes', () => {
  assert.equal(sqlString("o'brien"), "'o''brien'");
  assert.equal(sqlString("''"), "''''''");
});

test('string literals in each store dialect: DataFusion keeps backslashes, ClickHouse escapes them', () => {
  // parquet (DataFusion): a backslash is an ordinary character.
  assert.equal(sqlString('CORP\\alice', 'parquet'), "'CORP\\alice'");
  assert.equal(sqlString("it's C:\\x\\", 'parquet'), "'it''s C:\\x\\'");
  // clickhouse: a backslash escapes, so it is doubled; a quote is still doubled.
  assert.equal(sqlString('CORP\\alice', 'clickhouse'), "'CORP\\\\alice'");
  assert.equal(sqlString("it's C:\\x\\", 'clickhouse'), "'it''s C:\\\\x\\\\'");
  // A trailing backslash cannot swallow the closing quote on ClickHouse.
  assert.equal(sqlString("x\\' OR 1=1 --", 'clickhouse'), "'x\\\\'' OR 1=1 --'");
  // Without a session (an older service that does not say its store): DataFusion's way.
  assert.equal(sqlString('a\\b'), "'a\\b'");
  assert.equal(sqlString('a\\b', null), "'a\\b'");
});

test('ranges', () => {
  const now = Date.UTC(2026, 0, 1);
  assert.deepEqual(resolveRange({ range: '1h' }, now), { key: '1h', from: now - 3_600_000, to: null, label: 'Last hour' });
  assert.deepEqual(resolveRange({ range: 'all' }, now), { key: 'all', from: 0, to: null, label: 'All time' });
  assert.equal(resolveRange({ range: 'nonsense' }, now).key, '24h');
  assert.equal(resolveRange({ range: 'nonsense' }, now, '7d').key, '7d');
  const custom = resolveRange({ range: 'custom', from: '2025-12-01T00:00Z', to: '2025-12-02T00:00Z' }, now);
  assert.equal(custom.key, 'custom');
  assert.equal(custom.from, Date.UTC(2025, 11, 1));
  assert.equal(custom.to, Date.UTC(2025, 11, 2));
  assert.equal(resolveRange({ range: 'custom', from: 'bad' }, now).key, '24h');
});

test('durations', () => {
  assert.equal(formatDuration(12.4), '12 ms');
  assert.equal(formatDuration(2400), '2.4 s');
  assert.equal(formatDuration(90_000), '2 min');
});
