// The latest benchmark: a table and a bar chart (SVG built with DOM calls: no markup strings).

import { api, el, setMessage } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';
const ORDER = ['websocket', 'sse', 'longpoll', 'shortpoll'];

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text != null) node.textContent = String(text);
  return node;
}

function num(v, digits = 0) {
  if (v == null || !Number.isFinite(Number(v))) return '–';
  return Number(v).toLocaleString(undefined, {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function transportRank(t) {
  const i = ORDER.indexOf(t);
  return i === -1 ? ORDER.length : i;
}

function renderTable(results) {
  const tbody = document.querySelector('#bench-table tbody');
  tbody.replaceChildren(
    ...results.map((r) =>
      el(
        'tr',
        { dataset: { testid: 'bench-row', transport: r.transport, scenario: r.scenario } },
        el('th', { text: r.transport, attrs: { scope: 'row' } }),
        el('td', { text: r.scenario }),
        el('td', { class: 'num', text: num(r.deliveries_per_s) }),
        el('td', { class: 'num', text: num(r.p50_ms, 1) }),
        el('td', { class: 'num', text: num(r.p99_ms, 1) }),
        el('td', { class: 'num', text: num(r.cpu_ms_per_1000, 1) }),
        el('td', { class: 'num', text: num(r.rss_mb, 1) }),
      ),
    ),
  );
  document.getElementById('bench-table').hidden = false;
}

/** Grouped horizontal bars: deliveries per second, one group per scenario. */
function renderChart(results) {
  const holder = document.getElementById('bench-chart');
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  const max = Math.max(1, ...results.map((r) => Number(r.deliveries_per_s) || 0));
  const width = 720;
  const labelW = 170;
  const valueW = 90;
  const barH = 16;
  const gap = 4;
  const groupGap = 18;
  let y = 28;
  const chart = svg('svg', {
    viewBox: '0 0 0 0',
    role: 'img',
    'aria-labelledby': 'bench-chart-title',
    class: 'chart',
  });
  chart.append(svg('title', { id: 'bench-chart-title' }, 'Deliveries per second, by scenario and transport'));
  chart.append(svg('text', { x: 0, y: 16, class: 'chart-heading' }, 'Deliveries per second (higher is better)'));
  for (const scenario of scenarios) {
    const rows = results
      .filter((r) => r.scenario === scenario)
      .sort((a, b) => transportRank(a.transport) - transportRank(b.transport));
    chart.append(svg('text', { x: 0, y: y + 12, class: 'chart-group' }, scenario));
    y += 18;
    for (const r of rows) {
      const value = Number(r.deliveries_per_s) || 0;
      const w = Math.max(1, ((width - labelW - valueW) * value) / max);
      chart.append(svg('text', { x: 12, y: y + barH - 4, class: 'chart-label' }, r.transport));
      const bar = svg('rect', {
        x: labelW,
        y,
        width: w.toFixed(1),
        height: barH,
        rx: 3,
        class: `bar t-${ORDER.includes(r.transport) ? r.transport : 'other'}`,
      });
      bar.append(svg('title', {}, `${r.transport}, ${scenario}: ${num(value)} deliveries/s`));
      chart.append(bar);
      chart.append(svg('text', { x: labelW + w + 6, y: y + barH - 4, class: 'chart-value' }, num(value)));
      y += barH + gap;
    }
    y += groupGap;
  }
  chart.setAttribute('viewBox', `0 0 ${width} ${y}`);
  holder.replaceChildren(chart);
  holder.hidden = false;
}

function renderMachine(machine) {
  const node = document.getElementById('bench-machine');
  if (!machine || typeof machine !== 'object') return;
  const parts = Object.entries(machine)
    .filter(([, v]) => v != null && typeof v !== 'object')
    .map(([k, v]) => `${k}: ${v}`);
  setMessage(node, parts.length ? `Machine: ${parts.join(' · ')}` : '');
}

export async function renderBench() {
  const empty = document.getElementById('bench-empty');
  let body;
  try {
    body = await api('/api/bench/latest');
  } catch (err) {
    setMessage(
      empty,
      err.status === 404 ? 'No benchmark run yet.' : `Could not load the benchmark: ${err.message}`,
    );
    empty.dataset.state = err.status === 404 ? 'none' : 'error';
    return;
  }
  const results = Array.isArray(body && body.results) ? body.results : [];
  if (!results.length) {
    setMessage(empty, 'No benchmark run yet.');
    empty.dataset.state = 'none';
    return;
  }
  setMessage(empty, '');
  empty.dataset.state = 'loaded';
  renderMachine(body.machine);
  renderTable(results);
  renderChart(results);
}
