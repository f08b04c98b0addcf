// The latest benchmark on /compare: three small charts (bench-charts.js), fourcast beside the
// peers measured in the same run, the run's date, machine and commit, every row in a table, and
// the figures of the "Which transport when?" guide (bench-report.js), all from one response.

import { renderCharts } from './bench-charts.js';
import { renderFigures, renderRun, renderTable } from './bench-report.js';
import { api, setMessage } from './ui.js';

export async function renderBench() {
  const empty = document.getElementById('bench-empty');
  let body;
  try {
    body = await api('/api/bench/latest');
  } catch (err) {
    setMessage(empty, `Could not load the benchmark: ${err.message}`);
    empty.dataset.state = 'error';
    return;
  }
  const rows = Array.isArray(body && body.results) ? body.results.filter((r) => r && r.transport) : [];
  if (!rows.length) {
    setMessage(empty, 'No benchmark run yet: `make bench` makes one.');
    empty.dataset.state = 'none';
    return;
  }
  setMessage(empty, '');
  renderRun(body, rows);
  renderFigures(rows);
  renderTable(rows);
  document.getElementById('bench-charts').hidden = false;
  document.getElementById('bench-rows').hidden = false;
  renderCharts(rows);
  empty.dataset.state = 'loaded';
}
