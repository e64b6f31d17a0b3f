// pages/entity.js — one host or user (#/entity/host/<name>, #/entity/user/<name>, optionally
// ?tenant=T): its events by dataset over time (SQL, bucketed here), its alerts, its risk score
// over time (computed here with the sliding-window formula, counting the window before the range),
// and its baseline alerts (new terms and anomalies).

import { getJson, isAbort, runQuery } from '../api.js';
import { bucketCounts, chartDomain } from '../buckets.js';
import { timeChart } from '../charts.js';
import { emptyState, entityLink, errorState, fill, h, levelBadge, loadingState, statusBadge, timeEl, valueText } from '../dom.js';
import { rangeFromQuery, rangePicker, rangeToQuery } from '../rangepicker.js';
import { alertWeight, apiFiltersEntity, BROWSER_FILTER_WARNING, entityAlertsQuery, RISK_OFF_TEXT, riskSettings, riskInput, riskScore, riskSeries } from '../risk.js';
import { buildHash, entityLinkQuery } from '../route.js';
import { parseApiTime, rangeEnd, resolveRange, sqlString, sqlTime } from '../time.js';

export const title = 'Entity';

const DEFAULT_RANGE = '7d';
const EVENT_CAP = 10_000;

/** @typedef {import('../types.js').Alert} Alert */

/**
 * The SQL of an entity's events (time and dataset), newest first, at most 10,000; of one tenant
 * when given. Strings are quoted for the store's dialect (see sqlString).
 * @param {'host' | 'user'} kind
 * @param {string} name
 * @param {number} from
 * @param {number} to
 * @param {string | null} [tenant]
 * @param {import('../types.js').StoreKind | null} [store] the session's by default
 */
export function entityEventsSql(kind, name, from, to, tenant, store) {
  const column = kind === 'host' ? '"host.name"' : '"user.name"';
  return (
    `SELECT "@timestamp", "event.dataset" FROM events WHERE ${column} = ${sqlString(name, store)} ` +
    (tenant ? `AND tenant = ${sqlString(tenant, store)} ` : '') +
    `AND "@timestamp" >= ${sqlTime(from)} AND "@timestamp" < ${sqlTime(Math.ceil(to / 1000) * 1000)} ` +
    `ORDER BY "@timestamp" DESC LIMIT ${EVENT_CAP}`
  );
}

/**
 * The risk score's steps to draw over [from, end] from alerts that reach one window before
 * `from`: the score at `from` (which counts the alerts of the window before it), then each change
 * in the range. With `fit` (the range "all", from = 0) the steps as they come, up to `end`.
 * Empty when no alert adds risk.
 * @param {import('../risk.js').RiskInput[]} inputs
 * @param {number} from
 * @param {number} end
 * @param {number} windowMs
 * @param {boolean} fit
 * @returns {Array<{t: number, score: number}>}
 */
export function riskSteps(inputs, from, end, windowMs, fit) {
  const series = riskSeries(inputs, windowMs);
  if (!series.length) return [];
  if (fit) return series.filter((p) => p.t <= end);
  return [{ t: from, score: riskScore(inputs, from, windowMs).score }, ...series.filter((p) => p.t > from && p.t <= end)];
}

/**
 * @param {HTMLElement} root
 * @param {import('../types.js').PageContext} ctx
 */
export function render(root, ctx) {
  const kind = ctx.args[0] === 'user' ? 'user' : 'host';
  const name = ctx.args.length > 1 ? ctx.args.slice(1).join('/') : '';
  const tenant = ctx.query.get('tenant') || null;
  let range = rangeFromQuery(ctx.query, DEFAULT_RANGE);
  const pageQuery = () => ({ ...rangeToQuery(range), tenant });

  const kindSelect = h('select', { id: 'entity-kind', 'data-testid': 'entity-kind' }, h('option', { value: 'host', selected: kind === 'host' }, 'host'), h('option', { value: 'user', selected: kind === 'user' }, 'user'));
  const nameInput = h('input', { id: 'entity-name', type: 'search', value: name, required: true, placeholder: 'name', 'data-testid': 'entity-name', 'data-first-filter': '' });
  const searchForm = h(
    'form',
    { class: 'toolbar', 'data-testid': 'entity-search', method: 'post', 'aria-label': 'Open an entity' },
    h('label', { for: 'entity-kind' }, 'Entity'),
    kindSelect,
    h('label', { for: 'entity-name', class: 'sr-only' }, 'Name'),
    nameInput,
    h('button', { type: 'submit' }, 'Open'),
  );
  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const n = nameInput.value.trim();
    if (!n) return;
    location.hash = buildHash(['entity', kindSelect.value, n], pageQuery());
  });

  const pickerSlot = h('span');
  const eventsBox = h('div', { 'data-testid': 'entity-events' });
  const alertsBox = h('div', { 'data-testid': 'entity-alerts' });
  const riskBox = h('div', { 'data-testid': 'entity-risk' });
  const baselineBox = h('div', { 'data-testid': 'entity-baseline' });

  const drawPicker = () =>
    fill(
      pickerSlot,
      rangePicker({
        spec: range,
        fallback: DEFAULT_RANGE,
        onChange: (spec) => {
          range = spec;
          ctx.setQuery(pageQuery());
          loadAll();
        },
      }),
    );

  if (!name) {
    fill(
      root,
      h(
        'section',
        { class: 'page', 'data-testid': 'page-entity' },
        h('div', { class: 'page-head' }, h('h1', null, 'Entity')),
        h('section', { class: 'card' }, searchForm, h('p', { class: 'hint' }, 'Open a host or user to see its events, alerts and risk. Host and user names in alerts link here too.')),
      ),
    );
    nameInput.focus();
    return;
  }

  let sequence = 0;
  const loadEvents = async () => {
    const mine = sequence;
    const r = resolveRange(range, Date.now(), DEFAULT_RANGE);
    const end = rangeEnd(r);
    fill(eventsBox, loadingState('Loading events…'));
    try {
      const { rows } = await runQuery(entityEventsSql(kind, name, r.from, end, tenant), { maxRows: EVENT_CAP, signal: ctx.signal });
      if (mine !== sequence || ctx.signal.aborted) return;
      const points = rows.flatMap((row) => {
        const t = parseApiTime(row['@timestamp']);
        return t === null ? [] : [{ t, key: valueText(row['event.dataset']) || '(no dataset)' }];
      });
      if (!points.length) {
        fill(eventsBox, emptyState(`No events of this ${kind} in this time range.`));
        return;
      }
      const domain = chartDomain(points.map((p) => p.t), r.from, end, r.key === 'all' || rows.length >= EVENT_CAP);
      const b = bucketCounts(points, domain.from, domain.to, 40);
      const capped = rows.length >= EVENT_CAP;
      fill(
        eventsBox,
        h(
          'p',
          { class: 'summary', 'data-testid': 'entity-events-count' },
          `${rows.length.toLocaleString()} events`,
          capped ? h('strong', { 'data-testid': 'events-cap' }, ` — the newest ${EVENT_CAP.toLocaleString()} only (the cap was hit); narrow the range to see older ones`) : '',
        ),
        timeChart({ title: 'Events by dataset', times: b.times, step: b.step, series: b.series, kind: 'stacked', testid: 'entity-events-chart', totals: true, width: 1300, height: 240, hideCaption: true }),
      );
    } catch (e) {
      if (isAbort(e) || ctx.signal.aborted) return;
      fill(eventsBox, errorState(e, loadEvents, 'Loading events failed'));
    }
  };

  const loadAlerts = async () => {
    const mine = sequence;
    const r = resolveRange(range, Date.now(), DEFAULT_RANGE);
    fill(alertsBox, loadingState('Loading alerts…'));
    fill(riskBox, loadingState('Computing the risk…'));
    fill(baselineBox, loadingState('Loading…'));
    try {
      // From one risk window before the range, so that the score at its start counts what came before.
      const q = entityAlertsQuery(name, r.from - riskSettings().windowMs, r.to, tenant);
      const data = await getJson(`/v1/alerts?${q}`, { signal: ctx.signal });
      if (mine !== sequence || ctx.signal.aborted) return;
      const field = kind === 'host' ? 'host.name' : 'user.name';
      /** @type {Alert[]} */
      const fetched = Array.isArray(data?.alerts) ? data.alerts : [];
      const list = fetched.filter((a) => a[field] === name);
      const inRange = list.filter((a) => riskInput(a).time >= r.from);
      const capped = fetched.length >= 1000;
      drawAlerts(inRange, capped);
      drawRisk(list, r, capped);
      drawBaseline(inRange);
    } catch (e) {
      if (isAbort(e) || ctx.signal.aborted) return;
      fill(alertsBox, errorState(e, loadAlerts, 'Loading alerts failed'));
      fill(riskBox, emptyState('No risk without the alerts.'));
      fill(baselineBox, emptyState('No baseline alerts without the alerts.'));
    }
  };

  /** The warning that the alerts were filtered here (names the API does not filter by), or null. */
  const browserFilterWarning = () =>
    apiFiltersEntity(name) ? null : h('p', { class: 'banner', role: 'note', 'data-testid': 'entity-filter-warning' }, BROWSER_FILTER_WARNING);

  /**
   * @param {Alert[]} list
   * @param {boolean} capped whether the API's 1,000 were reached
   */
  const drawAlerts = (list, capped) => {
    if (!list.length) {
      fill(alertsBox, browserFilterWarning(), emptyState(`No alerts name this ${kind} in this time range.`));
      return;
    }
    const other = kind === 'host' ? 'user' : 'host';
    fill(
      alertsBox,
      browserFilterWarning(),
      h('p', { class: 'summary' }, `${list.length} alert${list.length === 1 ? '' : 's'}${capped ? ' (of the newest 1,000 asked for; older ones are left out)' : ''}`),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'data', 'data-testid': 'entity-alerts-table' },
          h('thead', null, h('tr', null, ['Time', 'Level', 'Rule', other === 'user' ? 'User' : 'Host', 'Kind', 'Status'].map((c) => h('th', { scope: 'col' }, c)))),
          h(
            'tbody',
            null,
            list.map((a) =>
              h(
                'tr',
                { 'data-testid': 'entity-alert-row' },
                h('td', { class: 'nowrap' }, timeEl(a['@timestamp'])),
                h('td', null, levelBadge(a['rule.level'])),
                h('td', null, h('a', { href: `#/alerts/${encodeURIComponent(a['alert.id'])}` }, String(a['rule.title'] ?? a['rule.id'] ?? a['alert.id']))),
                h('td', null, entityLink(other, a[other === 'user' ? 'user.name' : 'host.name'], entityLinkQuery(rangeToQuery(range), a.tenant))),
                h('td', null, String(a['detection.kind'] ?? '')),
                h('td', null, statusBadge(a.status)),
              ),
            ),
          ),
        ),
      ),
    );
  };

  /**
   * The risk score over the range: the alerts reach one window back, the chart starts at `from`.
   * @param {Alert[]} list
   * @param {import('../time.js').ResolvedRange} r
   * @param {boolean} capped
   */
  const drawRisk = (list, r, capped) => {
    const settings = riskSettings();
    if (!settings.enabled) {
      fill(riskBox, h('p', { class: 'muted', 'data-testid': 'risk-off' }, `Not scored: ${RISK_OFF_TEXT}.`));
      return;
    }
    const inputs = list.map(riskInput);
    const series = riskSeries(inputs, settings.windowMs);
    const end = rangeEnd(r);
    const notes = [browserFilterWarning(), capped ? h('p', { class: 'muted' }, 'From the newest 1,000 alerts only: older ones are left out of the score.') : null];
    if (!series.length) {
      // Nothing adds risk (only risk or silence alerts): a flat line at 0 over its alerts in the range.
      const flat = [...new Set(inputs.map((a) => a.time).filter((t) => t >= r.from && t <= end))].sort((x, y) => x - y);
      fill(
        riskBox,
        notes,
        h('p', { 'data-testid': 'entity-risk-score' }, `score 0 / threshold ${settings.threshold}`, h('span', { class: 'muted' }, ' — none of its alerts adds risk')),
        timeChart({
          title: 'Risk score over time',
          times: flat,
          series: [{ name: 'risk score', values: flat.map(() => 0) }],
          kind: 'line',
          stepLine: true,
          threshold: settings.threshold,
          testid: 'entity-risk-chart',
          hideCaption: true,
          emptyText: 'No alerts in this range.',
        }),
      );
      return;
    }
    const fit = r.key === 'all';
    const shown = riskSteps(inputs, r.from, end, settings.windowMs, fit);
    const lastAlert = inputs.reduce((m, a) => (alertWeight(a) > 0 && a.time >= r.from && a.time <= end ? Math.max(m, a.time) : m), 0);
    const at = lastAlert || end;
    const { score } = riskScore(inputs, at, settings.windowMs);
    const times = shown.map((p) => p.t);
    const values = shown.map((p) => p.score);
    const peak = shown.reduce((best, p) => (p.score > best.score ? p : best), { t: 0, score: 0 });
    const domain = fit ? { from: times[0], to: Math.max(times[times.length - 1], times[0] + 60_000) } : { from: r.from, to: end };
    const round = (/** @type {number} */ v) => Math.round(v * 10) / 10;
    const hours = Math.round(settings.windowMs / 3_600_000);
    fill(
      riskBox,
      notes,
      h(
        'p',
        { 'data-testid': 'entity-risk-score' },
        h('span', { class: ['risk-score', score >= settings.threshold && 'risk-high'] }, `score ${round(score)} / threshold ${settings.threshold}`),
        h('span', { class: 'muted' }, lastAlert ? ` at its latest alert that adds risk in this range (${hours}-hour window)` : ` at the end of the range (${hours}-hour window; no alert in the range adds risk)`),
        peak.score > 0 ? [h('br'), 'Peak ', h('span', { class: ['risk-score', peak.score >= settings.threshold && 'risk-high'] }, String(round(peak.score))), ' at ', timeEl(peak.t)] : null,
      ),
      timeChart({ title: 'Risk score over time', times, series: [{ name: 'risk score', values }], kind: 'line', stepLine: true, threshold: settings.threshold, testid: 'entity-risk-chart', domain, hideCaption: true }),
    );
  };

  /** @param {Alert[]} list */
  const drawBaseline = (list) => {
    const baseline = list.filter((a) => a['detection.kind'] === 'baseline');
    if (!baseline.length) {
      fill(baselineBox, emptyState('No new terms or baseline anomalies in this time range.'));
      return;
    }
    fill(
      baselineBox,
      h(
        'ul',
        { class: 'baseline-list' },
        baseline.map((a) =>
          h(
            'li',
            { 'data-testid': 'baseline-item' },
            timeEl(a['@timestamp']),
            ' ',
            levelBadge(a['rule.level']),
            ' ',
            h('a', { href: `#/alerts/${encodeURIComponent(a['alert.id'])}` }, String(a['rule.title'] ?? a['rule.id'] ?? '')),
            h('div', { class: 'matched' }, Object.entries(a.matched ?? {}).map(([k, v]) => h('div', null, h('code', null, k), ' = ', valueText(v)))),
          ),
        ),
      ),
    );
  };

  const loadAll = () => {
    sequence += 1;
    loadEvents();
    loadAlerts();
  };

  fill(
    root,
    h(
      'section',
      { class: 'page', 'data-testid': 'page-entity' },
      h(
        'div',
        { class: 'page-head' },
        h('h1', { 'data-testid': 'entity-title' }, `${kind === 'host' ? 'Host' : 'User'} `, h('span', { class: 'entity-name' }, name)),
        tenant && ctx.session.tenant === null
          ? h(
              'span',
              { class: 'muted', 'data-testid': 'entity-tenant' },
              'tenant ',
              h('strong', null, tenant),
              ' · ',
              h('a', { href: buildHash(['entity', kind, name], rangeToQuery(range)) }, 'every tenant'),
            )
          : null,
      ),
      h('div', { class: 'toolbar' }, searchForm, pickerSlot),
      h('section', { class: 'card' }, h('h2', null, 'Events by dataset'), eventsBox),
      h('div', { class: 'grid-2' }, h('section', { class: 'card' }, h('h2', null, 'Risk score'), riskBox), h('section', { class: 'card' }, h('h2', null, 'New terms and baseline anomalies'), baselineBox)),
      h('section', { class: 'card' }, h('h2', null, 'Alerts'), alertsBox),
    ),
  );
  drawPicker();
  loadAll();
}
