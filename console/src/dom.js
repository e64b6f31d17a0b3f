// dom.js — building DOM safely: h() and s() set text with textContent and attributes one by one,
// never innerHTML, so data from the API cannot become markup. Also the shared UI pieces: toasts,
// modal dialogs (native <dialog>), loading / empty / error states, times, level badges, links.

import { errorMessage } from './api.js';
import { buildHash } from './route.js';
import { formatLocal, formatUtc, parseApiTime } from './time.js';

/** @typedef {Node | string | number | boolean | null | undefined | Array<any>} Child */

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate', 'multiple', 'required', 'readOnly']);

/** Attributes that hold a URL the browser follows or loads. */
const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'xlink:href']);

/**
 * Whether a link target is safe to put in href: an in-app hash (`#…`), a same-origin path
 * (`/…`, but not `//host` or `/\\host`, which browsers read as another host), or an absolute
 * http(s) URL. Browsers drop tabs and line breaks inside URLs ("/\t/host" is "//host"), so
 * those are refused too.
 * @param {string} url
 */
export function safeHref(url) {
  const text = String(url).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '');
  if (/[\t\n\r]/.test(text)) return false;
  if (text.startsWith('#')) return true;
  if (text.startsWith('/')) return !/^\/[/\\]/.test(text);
  return /^https?:\/\/[^/\\]/i.test(text);
}

/**
 * @param {Element} el
 * @param {Record<string, any> | null | undefined} attrs
 */
function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (/^on/i.test(key)) {
      // Listeners only: an on* attribute given as text would be markup that runs (and the CSP refuses it).
      if (typeof value !== 'function') throw new Error(`${key}: event handler attributes are refused; pass a function`);
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      const cls = Array.isArray(value) ? value.filter(Boolean).join(' ') : String(value);
      if (cls) el.setAttribute('class', cls);
    } else if (key === 'style') {
      throw new Error('style attributes are refused by the CSP: use a class');
    } else if (URL_ATTRS.has(key.toLowerCase()) && !safeHref(String(value))) {
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
      if (v === undefined || v === null || v === false) continue;
      if (/^on/i.test(k)) throw new Error(`${k}: event handler attributes are refused`);
      if (URL_ATTRS.has(k.toLowerCase()) && !safeHref(String(v))) continue;
      el.setAttribute(k, String(v));
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
 * The length of text in UTF-8 bytes (what the server's limits count).
 * @param {string} text
 */
export function utf8Bytes(text) {
  return new TextEncoder().encode(text).length;
}

/**
 * Asks for a note in a modal dialog; resolves to the note, or null when cancelled. With
 * `maxBytes` the (trimmed) note may hold at most that many UTF-8 bytes; a counter shows them.
 * @param {{title: string, label: string, confirm: string, required?: boolean, hint?: string, maxBytes?: number}} spec
 * @returns {Promise<string | null>}
 */
export function askNote(spec) {
  return new Promise((resolve) => {
    let result = /** @type {string | null} */ (null);
    const input = h('textarea', { id: 'note-input', 'data-testid': 'note-input', rows: 4, required: !!spec.required, maxlength: spec.maxBytes ?? null });
    const problem = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'note-error' });
    const counter = spec.maxBytes ? h('p', { class: 'hint', 'data-testid': 'note-bytes', 'aria-live': 'polite' }) : null;
    const count = () => {
      if (!counter || !spec.maxBytes) return;
      const n = utf8Bytes(input.value.trim());
      counter.textContent = `${n.toLocaleString()} / ${spec.maxBytes.toLocaleString()} bytes (UTF-8)`;
      counter.classList.toggle('form-error', n > spec.maxBytes);
    };
    input.addEventListener('input', count);
    count();
    const confirm = h('button', { type: 'button', 'data-testid': 'note-confirm' }, spec.confirm);
    const form = h(
      'form',
      { class: 'note-form', method: 'post', novalidate: true },
      h('label', { for: 'note-input' }, spec.label),
      input,
      counter,
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
      if (spec.maxBytes && utf8Bytes(note) > spec.maxBytes) {
        problem.textContent = `The note is ${utf8Bytes(note).toLocaleString()} bytes in UTF-8; the limit is ${spec.maxBytes.toLocaleString()}.`;
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
 * A link to an entity's page (the name is text, never markup).
 * @param {'host' | 'user'} kind
 * @param {unknown} name
 * @param {Record<string, string | null | undefined>} [query] e.g. {range: '7d', tenant: 'acme'}
 */
export function entityLink(kind, name, query = {}) {
  if (name === null || name === undefined || name === '') return h('span', { class: 'muted' }, '—');
  const text = String(name);
  return h('a', { href: buildHash(['entity', kind, text], query), class: 'entity-link', 'data-testid': `${kind}-link` }, text);
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
