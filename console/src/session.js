// session.js — the signed-in session, kept in sessionStorage only (never localStorage, never in
// URLs): token, role, tenant, token id, the service's risk settings and store, and sign-in time;
// plus the last activity time, the reason the last session ended (shown on the sign-in page), and
// the search page's drafts, which end with the session.

const SESSION_KEY = 'vedette.session';
const ACTIVITY_KEY = 'vedette.activity';
const ENDED_KEY = 'vedette.ended';
/** The search page's SQL draft (forgotten when the session ends). */
export const SQL_DRAFT_KEY = 'vedette.search.sql';
/** The search page's retro-hunt rule draft (forgotten when the session ends). */
export const HUNT_DRAFT_KEY = 'vedette.search.hunt';

/** A session lasts at most 8 hours from sign-in. */
export const MAX_SESSION_MS = 8 * 3_600_000;
/** A session ends after 30 minutes without activity. */
export const IDLE_MS = 30 * 60_000;

/** @typedef {import('./types.js').Session} Session */
/** @typedef {import('./types.js').RiskSettings} RiskSettings */
/** @typedef {import('./types.js').StoreKind} StoreKind */

/** @type {number} */
let lastWrite = 0;

/** @returns {Session | null} */
export function getSession() {
  let raw = null;
  try {
    raw = sessionStorage.getItem(SESSION_KEY);
  } catch {
    return null;
  }
  if (!raw) return null;
  try {
    const s = JSON.parse(raw);
    if (typeof s?.token !== 'string' || typeof s.role !== 'string' || typeof s.signedInAt !== 'number') return null;
    return {
      token: s.token,
      role: s.role,
      tenant: typeof s.tenant === 'string' ? s.tenant : null,
      id: String(s.id ?? ''),
      risk: readRisk(s.risk),
      store: readStore(s.store),
      signedInAt: s.signedInAt,
    };
  } catch {
    return null;
  }
}

/**
 * The risk settings of a `GET /v1/session` answer (or of a kept session), if it has them.
 * @param {unknown} value
 * @returns {RiskSettings | null}
 */
export function readRisk(value) {
  if (!value || typeof value !== 'object') return null;
  const r = /** @type {Record<string, unknown>} */ (value);
  /** @type {RiskSettings} */
  const risk = {};
  if (typeof r.enabled === 'boolean') risk.enabled = r.enabled;
  if (typeof r.window_hours === 'number') risk.window_hours = r.window_hours;
  if (typeof r.threshold === 'number') risk.threshold = r.threshold;
  return risk;
}

/**
 * The store of a `GET /v1/session` answer: "parquet" or "clickhouse", else null (an older service).
 * @param {unknown} value
 * @returns {StoreKind | null}
 */
export function readStore(value) {
  return value === 'parquet' || value === 'clickhouse' ? value : null;
}

/**
 * Starts a session for a token the server accepted.
 * @param {{token: string, role: string, tenant: string | null, id: string, risk?: RiskSettings | null, store?: StoreKind | null}} who
 * @param {number} [now]
 * @returns {Session}
 */
export function startSession(who, now = Date.now()) {
  const session = { token: who.token, role: who.role, tenant: who.tenant, id: who.id, risk: who.risk ?? null, store: who.store ?? null, signedInAt: now };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  sessionStorage.setItem(ACTIVITY_KEY, String(now));
  sessionStorage.removeItem(ENDED_KEY);
  lastWrite = now;
  return session;
}

/**
 * Ends the session: the token and the search drafts are forgotten, and the reason kept for the
 * sign-in page.
 * @param {string} reason
 */
export function endSession(reason) {
  try {
    for (const key of [SESSION_KEY, ACTIVITY_KEY, SQL_DRAFT_KEY, HUNT_DRAFT_KEY]) sessionStorage.removeItem(key);
    sessionStorage.setItem(ENDED_KEY, reason);
  } catch {
    /* storage unavailable: nothing was kept */
  }
}

/** Why the last session ended, if it did. @returns {string | null} */
export function endedReason() {
  try {
    return sessionStorage.getItem(ENDED_KEY);
  } catch {
    return null;
  }
}

/**
 * Records activity (a key press, a click); written at most every 10 seconds.
 * @param {number} [now]
 */
export function touch(now = Date.now()) {
  if (now - lastWrite < 10_000) return;
  lastWrite = now;
  try {
    if (sessionStorage.getItem(SESSION_KEY)) sessionStorage.setItem(ACTIVITY_KEY, String(now));
  } catch {
    /* ignore */
  }
}

/** The last recorded activity (Unix ms), or null. */
export function lastActivity() {
  try {
    const v = Number(sessionStorage.getItem(ACTIVITY_KEY));
    return Number.isFinite(v) && v > 0 ? v : null;
  } catch {
    return null;
  }
}

/**
 * Why a session must end now, or null while it may go on.
 * @param {{signedInAt: number}} session
 * @param {number | null} activity the last activity time
 * @param {number} now
 * @returns {string | null}
 */
export function expiryReason(session, activity, now) {
  if (now - session.signedInAt >= MAX_SESSION_MS) return 'it reached 8 hours since sign-in';
  if (now - (activity ?? session.signedInAt) >= IDLE_MS) return '30 minutes without activity';
  return null;
}
