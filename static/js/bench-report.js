// The benchmark run in words: its date, machine, commit and peers, every row in a table, and the
// figures of the "Which transport when?" guide.

import { P99_BUDGET_MS, guideFigures, loadText, peers, referenceRow, seriesOf } from './bench-data.js';
import { num } from './bench-format.js';
import { el, setMessage } from './ui.js';

export function renderRun(body, rows) {
  const m = body.machine && typeof body.machine === 'object' ? body.machine : {};
  const v = body.versions && typeof body.versions === 'object' ? body.versions : {};
  // To the minute: the line sits beside the heading, and seconds would wrap it below.
  const when = body.created
    ? String(body.created).replace('T', ' ').replace(/:\d\d(?=[+-]\d{4}$)/, '').replace(/\+0000$/, ' UTC')
    : null;
  const machine = [m.cpu_model, m.cores && `${m.cores} cores`, m.memory_mb && `${num(m.memory_mb / 1024, 0)} GB`]
    .filter(Boolean)
    .join(', ');
  const parts = [
    when && `Run ${when}`,
    body.suite && `${body.suite} suite`,
    machine && `on ${machine}`,
    v.fourcast && `fourcast commit ${v.fourcast}`,
  ].filter(Boolean);
  setMessage(document.getElementById('bench-run'), parts.join(' · '));
  const others = peers(rows);
  const note = document.getElementById('bench-peers');
  note.dataset.peers = others.join(' ');
  setMessage(
    note,
    others.length
      ? `Beside fourcast, measured in the same run on the same machine: ${others
          .map((p) => (v[p] ? `${p} ${v[p]}` : p))
          .join(', ')}.`
      : 'No peer was measured in this run: the charts show fourcast alone.',
  );
}

export function renderTable(rows) {
  const tbody = document.querySelector('#bench-table tbody');
  tbody.replaceChildren(
    ...rows.map((r) =>
      el(
        'tr',
        { dataset: { testid: 'bench-row', transport: r.transport, scenario: r.scenario, server: seriesOf(r) } },
        el('th', { text: seriesOf(r), attrs: { scope: 'row' } }),
        el('td', { text: r.transport }),
        el('td', { text: r.scenario }),
        el('td', { class: 'num', text: num(r.deliveries_per_s) }),
        el('td', { class: 'num', text: num(r.p50_ms, 1) }),
        el('td', { class: 'num', text: num(r.p99_ms, 1) }),
        el('td', { class: 'num', text: num(r.cpu_ms_per_1000, 1) }),
        el('td', { class: 'num', text: num(r.kib_per_conn, 1) }),
      ),
    ),
  );
  document.getElementById('bench-count').textContent = String(rows.length);
}

/** Fill every [data-figure] of the page (captions and the guide) from the run. */
export function renderFigures(rows) {
  const figures = guideFigures(rows);
  figures.budget = P99_BUDGET_MS;
  const idle = rows.find((r) => r.kib_per_conn != null && !r.server);
  figures.idle = idle ? `${num(idle.held ?? idle.subscribers)} held` : null;
  figures.load = loadText(referenceRow(rows, 'fourcast', 'websocket'));
  for (const node of document.querySelectorAll('[data-figure]')) {
    const key = node.dataset.figure;
    const value = figures[key];
    const kind = key.split(':')[0];
    let text;
    if (value == null) text = '–';
    else if (typeof value === 'string') text = value;
    else if (kind === 'max' || kind === 'budget') text = num(value);
    else if (kind === 'vs-websocket') text = num(value, 1);
    else text = num(value, value < 10 ? 1 : 0);
    node.textContent = text;
    node.dataset.value = value == null ? '' : String(value);
  }
}
