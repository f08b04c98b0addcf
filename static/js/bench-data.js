// What /compare shows of a benchmark run, derived from its rows in one place: the charts and the
// figures in the "Which transport when?" guide read these, so no figure is typed in by hand.
//
// A row is one measurement (bench/results/latest.json `results`). Rows of peers measured in the
// same run carry `server` ("nchan", "floor"; absent means fourcast) and may carry `launch`,
// `auth` and `backend`; any of these fields may be missing.

export const TRANSPORTS = ['websocket', 'sse', 'longpoll', 'shortpoll'];
export const SERVERS = ['fourcast', 'nchan', 'floor'];
/** The load the CPU and p99 figures are quoted at: fan-out to 1,000 readers at 20,000/s. */
export const REFERENCE = { subscribers: 1000, rate: 20000 };
/** The latency budget "max rate" is measured against. */
export const P99_BUDGET_MS = 100;

const DEFAULTS = { launch: 'python -m app', auth: 'key', backend: 'memory' };

const finite = (v) => v != null && Number.isFinite(Number(v));

/** A series: the server, with any launch/auth/backend that is not the default. */
export function seriesOf(row) {
  const server = row.server || 'fourcast';
  const extra = Object.entries(DEFAULTS)
    .filter(([k, d]) => row[k] != null && row[k] !== d)
    .map(([k]) => row[k]);
  return extra.length ? `${server} (${extra.join(', ')})` : server;
}

export function serverOf(row) {
  return row.server || 'fourcast';
}

function rank(list, value) {
  const i = list.indexOf(value);
  return i === -1 ? list.length : i;
}

/** Series names, fourcast first, then the peers in a fixed order. */
export function seriesNames(rows) {
  const names = new Map();
  for (const r of rows) names.set(seriesOf(r), serverOf(r));
  return [...names.keys()].sort(
    (a, b) => rank(SERVERS, names.get(a)) - rank(SERVERS, names.get(b)) || a.localeCompare(b),
  );
}

/** The peers (servers other than fourcast) measured in this run. */
export function peers(rows) {
  return [...new Set(rows.map(serverOf))].filter((s) => s !== 'fourcast');
}

const fanout = (r) => r.kind === 'fanout' || (!r.kind && finite(r.target_deliveries_per_s));
const target = (r) => Number(r.target_deliveries_per_s ?? r.deliveries_per_s);

/** Fan-out rows of one series and transport at the reference size (or the nearest size). */
function fanoutRows(rows, series, transport) {
  const mine = rows.filter((r) => seriesOf(r) === series && r.transport === transport && fanout(r));
  if (!mine.length) return [];
  const sizes = [...new Set(mine.map((r) => Number(r.subscribers)))];
  const size = sizes.sort(
    (a, b) => Math.abs(a - REFERENCE.subscribers) - Math.abs(b - REFERENCE.subscribers),
  )[0];
  return mine.filter((r) => Number(r.subscribers) === size).sort((a, b) => target(a) - target(b));
}

/**
 * The row a transport's cost is quoted from: fan-out at the reference load (nearest rate), or for
 * the polling transports their poll scenario.
 */
export function referenceRow(rows, series, transport) {
  const fan = fanoutRows(rows, series, transport).filter((r) => finite(r.cpu_ms_per_1000));
  if (fan.length) {
    return fan.reduce((a, b) =>
      Math.abs(target(b) - REFERENCE.rate) < Math.abs(target(a) - REFERENCE.rate) ? b : a,
    );
  }
  return (
    rows.find(
      (r) =>
        seriesOf(r) === series &&
        r.transport === transport &&
        r.kind === 'poll' &&
        finite(r.cpu_ms_per_1000),
    ) || null
  );
}

/** p99 against offered rate: [[rate, p99_ms], ...] for one series and transport. */
export function p99Curve(rows, series, transport) {
  return fanoutRows(rows, series, transport)
    .filter((r) => finite(r.p99_ms))
    .map((r) => [target(r), Number(r.p99_ms)]);
}

/** Server memory per idle connection, KiB. */
export function idleKib(rows, series, transport) {
  const row = rows.find(
    (r) => seriesOf(r) === series && r.transport === transport && finite(r.kib_per_conn),
  );
  return row ? Number(row.kib_per_conn) : null;
}

/** The highest delivery rate with p99 within budget and nothing lost. */
export function maxRate(rows, series, transport) {
  const ok = fanoutRows(rows, series, transport).filter(
    (r) => finite(r.p99_ms) && Number(r.p99_ms) <= P99_BUDGET_MS && !Number(r.loss || 0),
  );
  return ok.length ? Math.max(...ok.map((r) => Number(r.deliveries_per_s) || 0)) : null;
}

/** How a reference row's load reads in prose. */
export function loadText(row) {
  if (!row) return null;
  const n = Number(row.subscribers).toLocaleString('en');
  if (row.kind === 'poll') {
    return `${n} pollers, ${Number(row.events_per_s).toLocaleString('en')} events/s`;
  }
  return `${n} readers at ${target(row).toLocaleString('en')} deliveries/s`;
}

/** The guide's figures for fourcast, by name ("cpu:sse", "p99:websocket", ...). */
export function guideFigures(rows) {
  const figures = {};
  const ws = referenceRow(rows, 'fourcast', 'websocket');
  for (const t of TRANSPORTS) {
    const row = referenceRow(rows, 'fourcast', t);
    figures[`cpu:${t}`] = row ? Number(row.cpu_ms_per_1000) : null;
    figures[`p99:${t}`] = row && finite(row.p99_ms) ? Number(row.p99_ms) : null;
    figures[`p50:${t}`] = row && finite(row.p50_ms) ? Number(row.p50_ms) : null;
    figures[`load:${t}`] = loadText(row);
    figures[`kib:${t}`] = idleKib(rows, 'fourcast', t);
    figures[`max:${t}`] = maxRate(rows, 'fourcast', t);
    figures[`vs-websocket:${t}`] =
      row && ws && Number(ws.cpu_ms_per_1000) > 0
        ? Number(row.cpu_ms_per_1000) / Number(ws.cpu_ms_per_1000)
        : null;
  }
  return figures;
}
