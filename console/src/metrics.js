// metrics.js — reading GET /v1/health/history: series names as in /metrics (`name{label="v"}`),
// counter rates between samples, gauge sums, store latency, the loss ledger and its verdict.

/** @typedef {{t: number, values: Record<string, number>}} Sample */
/** @typedef {{times: number[], series: Array<{name: string, values: Array<number | null>}>}} TimeSeries */

/**
 * Splits a series name into its metric and labels: `a_total{source="http",reason="x \"y\""}`.
 * @param {string} name
 * @returns {{metric: string, labels: Record<string, string>}}
 */
export function parseSeries(name) {
  const brace = name.indexOf('{');
  if (brace < 0) return { metric: name.trim(), labels: {} };
  const metric = name.slice(0, brace).trim();
  /** @type {Record<string, string>} */
  const labels = {};
  const re = /([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;
  const body = name.slice(brace + 1, name.lastIndexOf('}') > brace ? name.lastIndexOf('}') : undefined);
  for (const m of body.matchAll(re)) {
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
  }
  return { metric, labels };
}

/**
 * Sums the series of one metric in one sample by a label (all into "" without a label key).
 * @param {Sample} sample
 * @param {string} metric
 * @param {string} [labelKey]
 * @returns {Map<string, number>}
 */
export function sumByLabel(sample, metric, labelKey) {
  /** @type {Map<string, number>} */
  const out = new Map();
  for (const [name, value] of Object.entries(sample.values)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    const s = parseSeries(name);
    if (s.metric !== metric) continue;
    const key = labelKey ? (s.labels[labelKey] ?? '') : '';
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/**
 * The per-second rate of a counter between consecutive samples, summed by a label. A counter
 * that went down (a restart) counts from zero; one absent from the earlier sample was 0 then.
 * @param {Sample[]} samples oldest first
 * @param {string} metric
 * @param {string} labelKey
 * @returns {TimeSeries}
 */
export function counterRates(samples, metric, labelKey) {
  const sums = samples.map((s) => sumByLabel(s, metric, labelKey));
  const keys = keysOf(sums);
  /** @type {number[]} */
  const times = [];
  /** @type {Map<string, Array<number | null>>} */
  const values = new Map(keys.map((k) => [k, []]));
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    if (!(dt > 0)) continue;
    times.push(samples[i].t);
    for (const k of keys) {
      const now = sums[i].get(k);
      const before = sums[i - 1].get(k);
      /** @type {number | null} */
      let rate = null;
      // A counter's series appears at its first increment: absent before, it was 0.
      if (now !== undefined) rate = (now < (before ?? 0) ? now : now - (before ?? 0)) / dt;
      values.get(k)?.push(rate);
    }
  }
  return { times, series: keys.map((k) => ({ name: k || metric, values: values.get(k) ?? [] })) };
}

/**
 * A gauge summed by a label, per sample.
 * @param {Sample[]} samples
 * @param {string} metric
 * @param {string} labelKey
 * @returns {TimeSeries}
 */
export function gaugeSums(samples, metric, labelKey) {
  const sums = samples.map((s) => sumByLabel(s, metric, labelKey));
  const keys = keysOf(sums);
  return {
    times: samples.map((s) => s.t),
    series: keys.map((k) => ({ name: k || metric, values: sums.map((m) => m.get(k) ?? null) })),
  };
}

/**
 * Seconds per store write in each interval: Δ vedette_store_seconds_sum / Δ vedette_store_seconds_count.
 * @param {Sample[]} samples
 * @returns {TimeSeries}
 */
export function storeLatency(samples) {
  /** @type {number[]} */
  const times = [];
  /** @type {Array<number | null>} */
  const values = [];
  for (let i = 1; i < samples.length; i++) {
    const sumNow = total(samples[i], 'vedette_store_seconds_sum');
    const sumBefore = total(samples[i - 1], 'vedette_store_seconds_sum');
    const countNow = total(samples[i], 'vedette_store_seconds_count');
    const countBefore = total(samples[i - 1], 'vedette_store_seconds_count');
    times.push(samples[i].t);
    const dc = countNow - countBefore;
    values.push(dc > 0 ? Math.max(0, sumNow - sumBefore) / dc : null);
  }
  return { times, series: [{ name: 'avg seconds per store write', values }] };
}

/**
 * The sum of every series of a metric in a sample.
 * @param {Sample} sample
 * @param {string} metric
 */
export function total(sample, metric) {
  let sum = 0;
  for (const v of sumByLabel(sample, metric).values()) sum += v;
  return sum;
}

/**
 * The loss ledger of one sample: received = appended + dead-lettered + rejected, and how many
 * events the store holds against how many were appended.
 * @param {Sample} sample
 */
export function ledger(sample) {
  const received = total(sample, 'vedette_ledger_received_total');
  const appended = total(sample, 'vedette_ledger_appended_total');
  const deadLettered = total(sample, 'vedette_ledger_dead_lettered_total');
  const rejected = total(sample, 'vedette_ledger_rejected_total');
  const stored = sumByLabel(sample, 'vedette_ledger_stored_total', 'table');
  const difference = received - (appended + deadLettered + rejected);
  return {
    received,
    appended,
    deadLettered,
    rejected,
    difference,
    balanced: Math.abs(difference) < 1e-9,
    storedEvents: stored.get('events') ?? null,
    storedAlerts: stored.get('alerts') ?? null,
    storedDeadLetters: stored.get('dead_letters') ?? null,
  };
}

/** Samples in a row that must show the same nonzero difference before the ledger is flagged. */
export const LEDGER_STUCK_SAMPLES = 3;

/**
 * The verdict of the loss ledger over the latest samples: `balanced`; `in_flight` when the latest
 * sample's difference (received − appended − dead-lettered − rejected) is nonzero, which is
 * usually records between receipt and the bus while the counters are read; `stuck` when the
 * same nonzero difference holds over the last 3 samples (records that never arrive).
 * @param {Sample[]} samples oldest first
 * @returns {{state: 'balanced' | 'in_flight' | 'stuck', difference: number}}
 */
export function ledgerVerdict(samples) {
  if (!samples.length) return { state: 'balanced', difference: 0 };
  const last = samples.slice(-LEDGER_STUCK_SAMPLES).map((x) => ledger(x));
  const latest = last[last.length - 1];
  if (latest.balanced) return { state: 'balanced', difference: 0 };
  const same = last.length === LEDGER_STUCK_SAMPLES && last.every((l) => Math.abs(l.difference - latest.difference) < 1e-9);
  return { state: same ? 'stuck' : 'in_flight', difference: latest.difference };
}

/**
 * The label values found over all samples, by their last total (largest first).
 * @param {Array<Map<string, number>>} sums
 */
function keysOf(sums) {
  /** @type {Map<string, number>} */
  const last = new Map();
  for (const m of sums) for (const [k, v] of m) last.set(k, v);
  return [...last.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k]) => k);
}
