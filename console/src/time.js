// time.js — time ranges (presets and custom), parsing the API's UTC timestamps, formatting in the
// analyst's time zone (with UTC beside it), the UTC SQL literals the stores compare with, and SQL
// string literals in the dialect of the store signed in to.

import { getSession } from './session.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** @typedef {{key: string, label: string, ms: number | null}} RangePreset */

/** The presets offered by every time-range picker; `all` is everything (from = 0). @type {RangePreset[]} */
export const RANGE_PRESETS = [
  { key: '15m', label: 'Last 15 minutes', ms: 15 * MINUTE },
  { key: '1h', label: 'Last hour', ms: HOUR },
  { key: '24h', label: 'Last 24 hours', ms: DAY },
  { key: '7d', label: 'Last 7 days', ms: 7 * DAY },
  { key: '30d', label: 'Last 30 days', ms: 30 * DAY },
  { key: '1y', label: 'Last year', ms: 365 * DAY },
  { key: 'all', label: 'All time', ms: null },
];

/** @typedef {{range: string, from?: string | null, to?: string | null}} RangeSpec */
/** @typedef {{key: string, from: number, to: number | null, label: string}} ResolvedRange */

/**
 * Turns a picker choice into times: `to` is null when the range is open-ended ("until now").
 * A custom range without a readable `from` falls back to `fallback`.
 * @param {RangeSpec} spec
 * @param {number} [now]
 * @param {string} [fallback]
 * @returns {ResolvedRange}
 */
export function resolveRange(spec, now = Date.now(), fallback = '24h') {
  if (spec.range === 'custom') {
    const from = parseApiTime(spec.from ?? null);
    const to = parseApiTime(spec.to ?? null);
    if (from !== null) {
      const label = `${formatLocal(from)} – ${to === null ? 'now' : formatLocal(to)}`;
      return { key: 'custom', from, to, label };
    }
  }
  const preset =
    RANGE_PRESETS.find((p) => p.key === spec.range) ??
    RANGE_PRESETS.find((p) => p.key === fallback) ??
    RANGE_PRESETS[2];
  if (preset.ms === null) return { key: preset.key, from: 0, to: null, label: preset.label };
  return { key: preset.key, from: now - preset.ms, to: null, label: preset.label };
}

/**
 * The end of a range in Unix ms (now for open-ended ranges).
 * @param {ResolvedRange} range
 * @param {number} [now]
 */
export function rangeEnd(range, now = Date.now()) {
  return range.to ?? now;
}

const TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * Reads a timestamp of the API: numbers are Unix milliseconds; strings are ISO-like and UTC
 * unless they name an offset ("2025-12-16T10:11:12.345", "2025-12-16 10:11:12", "...Z",
 * "...+01:00"); fractions beyond milliseconds are cut. Anything else gives null.
 * @param {unknown} value
 * @returns {number | null}
 */
export function parseApiTime(value) {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (text === '') return null;
  if (/^-?\d{1,16}$/.test(text)) return Number(text);
  const m = TIME_RE.exec(text);
  if (!m) {
    const parsed = Date.parse(text);
    return Number.isNaN(parsed) ? null : parsed;
  }
  const [, y, mo, d, hh, mi, ss, frac, zone] = m;
  const ms = frac ? Number((frac + '00').slice(0, 3)) : 0;
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(hh ?? 0), Number(mi ?? 0), Number(ss ?? 0), ms);
  if (zone && zone !== 'Z' && zone !== 'z' && zone !== 'UTC') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offset = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0');
    t -= sign * offset * MINUTE;
  }
  return Number.isNaN(t) ? null : t;
}

/** @param {number} n @param {number} [width] */
function pad(n, width = 2) {
  return String(n).padStart(width, '0');
}

/**
 * A UTC time as the stores' literal text, to the second: `2025-12-16 10:11:12`.
 * @param {number} ms
 */
export function utcLiteral(ms) {
  const d = new Date(ms);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  );
}

/**
 * A quoted SQL literal of a UTC time: `'2025-12-16 10:11:12'`.
 * @param {number} ms
 */
export function sqlTime(ms) {
  return `'${utcLiteral(ms)}'`;
}

/**
 * A quoted SQL string literal in the store's dialect: '' escapes a quote in both; ClickHouse also
 * reads a backslash as an escape, so there it is doubled, while DataFusion (parquet) keeps it
 * literal. The store defaults to the session's (`GET /v1/session` → `store`).
 * @param {string} text
 * @param {import('./types.js').StoreKind | null} [store]
 */
export function sqlString(text, store = getSession()?.store ?? null) {
  const escaped = store === 'clickhouse' ? text.replaceAll('\\', '\\\\') : text;
  return `'${escaped.replaceAll("'", "''")}'`;
}

/**
 * Replaces the `{from}` and `{to}` placeholders of a query with quoted UTC literals.
 * `to` is rounded up to the next whole second so that the last second is included.
 * @param {string} sql
 * @param {number} from
 * @param {number} to
 */
export function fillTimePlaceholders(sql, from, to) {
  const toSecond = Math.ceil(to / 1000) * 1000;
  return sql.replaceAll('{from}', sqlTime(from)).replaceAll('{to}', sqlTime(toSecond));
}

/** @type {Intl.DateTimeFormat | null} */
let localFormat = null;

/**
 * A time in the analyst's time zone, to the second.
 * @param {number} ms
 */
export function formatLocal(ms) {
  localFormat ??= new Intl.DateTimeFormat(undefined, {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  return localFormat.format(new Date(ms));
}

/**
 * A time in UTC, with milliseconds when it has any: `2025-12-16 10:11:12.345 UTC`.
 * @param {number} ms
 */
export function formatUtc(ms) {
  const frac = ((ms % 1000) + 1000) % 1000;
  return `${utcLiteral(ms)}${frac ? '.' + pad(frac, 3) : ''} UTC`;
}

/** The analyst's time zone name (IANA), e.g. "Europe/Berlin". */
export function timeZoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  } catch {
    return 'local time';
  }
}

/**
 * The value of a `datetime-local` input for a time (local wall clock, to the minute).
 * @param {number} ms
 */
export function localInputValue(ms) {
  const d = new Date(ms);
  return `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * Reads a `datetime-local` input value (local wall clock) as Unix ms.
 * @param {string} value
 * @returns {number | null}
 */
export function parseLocalInput(value) {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) return null;
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? null : t;
}

/**
 * A compact UTC form for URLs (bookmarkable, time-zone independent): `2025-12-16T10:11Z`.
 * @param {number} ms
 */
export function urlTime(ms) {
  return utcLiteral(ms).slice(0, 16).replace(' ', 'T') + 'Z';
}

/**
 * A duration for people: "850 ms", "2.4 s", "3 min", "5 h", "2 d".
 * @param {number} ms
 */
export function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < MINUTE) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < HOUR) return `${Math.round(ms / MINUTE)} min`;
  if (ms < 2 * DAY) return `${Math.round(ms / HOUR)} h`;
  return `${Math.round(ms / DAY)} d`;
}

export const TIME_UNITS = { MINUTE, HOUR, DAY };
