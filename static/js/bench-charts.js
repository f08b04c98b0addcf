// The benchmark's three small charts (uPlot, vendored under /static/vendor): CPU per delivery and
// idle memory as bars grouped by transport, p99 latency against offered rate as lines.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import { TRANSPORTS, idleKib, p99Curve, referenceRow, seriesNames } from './bench-data.js';
import { num, short } from './bench-format.js';

const CHART_HEIGHT = 170;
const DASH = { fourcast: [], nchan: [7, 4], floor: [2, 3] };
const charts = [];

function css(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

/** A series' colour: each server its own; a launch/auth/backend variant, the same but paler. */
function seriesColor(name) {
  const server = name.split(' ')[0];
  const base = css(`--s-${server}`, '') || css('--s-other', '#777777');
  return name.includes('(') && /^#[0-9a-f]{6}$/i.test(base) ? `${base}88` : base;
}

function axisStyle() {
  const text = css('--muted', '#666');
  const grid = css('--border', '#ddd');
  return { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

/** Draw each bar's value above it, so the chart reads without hovering (phones). */
function valueLabels(digits) {
  return (u) => {
    const { ctx } = u;
    ctx.save();
    ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
    ctx.fillStyle = css('--text', '#222');
    ctx.textAlign = 'center';
    for (let s = 1; s < u.series.length; s += 1) {
      if (!u.series[s].show) continue;
      u.data[s].forEach((v, i) => {
        if (v == null) return;
        const x = u.valToPos(u.data[0][i], 'x', true);
        const y = u.valToPos(v, 'y', true);
        ctx.fillText(num(v, v < 10 ? 1 : 0), x, y - 4 * devicePixelRatio);
      });
    }
    ctx.restore();
  };
}

function mount(holder, opts, data) {
  const width = Math.max(240, holder.clientWidth || 320);
  const chart = new uPlot({ width, height: CHART_HEIGHT, ...opts }, data, holder);
  charts.push({ chart, holder });
  return chart;
}

/** Bars grouped by transport, one bar per series (fourcast and each peer). */
function groupedBars(holder, { series: all, groups, value, unit, digits }) {
  const series = all.filter((name) => groups.some((g) => value(name, g) != null));
  const width = series.length + 1; // a gap between groups
  const xs = [];
  for (let g = 0; g < groups.length; g += 1) for (let s = 0; s < series.length; s += 1) xs.push(g * width + s);
  const data = [xs];
  series.forEach((name, s) => {
    data.push(
      xs.map((x) => (x % width === s ? value(name, groups[Math.floor(x / width)]) : null)),
    );
  });
  const mid = (series.length - 1) / 2;
  const ys = data.slice(1).flat().filter((v) => v != null);
  const top = Math.max(1, ...ys) * 1.18; // room for the value labels
  return mount(
    holder,
    {
      scales: { x: { time: false, range: [-0.7, (groups.length - 1) * width + series.length - 0.3] }, y: { range: [0, top] } },
      axes: [
        {
          ...axisStyle(),
          grid: { show: false },
          splits: () => groups.map((_, g) => g * width + mid),
          values: (u, splits) => splits.map((v) => groups[Math.round((v - mid) / width)] ?? ''),
        },
        { ...axisStyle(), size: 44, values: (u, splits) => splits.map((v) => (v == null ? '' : num(v))) },
      ],
      series: [
        { label: 'transport' },
        ...series.map((name) => ({
          label: name,
          stroke: seriesColor(name),
          fill: seriesColor(name),
          width: 0,
          points: { show: false },
          paths: uPlot.paths.bars({ size: [0.9, 40] }),
          value: (u, v) => (v == null ? '–' : `${num(v, digits)} ${unit}`),
        })),
      ],
      legend: { live: false },
      cursor: { show: false },
      hooks: { draw: [valueLabels(digits)] },
    },
    data,
  );
}

/** p99 latency against offered rate: a line per transport and series, log scales. */
function p99Lines(holder, rows, series) {
  // One line style per server: its series with the most fan-out points (launch, auth and
  // backend variants stay in the CPU chart and the table, not to crowd this one).
  const best = new Map();
  for (const name of series) {
    const server = name.split(' ')[0];
    const points = TRANSPORTS.reduce((n, t) => n + p99Curve(rows, name, t).length, 0);
    if (points && (!best.has(server) || points > best.get(server).points)) {
      best.set(server, { name, points });
    }
  }
  const curves = [];
  for (const { name } of best.values()) {
    for (const t of TRANSPORTS) {
      const points = p99Curve(rows, name, t);
      if (points.length) curves.push({ name, transport: t, points: new Map(points) });
    }
  }
  const xs = [...new Set(curves.flatMap((c) => [...c.points.keys()]))].sort((a, b) => a - b);
  const data = [xs, ...curves.map((c) => xs.map((x) => c.points.get(x) ?? null))];
  const ys = data.slice(1).flat().filter((v) => v != null && v > 0);
  const yRange = [Math.min(...ys) / 1.5, Math.max(...ys) * 1.5];
  const ySplits = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].filter(
    (v) => v >= yRange[0] && v <= yRange[1],
  );
  const all = (u, splits) => splits; // every split labelled (uPlot's log default: decades only)
  // Offered rates crowd at the top of a log axis: label those at least 34 px apart.
  const spaced = (u, splits) => {
    let last = -Infinity;
    return splits.map((v) => {
      const x = u.valToPos(v, 'x');
      if (v == null || x - last < 34) return '';
      last = x;
      return short(v);
    });
  };
  const label = (fmt) => (u, splits) => splits.map((v) => (v == null ? '' : fmt(v)));
  return mount(
    holder,
    {
      scales: {
        x: { time: false, distr: 3, log: 10, range: () => [xs[0] / 1.25, xs[xs.length - 1] * 1.25] },
        y: { distr: 3, log: 10, range: () => yRange },
      },
      axes: [
        { ...axisStyle(), splits: () => xs, filter: all, values: spaced, space: 24 },
        {
          ...axisStyle(),
          size: 44,
          splits: () => ySplits,
          filter: all,
          values: label((v) => num(v, v < 1 ? 1 : 0)),
        },
      ],
      series: [
        { label: 'offered deliveries/s', value: (u, v) => (v == null ? '–' : short(v)) },
        ...curves.map((c) => ({
          label: `${c.transport} · ${c.name}`,
          stroke: css(`--t-${c.transport}`, '#555'),
          dash: DASH[c.name.split(' ')[0]] || [4, 2],
          width: 2,
          spanGaps: true,
          points: { size: 5 },
          value: (u, v) => (v == null ? '–' : `${num(v, 1)} ms`),
        })),
      ],
      legend: { live: false },
      cursor: { show: false },
    },
    data,
  );
}

/** The three charts of the run, resized with the page. */
export function renderCharts(rows) {
  const series = seriesNames(rows);
  const figure = (name) => document.querySelector(`[data-testid="chart-${name}"] .chart-holder`);
  const cpuGroups = TRANSPORTS.filter((t) => series.some((s) => referenceRow(rows, s, t)));
  groupedBars(figure('cpu'), {
    series,
    groups: cpuGroups,
    value: (s, t) => {
      const row = referenceRow(rows, s, t);
      return row ? Number(row.cpu_ms_per_1000) : null;
    },
    unit: 'ms',
    digits: 1,
  });
  p99Lines(figure('p99'), rows, series);
  const kibGroups = TRANSPORTS.filter((t) => series.some((s) => idleKib(rows, s, t) != null));
  groupedBars(figure('kib'), {
    series,
    groups: kibGroups,
    value: (s, t) => idleKib(rows, s, t),
    unit: 'KiB',
    digits: 1,
  });
  const resize = () => {
    for (const { chart, holder } of charts) {
      const width = Math.max(240, holder.clientWidth);
      if (width !== chart.width) chart.setSize({ width, height: CHART_HEIGHT });
    }
  };
  new ResizeObserver(resize).observe(document.getElementById('bench-charts'));
}
