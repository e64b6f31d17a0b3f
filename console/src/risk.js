// risk.js — the entity risk score of docs/alerts.md, computed in the browser from an entity's alerts:
// level weights, ×1.5 for an ATT&CK technique tag, each rule once per window at its highest weight.

import { getSession } from './session.js';
import { parseApiTime } from './time.js';

/** @type {Record<string, number>} */
export const LEVEL_WEIGHT = { informational: 1, low: 5, medium: 15, high: 35, critical: 60 };

/** The service's default score at which an entity counts as high-risk (`[alerts.risk] threshold`). */
export const DEFAULT_RISK_THRESHOLD = 150;

/** The service's default sliding window of the score: 24 hours of the alerts' time. */
export const DEFAULT_RISK_WINDOW_MS = 24 * 3_600_000;

/** What is shown where a score would be when the service does not score entities. */
export const RISK_OFF_TEXT = 'risk scoring is off on this service';

/**
 * The risk settings of the service signed in to (`GET /v1/session` → `risk`), else the defaults.
 * `enabled` is false only when the service says so (`[alerts.risk] enabled = false`).
 * @param {import('./types.js').RiskSettings | null} [risk]
 * @returns {{enabled: boolean, threshold: number, windowMs: number}}
 */
export function riskSettings(risk = getSession()?.risk) {
  const threshold = typeof risk?.threshold === 'number' && risk.threshold > 0 ? risk.threshold : DEFAULT_RISK_THRESHOLD;
  const hours = typeof risk?.window_hours === 'number' && risk.window_hours > 0 ? risk.window_hours : 0;
  return { enabled: risk?.enabled !== false, threshold, windowMs: hours ? hours * 3_600_000 : DEFAULT_RISK_WINDOW_MS };
}

/** Alerts of these kinds add no risk. */
const NO_RISK_KINDS = new Set(['risk', 'silence']);

/**
 * Whether a tag names an ATT&CK technique (`attack.t1059`, `attack.t1059.001`).
 * @param {string} tag
 */
export function isTechniqueTag(tag) {
  return /^attack\.t\d{4}(\.\d{3})?$/i.test(tag.trim());
}

/** @typedef {{time: number, rule: string, kind: string, level: string, tags: string[]}} RiskInput */

/**
 * The fields of an API alert the score needs.
 * @param {import('./types.js').Alert} alert
 * @returns {RiskInput}
 */
export function riskInput(alert) {
  return {
    time: parseApiTime(alert['@timestamp']) ?? 0,
    rule: String(alert['rule.id'] ?? alert['rule.title'] ?? ''),
    kind: String(alert['detection.kind'] ?? ''),
    level: String(alert['rule.level'] ?? '').toLowerCase(),
    tags: Array.isArray(alert['rule.tags']) ? alert['rule.tags'].map(String) : [],
  };
}

/**
 * One alert's weight: its level's, ×1.5 with a technique tag; 0 for risk and silence alerts.
 * @param {RiskInput} a
 */
export function alertWeight(a) {
  if (NO_RISK_KINDS.has(a.kind)) return 0;
  const base = LEVEL_WEIGHT[a.level] ?? 0;
  return a.tags.some(isTechniqueTag) ? base * 1.5 : base;
}

/** @typedef {{rule: string, weight: number, time: number}} Contribution */

/**
 * The score of an entity at `end`: its alerts in (end − window, end], each rule once at its
 * highest weight (ties: the latest time).
 * @param {RiskInput[]} alerts
 * @param {number} end
 * @param {number} [windowMs]
 * @returns {{score: number, contributions: Contribution[]}}
 */
export function riskScore(alerts, end, windowMs = riskSettings().windowMs) {
  /** @type {Map<string, Contribution>} */
  const byRule = new Map();
  for (const a of alerts) {
    if (a.time > end || a.time <= end - windowMs) continue;
    const weight = alertWeight(a);
    if (weight <= 0) continue;
    const prev = byRule.get(a.rule);
    if (!prev || weight > prev.weight || (weight === prev.weight && a.time > prev.time)) {
      byRule.set(a.rule, { rule: a.rule, weight, time: a.time });
    }
  }
  const contributions = [...byRule.values()].sort((x, y) => y.weight - x.weight);
  const score = contributions.reduce((sum, c) => sum + c.weight, 0);
  return { score, contributions };
}

/**
 * The score over time as steps: evaluated at each alert's time and when each leaves the window.
 * @param {RiskInput[]} alerts
 * @param {number} [windowMs]
 * @returns {Array<{t: number, score: number}>}
 */
export function riskSeries(alerts, windowMs = riskSettings().windowMs) {
  const counted = alerts.filter((a) => alertWeight(a) > 0);
  /** @type {Set<number>} */
  const times = new Set();
  for (const a of counted) {
    times.add(a.time);
    times.add(a.time + windowMs);
  }
  return [...times]
    .sort((x, y) => x - y)
    .map((t) => ({ t, score: riskScore(counted, t, windowMs).score }));
}

/**
 * Whether the alerts API can filter by this entity name: it refuses quotes, backslashes (e.g.
 * "CORP\\alice") and values over 1024 bytes in `entity`. Otherwise the console asks for the
 * newest 1,000 alerts of the range and filters them itself, which may miss some.
 * @param {string} name
 */
export function apiFiltersEntity(name) {
  return !/['\\]/.test(name) && new TextEncoder().encode(name).length <= 1024;
}

/** The warning shown whenever an entity's alerts were filtered in the browser. */
export const BROWSER_FILTER_WARNING =
  'The alerts API does not filter by names with a quote or backslash: these are the alerts naming it among the newest 1,000 of the range, so the list (and the risk score) may be incomplete.';

/**
 * The GET /v1/alerts query of an entity's alerts in [from, to), of one tenant when given. When
 * the API cannot filter by the name (see apiFiltersEntity), all alerts are asked for and the
 * caller's filter on host.name / user.name does the rest.
 * @param {string} name
 * @param {number} from
 * @param {number | null} to
 * @param {string | null} [tenant]
 */
export function entityAlertsQuery(name, from, to, tenant = null) {
  const q = new URLSearchParams();
  if (apiFiltersEntity(name)) q.set('entity', name);
  q.set('from', String(Math.max(0, from)));
  if (to !== null) q.set('to', String(to));
  if (tenant) q.set('tenant', tenant);
  q.set('limit', '1000');
  return q;
}
