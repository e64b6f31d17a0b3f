// attack.test.mjs — every ATT&CK technique tag of the bundled rules has a name in the console's
// table, and tags read as techniques, tactics or other tags.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeTag, TECHNIQUES } from '../../src/attack.js';

/** @param {string} dir @returns {string[]} */
function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

test('the bundled rules name only techniques the table knows', () => {
  const rules = new URL('../../../rules/', import.meta.url).pathname;
  const tags = new Set();
  for (const file of files(rules).filter((f) => /\.(ya?ml|yar)$/.test(f))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/attack\.(t\d{4}(?:\.\d{3})?)/gi)) {
      tags.add(m[1].toUpperCase());
    }
  }
  assert.ok(tags.size > 5, `${tags.size} technique tags found`);
  const unnamed = [...tags].filter((t) => !(t in TECHNIQUES));
  assert.deepEqual(unnamed, [], 'add these to TECHNIQUES in src/attack.js');
});

test('tags read as techniques, tactics or other tags', () => {
  const t = describeTag('attack.t1059.001');
  assert.equal(t.kind, 'technique');
  assert.ok(t.kind === 'technique' && t.text.includes('PowerShell') && t.url.endsWith('/techniques/T1059/001/'));
  const tactic = describeTag('attack.credential-access');
  assert.ok(tactic.kind === 'tactic' && tactic.url.endsWith('/tactics/TA0006/'));
  assert.equal(describeTag('cve.2021-44228').kind, 'other');
});
