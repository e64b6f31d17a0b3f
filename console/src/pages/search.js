// pages/search.js — SQL search (#/search): an editor (Ctrl+Enter runs) with {from}/{to}
// placeholders filled from the time-range picker, the example queries of the running store,
// sortable results with a row detail panel and CSV/JSON export, and the Sigma retro-hunt. A new
// query (or hunt) aborts the one still running; the drafts end with the session.

import { ApiError, getJson, isAbort, postJson, runQuery } from '../api.js';
import { columnsOf, toCsvFile, toJson } from '../csv.js';
import { download, emptyState, entityLink, errorState, fill, h, levelBadge, loadingState, timeEl, valueText } from '../dom.js';
import { rangeFromQuery, rangePicker, rangeToQuery } from '../rangepicker.js';
import { entityLinkQuery } from '../route.js';
import { HUNT_DRAFT_KEY, SQL_DRAFT_KEY } from '../session.js';
import { kvTable, sortableTable } from '../table.js';
import { fillTimePlaceholders, formatDuration, rangeEnd, resolveRange, sqlTime } from '../time.js';

export const title = 'Search';

const DEFAULT_RANGE = '24h';
const SQL_KEY = SQL_DRAFT_KEY;
const HUNT_KEY = HUNT_DRAFT_KEY;
const MAX_HUNT_ALERTS = 500;
const DEFAULT_SQL =
  'SELECT "@timestamp", "host.name", "user.name", "event.dataset", message\nFROM events\nWHERE "@timestamp" >= {from} AND "@timestamp" < {to}\nORDER BY "@timestamp" DESC\nLIMIT 100';
const TIME_FILTER = '"@timestamp" >= {from} AND "@timestamp" < {to}';

/** @typedef {import('../types.js').HuntAlert} HuntAlert */

/**
 * @param {string} key
 * @param {string} fallback
 */
function remembered(key, fallback) {
  try {
    return sessionStorage.getItem(key) ?? fallback;
  } catch {
    return fallback;
  }
}

/**
 * @param {string} key
 * @param {string} value
 */
function remember(key, value) {
  try {
    sessionStorage.setItem(key, value);
  } catch {
    /* ignore */
  }
}

/**
 * POST /v1/hunt with the range as Unix ms.
 * @param {string} sigma
 * @param {number} from
 * @param {number} to
 * @param {AbortSignal} signal
 */
export function hunt(sigma, from, to, signal) {
  return postJson('/v1/hunt', { sigma, from, to, max_alerts: MAX_HUNT_ALERTS }, { signal });
}

/**
 * Why a hunt's answer is incomplete, from `truncated_reason` (`max_alerts` or `time`), or null.
 * @param {{truncated?: unknown, truncated_reason?: unknown} | null | undefined} data
 * @param {number} matches the alerts it answered
 * @returns {string | null}
 */
export function huntTruncation(data, matches) {
  if (data?.truncated_reason === 'time') return 'stopped at the 25 s read limit; narrow the time range';
  if (data?.truncated_reason === 'max_alerts' || data?.truncated) return `stopped after ${matches.toLocaleString()} matches`;
  return null;
}

/**
 * A controller for one run (a query, a hunt) that aborts the previous run's and goes with the page.
 * @param {AbortController | null} previous
 * @param {AbortSignal} page the page's signal
 */
function nextRun(previous, page) {
  previous?.abort();
  const run = new AbortController();
  if (page.aborted) run.abort();
  else page.addEventListener('abort', () => run.abort(), { once: true });
  return run;
}

/**
 * @param {HTMLElement} root
 * @param {import('../types.js').PageContext} ctx
 */
export function render(root, ctx) {
  let range = rangeFromQuery(ctx.query, DEFAULT_RANGE);
  const resolved = () => resolveRange(range, Date.now(), DEFAULT_RANGE);

  const editor = h('textarea', {
    id: 'sql',
    class: 'code',
    rows: 8,
    spellcheck: 'false',
    'data-testid': 'sql-editor',
    'data-first-filter': '',
    'aria-describedby': 'sql-help',
  });
  editor.value = remembered(SQL_KEY, DEFAULT_SQL);
  editor.addEventListener('input', () => remember(SQL_KEY, editor.value));
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
  const maxRows = h('input', { id: 'max-rows', type: 'number', min: 1, max: 100000, value: '1000', class: 'narrow', 'data-testid': 'max-rows' });
  const runButton = h('button', { type: 'button', 'data-testid': 'run-query', onclick: () => run() }, 'Run ', h('kbd', null, 'Ctrl+Enter'));
  const literals = h('span', { class: 'literals muted', 'data-testid': 'range-literals' });
  const examples = h('div', { class: 'examples', 'data-testid': 'examples' }, loadingState('Loading example queries…'));
  const results = h('div', { class: 'results', 'data-testid': 'search-results' }, emptyState('Run a query to see rows here.'));
  const pickerSlot = h('span');
  const huntEditor = h('textarea', { id: 'hunt-rule', class: 'code', rows: 10, spellcheck: 'false', 'data-testid': 'hunt-rule', placeholder: 'title: …\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  selection:\n    CommandLine|contains: …\n  condition: selection' });
  huntEditor.value = remembered(HUNT_KEY, '');
  huntEditor.addEventListener('input', () => remember(HUNT_KEY, huntEditor.value));
  const huntButton = h('button', { type: 'button', 'data-testid': 'run-hunt', onclick: () => runHunt() }, 'Run hunt');
  const huntResults = h('div', { class: 'results', 'data-testid': 'hunt-result' });

  const drawLiterals = () => {
    const r = resolved();
    fill(literals, 'Range: ', h('strong', null, r.label), ` — {from} = ${sqlTime(r.from)}, {to} = ${r.to === null ? 'now (at run time)' : sqlTime(r.to)}`);
  };
  const drawPicker = () => {
    fill(
      pickerSlot,
      rangePicker({
        spec: range,
        fallback: DEFAULT_RANGE,
        onChange: (spec) => {
          range = spec;
          ctx.setQuery(rangeToQuery(range));
          drawLiterals();
        },
      }),
    );
    drawLiterals();
  };

  const insertTimeFilter = () => {
    const start = editor.selectionStart ?? editor.value.length;
    const end = editor.selectionEnd ?? start;
    editor.setRangeText(TIME_FILTER, start, end, 'end');
    remember(SQL_KEY, editor.value);
    editor.focus();
  };

  /** @type {AbortController | null} */
  let queryRun = null;
  const run = async () => {
    const r = resolved();
    const sql = fillTimePlaceholders(editor.value, r.from, rangeEnd(r));
    const limit = Math.max(1, Math.min(100000, Number(maxRows.value) || 1000));
    if (!editor.value.trim()) {
      fill(results, emptyState('Write a query first.'));
      return;
    }
    const mine = (queryRun = nextRun(queryRun, ctx.signal));
    fill(results, loadingState('Running the query…'));
    try {
      const { rows, ms, capped } = await runQuery(sql, { maxRows: limit, signal: mine.signal });
      if (mine.signal.aborted) return;
      drawRows(rows, ms, capped, limit);
    } catch (e) {
      if (isAbort(e) || mine.signal.aborted) return;
      fill(results, errorState(e, () => run(), 'The query failed'));
    }
  };

  /**
   * @param {Array<Record<string, unknown>>} rows
   * @param {number} ms
   * @param {boolean} capped
   * @param {number} limit
   */
  const drawRows = (rows, ms, capped, limit) => {
    const columns = columnsOf(rows);
    const detail = h('aside', { class: 'row-detail hidden', 'data-testid': 'row-detail', 'aria-label': 'Row details' });
    const summary = h(
      'p',
      { class: 'summary', 'data-testid': 'result-summary' },
      `${rows.length} row${rows.length === 1 ? '' : 's'} in ${formatDuration(ms)}`,
      capped ? h('strong', null, ` — stopped at the maximum of ${limit} rows`) : '',
    );
    const exportBar = h(
      'span',
      { class: 'export' },
      h('button', { type: 'button', class: 'secondary small', 'data-testid': 'export-csv', disabled: !rows.length, onclick: () => download('vedette-results.csv', toCsvFile(rows, columns), 'text/csv;charset=utf-8') }, 'Export CSV'),
      h('button', { type: 'button', class: 'secondary small', 'data-testid': 'export-json', disabled: !rows.length, onclick: () => download('vedette-results.json', toJson(rows), 'application/json') }, 'Export JSON'),
    );
    if (!rows.length) {
      fill(results, h('div', { class: 'results-head' }, summary, exportBar), emptyState('The query returned no rows.'));
      return;
    }
    const open = (/** @type {Record<string, unknown>} */ row, /** @type {number} */ i) => {
      fill(
        detail,
        h('div', { class: 'row-detail-head' }, h('h3', null, `Row ${i + 1}`), h('button', { type: 'button', class: 'secondary small', 'data-testid': 'row-detail-close', onclick: () => detail.classList.add('hidden') }, 'Close')),
        kvTable(columns.filter((c) => c !== 'fields').map((c) => [c, row[c]])),
        row.fields && typeof row.fields === 'object'
          ? [h('h4', null, 'fields'), kvTable(Object.entries(/** @type {Record<string, unknown>} */ (row.fields)), { testid: 'row-fields' })]
          : null,
      );
      detail.classList.remove('hidden');
      const first = detail.querySelector('button');
      if (first instanceof HTMLElement) first.focus();
    };
    fill(
      results,
      h('div', { class: 'results-head' }, summary, exportBar),
      h('div', { class: 'results-split' }, sortableTable({ columns, rows, testid: 'results-table', onOpen: open, caption: 'Query results' }), detail),
    );
  };

  const loadExamples = async () => {
    fill(examples, loadingState('Loading example queries…'));
    try {
      const data = await getJson('/v1/query/examples', { signal: ctx.signal });
      const list = Array.isArray(data?.examples) ? data.examples : [];
      if (ctx.signal.aborted) return;
      if (!list.length) {
        fill(examples, h('span', { class: 'muted' }, 'No example queries.'));
        return;
      }
      fill(
        examples,
        h('span', { class: 'muted' }, `Examples${data?.dialect ? ` (${data.dialect})` : ''}: `),
        list.map((/** @type {{title?: string, sql?: string}} */ ex) =>
          h(
            'button',
            {
              type: 'button',
              class: 'chip-button',
              'data-testid': 'example-query',
              title: valueText(ex.sql),
              onclick: () => {
                editor.value = String(ex.sql ?? '');
                remember(SQL_KEY, editor.value);
                editor.focus();
              },
            },
            String(ex.title ?? 'Example'),
          ),
        ),
      );
    } catch (e) {
      if (isAbort(e) || ctx.signal.aborted) return;
      fill(examples, errorState(e, loadExamples, 'Loading the example queries failed'));
    }
  };

  /** @type {AbortController | null} */
  let huntRun = null;
  const runHunt = async () => {
    const sigma = huntEditor.value;
    if (!sigma.trim()) {
      fill(huntResults, emptyState('Paste a Sigma rule first.'));
      return;
    }
    const r = resolved();
    const mine = (huntRun = nextRun(huntRun, ctx.signal));
    fill(huntResults, loadingState('Hunting… (at most 25 s)'));
    try {
      const data = await hunt(sigma, r.from, rangeEnd(r), mine.signal);
      if (mine.signal.aborted) return;
      drawHunt(data);
    } catch (e) {
      if (isAbort(e) || mine.signal.aborted) return;
      if (e instanceof ApiError && e.status === 429) {
        fill(
          huntResults,
          h(
            'div',
            { class: 'state state-error', role: 'alert', 'data-testid': 'hunt-busy' },
            h('p', null, h('strong', null, 'Another hunt is running, try again shortly.'), h('span', { class: 'muted' }, ` (${e.message})`)),
            h('button', { type: 'button', 'data-testid': 'retry', onclick: () => runHunt() }, 'Try again'),
          ),
        );
      } else if (e instanceof ApiError && e.status === 422 && e.problems.length) {
        fill(
          huntResults,
          h(
            'div',
            { class: 'state state-error', role: 'alert', 'data-testid': 'hunt-problems' },
            h('p', null, h('strong', null, 'The rule does not load: '), e.message),
            h('ul', null, e.problems.map((p) => h('li', null, p))),
          ),
        );
      } else {
        fill(huntResults, errorState(e, () => runHunt(), 'The hunt failed'));
      }
    }
  };

  /** @param {any} data */
  const drawHunt = (data) => {
    /** @type {HuntAlert[]} */
    const list = Array.isArray(data?.alerts) ? data.alerts : [];
    const truncation = huntTruncation(data, list.length);
    const summary = h(
      'p',
      { class: 'summary', 'data-testid': 'hunt-summary' },
      `Scanned ${Number(data?.events ?? 0).toLocaleString()} events · ${list.length} match${list.length === 1 ? '' : 'es'}`,
      truncation ? h('strong', { 'data-testid': 'hunt-truncated' }, ` — ${truncation}`) : '',
    );
    if (!list.length) {
      fill(huntResults, summary, emptyState('No event in this range matches the rule.'));
      return;
    }
    fill(
      huntResults,
      summary,
      h(
        'div',
        { class: 'table-wrap tall' },
        h(
          'table',
          { class: 'data', 'data-testid': 'hunt-results' },
          h('thead', null, h('tr', null, ['Time', 'Level', 'Rule', 'Host', 'User', 'Matched'].map((c) => h('th', { scope: 'col' }, c)))),
          h(
            'tbody',
            null,
            list.map((a) =>
              h(
                'tr',
                { 'data-testid': 'hunt-row' },
                h('td', { class: 'nowrap' }, timeEl(a.time_ms)),
                h('td', null, levelBadge(a.level)),
                h('td', null, String(a.rule_title ?? a.rule_id ?? '')),
                h('td', null, entityLink('host', a.host, entityLinkQuery({}, a.tenant))),
                h('td', null, entityLink('user', a.user, entityLinkQuery({}, a.tenant))),
                h('td', { class: 'matched' }, Object.entries(a.matched ?? {}).map(([k, v]) => h('div', null, h('code', null, k), ' = ', valueText(v)))),
              ),
            ),
          ),
        ),
      ),
    );
  };

  fill(
    root,
    h(
      'section',
      { class: 'page', 'data-testid': 'page-search' },
      h('div', { class: 'page-head' }, h('h1', null, 'Search')),
      h(
        'section',
        { class: 'card' },
        h('h2', null, h('label', { for: 'sql' }, 'SQL')),
        examples,
        editor,
        h(
          'p',
          { id: 'sql-help', class: 'hint' },
          'Ctrl+Enter runs. ',
          h('code', null, '{from}'),
          ' and ',
          h('code', null, '{to}'),
          " are replaced by the chosen range as quoted UTC literals ('YYYY-MM-DD HH:MM:SS') before the query is sent. Tables: events, alerts, dead_letters, audit; quote dotted columns (\"host.name\").",
        ),
        h(
          'div',
          { class: 'toolbar' },
          pickerSlot,
          h('button', { type: 'button', class: 'secondary small', 'data-testid': 'insert-time-filter', onclick: insertTimeFilter }, 'Insert time filter'),
          h('span', { class: 'field' }, h('label', { for: 'max-rows' }, 'Max rows'), maxRows),
          runButton,
        ),
        literals,
      ),
      results,
      h(
        'section',
        { class: 'card', 'data-testid': 'hunt' },
        h('h2', null, h('label', { for: 'hunt-rule' }, 'Sigma retro-hunt')),
        h('p', { class: 'hint' }, 'Runs a Sigma rule (one or more YAML documents) over the stored events of the chosen time range. Nothing is stored.'),
        huntEditor,
        h('div', { class: 'toolbar' }, huntButton),
        huntResults,
      ),
    ),
  );
  drawPicker();
  loadExamples();
}
