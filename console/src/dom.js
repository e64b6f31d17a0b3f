// dom.js — building DOM safely: h() and s() set text with textContent and attributes one by one,
// never innerHTML, so data from the API cannot become markup. Also the shared UI pieces: toasts,
// modal dialogs (native <dialog>), loading / empty / error states, times, level badges, links.

import { errorMessage } from './api.js';
import { formatLocal, formatUtc, parseApiTime } from './time.js';

/** @typedef {Node | string | number | boolean | null | undefined | Array<any>} Child */

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate', 'multiple', 'required', 'readOnly']);

/**
 * Whether a link target is safe to put in href: in-app hashes, same-origin paths, http(s).
 * @param {string} url
 */
export function safeHref(url) {
  return /^(#|\/(?!\/)|https?:\/\/)/i.test(url.trim());
}

/**
 * @param {Element} el
 * @param {Record<string, any> | null | undefined} attrs
 */
function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      const cls = Array.isArray(value) ? value.filter(Boolean).join(' ') : String(value);
      if (cls) el.setAttribute('class', cls);
    } else if (key === 'style') {
      throw new Error('style attributes are refused by the CSP: use a class');
    } else if (key === 'href' && !safeHref(String(value))) {
      continue;
    } else if (PROPS.has(key)) {
      /** @type {any} */ (el)[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

/**
 * @param {Node} parent
 * @param {Child[]} children
 */
function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false || child === true) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * Creates an HTML element: attributes (`class`, `on<event>` listeners, properties such as
 * `value`), then children (nodes, or text set as text).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Creates an SVG element the same way.
 * @param {string} tag
 * @param {Record<string, string | number | null | undefined | false> | null} [attrs]
 * @param {...Child} children
 * @returns {SVGElement}
 */
export function s(tag, attrs, ...children) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

/**
 * Replaces the content of an element.
 * @param {Element} el
 * @param {...Child} children
 */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * A short message at the bottom of the screen (announced to screen readers).
 * @param {string} message
 * @param {'ok' | 'error' | 'info'} [kind]
 */
export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = h('div', { class: `toast toast-${kind}`, 'data-testid': 'toast', role: kind === 'error' ? 'alert' : null }, message);
  box.appendChild(el);
  window.setTimeout(() => el.remove(), kind === 'error' ? 9000 : 5000);
}

/** @typedef {{dialog: HTMLDialogElement, close: () => void}} OpenDialog */

/**
 * Opens a modal dialog; it is removed from the page when closed (Escape, Close, or close()).
 * @param {{title: string, body: Child, actions?: HTMLElement[], testid?: string, wide?: boolean, onClose?: () => void}} spec
 * @returns {OpenDialog}
 */
export function openDialog(spec) {
  const titleId = `dlg-${Math.random().toString(36).slice(2, 9)}`;
  const closeButton = h('button', { type: 'button', class: 'secondary', 'data-testid': 'dialog-close' }, 'Close');
  const dialog = h(
    'dialog',
    { class: ['dialog', spec.wide && 'dialog-wide'], 'aria-labelledby': titleId, 'data-testid': spec.testid ?? 'dialog' },
    h('h2', { id: titleId }, spec.title),
    h('div', { class: 'dialog-body' }, spec.body),
    h('div', { class: 'dialog-actions' }, spec.actions ?? [], closeButton),
  );
  const close = () => {
    if (dialog.open) dialog.close();
  };
  closeButton.addEventListener('click', close);
  dialog.addEventListener('close', () => {
    dialog.remove();
    spec.onClose?.();
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  return { dialog, close };
}

/**
 * Asks for a note in a modal dialog; resolves to the note, or null when cancelled.
 * @param {{title: string, label: string, confirm: string, required?: boolean, hint?: string}} spec
 * @returns {Promise<string | null>}
 */
export function askNote(spec) {
  return new Promise((resolve) => {
    let result = /** @type {string | null} */ (null);
    const input = h('textarea', { id: 'note-input', 'data-testid': 'note-input', rows: 4, required: !!spec.required, maxlength: 2000 });
    const problem = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'note-error' });
    const confirm = h('button', { type: 'button', 'data-testid': 'note-confirm' }, spec.confirm);
    const form = h(
      'form',
      { class: 'note-form', method: 'post', novalidate: true },
      h('label', { for: 'note-input' }, spec.label),
      input,
      spec.hint ? h('p', { class: 'hint' }, spec.hint) : null,
      problem,
    );
    const { dialog, close } = openDialog({
      title: spec.title,
      body: form,
      actions: [confirm],
      testid: 'note-dialog',
      onClose: () => resolve(result),
    });
    const submit = (/** @type {Event} */ e) => {
      e.preventDefault();
      const note = input.value.trim();
      if (spec.required && !note) {
        problem.textContent = 'A note is required.';
        input.focus();
        return;
      }
      result = note;
      close();
    };
    form.addEventListener('submit', submit);
    confirm.addEventListener('click', submit);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) submit(e);
    });
    dialog.addEventListener('cancel', () => {
      result = null;
    });
    input.focus();
  });
}

/**
 * The loading state of a view.
 * @param {string} [text]
 */
export function loadingState(text = 'Loading…') {
  return h('div', { class: 'state state-loading', 'data-testid': 'state-loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

/**
 * The empty state of a view.
 * @param {string} text
 */
export function emptyState(text) {
  return h('div', { class: 'state state-empty', 'data-testid': 'state-empty' }, text);
}

/**
 * The error state of a view: the API's message and a Retry button.
 * @param {unknown} error
 * @param {(() => void) | null} retry
 * @param {string} [what] what failed, e.g. "Loading alerts"
 */
export function errorState(error, retry, what = 'Loading failed') {
  return h(
    'div',
    { class: 'state state-error', 'data-testid': 'state-error', role: 'alert' },
    h('p', null, h('strong', null, `${what}: `), h('span', { 'data-testid': 'error-message' }, errorMessage(error))),
    retry ? h('button', { type: 'button', 'data-testid': 'retry', onclick: retry }, 'Retry') : null,
  );
}

/**
 * A time in local time with UTC on hover; "—" when there is none.
 * @param {unknown} value an API timestamp (UTC string or Unix ms)
 */
export function timeEl(value) {
  const ms = parseApiTime(value);
  if (ms === null) return h('span', { class: 'muted' }, value === null || value === undefined || value === '' ? '—' : String(value));
  return h('time', { datetime: new Date(ms).toISOString(), title: formatUtc(ms) }, formatLocal(ms));
}

export const LEVELS = ['informational', 'low', 'medium', 'high', 'critical'];

/**
 * A level badge (colour by class).
 * @param {unknown} level
 */
export function levelBadge(level) {
  const text = String(level ?? '').toLowerCase();
  const cls = LEVELS.includes(text) ? `level-${text}` : 'level-unknown';
  return h('span', { class: `badge ${cls}`, 'data-level': text }, text || 'unknown');
}

/**
 * A status badge of an alert.
 * @param {unknown} status
 */
export function statusBadge(status) {
  const text = String(status ?? 'open');
  const cls = ['open', 'acknowledged', 'false_positive'].includes(text) ? `status-${text}` : 'status-unknown';
  return h('span', { class: `badge ${cls}`, 'data-status': text }, text.replace('_', ' '));
}

/**
 * A link to an entity's page.
 * @param {'host' | 'user'} kind
 * @param {unknown} name
 * @param {string} [query] e.g. "?range=7d"
 */
export function entityLink(kind, name, query = '') {
  if (name === null || name === undefined || name === '') return h('span', { class: 'muted' }, '—');
  const text = String(name);
  return h('a', { href: `#/entity/${kind}/${encodeURIComponent(text)}${query}`, class: 'entity-link', 'data-testid': `${kind}-link` }, text);
}

/**
 * Any value as text for a table cell (objects as JSON).
 * @param {unknown} value
 */
export function valueText(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Saves text as a file through a Blob (no data URL).
 * @param {string} name
 * @param {string} text
 * @param {string} type
 */
export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { download: name, class: 'hidden' });
  a.href = url;
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
