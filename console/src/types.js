// types.js — JSDoc type definitions of the API's answers and the console's shared shapes (no code).

/**
 * @typedef {{responder?: string, outcome?: string, status?: number | string | null, attempts?: number,
 *   latency_ms?: number, reason?: string | null, at?: string | number | null}} Delivery
 */

/**
 * @typedef {{
 *   'alert.id': string, '@timestamp': string | number, tenant?: string | null, 'detection.kind'?: string,
 *   'rule.id'?: string, 'rule.title'?: string, 'rule.author'?: string | null, 'rule.level'?: string,
 *   'rule.tags'?: string[], 'host.name'?: string | null, 'user.name'?: string | null, 'event.ids'?: string[],
 *   'dedup.key'?: string, matched?: Record<string, unknown> | null, status?: string,
 *   status_at?: string | number | null, status_by?: string | null, status_note?: string | null,
 *   deliveries?: Delivery[], suppressed?: number
 * }} Alert
 */

/**
 * @typedef {{file: string, title?: string, id?: string, status: string, reason?: string | null, kind?: string,
 *   level?: string, author?: string | null, description?: string | null, tags?: string[],
 *   falsepositives?: string[], references?: string[], editable_path?: string | null}} Rule
 */

/**
 * @typedef {{generation: number | string, loaded_at?: string | number, loaded: number,
 *   last_rejection: null | {at: string | number, problems: Record<string, string[]>},
 *   rules: Rule[],
 *   conformance?: null | {at: string | number, passed: number, total: number, rate_percent: number, corpus: string}}} RulesResponse
 */

/**
 * @typedef {{id: string, time_ms: number, tenant?: string | null, kind?: string, rule_id?: string, rule_title?: string,
 *   rule_author?: string | null, level?: string, tags?: string[], host?: string | null, user?: string | null,
 *   event_ids?: string[], matched?: Record<string, unknown> | null, dedup_key?: string}} HuntAlert
 */

/** @typedef {{enabled?: boolean, window_hours?: number, threshold?: number}} RiskSettings */
/** The store's SQL dialect (`GET /v1/session` → `store`): DataFusion for parquet, ClickHouse for clickhouse. */
/** @typedef {'parquet' | 'clickhouse'} StoreKind */
/**
 * @typedef {{token: string, role: string, tenant: string | null, id: string, risk?: RiskSettings | null,
 *   store?: StoreKind | null, signedInAt: number}} Session
 */

/** @typedef {Record<string, unknown>} Row */

/**
 * What the router hands a page: its path arguments, its hash query, the session, a signal that
 * aborts when the page is left, and a way to rewrite its own query without re-rendering.
 * @typedef {{
 *   args: string[], query: URLSearchParams, session: Session, signal: AbortSignal,
 *   setQuery: (params: Record<string, string | null | undefined>) => void,
 *   onCleanup: (fn: () => void) => void
 * }} PageContext
 */

export {};
