// rangepicker.js — the time-range picker shared by the pages (presets 15m … 1y, All, and a custom
// from/to in local time), and reading/writing its choice in the hash query.

import { h } from './dom.js';
import { localInputValue, parseLocalInput, RANGE_PRESETS, resolveRange, urlTime } from './time.js';

/** @typedef {import('./time.js').RangeSpec} RangeSpec */

/**
 * The range of a hash query (`range`, and `from`/`to` for custom).
 * @param {URLSearchParams} query
 * @param {string} fallback
 * @returns {RangeSpec}
 */
export function rangeFromQuery(query, fallback) {
  const range = query.get('range') ?? (query.get('from') ? 'custom' : fallback);
  return { range, from: query.get('from'), to: query.get('to') };
}

/**
 * The hash query entries of a range.
 * @param {RangeSpec} spec
 * @returns {Record<string, string | null>}
 */
export function rangeToQuery(spec) {
  if (spec.range === 'custom') return { range: 'custom', from: spec.from ?? null, to: spec.to ?? null };
  return { range: spec.range, from: null, to: null };
}

let counter = 0;

/**
 * A select of presets; "Custom…" shows two datetime-local inputs and an Apply button.
 * @param {{spec: RangeSpec, onChange: (spec: RangeSpec) => void, label?: string, first?: boolean, fallback?: string}} opts
 * @returns {HTMLElement}
 */
export function rangePicker(opts) {
  const id = `range-${++counter}`;
  const resolved = resolveRange(opts.spec, Date.now(), opts.fallback);
  const select = h(
    'select',
    { id, 'data-testid': 'range-select', 'data-first-filter': opts.first ? '' : null },
    RANGE_PRESETS.map((p) => h('option', { value: p.key, selected: resolved.key === p.key }, p.label)),
    h('option', { value: 'custom', selected: resolved.key === 'custom' }, 'Custom…'),
  );
  const fromInput = h('input', { type: 'datetime-local', id: `${id}-from`, 'data-testid': 'range-from', value: localInputValue(resolved.from) });
  const toInput = h('input', {
    type: 'datetime-local',
    id: `${id}-to`,
    'data-testid': 'range-to',
    value: resolved.to === null ? '' : localInputValue(resolved.to),
  });
  const problem = h('span', { class: 'form-error', role: 'alert' });
  const apply = h('button', { type: 'button', class: 'small', 'data-testid': 'range-apply' }, 'Apply');
  const custom = h(
    'span',
    { class: ['range-custom', resolved.key !== 'custom' && 'hidden'] },
    h('label', { for: `${id}-from` }, 'From'),
    fromInput,
    h('label', { for: `${id}-to` }, 'To'),
    toInput,
    apply,
    problem,
  );
  select.addEventListener('change', () => {
    if (select.value === 'custom') {
      custom.classList.remove('hidden');
      fromInput.focus();
      return;
    }
    custom.classList.add('hidden');
    opts.onChange({ range: select.value });
  });
  apply.addEventListener('click', () => {
    const from = parseLocalInput(fromInput.value);
    const to = toInput.value ? parseLocalInput(toInput.value) : null;
    if (from === null) {
      problem.textContent = 'Choose a start time.';
      return;
    }
    if (to !== null && to <= from) {
      problem.textContent = 'The end must be after the start.';
      return;
    }
    problem.textContent = '';
    opts.onChange({ range: 'custom', from: urlTime(from), to: to === null ? null : urlTime(to) });
  });
  return h('span', { class: 'range-picker' }, h('label', { for: id }, opts.label ?? 'Time range'), select, custom);
}
