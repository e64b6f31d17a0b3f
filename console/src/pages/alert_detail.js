// pages/alert_detail.js — one alert (#/alerts/<id>): its rule (author, description, false
// positives, references, ATT&CK tags as links), matched fields, its events with the matched keys
// highlighted and first, the entity risk score, responder deliveries, and triage (a, f, r).

import { errorMessage, getJson, isAbort } from '../api.js';
import { describeTag } from '../attack.js';
import { emptyState, entityLink, errorState, fill, h, levelBadge, loadingState, safeHref, statusBadge, timeEl, valueText } from '../dom.js';
import { setPageShortcuts } from '../keys.js';
import { eventEntries, matcher } from '../matching.js';
import { apiFiltersEntity, BROWSER_FILTER_WARNING, entityAlertsQuery, RISK_OFF_TEXT, riskSettings, riskInput, riskScore } from '../risk.js';
import { entityLinkQuery } from '../route.js';
import { cellContent, kvTable } from '../table.js';
import { parseApiTime, urlTime } from '../time.js';
import { ackBlocked, acknowledge, falsePositive, reopen } from '../triage.js';

export const title = 'Alert';

/** @typedef {import('../types.js').Alert} Alert */
/** @typedef {import('../types.js').Rule} Rule */

/**
 * A rule tag as a chip: ATT&CK techniques and tactics link to attack.mitre.org.
 * @param {string} tag
 */
export function tagChip(tag) {
  const t = describeTag(tag);
  if (t.kind === 'other') return h('span', { class: 'chip' }, t.text);
  return h(
    'a',
    { class: `chip chip-${t.kind}`, href: t.url, target: '_blank', rel: 'noopener noreferrer', title: tag, 'data-testid': `attack-${t.kind}` },
    t.text,
  );
}

/**
 * @param {HTMLElement} root
 * @param {import('../types.js').PageContext} ctx
 */
export function render(root, ctx) {
  const id = ctx.args.join('/');
  /** @type {Alert | null} */
  let alert = null;
  let busy = false;

  const body = h('div', { class: 'detail' });
  fill(root, h('section', { class: 'page', 'data-testid': 'page-alert' }, h('p', { class: 'crumbs' }, h('a', { href: '#/alerts' }, '← Alerts')), body));

  /** @param {'a' | 'f' | 'r'} key */
  const act = async (key) => {
    if (!alert || busy) return;
    busy = true;
    try {
      const done = key === 'a' ? await acknowledge(id, alert.status) : key === 'f' ? await falsePositive(id) : await reopen(id);
      if (done && !ctx.signal.aborted) await load(false);
    } finally {
      busy = false;
    }
  };

  setPageShortcuts([
    { key: 'a', label: 'Acknowledge this alert', run: () => act('a') },
    { key: 'f', label: 'Mark this alert false positive (asks for a note)', run: () => act('f') },
    { key: 'r', label: 'Reopen this alert', run: () => act('r') },
  ]);

  /** @param {boolean} initial */
  const load = async (initial) => {
    if (initial) fill(body, loadingState('Loading the alert…'));
    try {
      const [detail, rules] = await Promise.all([
        getJson(`/v1/alerts/${encodeURIComponent(id)}`, { signal: ctx.signal }),
        getJson('/v1/rules', { signal: ctx.signal }).catch((e) => (isAbort(e) ? Promise.reject(e) : { error: e })),
      ]);
      if (ctx.signal.aborted) return;
      alert = /** @type {Alert} */ (detail?.alert);
      if (!alert) throw new Error('the server answered without the alert');
      const events = Array.isArray(detail.events) ? detail.events : [];
      draw(alert, events, rules);
    } catch (e) {
      if (isAbort(e) || ctx.signal.aborted) return;
      fill(body, errorState(e, () => load(true), 'Loading the alert failed'));
    }
  };

  /**
   * @param {Alert} a
   * @param {Array<Record<string, unknown>>} events
   * @param {any} rules
   */
  const draw = (a, events, rules) => {
    const ruleList = Array.isArray(rules?.rules) ? /** @type {Rule[]} */ (rules.rules) : [];
    const rule = ruleList.find((r) => r.id && r.id === a['rule.id']) ?? null;
    const isMatched = matcher(a.matched);
    const time = parseApiTime(a['@timestamp']);
    const around = entityLinkQuery(
      time === null ? {} : { range: 'custom', from: urlTime(time - riskSettings().windowMs), to: urlTime(time + 3_600_000) },
      a.tenant,
    );
    const status = String(a.status ?? 'open');
    const ackWhy = ackBlocked(status);
    const riskBox = h('div', { 'data-testid': 'risk-block' }, loadingState('Computing the entity risk…'));

    fill(
      body,
      h(
        'div',
        { class: 'page-head' },
        h('h1', { 'data-testid': 'alert-title' }, String(a['rule.title'] ?? a['rule.id'] ?? 'Alert')),
        levelBadge(a['rule.level']),
        h('span', { 'data-testid': 'alert-status' }, statusBadge(status)),
      ),
      h(
        'div',
        { class: 'actions', 'data-testid': 'triage-actions' },
        h('button', { type: 'button', 'data-testid': 'action-ack', disabled: ackWhy !== null, title: ackWhy, 'aria-describedby': status === 'false_positive' ? 'ack-hint' : null, onclick: () => act('a') }, 'Acknowledge ', h('kbd', null, 'a')),
        h('button', { type: 'button', class: 'warn', 'data-testid': 'action-fp', disabled: status === 'false_positive', onclick: () => act('f') }, 'Mark false positive ', h('kbd', null, 'f')),
        h('button', { type: 'button', class: 'secondary', 'data-testid': 'action-reopen', disabled: status === 'open', onclick: () => act('r') }, 'Reopen ', h('kbd', null, 'r')),
        status === 'false_positive' ? h('span', { id: 'ack-hint', class: 'hint', 'data-testid': 'ack-hint' }, `Acknowledging is off. ${ackBlocked(status)}.`) : null,
      ),
      h(
        'div',
        { class: 'grid-2' },
        h(
          'section',
          { class: 'card' },
          h('h2', null, 'Alert'),
          kvTable([
            ['Time', a['@timestamp']],
            ['Kind', a['detection.kind']],
            ['Rule id', a['rule.id']],
            ['Tenant', a.tenant],
            ['Dedup key', a['dedup.key']],
            ['Alert id', a['alert.id']],
            ['Folded repeats (dedup)', a.suppressed ?? 0],
            ['Events', (a['event.ids'] ?? []).length],
          ]),
          h('p', null, 'Host: ', entityLink('host', a['host.name'], around), ' · User: ', entityLink('user', a['user.name'], around)),
        ),
        h(
          'section',
          { class: 'card', 'data-testid': 'triage-status' },
          h('h2', null, 'Triage'),
          h('p', null, statusBadge(status)),
          status === 'open' && !a.status_at
            ? h('p', { class: 'muted' }, 'Not triaged yet.')
            : kvTable([
                ['Status', status.replace('_', ' ')],
                ['By', a.status_by ?? '—'],
                ['At', a.status_at ?? null],
                ['Note', a.status_note ?? '—'],
              ]),
        ),
      ),
      h(
        'div',
        { class: 'grid-2' },
        h(
          'section',
          { class: 'card' },
          h('h2', null, 'Matched fields'),
          a.matched && Object.keys(a.matched).length
            ? kvTable(Object.entries(a.matched), { testid: 'matched-table' })
            : emptyState('The alert names no matched fields.'),
        ),
        h('section', { class: 'card' }, h('h2', null, 'Entity risk'), riskBox),
      ),
      h(
        'section',
        { class: 'card', 'data-testid': 'events-table' },
        h('h2', null, `Events (${events.length}${(a['event.ids'] ?? []).length > events.length ? ` of ${(a['event.ids'] ?? []).length}` : ''})`),
        h('p', { class: 'hint' }, 'Fields the detection matched are highlighted and listed first.'),
        events.length ? events.map((ev, i) => eventTable(ev, i, events.length, isMatched)) : emptyState('The events of this alert were not found in the store.'),
      ),
      ruleSection(a, rule, rules),
      deliveriesSection(a),
    );
    drawRisk(a, time, riskBox);
  };

  /**
   * @param {Alert} a
   * @param {number | null} time
   * @param {HTMLElement} box
   */
  const drawRisk = async (a, time, box) => {
    /** @type {Array<{kind: 'host' | 'user', name: string}>} */
    const entities = [];
    if (a['host.name']) entities.push({ kind: 'host', name: String(a['host.name']) });
    if (a['user.name']) entities.push({ kind: 'user', name: String(a['user.name']) });
    if (!entities.length || time === null) {
      fill(box, emptyState('This alert names no host or user.'));
      return;
    }
    if (!riskSettings().enabled) {
      fill(
        box,
        entities.map((e) => h('p', null, h('strong', null, `${e.kind} `), entityLink(e.kind, e.name, entityLinkQuery({}, a.tenant)))),
        h('p', { class: 'muted', 'data-testid': 'risk-off' }, `Not scored: ${RISK_OFF_TEXT}.`),
      );
      return;
    }
    try {
      const parts = await Promise.all(
        entities.map(async (e) => {
          const q = entityAlertsQuery(e.name, time - riskSettings().windowMs, time + 1, typeof a.tenant === 'string' ? a.tenant : null);
          const data = await getJson(`/v1/alerts?${q}`, { signal: ctx.signal });
          /** @type {Alert[]} */
          const fetched = Array.isArray(data?.alerts) ? data.alerts : [];
          const list = fetched.filter((x) => x[e.kind === 'host' ? 'host.name' : 'user.name'] === e.name);
          const { score, contributions } = riskScore(list.map(riskInput), time);
          const titles = new Map(list.map((x) => [String(x['rule.id'] ?? x['rule.title'] ?? ''), String(x['rule.title'] ?? x['rule.id'] ?? '')]));
          return h(
            'div',
            { class: 'risk-entity' },
            h(
              'p',
              null,
              h('strong', null, `${e.kind} `),
              entityLink(e.kind, e.name, entityLinkQuery({}, a.tenant)),
              ': ',
              h('span', { class: ['risk-score', score >= riskSettings().threshold && 'risk-high'], 'data-testid': 'risk-score' }, `score ${Math.round(score * 10) / 10} / threshold ${riskSettings().threshold}`),
              fetched.length >= 1000 ? h('span', { class: 'muted' }, ' (from the newest 1,000 alerts)') : null,
            ),
            apiFiltersEntity(e.name) ? null : h('p', { class: 'banner', role: 'note', 'data-testid': 'entity-filter-warning' }, BROWSER_FILTER_WARNING),
            contributions.length
              ? h('ul', { class: 'plain' }, contributions.map((c) => h('li', null, `+${c.weight} `, titles.get(c.rule) ?? c.rule, ' (', timeEl(c.time), ')')))
              : h('p', { class: 'muted' }, 'No alert of this entity adds risk in the window.'),
          );
        }),
      );
      if (ctx.signal.aborted) return;
      fill(box, h('p', { class: 'hint' }, `The ${Math.round(riskSettings().windowMs / 3_600_000)} hours up to this alert: each rule counts once at its highest weight (informational 1, low 5, medium 15, high 35, critical 60; ×1.5 with an ATT&CK technique tag).`), parts);
    } catch (e) {
      if (isAbort(e) || ctx.signal.aborted) return;
      fill(box, h('p', { class: 'form-error' }, `The risk score could not be computed: ${errorMessage(e)}`));
    }
  };

  load(true);
}

/**
 * The rule section: description, author, false positives, references and tags.
 * @param {Alert} a
 * @param {Rule | null} rule
 * @param {any} rules the GET /v1/rules answer (or {error})
 */
function ruleSection(a, rule, rules) {
  const tags = rule?.tags ?? a['rule.tags'] ?? [];
  const tagList = tags.length ? h('ul', { class: 'chips', 'data-testid': 'rule-tags' }, tags.map((t) => h('li', null, tagChip(String(t))))) : h('p', { class: 'muted' }, 'No tags.');
  if (!rule) {
    const why = rules?.error ? `The rules could not be loaded: ${errorMessage(rules.error)}` : 'This detection has no rule file (a built-in detection, or the rule is no longer loaded).';
    return h('section', { class: 'card', 'data-testid': 'rule-info' }, h('h2', null, 'Rule'), kvTable([['Author', a['rule.author'] ?? '—']]), h('p', { class: 'muted' }, why), h('h3', null, 'Tags'), tagList);
  }
  const refs = rule.references ?? [];
  const fps = rule.falsepositives ?? [];
  return h(
    'section',
    { class: 'card', 'data-testid': 'rule-info' },
    h('h2', null, 'Rule'),
    kvTable([
      ['Title', rule.title],
      ['Level', rule.level],
      ['Author', rule.author ?? a['rule.author'] ?? '—'],
      ['File', rule.file],
    ]),
    rule.description ? h('p', { class: 'description' }, rule.description) : null,
    h('h3', null, 'False positives'),
    fps.length ? h('ul', null, fps.map((f) => h('li', null, String(f)))) : h('p', { class: 'muted' }, 'None noted.'),
    h('h3', null, 'References'),
    refs.length
      ? h(
          'ul',
          { class: 'refs' },
          refs.map((r) => {
            const text = String(r);
            return h('li', null, /^https?:\/\//i.test(text) && safeHref(text) ? h('a', { href: text, target: '_blank', rel: 'noopener noreferrer' }, text) : text);
          }),
        )
      : h('p', { class: 'muted' }, 'None.'),
    h('h3', null, 'Tags'),
    tagList,
  );
}

/**
 * One event as a key/value table, matched keys marked and first.
 * @param {Record<string, unknown>} event
 * @param {number} index
 * @param {number} count
 * @param {(key: string, value?: unknown) => boolean} isMatched
 */
function eventTable(event, index, count, isMatched) {
  const entries = eventEntries(event, isMatched);
  const label = [`Event ${index + 1} of ${count}`, valueText(event['event.dataset'] ?? ''), valueText(event['event.id'] ?? '')].filter(Boolean).join(' · ');
  return h(
    'details',
    { class: 'event', open: index < 3 ? true : null, 'data-testid': 'event' },
    h('summary', null, label, ' ', event['@timestamp'] ? timeEl(event['@timestamp']) : null),
    h(
      'table',
      { class: 'kv event-kv' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col' }, 'Source'))),
      h(
        'tbody',
        null,
        entries.map((e) =>
          h(
            'tr',
            { class: e.hit ? 'hit-row' : null },
            h('th', { scope: 'row' }, e.hit ? h('mark', { class: 'hit' }, e.key) : e.key),
            h('td', { class: 'value' }, e.hit ? h('mark', { class: 'hit' }, valueText(e.value)) : cellContent(e.value)),
            h('td', { class: 'muted small' }, e.source === 'field' ? 'original' : 'column'),
          ),
        ),
      ),
    ),
  );
}

/**
 * The responder deliveries of an alert.
 * @param {Alert} a
 */
function deliveriesSection(a) {
  const list = a.deliveries ?? [];
  return h(
    'section',
    { class: 'card', 'data-testid': 'deliveries' },
    h('h2', null, 'Responder deliveries'),
    list.length
      ? h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'data' },
            h('thead', null, h('tr', null, ['Responder', 'Outcome', 'Status', 'Attempts', 'Latency', 'Reason', 'At'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              null,
              list.map((d) =>
                h(
                  'tr',
                  null,
                  h('td', null, d.responder ?? ''),
                  h('td', null, h('span', { class: `badge outcome-${d.outcome === 'delivered' ? 'ok' : 'bad'}` }, String(d.outcome ?? '').replace('_', ' '))),
                  h('td', null, valueText(d.status)),
                  h('td', { class: 'num' }, valueText(d.attempts)),
                  h('td', { class: 'num' }, d.latency_ms === undefined ? '' : `${d.latency_ms} ms`),
                  h('td', null, d.reason ?? ''),
                  h('td', null, timeEl(d.at)),
                ),
              ),
            ),
          ),
        )
      : emptyState('No finished deliveries (no responder matched, or they are still being tried).'),
  );
}
