// app.js — the console's entry point: boots the session checks (8 h maximum, 30 min idle, 401),
// draws the header, and routes the hash (#/alerts, #/alerts/<id>, #/search, #/entity/<kind>/<name>,
// #/rules, #/health) to the page modules, cleaning up the previous page (timers, requests).

import { setUnauthorizedHandler } from './api.js';
import { fill, h, openDialog } from './dom.js';
import { currentPageShortcuts, GLOBAL_SHORTCUTS, installKeys, setPageShortcuts } from './keys.js';
import * as alertDetail from './pages/alert_detail.js';
import * as alerts from './pages/alerts.js';
import * as entity from './pages/entity.js';
import * as health from './pages/health.js';
import * as rules from './pages/rules.js';
import * as search from './pages/search.js';
import * as signin from './pages/signin.js';
import { buildHash, parseHash } from './route.js';
import { endedReason, endSession, expiryReason, getSession, lastActivity, touch } from './session.js';
import { timeZoneName } from './time.js';

/** @typedef {import('./types.js').PageContext} PageContext */
/** @typedef {{title: string, render: (root: HTMLElement, ctx: PageContext) => void}} PageModule */

/** @type {Array<{key: string, label: string}>} */
const NAV = [
  { key: 'alerts', label: 'Alerts' },
  { key: 'search', label: 'Search' },
  { key: 'entity', label: 'Entity' },
  { key: 'rules', label: 'Rules' },
  { key: 'health', label: 'Health' },
];

const header = /** @type {HTMLElement} */ (document.getElementById('top'));
const main = /** @type {HTMLElement} */ (document.getElementById('main'));

/** @type {{abort: AbortController, cleanups: Array<() => void>} | null} */
let current = null;
/** The hash the current page was drawn for (or rewrote itself to). */
let renderedHash = '';

/**
 * The page module for a path.
 * @param {string[]} path
 * @returns {{key: string, page: PageModule, args: string[]} | null}
 */
function pageFor(path) {
  const [first, ...rest] = path;
  switch (first ?? 'alerts') {
    case 'alerts':
      return rest.length ? { key: 'alerts', page: alertDetail, args: rest } : { key: 'alerts', page: alerts, args: [] };
    case 'search':
      return { key: 'search', page: search, args: rest };
    case 'entity':
      return { key: 'entity', page: entity, args: rest };
    case 'rules':
      return { key: 'rules', page: rules, args: rest };
    case 'health':
      return { key: 'health', page: health, args: rest };
    default:
      return null;
  }
}

function leavePage() {
  if (!current) return;
  current.abort.abort();
  for (const fn of current.cleanups) {
    try {
      fn();
    } catch {
      /* a failing cleanup must not stop navigation */
    }
  }
  current = null;
  setPageShortcuts([]);
}

/** Ends the session now and shows the sign-in page with the reason. @param {string} reason */
function signOut(reason) {
  endSession(reason);
  route();
}

/** Draws whatever the hash names (the sign-in page without a session). */
function route() {
  leavePage();
  for (const d of document.querySelectorAll('dialog')) d.remove();
  renderedHash = location.hash;
  let session = getSession();
  if (session) {
    const reason = expiryReason(session, lastActivity(), Date.now());
    if (reason) {
      endSession(reason);
      session = null;
    }
  }
  const { path, query } = parseHash(location.hash);
  if (!session) {
    drawHeader(null, '');
    document.title = 'Sign in · Vedette';
    signin.render(main, { reason: endedReason(), onSignedIn: () => route() });
    return;
  }
  const found = pageFor(path[0] === 'signin' ? [] : path);
  if (!found) {
    drawHeader(session, '');
    fill(main, h('section', { class: 'page' }, h('h1', null, 'Not found'), h('p', null, 'There is no such page. ', h('a', { href: '#/alerts' }, 'Go to alerts'))));
    return;
  }
  drawHeader(session, found.key);
  document.title = `${found.page.title} · Vedette`;
  const abort = new AbortController();
  /** @type {Array<() => void>} */
  const cleanups = [];
  current = { abort, cleanups };
  const routePath = path.length ? path : ['alerts'];
  /** @type {PageContext} */
  const ctx = {
    args: found.args,
    query,
    session,
    signal: abort.signal,
    setQuery: (params) => {
      const hash = buildHash(routePath, params);
      if (hash === location.hash) return;
      renderedHash = hash;
      history.replaceState(null, '', hash);
    },
    onCleanup: (fn) => cleanups.push(fn),
  };
  main.replaceChildren();
  found.page.render(main, ctx);
}

/**
 * The header: navigation, who is signed in, the time zone note, help and sign out.
 * @param {import('./types.js').Session | null} session
 * @param {string} active
 */
function drawHeader(session, active) {
  const brand = h('a', { class: 'brand', href: '#/alerts' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '◆'), ' Vedette');
  if (!session) {
    fill(header, h('div', { class: 'bar' }, brand, h('span', { class: 'muted' }, 'Analyst console')));
    return;
  }
  fill(
    header,
    h(
      'div',
      { class: 'bar' },
      brand,
      h(
        'nav',
        { 'aria-label': 'Main' },
        h(
          'ul',
          null,
          NAV.map((n) => h('li', null, h('a', { href: `#/${n.key}`, 'aria-current': n.key === active ? 'page' : null, 'data-testid': `nav-${n.key}` }, n.label))),
        ),
      ),
      h('span', { class: 'spacer' }),
      h(
        'span',
        { class: 'who', 'data-testid': 'who' },
        h('span', { class: 'role' }, session.role),
        ' · ',
        session.tenant ? h('span', { 'data-testid': 'tenant' }, `tenant ${session.tenant}`) : h('span', { 'data-testid': 'tenant' }, 'all tenants'),
      ),
      h('span', { class: 'tz muted', 'data-testid': 'tz-note' }, `Times in ${timeZoneName()} (hover for UTC)`),
      h('button', { type: 'button', class: 'secondary small', 'aria-label': 'Keyboard shortcuts', title: 'Keyboard shortcuts (?)', onclick: showHelp }, '?'),
      h('button', { type: 'button', class: 'secondary small', 'data-testid': 'sign-out', onclick: () => signOut('you signed out') }, 'Sign out'),
    ),
  );
}

function showHelp() {
  if (document.querySelector('[data-testid=shortcuts-help]')) return;
  const rows = (/** @type {Array<[string, string]>} */ list) =>
    list.map(([k, label]) => h('tr', null, h('td', null, k.split(' ').map((part, i) => [i ? ' then ' : '', h('kbd', null, part)])), h('td', null, label)));
  const page = currentPageShortcuts().map((sc) => /** @type {[string, string]} */ ([sc.key === ' ' ? 'Space' : sc.key, sc.label]));
  openDialog({
    title: 'Keyboard shortcuts',
    testid: 'shortcuts-help',
    body: [
      h('table', { class: 'kv' }, h('tbody', null, rows(GLOBAL_SHORTCUTS))),
      page.length ? [h('h3', null, 'On this page'), h('table', { class: 'kv' }, h('tbody', null, rows(page)))] : null,
    ],
  });
}

function checkExpiry() {
  const session = getSession();
  if (!session) return;
  const reason = expiryReason(session, lastActivity(), Date.now());
  if (reason) signOut(reason);
}

function boot() {
  setUnauthorizedHandler((reason) => {
    if (getSession()) signOut(reason);
  });
  installKeys({
    navigate: (page) => {
      location.hash = `#/${page}`;
    },
    showHelp,
    enabled: () => getSession() !== null,
  });
  for (const type of ['keydown', 'pointerdown', 'wheel', 'touchstart']) {
    document.addEventListener(
      type,
      () => {
        checkExpiry();
        touch();
      },
      { capture: true, passive: true },
    );
  }
  window.setInterval(checkExpiry, 15_000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') checkExpiry();
  });
  window.addEventListener('hashchange', () => {
    if (location.hash === renderedHash) return;
    route();
  });
  if (!location.hash) history.replaceState(null, '', '#/alerts');
  route();
}

boot();
