// pages/alerts.js — the alerts list (#/alerts?range=…&level=…): filters kept in the hash query,
// live updates every 5 s while visible (new alerts highlighted, a pause toggle; stopped when the
// server refuses the filters), grouping by rule or entity, and keyboard triage (j/k, Enter, a, f).

import { ApiError, errorMessage, getJson, isAbort } from '../api.js';
import { emptyState, entityLink, errorState, fill, h, levelBadge, LEVELS, loadingState, statusBadge, timeEl } from '../dom.js';
import { setPageShortcuts } from '../keys.js';
import { rangeFromQuery, rangePicker, rangeToQuery } from '../rangepicker.js';
import { buildHash, entityLinkQuery } from '../route.js';
import { formatLocal, resolveRange } from '../time.js';
import { ackBlocked, acknowledge, falsePositive } from '../triage.js';

export const title = 'Alerts';

export const KINDS = ['sigma', 'correlation', 'yara', 'baseline', 'risk', 'silence'];
export const STATUSES = ['open', 'acknowledged', 'false_positive'];
const LIMITS = [100, 500, 1000];
const POLL_MS = 5000;
const DEFAULT_RANGE = '24h';

/** @typedef {import('../types.js').Alert} Alert */
/** @typedef {import('../time.js').RangeSpec} RangeSpec */
/**
 * @typedef {{range: RangeSpec, levels: string[], rule: string, entity: string, status: string, kind: string,
 *   tenant: string, group: string, limit: number}} Filters
 */

/**
 * The filters of a hash query.
 * @param {URLSearchParams} query
 * @returns {Filters}
 */
export function readFilters(query) {
  const levels = (query.get('level') ?? '').split(',').map((l) => l.trim().toLowerCase()).filter((l) => LEVELS.includes(l));
  const limit = Number(query.get('limit'));
  const group = query.get('group') ?? 'none';
  return {
    range: rangeFromQuery(query, DEFAULT_RANGE),
    levels,
    rule: query.get('rule') ?? '',
    entity: query.get('entity') ?? '',
    status: STATUSES.includes(query.get('status') ?? '') ? String(query.get('status')) : '',
    kind: KINDS.includes(query.get('kind') ?? '') ? String(query.get('kind')) : '',
    tenant: query.get('tenant') ?? '',
    group: ['none', 'rule', 'entity'].includes(group) ? group : 'none',
    limit: LIMITS.includes(limit) ? limit : 100,
  };
}

/**
 * The hash query of filters (defaults left out).
 * @param {Filters} f
 * @returns {Record<string, string | null>}
 */
export function filtersToQuery(f) {
  return {
    ...rangeToQuery(f.range),
    level: f.levels.length ? f.levels.join(',') : null,
    rule: f.rule || null,
    entity: f.entity || null,
    status: f.status || null,
    kind: f.kind || null,
    tenant: f.tenant || null,
    group: f.group !== 'none' ? f.group : null,
    limit: f.limit !== 100 ? String(f.limit) : null,
  };
}

/**
 * The GET /v1/alerts path for filters.
 * @param {Filters} f
 * @param {boolean} allTenants whether the token spans tenants (only then is `tenant` sent)
 * @param {number} [now]
 */
export function alertsPath(f, allTenants, now = Date.now()) {
  const r = resolveRange(f.range, now, DEFAULT_RANGE);
  const q = new URLSearchParams();
  q.set('from', String(r.from));
  if (r.to !== null) q.set('to', String(r.to));
  if (f.levels.length) q.set('level', f.levels.join(','));
  if (f.rule.trim()) q.set('rule', f.rule.trim());
  if (f.entity.trim()) q.set('entity', f.entity.trim());
  if (f.status) q.set('status', f.status);
  if (f.kind) q.set('kind', f.kind);
  if (allTenants && f.tenant.trim()) q.set('tenant', f.tenant.trim());
  q.set('limit', String(f.limit));
  return `/v1/alerts?${q}`;
}

/**
 * Whether live updates must stop after this error: the server refused the request itself (400,
 * 403), which asking again every 5 s will not change. Network errors and 5xx are retried.
 * @param {unknown} e
 */
export function stopsPolling(e) {
  return e instanceof ApiError && (e.status === 400 || e.status === 403);
}

/**
 * A short summary of an alert's responder deliveries: "2 delivered, 1 dead-lettered".
 * @param {Alert} a
 */
export function deliverySummary(a) {
  const list = Array.isArray(a.deliveries) ? a.deliveries : [];
  if (!list.length) return '—';
  const delivered = list.filter((d) => d.outcome === 'delivered').length;
  const dead = list.filter((d) => d.outcome === 'dead_lettered').length;
  const other = list.length - delivered - dead;
  return [delivered && `${delivered} delivered`, dead && `${dead} dead-lettered`, other && `${other} other`].filter(Boolean).join(', ');
}

/**
 * The group of an alert.
 * @param {Alert} a
 * @param {string} by
 * @returns {{key: string, label: string}}
 */
function groupOf(a, by) {
  if (by === 'rule') {
    const id = String(a['rule.id'] ?? '');
    return { key: `rule:${id}`, label: String(a['rule.title'] ?? id) || '(no rule)' };
  }
  const host = a['host.name'];
  const user = a['user.name'];
  if (host) return { key: `host:${host}`, label: `host ${host}` };
  if (user) return { key: `user:${user}`, label: `user ${user}` };
  return { key: 'none', label: '(no entity)' };
}

/**
 * Gives an element a key to find it again after a redraw (to keep the focus on it).
 * @template {HTMLElement} E
 * @param {E} el
 * @param {string} key
 * @returns {E}
 */
function focusKey(el, key) {
  el.dataset.focusKey = key;
  return el;
}

/**
 * @param {HTMLElement} root
 * @param {import('../types.js').PageContext} ctx
 */
export function render(root, ctx) {
  const allTenants = ctx.session.tenant === null;
  let filters = readFilters(ctx.query);
  /** @type {Alert[]} */
  let alerts = [];
  let loadedOnce = false;
  let paused = false;
  /** Set when the server refused the filters (400/403): no more polling until they change. */
  let halted = false;
  /** @type {string | null} */
  let selectedId = null;
  /** @type {Set<string>} */
  const collapsed = new Set();
  /** @type {Set<string> | null} */
  let knownIds = null;
  let sequence = 0;
  /** @type {number | null} */
  let timer = null;
  /** What the table shows (ids and statuses): a poll that changes nothing redraws nothing. */
  let shownSignature = '';

  const liveStatus = h('span', { class: 'live-status muted', 'data-testid': 'live-status', role: 'status' });
  const pauseButton = h('button', { type: 'button', class: 'secondary small', 'aria-pressed': 'false', 'data-testid': 'pause-toggle' }, 'Pause live updates');
  const updateBanner = h('div', { class: 'banner hidden', role: 'alert', 'data-testid': 'update-error' });
  const results = h('div', { class: 'results', 'data-testid': 'alerts-results' });
  const filterBox = h('div', { class: 'filters-box' });

  pauseButton.addEventListener('click', () => {
    paused = !paused;
    pauseButton.setAttribute('aria-pressed', String(paused));
    pauseButton.textContent = paused ? 'Resume live updates' : 'Pause live updates';
    if (paused) stopTimer();
    else load(false);
    drawLiveStatus();
  });

  const stopTimer = () => {
    if (timer !== null) window.clearTimeout(timer);
    timer = null;
  };
  const schedule = () => {
    stopTimer();
    if (paused || halted || ctx.signal.aborted || document.visibilityState !== 'visible') return;
    timer = window.setTimeout(() => load(false), POLL_MS);
  };
  const onVisibility = () => {
    if (document.visibilityState === 'visible' && !paused && !halted && timer === null) load(false);
    else if (document.visibilityState !== 'visible') stopTimer();
    drawLiveStatus();
  };
  document.addEventListener('visibilitychange', onVisibility);
  ctx.onCleanup(() => {
    stopTimer();
    document.removeEventListener('visibilitychange', onVisibility);
  });

  /** @type {number | null} */
  let lastUpdate = null;
  const drawLiveStatus = () => {
    const state = halted
      ? 'Live updates stopped (the server refused these filters)'
      : paused
        ? 'Paused'
        : document.visibilityState !== 'visible'
          ? 'Live (waiting while hidden)'
          : 'Live';
    liveStatus.textContent = `${state}${lastUpdate ? ` · updated ${formatLocal(lastUpdate)}` : ''}`;
  };

  /**
   * Applies a filter change (the controls already show it; Reset redraws them).
   * @param {Partial<Filters>} change
   * @param {boolean} [redraw]
   */
  const setFilters = (change, redraw = false) => {
    filters = { ...filters, ...change };
    ctx.setQuery(filtersToQuery(filters));
    knownIds = null;
    selectedId = null;
    shownSignature = '';
    halted = false;
    if (redraw) drawFilters();
    load(true);
  };

  const drawFilters = () => {
    const levelBoxes = LEVELS.map((level) =>
      h(
        'label',
        { class: 'check' },
        h('input', {
          type: 'checkbox',
          value: level,
          checked: filters.levels.includes(level),
          'data-testid': `level-${level}`,
          onchange: (/** @type {Event} */ e) => {
            const box = /** @type {HTMLInputElement} */ (e.target);
            const levels = box.checked ? [...filters.levels, level] : filters.levels.filter((l) => l !== level);
            setFilters({ levels: LEVELS.filter((l) => levels.includes(l)) });
          },
        }),
        levelBadge(level),
      ),
    );
    const text = (/** @type {'rule' | 'entity' | 'tenant'} */ key, /** @type {string} */ label, /** @type {string} */ placeholder) => {
      const id = `filter-${key}`;
      return h(
        'span',
        { class: 'field' },
        h('label', { for: id }, label),
        h('input', {
          id,
          type: 'search',
          value: filters[key],
          placeholder,
          'data-testid': id,
          onchange: (/** @type {Event} */ e) => setFilters({ [key]: /** @type {HTMLInputElement} */ (e.target).value.trim() }),
        }),
      );
    };
    const choice = (/** @type {'status' | 'kind' | 'group' | 'limit'} */ key, /** @type {string} */ label, /** @type {Array<[string, string]>} */ options) => {
      const id = `filter-${key}`;
      return h(
        'span',
        { class: 'field' },
        h('label', { for: id }, label),
        h(
          'select',
          {
            id,
            'data-testid': key === 'group' ? 'group-by' : id,
            onchange: (/** @type {Event} */ e) => {
              const value = /** @type {HTMLSelectElement} */ (e.target).value;
              setFilters(key === 'limit' ? { limit: Number(value) } : { [key]: value });
            },
          },
          options.map(([value, text]) => h('option', { value, selected: String(filters[key]) === value }, text)),
        ),
      );
    };
    fill(
      filterBox,
      h(
        'form',
        { class: 'filters', 'data-testid': 'alert-filters', 'aria-label': 'Alert filters', onsubmit: (/** @type {Event} */ e) => e.preventDefault() },
        rangePicker({ spec: filters.range, onChange: (range) => setFilters({ range }), first: true, fallback: DEFAULT_RANGE }),
        h('fieldset', { class: 'levels' }, h('legend', null, 'Level'), levelBoxes),
        text('rule', 'Rule id', 'e.g. proc_creation_win_…'),
        text('entity', 'Entity', 'host or user name'),
        choice('status', 'Status', [['', 'any'], ...STATUSES.map((st) => /** @type {[string, string]} */ ([st, st.replace('_', ' ')]))]),
        choice('kind', 'Kind', [['', 'any'], ...KINDS.map((k) => /** @type {[string, string]} */ ([k, k]))]),
        allTenants ? text('tenant', 'Tenant', 'any tenant') : null,
        choice('group', 'Group by', [['none', 'none'], ['rule', 'rule'], ['entity', 'entity']]),
        choice('limit', 'Show', LIMITS.map((n) => /** @type {[string, string]} */ ([String(n), `newest ${n}`]))),
        h(
          'button',
          {
            type: 'button',
            class: 'secondary small',
            'data-testid': 'filters-reset',
            onclick: () => setFilters({ range: { range: DEFAULT_RANGE }, levels: [], rule: '', entity: '', status: '', kind: '', tenant: '', group: 'none', limit: 100 }, true),
          },
          'Reset',
        ),
      ),
    );
  };

  /** @param {boolean} initial */
  const load = async (initial) => {
    const mine = ++sequence;
    stopTimer();
    if (initial || !loadedOnce) fill(results, loadingState('Loading alerts…'));
    try {
      const data = await getJson(alertsPath(filters, allTenants), { signal: ctx.signal });
      if (mine !== sequence || ctx.signal.aborted) return;
      const list = Array.isArray(data?.alerts) ? /** @type {Alert[]} */ (data.alerts) : [];
      /** @type {Set<string>} */
      const fresh = new Set();
      if (knownIds) for (const a of list) if (!knownIds.has(a['alert.id'])) fresh.add(a['alert.id']);
      knownIds = new Set(list.map((a) => a['alert.id']));
      alerts = list;
      loadedOnce = true;
      halted = false;
      lastUpdate = Date.now();
      updateBanner.classList.add('hidden');
      const signature = list.map((a) => `${a['alert.id']}:${a.status ?? ''}:${a.suppressed ?? 0}:${(a.deliveries ?? []).length}`).join(',');
      if (signature !== shownSignature || initial) {
        shownSignature = signature;
        drawResults(fresh);
      }
    } catch (e) {
      if (isAbort(e) || mine !== sequence || ctx.signal.aborted) return;
      halted = stopsPolling(e);
      if (!loadedOnce || initial) {
        fill(results, errorState(e, () => load(true), 'Loading alerts failed'));
      } else {
        const next = halted ? 'Live updates stopped; change the filters to try again.' : 'Showing the last results.';
        fill(updateBanner, `Live update failed: ${errorMessage(e)}. ${next}`);
        updateBanner.classList.remove('hidden');
      }
    }
    drawLiveStatus();
    schedule();
  };

  /** The alerts that are on screen (not inside a collapsed group), in order. */
  const visibleAlerts = () => {
    if (filters.group === 'none') return alerts;
    return grouped().flatMap((g) => (collapsed.has(g.key) ? [] : g.alerts));
  };

  const grouped = () => {
    /** @type {Map<string, {key: string, label: string, alerts: Alert[]}>} */
    const groups = new Map();
    for (const a of alerts) {
      const g = groupOf(a, filters.group);
      let entry = groups.get(g.key);
      if (!entry) {
        entry = { ...g, alerts: [] };
        groups.set(g.key, entry);
      }
      entry.alerts.push(a);
    }
    return [...groups.values()];
  };

  /** The query of an alert's entity links: the page's range and the alert's tenant. @param {Alert} a */
  const entityQuery = (a) => entityLinkQuery(rangeToQuery(filters.range), a.tenant);
  const FOLDED = 'Folded repeats';
  const columns = ['Time', 'Level', 'Rule', 'Host', 'User', 'Kind', 'Status', FOLDED, 'Deliveries', ...(allTenants ? ['Tenant'] : []), 'Actions'];
  /** @type {Record<string, string>} */
  const columnTitles = { [FOLDED]: 'Repeats of the same rule and entity that dedup folded into the alert (not false-positive suppression)' };

  /** @param {Alert} a @param {boolean} isNew */
  const alertRow = (a, isNew) => {
    const id = a['alert.id'];
    const tr = h(
      'tr',
      {
        'data-testid': 'alert-row',
        'data-alert-id': id,
        'data-level': String(a['rule.level'] ?? ''),
        'data-status': String(a.status ?? 'open'),
        class: ['alert-row', isNew && 'is-new', id === selectedId && 'selected'],
        'aria-current': id === selectedId ? 'true' : null,
      },
      h('td', { class: 'nowrap' }, timeEl(a['@timestamp'])),
      h('td', null, levelBadge(a['rule.level'])),
      h('td', { class: 'rule-cell' }, h('a', { href: `#/alerts/${encodeURIComponent(id)}`, 'data-testid': 'alert-link', 'data-focus-key': `open:${id}` }, String(a['rule.title'] ?? a['rule.id'] ?? id))),
      h('td', null, focusKey(entityLink('host', a['host.name'], entityQuery(a)), `host:${id}`)),
      h('td', null, focusKey(entityLink('user', a['user.name'], entityQuery(a)), `user:${id}`)),
      h('td', null, String(a['detection.kind'] ?? '')),
      h('td', null, statusBadge(a.status)),
      h('td', { class: 'num' }, String(a.suppressed ?? 0)),
      h('td', { class: 'nowrap', title: (a.deliveries ?? []).map((d) => `${d.responder}: ${d.outcome}`).join('\n') || null }, deliverySummary(a)),
      allTenants ? h('td', null, String(a.tenant ?? '')) : null,
      h(
        'td',
        { class: 'nowrap' },
        a.status === 'false_positive'
          ? h('button', { type: 'button', class: 'small secondary', disabled: true, title: ackBlocked(a.status), 'aria-label': `Acknowledge ${a['rule.title'] ?? id} (off: ${ackBlocked(a.status)})`, 'data-testid': 'ack-blocked' }, 'Ack')
          : a.status !== 'acknowledged'
            ? h('button', { type: 'button', class: 'small secondary', 'aria-label': `Acknowledge ${a['rule.title'] ?? id}`, 'data-focus-key': `ack:${id}`, onclick: () => act('a', id) }, 'Ack')
            : null,
        a.status !== 'false_positive'
          ? h('button', { type: 'button', class: 'small secondary', 'aria-label': `Mark false positive: ${a['rule.title'] ?? id}`, 'data-focus-key': `fp:${id}`, onclick: () => act('f', id) }, 'FP')
          : null,
      ),
    );
    tr.addEventListener('click', (e) => {
      if (e.target instanceof Element && e.target.closest('a, button')) return;
      select(id, false);
    });
    return tr;
  };

  /** @param {Set<string>} fresh */
  const drawResults = (fresh) => {
    const focusedKey = document.activeElement instanceof HTMLElement && results.contains(document.activeElement) ? document.activeElement.dataset.focusKey : undefined;
    const scrolled = results.querySelector('.table-wrap')?.scrollTop ?? 0;
    if (!alerts.length) {
      fill(results, emptyState('No alerts match these filters in this time range.'));
      return;
    }
    if (selectedId && !alerts.some((a) => a['alert.id'] === selectedId)) selectedId = null;
    /** @type {HTMLElement[]} */
    const rows = [];
    if (filters.group === 'none') {
      for (const a of alerts) rows.push(alertRow(a, fresh.has(a['alert.id'])));
    } else {
      for (const g of grouped()) {
        const open = !collapsed.has(g.key);
        rows.push(
          h(
            'tr',
            { class: 'group-row', 'data-testid': 'group-row' },
            h(
              'th',
              { colspan: columns.length, scope: 'rowgroup' },
              h(
                'button',
                {
                  type: 'button',
                  class: 'group-toggle',
                  'aria-expanded': String(open),
                  'data-testid': 'group-toggle',
                  'data-focus-key': `group:${g.key}`,
                  onclick: () => {
                    if (collapsed.has(g.key)) collapsed.delete(g.key);
                    else collapsed.add(g.key);
                    drawResults(new Set());
                  },
                },
                h('span', { 'aria-hidden': 'true' }, open ? '▾ ' : '▸ '),
                g.label,
                h('span', { class: 'count', 'data-testid': 'group-count' }, ` · ${g.alerts.length} alert${g.alerts.length === 1 ? '' : 's'}`),
              ),
            ),
          ),
        );
        if (open) for (const a of g.alerts) rows.push(alertRow(a, fresh.has(a['alert.id'])));
      }
    }
    const capped = alerts.length >= filters.limit;
    fill(
      results,
      h(
        'p',
        { class: 'summary' },
        h('span', { 'data-testid': 'alerts-count' }, `${alerts.length} alert${alerts.length === 1 ? '' : 's'}`),
        capped ? ` — the newest ${filters.limit}; narrow the filters or show more.` : '',
        fresh.size ? h('span', { class: 'new-note' }, ` · ${fresh.size} new`) : null,
      ),
      h(
        'div',
        { class: 'table-wrap tall' },
        h(
          'table',
          { class: 'data alerts', 'data-testid': 'alerts-table' },
          h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', title: columnTitles[c] ?? null }, c)))),
          h('tbody', null, rows),
        ),
      ),
    );
    const wrap = results.querySelector('.table-wrap');
    if (wrap && scrolled) wrap.scrollTop = scrolled;
    if (focusedKey) {
      const again = results.querySelector(`[data-focus-key="${CSS.escape(focusedKey)}"]`);
      if (again instanceof HTMLElement) again.focus({ preventScroll: true });
    }
  };

  /**
   * Selects an alert row (and scrolls it into view).
   * @param {string} id
   * @param {boolean} scroll
   */
  const select = (id, scroll) => {
    selectedId = id;
    for (const tr of results.querySelectorAll('tr.alert-row')) {
      const on = tr instanceof HTMLElement && tr.dataset.alertId === id;
      tr.classList.toggle('selected', on);
      if (on) tr.setAttribute('aria-current', 'true');
      else tr.removeAttribute('aria-current');
      if (on && scroll) tr.scrollIntoView({ block: 'nearest' });
    }
  };

  /** @param {number} delta */
  const move = (delta) => {
    const list = visibleAlerts();
    if (!list.length) return;
    const at = list.findIndex((a) => a['alert.id'] === selectedId);
    const next = at < 0 ? (delta > 0 ? 0 : list.length - 1) : Math.max(0, Math.min(list.length - 1, at + delta));
    select(list[next]['alert.id'], true);
  };

  /**
   * A triage action on an alert (the selected one by default).
   * @param {'a' | 'f'} key
   * @param {string | null} [id]
   */
  const act = async (key, id = selectedId) => {
    if (!id) return;
    const status = alerts.find((a) => a['alert.id'] === id)?.status;
    const done = key === 'a' ? await acknowledge(id, status) : await falsePositive(id);
    if (done && !ctx.signal.aborted) load(false);
  };

  setPageShortcuts([
    { key: 'j', label: 'Select the next alert', run: () => move(1) },
    { key: 'k', label: 'Select the previous alert', run: () => move(-1) },
    {
      key: 'Enter',
      label: 'Open the selected alert',
      run: () => {
        if (selectedId) location.hash = buildHash(['alerts', selectedId]);
      },
    },
    { key: 'a', label: 'Acknowledge the selected alert (not one marked false positive: reopen it first)', run: () => act('a') },
    { key: 'f', label: 'Mark the selected alert false positive (asks for a note)', run: () => act('f') },
  ]);

  fill(
    root,
    h(
      'section',
      { class: 'page', 'data-testid': 'page-alerts' },
      h('div', { class: 'page-head' }, h('h1', null, 'Alerts'), liveStatus, pauseButton),
      filterBox,
      updateBanner,
      results,
    ),
  );
  drawFilters();
  drawLiveStatus();
  load(true);
}
