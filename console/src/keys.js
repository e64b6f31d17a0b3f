// keys.js — keyboard shortcuts: the global ones (g then a/s/r/h/e to navigate, ? for help, / to
// focus the page's first filter) and those a page registers (j/k, Enter, a, f, r). They are
// ignored while typing in a field, with a modifier key held, or while a dialog is open.

/** @typedef {{key: string, label: string, run: (e: KeyboardEvent) => void}} Shortcut */

/** The global shortcuts, for the help dialog. */
export const GLOBAL_SHORTCUTS = /** @type {Array<[string, string]>} */ ([
  ['g a', 'Go to alerts'],
  ['g s', 'Go to search'],
  ['g e', 'Go to entity'],
  ['g r', 'Go to rules'],
  ['g h', 'Go to health'],
  ['/', 'Focus the first filter or input of the page'],
  ['?', 'Show the keyboard shortcuts'],
  ['Esc', 'Close a dialog, or leave a text field'],
]);

/** @type {Record<string, string>} */
const GO = { a: 'alerts', s: 'search', e: 'entity', r: 'rules', h: 'health' };

/** @type {Shortcut[]} */
let pageShortcuts = [];
let gPressedAt = 0;

/**
 * Replaces the shortcuts of the current page (the router clears them on navigation).
 * @param {Shortcut[]} list
 */
export function setPageShortcuts(list) {
  pageShortcuts = list;
}

/** The current page's shortcuts, for the help dialog. */
export function currentPageShortcuts() {
  return pageShortcuts;
}

/**
 * Whether a key event comes from a place where keys are text.
 * @param {EventTarget | null} target
 */
export function isTyping(target) {
  if (!(target instanceof Element)) return false;
  if (target.closest('textarea, select, [contenteditable=""], [contenteditable="true"]')) return true;
  const input = target.closest('input');
  if (!input) return false;
  return !['checkbox', 'radio', 'button', 'submit', 'reset'].includes(input.type);
}

/**
 * Listens for shortcuts on the document.
 * @param {{navigate: (page: string) => void, showHelp: () => void, enabled: () => boolean}} app
 */
export function installKeys(app) {
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    if (!app.enabled()) return;
    if (document.querySelector('dialog[open]')) return;
    if (isTyping(e.target)) {
      if (e.key === 'Escape' && e.target instanceof HTMLElement) e.target.blur();
      return;
    }
    const now = Date.now();
    if (gPressedAt && now - gPressedAt < 1500 && GO[e.key]) {
      gPressedAt = 0;
      e.preventDefault();
      app.navigate(GO[e.key]);
      return;
    }
    gPressedAt = 0;
    if (e.key === 'g') {
      gPressedAt = now;
      return;
    }
    if (e.key === '?') {
      e.preventDefault();
      app.showHelp();
      return;
    }
    if (e.key === '/') {
      const first = document.querySelector('[data-first-filter]');
      if (first instanceof HTMLElement) {
        e.preventDefault();
        first.focus();
      }
      return;
    }
    // Enter on a link or button belongs to that control.
    if (e.key === 'Enter' && e.target instanceof Element && e.target.closest('a, button, summary, input')) return;
    const shortcut = pageShortcuts.find((sc) => sc.key === e.key);
    if (shortcut) {
      e.preventDefault();
      shortcut.run(e);
    }
  });
}
