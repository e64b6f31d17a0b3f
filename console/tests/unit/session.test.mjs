// session.test.mjs — the session kept in sessionStorage (src/session.js): it keeps the service's
// risk settings and store, and ending it forgets the token and the search drafts.
import assert from 'node:assert/strict';
import { test } from 'node:test';

/** A sessionStorage for node: a Map behind the Storage methods the console uses. */
const store = new Map();
/** @type {any} */ (globalThis).sessionStorage = {
  getItem: (/** @type {string} */ k) => (store.has(k) ? store.get(k) : null),
  setItem: (/** @type {string} */ k, /** @type {string} */ v) => store.set(k, String(v)),
  removeItem: (/** @type {string} */ k) => store.delete(k),
};

const { endSession, endedReason, getSession, HUNT_DRAFT_KEY, readRisk, readStore, SQL_DRAFT_KEY, startSession } = await import('../../src/session.js');
const { riskSettings } = await import('../../src/risk.js');
const { sqlString } = await import('../../src/time.js');

test('the session keeps the risk settings and the store', () => {
  store.clear();
  startSession({ token: 'vdt_x', role: 'analyst', tenant: null, id: 'id1', risk: { enabled: true, window_hours: 6, threshold: 90 }, store: 'clickhouse' }, 1000);
  const s = getSession();
  assert.deepEqual(s?.risk, { enabled: true, window_hours: 6, threshold: 90 });
  assert.equal(s?.store, 'clickhouse');
  assert.deepEqual(riskSettings(), { enabled: true, threshold: 90, windowMs: 6 * 3_600_000 });
  assert.equal(sqlString('a\\b'), "'a\\\\b'", "the session's store picks the dialect");
});

test('risk scoring turned off on the service', () => {
  store.clear();
  startSession({ token: 'vdt_x', role: 'analyst', tenant: null, id: 'id1', risk: { enabled: false, window_hours: 24, threshold: 150 }, store: 'parquet' }, 1000);
  assert.equal(riskSettings().enabled, false);
  assert.equal(sqlString('a\\b'), "'a\\b'");
});

test('answers of an older service: no risk, no store', () => {
  assert.equal(readRisk(null), null);
  assert.deepEqual(readRisk({ enabled: 'yes', threshold: 10 }), { threshold: 10 });
  assert.equal(readStore('duckdb'), null);
  assert.equal(readStore('parquet'), 'parquet');
  assert.deepEqual(riskSettings(null), { enabled: true, threshold: 150, windowMs: 24 * 3_600_000 });
});

test('ending the session forgets the token and the SQL and hunt drafts', () => {
  store.clear();
  startSession({ token: 'vdt_secret', role: 'analyst', tenant: 'acme', id: 'id1' }, 1000);
  sessionStorage.setItem(SQL_DRAFT_KEY, 'SELECT 1');
  sessionStorage.setItem(HUNT_DRAFT_KEY, 'title: x');
  endSession('you signed out');
  assert.equal(getSession(), null);
  assert.equal(sessionStorage.getItem(SQL_DRAFT_KEY), null);
  assert.equal(sessionStorage.getItem(HUNT_DRAFT_KEY), null);
  assert.equal(endedReason(), 'you signed out');
  assert.ok(![...store.values()].some((v) => v.includes('vdt_secret')));
});
