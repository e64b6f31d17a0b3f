// dom.test.mjs — the safety rules of src/dom.js: which link targets are allowed (safeHref), and
// h() refusing event-handler attributes given as text and unsafe URLs; UTF-8 byte counting.
import assert from 'node:assert/strict';
import { test } from 'node:test';

/** A minimal element: enough for h() without children. */
class FakeElement {
  constructor(/** @type {string} */ tag) {
    this.tag = tag;
    /** @type {Record<string, string>} */
    this.attributes = {};
    /** @type {string[]} */
    this.listeners = [];
  }
  setAttribute(/** @type {string} */ k, /** @type {string} */ v) {
    this.attributes[k] = v;
  }
  addEventListener(/** @type {string} */ type) {
    this.listeners.push(type);
  }
}
/** @type {any} */ (globalThis).document = { createElement: (/** @type {string} */ tag) => new FakeElement(tag) };

const { h, safeHref, utf8Bytes } = await import('../../src/dom.js');

test('safe link targets: in-app hashes, same-origin paths, http(s)', () => {
  for (const ok of ['#/alerts', '#', '/console/app.js', '/', 'https://attack.mitre.org/techniques/T1059/', 'http://example.com', ' https://x.org ']) {
    assert.equal(safeHref(ok), true, ok);
  }
});

test('unsafe link targets: other schemes, protocol-relative, backslash tricks, hidden tabs', () => {
  for (const bad of [
    'javascript:alert(1)',
    ' JavaScript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:x',
    '//evil.example/x',
    '/\\evil.example/x',
    '\\\\evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    'https:/\\evil.example',
    'https:\\\\evil.example',
    'https:///evil.example',
    'ftp://x',
    'relative/path',
    '',
  ]) {
    assert.equal(safeHref(bad), false, JSON.stringify(bad));
  }
});

test('h() drops unsafe URLs and keeps safe ones', () => {
  const bad = /** @type {any} */ (h('a', { href: '//evil.example' }));
  assert.equal(bad.attributes.href, undefined);
  const good = /** @type {any} */ (h('a', { href: '#/entity/user/x' }));
  assert.equal(good.attributes.href, '#/entity/user/x');
  const src = /** @type {any} */ (h('img', { src: 'javascript:alert(1)' }));
  assert.equal(src.attributes.src, undefined);
});

test('h() takes on* listeners as functions and refuses them as text', () => {
  const el = /** @type {any} */ (h('button', { onclick: () => {} }));
  assert.deepEqual(el.listeners, ['click']);
  assert.throws(() => h('img', { onerror: 'alert(1)' }), /refused/);
  assert.throws(() => h('div', { ONMOUSEOVER: 'alert(1)' }), /refused/);
  assert.throws(() => h('div', { onclick: true }), /refused/);
  assert.doesNotThrow(() => h('div', { onclick: null }), 'absent values are skipped');
  assert.throws(() => h('div', { style: 'color: red' }), /CSP/);
});

test('UTF-8 bytes, not characters', () => {
  assert.equal(utf8Bytes('abc'), 3);
  assert.equal(utf8Bytes('é'), 2);
  assert.equal(utf8Bytes('€'), 3);
  assert.equal(utf8Bytes('😀'), 4);
  assert.equal(utf8Bytes('€'.repeat(1366)), 4098, '1366 characters are over 4096 bytes');
});
