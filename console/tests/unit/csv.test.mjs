// csv.test.mjs — CSV quoting and JSON export of result rows (src/csv.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cellText, columnsOf, csvField, toCsv, toJson } from '../../src/csv.js';

test('plain fields are not quoted', () => {
  assert.equal(csvField('abc'), 'abc');
  assert.equal(csvField(42), '42');
  assert.equal(csvField(null), '');
  assert.equal(csvField(undefined), '');
});

test('commas, quotes, line breaks and outer spaces are quoted', () => {
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField('cr\rhere'), '"cr\rhere"');
  assert.equal(csvField(' padded'), '" padded"');
});

test('objects and lists become JSON', () => {
  assert.equal(cellText({ CommandLine: 'a "b"' }), '{"CommandLine":"a \\"b\\""}');
  assert.equal(csvField(['x', 'y']), '"[""x"",""y""]"');
});

test('columns come in order of first appearance (NDJSON leaves out nulls)', () => {
  assert.deepEqual(columnsOf([{ a: 1 }, { b: 2, a: 3 }, { c: null }]), ['a', 'b', 'c']);
});

test('toCsv writes a header and CRLF lines', () => {
  const csv = toCsv([{ dataset: 'windows.sysmon', n: 10 }, { dataset: 'x,y', n: 2 }]);
  assert.equal(csv, 'dataset,n\r\nwindows.sysmon,10\r\n"x,y",2\r\n');
});

test('toCsv fills missing values with empty fields', () => {
  assert.equal(toCsv([{ a: 1 }, { b: 2 }]), 'a,b\r\n1,\r\n,2\r\n');
});

test('toJson round-trips', () => {
  const rows = [{ a: 1, fields: { X: 'y' } }];
  assert.deepEqual(JSON.parse(toJson(rows)), rows);
});
