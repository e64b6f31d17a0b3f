// csv.test.mjs — CSV quoting and JSON export of result rows (src/csv.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cellText, columnsOf, CSV_BOM, csvField, toCsv, toCsvFile, toJson } from '../../src/csv.js';

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

test('spreadsheet formulas are neutralized with a leading quote', () => {
  assert.equal(csvField('=1+1'), "'=1+1");
  assert.equal(csvField('+cmd|calc'), "'+cmd|calc");
  assert.equal(csvField('-2+3'), "'-2+3");
  assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvField('\t=1'), "'\t=1");
  assert.equal(csvField('\r=1'), `"'\r=1"`, 'still quoted for the carriage return');
  assert.equal(csvField('=HYPERLINK("http://x","y")'), `"'=HYPERLINK(""http://x"",""y"")"`);
  assert.equal(csvField('a=1'), 'a=1', 'only a leading character counts');
  assert.equal(csvField(-5), '-5', 'numbers are data, not formulas');
  assert.equal(csvField(''), '');
  assert.equal(toCsv([{ '=x': '@y' }]), "'=x\r\n'@y\r\n", 'header cells too');
});

test('the CSV file starts with a UTF-8 byte order mark', () => {
  assert.equal(CSV_BOM, '\uFEFF');
  const file = toCsvFile([{ user: 'Zoë', n: 1 }]);
  assert.equal(file, '\uFEFFuser,n\r\nZoë,1\r\n');
  assert.deepEqual([...new TextEncoder().encode(file).slice(0, 3)], [0xef, 0xbb, 0xbf]);
  assert.equal(toCsvFile([], ['a']), '\uFEFFa\r\n');
});
