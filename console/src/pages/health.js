// pages/health.js — the service's health over the last hour (#/health), from
// GET /v1/health/history every 10 s: ingest rates by source and dataset, dead letters, bus lag,
// store latency, the loss ledger (received = appended + dead-lettered + rejected) and silent
// sources. A tenant's token may not read the history (403) but still sees its silent sources.

import { ApiError, getJson, isAbort } from '../api.js';
import { timeChart } from '../charts.js';
import { emptyState, errorState, fill, h, loadingState, timeEl, valueText } from '../dom.js';
import { counterRates, gaugeSums, ledger, ledgerVerdict, LEDGER_STUCK_SAMPLES, storeLatency, sumByLabel } from '../metrics.js';
import { formatLocal } from '../time.js';

export const title = 'Health';

const POLL_MS = 10_000;
const SILENCE_EVERY_MS = 60_000;
/** The history shown: one hour. */
const HOUR_MS = 3_600_000;

/** @typedef {import('../metrics.js').Sample} Sample */

/**
 * @param {number} v
 */
function perSecond(v) {
  if (v === 0) return '0';
  if (v >= 100) return `${Math.round(v)}/s`;
  if (v >= 1) return `${Number(v.toFixed(1))}/s`;
  return `${Number(v.toPrecision(2))}/s`;
}

/** @param {number} v */
function seconds(v) {
  if (v === 0) return '0';
  if (v >= 1) return `${Number(v.toFixed(2))} s`;
  return `${Number((v * 1000).toPrecision(3))} ms`;
}

/**
 * @param {HTMLElement} root
 * @param {import('../types.js').PageContext} ctx
 */
export function render(root, ctx) {
  const status = h('p', { class: 'muted', 'data-testid': 'health-status', role: 'status' });
  const body = h('div', null, loadingState('Loading the health history…'));
  const silentBox = h('div', { 'data-testid': 'silent-sources' }, loadingState('Loading silent sources…'));
  /** @type {number | null} */
  let timer = null;
  let loadedOnce = false;
  let lastSilence = 0;
  /** Set when the history was refused (403): only the silent sources are refreshed then. */
  let forbidden = false;

  const refreshSilent = () => {
    if (Date.now() - lastSilence < SILENCE_EVERY_MS) return;
    lastSilence = Date.now();
    loadSilent();
  };

  const stop = () => {
    if (timer !== null) window.clearTimeout(timer);
    timer = null;
  };
  const schedule = () => {
    stop();
    if (ctx.signal.aborted || document.visibilityState !== 'visible') return;
    timer = window.setTimeout(load, POLL_MS);
  };
  const onVisibility = () => {
    if (document.visibilityState === 'visible' && timer === null) load();
    else if (document.visibilityState !== 'visible') stop();
  };
  document.addEventListener('visibilitychange', onVisibility);
  ctx.onCleanup(() => {
    stop();
    document.removeEventListener('visibilitychange', onVisibility);
  });

  /** The samples of the last hour held so far (oldest first). @type {Sample[]} */
  let held = [];
  const load = async () => {
    stop();
    if (forbidden) {
      refreshSilent();
      schedule();
      return;
    }
    try {
      // After the first hour, only the samples taken since the last one held are asked for.
      const last = held.length > 0 ? held[held.length - 1].t : null;
      const query = last === null ? '?minutes=60' : `?minutes=60&after=${last}`;
      const data = await getJson(`/v1/health/history${query}`, { signal: ctx.signal });
      if (ctx.signal.aborted) return;
      /** @type {Sample[]} */
      const fresh = (Array.isArray(data?.samples) ? data.samples : []).filter((/** @type {any} */ x) => typeof x?.t === 'number' && x.values && typeof x.values === 'object');
      const cut = Date.now() - HOUR_MS;
      held = held.concat(fresh).filter((x) => x.t >= cut);
      const samples = held;
      loadedOnce = true;
      draw(samples, Number(data?.interval_seconds ?? 5));
      status.textContent = `Updated ${formatLocal(Date.now())} · ${samples.length} samples, one every ${Number(data?.interval_seconds ?? 5)} s · refreshes every ${POLL_MS / 1000} s`;
      refreshSilent();
    } catch (e) {
      if (isAbort(e) || ctx.signal.aborted) return;
      if (e instanceof ApiError && e.status === 403) {
        fill(
          body,
          h(
            'div',
            { class: 'state state-error', role: 'alert', 'data-testid': 'health-forbidden' },
            h('p', null, h('strong', null, 'The health history needs a token of every tenant. ')),
            h('p', null, ctx.session.tenant ? `This token is confined to tenant “${ctx.session.tenant}”, and the history spans all tenants (like /metrics).` : `The server refused it: ${e.message}`),
            h('p', null, 'The silent sources below are those this token may read.'),
          ),
        );
        forbidden = true;
        status.textContent = '';
        refreshSilent();
        schedule();
        return;
      }
      if (!loadedOnce) fill(body, errorState(e, load, 'Loading the health history failed'));
      else status.textContent = `Refresh failed (${e instanceof Error ? e.message : String(e)}); showing the last data.`;
    }
    schedule();
  };

  /**
   * @param {Sample[]} samples
   * @param {number} interval
   */
  const draw = (samples, interval) => {
    if (samples.length === 0) {
      fill(body, emptyState('No samples yet: the service takes one every few seconds after it starts.'));
      return;
    }
    const bySource = counterRates(samples, 'vedette_ingest_events_total', 'source');
    const byDataset = counterRates(samples, 'vedette_ingest_events_by_dataset_total', 'dataset');
    const deadRates = counterRates(samples, 'vedette_ingest_dead_letters_total', 'reason');
    const lag = gaugeSums(samples, 'vedette_bus_consumer_lag_records', 'topic');
    const latency = storeLatency(samples);
    const latest = samples[samples.length - 1];
    const deadTotals = [...sumByLabel(latest, 'vedette_ingest_dead_letters_total', 'reason').entries()].sort((a, b) => b[1] - a[1]);
    const l = ledger(latest);
    const verdict = ledgerVerdict(samples);
    const note = samples.length < 2 ? 'Rates need two samples; the next comes in a few seconds.' : undefined;
    fill(
      body,
      h(
        'div',
        { class: 'grid-2' },
        h('section', { class: 'card' }, timeChart({ title: 'Events per second by source', ...bySource, kind: 'line', yFormat: perSecond, testid: 'chart-ingest-source', emptyText: note ?? 'No events ingested in the last hour.' })),
        h('section', { class: 'card' }, timeChart({ title: 'Events per second by dataset', ...byDataset, kind: 'line', yFormat: perSecond, testid: 'chart-ingest-dataset', emptyText: note ?? 'No events ingested in the last hour.' })),
        h(
          'section',
          { class: 'card' },
          timeChart({ title: 'Dead letters per second by reason', ...deadRates, kind: 'line', yFormat: perSecond, testid: 'chart-dead-letters', emptyText: 'No dead letters in the last hour.' }),
          deadTotals.length
            ? h(
                'table',
                { class: 'kv', 'data-testid': 'dead-letter-totals' },
                h('caption', null, 'Dead letters since start, by reason'),
                h('tbody', null, deadTotals.map(([reason, n]) => h('tr', null, h('th', { scope: 'row' }, reason || '(no reason)'), h('td', { class: 'num' }, n.toLocaleString())))),
              )
            : h('p', { class: 'muted' }, 'No dead letters since start.'),
        ),
        h('section', { class: 'card' }, timeChart({ title: 'Bus consumer lag by topic (records)', ...lag, kind: 'line', testid: 'chart-bus-lag', emptyText: 'No consumer lag reported (embedded bus or no consumers).' })),
        h('section', { class: 'card' }, timeChart({ title: 'Store latency (average per write, per interval)', ...latency, kind: 'line', yFormat: seconds, testid: 'chart-store-latency', emptyText: note ?? 'No store writes in the last hour.' })),
        h(
          'section',
          { class: 'card', 'data-testid': 'ledger' },
          h('h2', null, 'Loss ledger'),
          h('p', { class: 'muted' }, 'At ', timeEl(latest.t), ', totals since start, summed over sources.'),
          h(
            'table',
            { class: 'kv' },
            h(
              'tbody',
              null,
              /** @type {Array<[string, number]>} */ ([
                ['Received', l.received],
                ['Appended to the bus', l.appended],
                ['Dead-lettered', l.deadLettered],
                ['Rejected', l.rejected],
              ]).map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k), h('td', { class: 'num', 'data-testid': `ledger-${k.split(' ')[0].toLowerCase()}` }, v.toLocaleString()))),
            ),
          ),
          ledgerLine(verdict),
          h(
            'p',
            { 'data-testid': 'ledger-stored' },
            l.storedEvents === null
              ? 'The store has not reported stored events yet.'
              : `Stored events ${l.storedEvents.toLocaleString()} vs appended ${l.appended.toLocaleString()}` +
                  (l.storedEvents === l.appended ? ' — all stored.' : ` — ${(l.appended - l.storedEvents).toLocaleString()} not (yet) stored.`),
          ),
        ),
      ),
    );
    void interval;
  };

  /**
   * The ledger's verdict as a line (the e2e test looks for "balanced" in it once all is stored).
   * @param {{state: string, difference: number}} verdict
   */
  const ledgerLine = (verdict) => {
    const n = verdict.difference.toLocaleString();
    if (verdict.state === 'balanced') return h('p', { class: 'balance ok', 'data-testid': 'ledger-balance' }, '✓ balanced: received = appended + dead-lettered + rejected');
    if (verdict.state === 'stuck') {
      return h(
        'p',
        { class: 'balance bad', 'data-testid': 'ledger-balance', 'data-state': 'stuck' },
        `✗ off by ${n} over the last ${LEDGER_STUCK_SAMPLES} samples: received − (appended + dead-lettered + rejected) = ${n}, unchanged, so these records are not just in flight`,
      );
    }
    return h(
      'p',
      { class: 'balance neutral', 'data-testid': 'ledger-balance', 'data-state': 'in-flight' },
      verdict.difference > 0 ? `${n} in flight` : `${(-verdict.difference).toLocaleString()} counted ahead of received`,
      h('span', { class: 'muted' }, ` — received − (appended + dead-lettered + rejected) = ${n} in the latest sample; usually records between receipt and the bus while the counters are read. Flagged if the same difference holds over ${LEDGER_STUCK_SAMPLES} samples.`),
    );
  };

  const loadSilent = async () => {
    try {
      const q = new URLSearchParams({ kind: 'silence', from: String(Date.now() - 86_400_000), limit: '1000' });
      const data = await getJson(`/v1/alerts?${q}`, { signal: ctx.signal });
      if (ctx.signal.aborted) return;
      /** @type {import('../types.js').Alert[]} */
      const list = Array.isArray(data?.alerts) ? data.alerts : [];
      if (!list.length) {
        fill(silentBox, emptyState('No source went silent in the last 24 hours.'));
        return;
      }
      fill(
        silentBox,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'data', 'data-testid': 'silent-table' },
            h('thead', null, h('tr', null, ['Alert time', 'Dataset', 'Host', 'Last seen', 'Silent for', 'Events before', 'Tenant'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              null,
              list.map((a) => {
                const m = a.matched ?? {};
                return h(
                  'tr',
                  null,
                  h('td', null, h('a', { href: `#/alerts/${encodeURIComponent(a['alert.id'])}` }, timeEl(a['@timestamp']))),
                  h('td', null, valueText(m['event.dataset'])),
                  h('td', null, valueText(m['host.name'] ?? a['host.name'])),
                  h('td', null, timeEl(m['source.last_seen_ms'] === undefined ? null : Number(m['source.last_seen_ms']))),
                  h('td', null, m['source.silent_minutes'] === undefined ? '' : `${valueText(m['source.silent_minutes'])} min`),
                  h('td', { class: 'num' }, valueText(m['source.events_before'])),
                  h('td', null, valueText(a.tenant)),
                );
              }),
            ),
          ),
        ),
      );
    } catch (e) {
      if (isAbort(e) || ctx.signal.aborted) return;
      fill(silentBox, errorState(e, loadSilent, 'Loading silent sources failed'));
    }
  };

  fill(
    root,
    h(
      'section',
      { class: 'page', 'data-testid': 'page-health' },
      h('div', { class: 'page-head' }, h('h1', null, 'Health'), status),
      body,
      h('section', { class: 'card' }, h('h2', null, 'Silent sources (last 24 hours)'), silentBox),
    ),
  );
  load();
}
