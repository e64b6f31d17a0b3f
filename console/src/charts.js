// charts.js — small hand-drawn SVG charts: a time series as lines or as stacked bars, with axes,
// grid, legend, tooltips through <title>, and an optional threshold line. No library.

import { h, s } from './dom.js';
import { formatLocal } from './time.js';

/** Series colours (readable on white, told apart by hue). */
export const PALETTE = ['#1d4ed8', '#c2410c', '#15803d', '#7c3aed', '#b91c1c', '#0e7490', '#a16207', '#be185d', '#4b5563', '#4338ca'];

/** At most this many series are drawn; the rest are summed into "other". */
const MAX_SERIES = 9;

/**
 * @typedef {{name: string, values: Array<number | null>}} ChartSeries
 * @typedef {{
 *   title: string, times: number[], series: ChartSeries[], kind: 'line' | 'stacked',
 *   step?: number, height?: number, testid?: string, yFormat?: (v: number) => string,
 *   threshold?: number, thresholdLabel?: string, emptyText?: string, note?: string,
 *   stepLine?: boolean, domain?: {from: number, to: number}, totals?: boolean,
 *   width?: number, hideCaption?: boolean
 * }} ChartSpec
 */

/**
 * The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ v (v > 0).
 * @param {number} v
 */
export function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v * (1 - 1e-12)) return m * p;
  return 10 * p;
}

/**
 * Round tick values from 0 to at least max.
 * @param {number} max
 * @param {number} [count]
 */
export function yTicks(max, count = 4) {
  const top = max > 0 ? max : 1;
  const step = niceCeil(top / count);
  const ticks = [];
  for (let v = 0; v < top + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks.length < 2) ticks.push(step);
  return ticks;
}

/**
 * Numbers for axes and tooltips: 1.2k, 3.4M, up to 3 significant decimals.
 * @param {number} v
 */
export function formatNumber(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e4) return `${trim(v / 1e3)}k`;
  if (a >= 100 || a === 0) return String(Math.round(v));
  if (a >= 1) return trim(v);
  return String(Number(v.toPrecision(2)));
}

/** @param {number} v */
function trim(v) {
  return String(Number(v.toFixed(1)));
}

/**
 * Keeps the largest series and sums the rest into "other".
 * @param {ChartSeries[]} series
 * @returns {ChartSeries[]}
 */
export function limitSeries(series) {
  if (series.length <= MAX_SERIES) return series;
  const total = (/** @type {ChartSeries} */ x) => x.values.reduce((/** @type {number} */ a, b) => a + (b ?? 0), 0);
  const sorted = [...series].sort((a, b) => total(b) - total(a));
  const kept = sorted.slice(0, MAX_SERIES - 1);
  const rest = sorted.slice(MAX_SERIES - 1);
  const len = Math.max(...rest.map((r) => r.values.length));
  const values = Array.from({ length: len }, (_, i) => {
    let sum = /** @type {number | null} */ (null);
    for (const r of rest) {
      const v = r.values[i];
      if (v !== null && v !== undefined) sum = (sum ?? 0) + v;
    }
    return sum;
  });
  return [...kept, { name: `other (${rest.length})`, values }];
}

/**
 * Labels for the time axis, by the span shown.
 * @param {number} span
 * @returns {Intl.DateTimeFormat}
 */
function axisFormat(span) {
  const DAY = 86_400_000;
  if (span <= 5 * 60_000) return new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  if (span <= 2 * DAY) return new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  if (span <= 10 * DAY) return new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  if (span <= 400 * DAY) return new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  return new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short' });
}

/**
 * Draws a time chart inside a <figure> with its title, legend and notes.
 * @param {ChartSpec} spec
 * @returns {HTMLElement}
 */
export function timeChart(spec) {
  const series = limitSeries(spec.series.filter((x) => x.values.some((v) => v !== null && v !== undefined)));
  const fmt = spec.yFormat ?? formatNumber;
  const figure = h('figure', { class: 'chart', 'data-testid': spec.testid ?? null }, h('figcaption', { class: spec.hideCaption ? 'sr-only' : null }, spec.title));
  if (spec.times.length === 0 || series.length === 0) {
    figure.appendChild(h('p', { class: 'chart-empty muted', 'data-testid': 'chart-empty' }, spec.emptyText ?? 'No data in this range.'));
    return figure;
  }
  const W = spec.width ?? 800;
  const H = spec.height ?? 220;
  const L = 58;
  const R = 16;
  const T = 12;
  const B = 30;
  const pw = W - L - R;
  const ph = H - T - B;
  const times = spec.times;
  const step = spec.step ?? 0;
  let x0 = spec.domain?.from ?? times[0];
  let x1 = spec.domain?.to ?? times[times.length - 1] + (spec.kind === 'stacked' ? step : 0);
  if (x1 <= x0) {
    x0 -= 30_000;
    x1 += 30_000;
  }
  const xs = (/** @type {number} */ t) => L + ((t - x0) / (x1 - x0)) * pw;

  let max = 0;
  if (spec.kind === 'stacked') {
    for (let i = 0; i < times.length; i++) {
      let sum = 0;
      for (const x of series) sum += x.values[i] ?? 0;
      max = Math.max(max, sum);
    }
  } else {
    for (const x of series) for (const v of x.values) if (v !== null && v !== undefined) max = Math.max(max, v);
  }
  if (spec.threshold !== undefined) max = Math.max(max, spec.threshold * 1.1);
  const ticks = yTicks(max);
  const top = ticks[ticks.length - 1];
  const ys = (/** @type {number} */ v) => T + ph - (v / top) * ph;

  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart-svg',
    role: 'img',
    'aria-label': spec.title,
    preserveAspectRatio: 'xMinYMin meet',
  });

  // Grid and y axis.
  for (const v of ticks) {
    const y = ys(v);
    svg.appendChild(s('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'grid' }));
    svg.appendChild(s('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', class: 'axis-label' }, fmt(v)));
  }
  // x axis.
  const xf = axisFormat(x1 - x0);
  const xTickCount = 6;
  for (let i = 0; i < xTickCount; i++) {
    const t = x0 + ((x1 - x0) * i) / (xTickCount - 1);
    const x = xs(t);
    svg.appendChild(s('line', { x1: x, x2: x, y1: T + ph, y2: T + ph + 4, class: 'axis' }));
    const anchor = i === 0 ? 'start' : i === xTickCount - 1 ? 'end' : 'middle';
    svg.appendChild(s('text', { x, y: H - 10, 'text-anchor': anchor, class: 'axis-label' }, xf.format(new Date(t))));
  }
  svg.appendChild(s('line', { x1: L, x2: W - R, y1: T + ph, y2: T + ph, class: 'axis' }));
  svg.appendChild(s('line', { x1: L, x2: L, y1: T, y2: T + ph, class: 'axis' }));

  if (spec.kind === 'stacked') {
    const barWidth = Math.max(1, (step > 0 ? xs(x0 + step) - xs(x0) : pw / times.length) - 1);
    for (let i = 0; i < times.length; i++) {
      let base = 0;
      const x = xs(times[i]);
      series.forEach((ser, k) => {
        const v = ser.values[i] ?? 0;
        if (v <= 0) return;
        const yTop = ys(base + v);
        const rect = s(
          'rect',
          { x: x.toFixed(1), y: yTop.toFixed(1), width: barWidth.toFixed(1), height: Math.max(0.5, ys(base) - yTop).toFixed(1), fill: PALETTE[k % PALETTE.length], class: 'bar' },
          s('title', null, `${formatLocal(times[i])}${step ? ' – ' + formatLocal(times[i] + step) : ''}\n${ser.name}: ${fmt(v)}`),
        );
        svg.appendChild(rect);
        base += v;
      });
    }
  } else {
    series.forEach((ser, k) => {
      let d = '';
      let pen = false;
      for (let i = 0; i < times.length; i++) {
        const v = ser.values[i];
        if (v === null || v === undefined) {
          pen = false;
          continue;
        }
        const x = xs(times[i]).toFixed(1);
        const y = ys(v).toFixed(1);
        if (!pen) d += `M${x},${y}`;
        else if (spec.stepLine) d += `H${x}V${y}`;
        else d += `L${x},${y}`;
        pen = true;
      }
      if (spec.stepLine && pen && xs(x1) > xs(times[times.length - 1])) d += `H${xs(x1).toFixed(1)}`;
      svg.appendChild(s('path', { d, fill: 'none', stroke: PALETTE[k % PALETTE.length], 'stroke-width': 2, class: 'line' }));
      if (times.length <= 60) {
        for (let i = 0; i < times.length; i++) {
          const v = ser.values[i];
          if (v === null || v === undefined) continue;
          svg.appendChild(s('circle', { cx: xs(times[i]).toFixed(1), cy: ys(v).toFixed(1), r: 3, fill: PALETTE[k % PALETTE.length], class: 'point' }));
        }
      }
    });
    // Hover bands: one per time, with every series' value in its tooltip.
    for (let i = 0; i < times.length; i++) {
      const left = i === 0 ? xs(times[0]) : (xs(times[i - 1]) + xs(times[i])) / 2;
      const right = i === times.length - 1 ? xs(times[i]) + 1 : (xs(times[i]) + xs(times[i + 1])) / 2;
      const lines = series.map((ser) => `${ser.name}: ${ser.values[i] === null || ser.values[i] === undefined ? '—' : fmt(/** @type {number} */ (ser.values[i]))}`);
      svg.appendChild(
        s('rect', { x: left.toFixed(1), y: T, width: Math.max(1, right - left).toFixed(1), height: ph, class: 'hover-band' }, s('title', null, `${formatLocal(times[i])}\n${lines.join('\n')}`)),
      );
    }
  }

  if (spec.threshold !== undefined) {
    const y = ys(spec.threshold);
    svg.appendChild(s('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'threshold' }));
    svg.appendChild(s('text', { x: W - R - 4, y: y - 4, 'text-anchor': 'end', class: 'threshold-label' }, spec.thresholdLabel ?? `threshold ${fmt(spec.threshold)}`));
  }

  figure.appendChild(svg);
  figure.appendChild(
    h(
      'ul',
      { class: 'legend' },
      series.map((ser, k) => {
        const total = ser.values.reduce((/** @type {number} */ a, b) => a + (b ?? 0), 0);
        return h(
          'li',
          null,
          s('svg', { width: 12, height: 12, viewBox: '0 0 12 12', 'aria-hidden': 'true', class: 'swatch' }, s('rect', { width: 12, height: 12, rx: 2, fill: PALETTE[k % PALETTE.length] })),
          ser.name,
          spec.totals ? h('span', { class: 'muted' }, ` (${fmt(total)})`) : null,
        );
      }),
    ),
  );
  if (spec.note) figure.appendChild(h('p', { class: 'chart-note muted' }, spec.note));
  return figure;
}
