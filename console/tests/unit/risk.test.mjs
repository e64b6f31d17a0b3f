// risk.test.mjs — the entity risk formula (src/risk.js): weights, the ATT&CK bonus, one count per
// rule per window at its highest weight, and risk/silence alerts adding nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { riskSteps } from '../../src/pages/entity.js';
import { alertWeight, isTechniqueTag, riskInput, riskScore, riskSeries, riskSettings, DEFAULT_RISK_THRESHOLD, DEFAULT_RISK_WINDOW_MS } from '../../src/risk.js';

const H = 3_600_000;

/** @param {Partial<import('../../src/risk.js').RiskInput>} a */
const alert = (a) => ({ time: 0, rule: 'r', kind: 'sigma', level: 'medium', tags: [], ...a });

test('level weights and the technique bonus', () => {
  assert.equal(alertWeight(alert({ level: 'informational' })), 1);
  assert.equal(alertWeight(alert({ level: 'low' })), 5);
  assert.equal(alertWeight(alert({ level: 'medium' })), 15);
  assert.equal(alertWeight(alert({ level: 'high' })), 35);
  assert.equal(alertWeight(alert({ level: 'critical' })), 60);
  assert.equal(alertWeight(alert({ level: 'high', tags: ['attack.execution', 'attack.t1059.001'] })), 52.5);
  assert.equal(alertWeight(alert({ level: 'high', tags: ['attack.execution'] })), 35);
});

test('technique tags', () => {
  assert.ok(isTechniqueTag('attack.t1059'));
  assert.ok(isTechniqueTag('attack.T1059.001'));
  assert.ok(!isTechniqueTag('attack.execution'));
  assert.ok(!isTechniqueTag('attack.g0016'));
  assert.ok(!isTechniqueTag('attack.t105'));
});

test('risk and silence alerts add nothing', () => {
  assert.equal(alertWeight(alert({ kind: 'risk', level: 'critical' })), 0);
  assert.equal(alertWeight(alert({ kind: 'silence', level: 'medium' })), 0);
});

test('each rule counts once, at its highest weight', () => {
  const alerts = [
    alert({ rule: 'a', level: 'low', time: 1 * H }),
    alert({ rule: 'a', level: 'high', time: 2 * H }),
    alert({ rule: 'a', level: 'medium', time: 3 * H }),
    alert({ rule: 'b', level: 'critical', tags: ['attack.t1003'], time: 4 * H }),
  ];
  const { score, contributions } = riskScore(alerts, 5 * H);
  assert.equal(score, 35 + 90);
  assert.deepEqual(contributions.map((c) => [c.rule, c.weight]), [['b', 90], ['a', 35]]);
});

test('the window is (end - 24h, end]', () => {
  const alerts = [alert({ rule: 'old', level: 'high', time: 0 }), alert({ rule: 'new', level: 'low', time: 10 * H })];
  assert.equal(riskScore(alerts, 24 * H).score, 5);
  assert.equal(riskScore(alerts, 24 * H - 1).score, 40);
  assert.equal(riskScore(alerts, 9 * H).score, 35);
});

test('several distinct rules cross the threshold, one noisy rule does not', () => {
  const noisy = Array.from({ length: 50 }, (_, i) => alert({ rule: 'noisy', level: 'high', time: i * 1000 }));
  assert.ok(riskScore(noisy, 60_000).score < DEFAULT_RISK_THRESHOLD);
  const distinct = ['a', 'b', 'c', 'd', 'e'].map((rule, i) => alert({ rule, level: 'high', time: i * 1000 }));
  assert.ok(riskScore(distinct, 60_000).score >= DEFAULT_RISK_THRESHOLD);
});

test('the series rises with alerts and falls when they leave the window', () => {
  const series = riskSeries([alert({ rule: 'a', level: 'high', time: 0 }), alert({ rule: 'b', level: 'low', time: H })]);
  assert.deepEqual(series, [
    { t: 0, score: 35 },
    { t: H, score: 40 },
    { t: DEFAULT_RISK_WINDOW_MS, score: 5 },
    { t: DEFAULT_RISK_WINDOW_MS + H, score: 0 },
  ]);
});

test('riskInput reads API alerts', () => {
  const input = riskInput({
    'alert.id': 'x',
    '@timestamp': '2025-12-16T10:00:00',
    'rule.id': 'r1',
    'rule.level': 'HIGH',
    'detection.kind': 'sigma',
    'rule.tags': ['attack.t1059'],
  });
  assert.equal(input.time, Date.UTC(2025, 11, 16, 10));
  assert.equal(input.level, 'high');
  assert.equal(alertWeight(input), 52.5);
});

test('the settings of the service: threshold, window, and whether it scores at all', () => {
  assert.deepEqual(riskSettings({ enabled: true, window_hours: 12, threshold: 80 }), { enabled: true, threshold: 80, windowMs: 12 * H });
  assert.equal(riskSettings({ enabled: false }).enabled, false);
  assert.equal(riskSettings({}).enabled, true, 'on unless the service says it is off');
  assert.deepEqual(riskSettings({ window_hours: 0, threshold: -1 }), { enabled: true, threshold: DEFAULT_RISK_THRESHOLD, windowMs: DEFAULT_RISK_WINDOW_MS });
});

test('the entity chart starts at the range with the score of the window before it', () => {
  const from = 100 * H;
  const alerts = [
    alert({ rule: 'before', level: 'high', time: from - 2 * H }),
    alert({ rule: 'inside', level: 'low', time: from + H }),
  ];
  assert.deepEqual(riskSteps(alerts, from, from + 30 * H, 24 * H, false), [
    { t: from, score: 35 },
    { t: from + H, score: 40 },
    { t: from + 22 * H, score: 5 },
    { t: from + 25 * H, score: 0 },
  ]);
  assert.deepEqual(riskSteps(alerts, from, from + 10 * H, 24 * H, false).map((p) => p.t), [from, from + H], 'nothing after the end');
  assert.deepEqual(riskSteps([alert({ kind: 'risk' })], from, from + H, 24 * H, false), [], 'nothing adds risk');
  assert.equal(riskSteps(alerts, 0, from + 30 * H, 24 * H, true)[0].t, from - 2 * H, '"all" fits the data');
});
