// buckets.js — grouping timed points into about N equal time buckets of a readable width, for the
// stacked-bar charts (events of an entity by dataset over time).

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Bucket widths that read well on an axis. */
const STEPS = [
  SECOND, 5 * SECOND, 10 * SECOND, 30 * SECOND,
  MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 90 * DAY, 365 * DAY,
];

/**
 * The buckets for [from, to): a readable step near (to − from) / n, the start aligned to it.
 * @param {number} from
 * @param {number} to
 * @param {number} [n]
 * @returns {{start: number, step: number, count: number}}
 */
export function chooseBuckets(from, to, n = 40) {
  const span = Math.max(to - from, SECOND);
  const wanted = span / n;
  const step = STEPS.find((s) => s >= wanted) ?? Math.ceil(wanted / (365 * DAY)) * 365 * DAY;
  const start = Math.floor(from / step) * step;
  const count = Math.max(1, Math.ceil((to - start) / step));
  return { start, step, count };
}

/**
 * Counts points per bucket and key.
 * Points outside [from, to) are left out (and counted in `outside`).
 * @param {Array<{t: number, key: string}>} points
 * @param {number} from
 * @param {number} to
 * @param {number} [n]
 * @returns {{times: number[], step: number, series: Array<{name: string, values: number[]}>, outside: number}}
 */
export function bucketCounts(points, from, to, n = 40) {
  const { start, step, count } = chooseBuckets(from, to, n);
  const times = Array.from({ length: count }, (_, i) => start + i * step);
  /** @type {Map<string, number[]>} */
  const byKey = new Map();
  let outside = 0;
  for (const p of points) {
    if (!(p.t >= from && p.t < to)) {
      outside += 1;
      continue;
    }
    const i = Math.min(count - 1, Math.floor((p.t - start) / step));
    let values = byKey.get(p.key);
    if (!values) {
      values = new Array(count).fill(0);
      byKey.set(p.key, values);
    }
    values[i] += 1;
  }
  const series = [...byKey.entries()]
    .map(([name, values]) => ({ name, values }))
    .sort((a, b) => sum(b.values) - sum(a.values) || a.name.localeCompare(b.name));
  return { times, step, series, outside };
}

/**
 * The domain to bucket over: the range itself, or for an unbounded range ("all") the extent of
 * the data (padded when it is a single instant).
 * @param {number[]} times
 * @param {number} from
 * @param {number} to
 * @param {boolean} fitToData
 * @returns {{from: number, to: number}}
 */
export function chartDomain(times, from, to, fitToData) {
  if (!fitToData || times.length === 0) return { from, to };
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of times) {
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  if (hi - lo < MINUTE) {
    lo -= 30 * MINUTE;
    hi += 30 * MINUTE;
  }
  return { from: lo, to: hi + 1 };
}

/** @param {number[]} values */
function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}
