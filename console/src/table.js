// table.js — result tables: sorting values (numbers as numbers, text as text, empty last),
// a sortable table with sticky headers and a per-row details button, and key/value tables.

import { h, timeEl, valueText } from './dom.js';

const TIME_LIKE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z)?$/;

/**
 * A number when the value is one (or a numeric string), else null.
 * @param {unknown} v
 */
function asNumber(v) {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && /^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(v)) return Number(v);
  return null;
}

/**
 * Compares two cell values: empty values last, numbers numerically, the rest as text
 * (with digit runs compared as numbers).
 * @param {unknown} a
 * @param {unknown} b
 */
export function compareValues(a, b) {
  const ea = a === null || a === undefined || a === '';
  const eb = b === null || b === undefined || b === '';
  if (ea || eb) return ea === eb ? 0 : ea ? 1 : -1;
  const na = asNumber(a);
  const nb = asNumber(b);
  if (na !== null && nb !== null) return na - nb;
  return valueText(a).localeCompare(valueText(b), undefined, { numeric: true, sensitivity: 'base' });
}

/**
 * Rows sorted by a column (a stable copy); empty values stay last in both directions.
 * @template {Record<string, unknown>} R
 * @param {R[]} rows
 * @param {string} column
 * @param {'asc' | 'desc'} dir
 * @returns {R[]}
 */
export function sortRows(rows, column, dir) {
  const sign = dir === 'asc' ? 1 : -1;
  return rows
    .map((row, i) => ({ row, i }))
    .sort((x, y) => {
      const a = x.row[column];
      const b = y.row[column];
      const ea = a === null || a === undefined || a === '';
      const eb = b === null || b === undefined || b === '';
      if (ea || eb) return ea === eb ? x.i - y.i : ea ? 1 : -1;
      return sign * compareValues(a, b) || x.i - y.i;
    })
    .map((x) => x.row);
}

/**
 * A cell's content: times in local time, objects as JSON, the rest as text.
 * @param {unknown} v
 */
export function cellContent(v) {
  if (typeof v === 'string' && TIME_LIKE.test(v)) return timeEl(v);
  return valueText(v);
}

/**
 * A sortable results table. Clicking a header sorts by it (again: the other way); a row's
 * details button (or a click on the row) calls onOpen.
 * @param {{columns: string[], rows: Array<Record<string, unknown>>, testid: string, onOpen?: (row: Record<string, unknown>, index: number) => void, caption?: string}} spec
 * @returns {HTMLElement}
 */
export function sortableTable(spec) {
  /** @type {{column: string, dir: 'asc' | 'desc'} | null} */
  let sort = null;
  let rows = spec.rows;
  const tbody = h('tbody');
  const headCells = spec.columns.map((c) =>
    h(
      'th',
      { scope: 'col', 'aria-sort': 'none', 'data-column': c },
      h('button', { type: 'button', class: 'sort', 'data-testid': 'sort-header', onclick: () => sortBy(c) }, c, h('span', { class: 'sort-mark', 'aria-hidden': 'true' })),
    ),
  );
  const drawBody = () => {
    tbody.replaceChildren(
      ...rows.map((row, i) => {
        const tr = h(
          'tr',
          { 'data-testid': 'result-row' },
          spec.onOpen
            ? h('td', { class: 'row-open' }, h('button', { type: 'button', class: 'link small', 'aria-label': `Row ${i + 1} details`, 'data-testid': 'row-details', onclick: () => spec.onOpen?.(row, i) }, '›'))
            : null,
          spec.columns.map((c) => h('td', { title: valueText(row[c]).slice(0, 500) || null }, cellContent(row[c]))),
        );
        if (spec.onOpen) {
          tr.classList.add('clickable');
          tr.addEventListener('click', (e) => {
            if (e.target instanceof Element && e.target.closest('button, a')) return;
            spec.onOpen?.(row, i);
          });
        }
        return tr;
      }),
    );
  };
  const sortBy = (/** @type {string} */ column) => {
    const dir = sort && sort.column === column && sort.dir === 'asc' ? 'desc' : 'asc';
    sort = { column, dir };
    rows = sortRows(spec.rows, column, dir);
    for (const th of headCells) {
      const active = th.dataset.column === column;
      th.setAttribute('aria-sort', active ? (dir === 'asc' ? 'ascending' : 'descending') : 'none');
      const mark = th.querySelector('.sort-mark');
      if (mark) mark.textContent = active ? (dir === 'asc' ? ' ▲' : ' ▼') : '';
    }
    drawBody();
  };
  drawBody();
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'data', 'data-testid': spec.testid },
      spec.caption ? h('caption', { class: 'sr-only' }, spec.caption) : null,
      h('thead', null, h('tr', null, spec.onOpen ? h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Details')) : null, headCells)),
      tbody,
    ),
  );
}

/**
 * A two-column key/value table.
 * @param {Array<[string, unknown]>} entries
 * @param {{testid?: string, highlight?: (key: string) => boolean}} [opts]
 */
export function kvTable(entries, opts = {}) {
  return h(
    'table',
    { class: 'kv', 'data-testid': opts.testid ?? null },
    h(
      'tbody',
      null,
      entries.map(([k, v]) => {
        const hit = opts.highlight?.(k) ?? false;
        return h(
          'tr',
          { class: hit ? 'hit-row' : null },
          h('th', { scope: 'row' }, hit ? h('mark', { class: 'hit' }, k) : k),
          h('td', null, hit ? h('mark', { class: 'hit' }, valueText(v)) : cellContent(v)),
        );
      }),
    ),
  );
}
