// buckets.test.mjs — bucketing timed points for the stacked charts (src/buckets.js) and the
// axis helpers of src/charts.js.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketCounts, chartDomain, chooseBuckets } from '../../src/buckets.js';
import { formatNumber, limitSeries, niceCeil, yTicks } from '../../src/charts.js';

const H = 3_600_000;

test('about 40 buckets of a readable width, aligned', () => {
  const day = chooseBuckets(0, 24 * H, 40);
  assert.equal(day.step, 1 * H);
  assert.equal(day.start, 0);
  assert.equal(day.count, 24);
  const week = chooseBuckets(0, 7 * 24 * H, 40);
  assert.equal(week.step, 6 * H);
  assert.equal(week.count, 28);
  const odd = chooseBuckets(10 * 60_000 + 7, 70 * 60_000, 40);
  assert.equal(odd.step, 5 * 60_000);
  assert.equal(odd.start, 10 * 60_000);
  assert.ok(odd.count >= 12 && odd.count <= 13);
});

test('points are counted per bucket and key; outside points are left out', () => {
  const points = [
    { t: 0, key: 'sysmon' },
    { t: H - 1, key: 'sysmon' },
    { t: H, key: 'security' },
    { t: 23 * H + 5, key: 'sysmon' },
    { t: 24 * H, key: 'sysmon' },
    { t: -1, key: 'sysmon' },
  ];
  const b = bucketCounts(points, 0, 24 * H, 40);
  assert.equal(b.times.length, 24);
  assert.equal(b.outside, 2);
  const sysmon = b.series.find((s) => s.name === 'sysmon');
  const security = b.series.find((s) => s.name === 'security');
  assert.ok(sysmon && security);
  assert.equal(sysmon.values[0], 2);
  assert.equal(sysmon.values[23], 1);
  assert.equal(security.values[1], 1);
  assert.equal(b.series[0].name, 'sysmon', 'largest series first');
  const total = b.series.flatMap((s) => s.values).reduce((a, c) => a + c, 0);
  assert.equal(total, 4);
});

test('the domain fits the data for unbounded ranges', () => {
  assert.deepEqual(chartDomain([5 * H, 2 * H, 9 * H], 0, 100 * H, true), { from: 2 * H, to: 9 * H + 1 });
  assert.deepEqual(chartDomain([5 * H], 0, 100 * H, false), { from: 0, to: 100 * H });
  const single = chartDomain([5 * H], 0, 100 * H, true);
  assert.ok(single.to - single.from >= 60 * 60_000);
});

test('nice axis values', () => {
  assert.equal(niceCeil(7), 10);
  assert.equal(niceCeil(0.3), 0.5);
  assert.equal(niceCeil(120), 200);
  assert.equal(niceCeil(25), 25);
  assert.deepEqual(yTicks(100), [0, 25, 50, 75, 100]);
  assert.deepEqual(yTicks(0), [0, 0.25, 0.5, 0.75, 1]);
  assert.ok((yTicks(137).at(-1) ?? 0) >= 137);
  assert.equal(formatNumber(12345), '12.3k');
  assert.equal(formatNumber(0.125), '0.13');
});

test('many series are folded into "other"', () => {
  const series = Array.from({ length: 12 }, (_, i) => ({ name: `s${i}`, values: [i, null] }));
  const limited = limitSeries(series);
  assert.equal(limited.length, 9);
  assert.equal(limited[8].name, 'other (4)');
  assert.deepEqual(limited[8].values, [0 + 1 + 2 + 3, null]);
});
