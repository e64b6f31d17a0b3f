// api.js — every call to the Vedette API: the bearer token of the session, JSON and NDJSON
// bodies, errors as ApiError {status, message, problems}, and a 401 ends the session.

import { getSession } from './session.js';

/** An answer of the API that is not a success (or no answer at all: status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {unknown} [body]
   */
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }

  /** The problems of a 422 as lines: `{file: [msg]}` gives "file: msg", `[msg]` gives "msg". */
  get problems() {
    const body = /** @type {{problems?: unknown} | null | undefined} */ (this.body);
    return problemLines(body && typeof body === 'object' ? body.problems : undefined);
  }
}

/**
 * The problems of a refused rule or hunt as lines.
 * @param {unknown} problems
 * @returns {string[]}
 */
export function problemLines(problems) {
  if (Array.isArray(problems)) return problems.map((p) => String(p));
  if (problems && typeof problems === 'object') {
    /** @type {string[]} */
    const lines = [];
    for (const [file, msgs] of Object.entries(problems)) {
      for (const m of Array.isArray(msgs) ? msgs : [msgs]) lines.push(`${file}: ${String(m)}`);
    }
    return lines;
  }
  return [];
}

/** @type {(reason: string) => void} */
let onUnauthorized = () => {};

/**
 * Sets what happens on a 401 (the app ends the session and shows the sign-in page).
 * @param {(reason: string) => void} handler
 */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * @typedef {{method?: string, json?: unknown, text?: string, contentType?: string, token?: string,
 *   signal?: AbortSignal, accept?: string, quiet401?: boolean}} RequestOptions
 */

/**
 * Sends a request and returns the response when it is a success; throws ApiError otherwise.
 * With `token` the request uses that token and a 401 does not end the session (sign-in check).
 * @param {string} path
 * @param {RequestOptions} [opts]
 * @returns {Promise<Response>}
 */
export async function request(path, opts = {}) {
  const token = opts.token ?? getSession()?.token;
  /** @type {Record<string, string>} */
  const headers = { Accept: opts.accept ?? 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  /** @type {BodyInit | undefined} */
  let body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.text !== undefined) {
    headers['Content-Type'] = opts.contentType ?? 'text/plain; charset=utf-8';
    body = opts.text;
  }
  /** @type {Response} */
  let res;
  try {
    res = await fetch(path, {
      method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      body,
      signal: opts.signal,
      cache: 'no-store',
      credentials: 'same-origin',
      referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, `the server could not be reached (${e instanceof Error ? e.message : String(e)})`);
  }
  if (res.ok) return res;
  const text = await res.text().catch(() => '');
  /** @type {unknown} */
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  const said =
    parsed && typeof parsed === 'object' && 'error' in parsed && typeof parsed.error === 'string'
      ? parsed.error
      : text.trim().slice(0, 300);
  let message = said || `${res.status} ${res.statusText}`.trim();
  if (res.status === 429) {
    const after = res.headers.get('Retry-After');
    message = `too many requests${after ? `; retry after ${after} s` : ''}${said ? ` (${said})` : ''}`;
  }
  const err = new ApiError(res.status, message, parsed);
  if (res.status === 401 && !opts.quiet401 && opts.token === undefined) {
    onUnauthorized(`the server refused the token (${said || '401 Unauthorized'})`);
  }
  throw err;
}

/**
 * GET (or another method) with a JSON answer.
 * @param {string} path
 * @param {RequestOptions} [opts]
 * @returns {Promise<any>}
 */
export async function getJson(path, opts = {}) {
  const res = await request(path, opts);
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'the server answered something that is not JSON');
  }
}

/**
 * POST a JSON body, JSON answer.
 * @param {string} path
 * @param {unknown} body
 * @param {RequestOptions} [opts]
 * @returns {Promise<any>}
 */
export function postJson(path, body, opts = {}) {
  return getJson(path, { ...opts, method: 'POST', json: body });
}

/**
 * Splits NDJSON text into rows. A last line that is only `{"error": "..."}` (the stream broke
 * off) is returned as `error` instead of a row.
 * @param {string} text
 * @returns {{rows: Array<Record<string, unknown>>, error: string | null}}
 */
export function parseNdjson(text) {
  /** @type {Array<Record<string, unknown>>} */
  const rows = [];
  let error = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    /** @type {unknown} */
    let value;
    try {
      value = JSON.parse(line);
    } catch {
      throw new ApiError(200, `line ${i + 1} of the results is not JSON`);
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      rows.push({ value });
      continue;
    }
    rows.push(/** @type {Record<string, unknown>} */ (value));
  }
  const last = rows.at(-1);
  if (last) {
    const keys = Object.keys(last);
    const others = rows.length > 1 ? Object.keys(rows[0]) : [];
    const brokeOff =
      keys.length === 1 && keys[0] === 'error' && typeof last.error === 'string' &&
      !(others.length === 1 && others[0] === 'error');
    if (brokeOff) {
      error = String(last.error);
      rows.pop();
    }
  }
  return { rows, error };
}

/**
 * Runs SQL through POST /v1/query (NDJSON) and reads every row.
 * @param {string} sql
 * @param {{maxRows?: number, signal?: AbortSignal}} [opts]
 * @returns {Promise<{rows: Array<Record<string, unknown>>, ms: number, capped: boolean}>}
 */
export async function runQuery(sql, opts = {}) {
  const maxRows = opts.maxRows ?? 1000;
  const started = performance.now();
  const res = await request('/v1/query', {
    json: { sql, format: 'ndjson', max_rows: maxRows },
    accept: 'application/x-ndjson, application/json',
    signal: opts.signal,
  });
  const text = await res.text();
  const { rows, error } = parseNdjson(text);
  if (error) throw new ApiError(res.status, `the query broke off after ${rows.length} rows: ${error}`);
  return { rows, ms: performance.now() - started, capped: rows.length >= maxRows };
}

/**
 * Whether an error is the abort of a left page (to be ignored).
 * @param {unknown} e
 */
export function isAbort(e) {
  return e instanceof DOMException && e.name === 'AbortError';
}

/**
 * The message to show for an error.
 * @param {unknown} e
 */
export function errorMessage(e) {
  if (e instanceof ApiError) return e.status ? `${e.message} (HTTP ${e.status})` : e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
