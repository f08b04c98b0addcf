// How `auto` picks a transport: the best one the browser has, first; after one fails before it
// was useful, the next one down, past those the server says it has turned off. A transport
// chosen explicitly that the server has turned off is not retried.

import { FourcastError } from './fourcast-util.js';

/** Transports, best first: the order `auto` tries them in. */
export const TRANSPORTS = ['websocket', 'sse', 'longpoll', 'shortpoll'];

function available(name) {
  switch (name) {
    case 'websocket':
      return typeof WebSocket === 'function';
    case 'sse':
      return typeof EventSource === 'function';
    default:
      return typeof fetch === 'function';
  }
}

/** The transports to try for `mode` ('auto' or a name), best first, that this browser has. */
export function transportOrder(mode) {
  const names = mode === 'auto' ? TRANSPORTS : [mode];
  return names.filter(available);
}

/**
 * Is the server up, and which transports does it offer? (`transports` null: unknown.) GET
 * /api/info explains a refusal the browser hides (a refused WebSocket handshake is only "code
 * 1006") and lets `auto` skip the next transports that are off too.
 */
export async function serverInfo(client) {
  try {
    const res = await client.request('/api/info', { signal: AbortSignal.timeout(4000) });
    if (res.status >= 500) return { reachable: false, transports: null };
    const body = res.ok ? await res.json().catch(() => null) : null;
    const transports = body && typeof body.transports === 'object' ? body.transports : null;
    return { reachable: true, transports };
  } catch {
    return { reachable: false, transports: null };
  }
}

/**
 * Step down from tier `tier`, whose transport `failed` broke with `reason`: the tier to use next,
 * past the transports `server` has turned off (the last one is always tried). Appends why to
 * `steps`, so that the reason shown lists every step down, in order.
 */
export function stepDown(order, tier, failed, reason, server, steps) {
  const off = (name) => !!server.transports && server.transports[name] === false;
  steps.push(off(failed) ? `${failed} is turned off on this server (${reason})` : reason);
  let next = tier + 1;
  while (next < order.length - 1 && off(order[next])) {
    steps.push(`${order[next]} is turned off on this server too`);
    next += 1;
  }
  return next;
}

/**
 * `conn` of `connector` failed before it was useful (`info`: its drop). Once GET /api/info has
 * said whether the server is up and which transports it has off: `auto` steps down past those
 * off; a transport chosen explicitly and off stops (offline, an `error` with status 403, as the
 * Python client stops); otherwise the connector retries it after its backoff.
 */
export async function afterRefusal(connector, conn, info) {
  const c = connector.client;
  const gen = connector.gen;
  let server;
  connector.steppingDown = true;
  try {
    server = await serverInfo(c);
  } finally {
    connector.steppingDown = false;
  }
  if (gen !== connector.gen || c.closed || connector.conn) return; // moved on meanwhile
  const retry = (why) => connector._scheduleReconnect(info.minDelay || 0, why);
  if (!server.reachable) {
    retry(`${info.reason}; server unreachable, retrying ${conn.name}`);
  } else if (!connector.auto) {
    if (!server.transports || server.transports[conn.name] !== false) {
      retry(`${info.reason}; retrying ${conn.name}`);
      return;
    }
    const reason = `${conn.name} is turned off on this server (${info.reason})`;
    c._setTransport(conn.name, `${reason}: not reconnecting`);
    c._setState('offline');
    const error = new FourcastError('transport_disabled', reason, { status: 403 });
    c.emit('error', { channel: null, error });
  } else {
    const order = connector.order();
    const steps = connector.stepDowns;
    connector.tier = stepDown(order, connector.tier, conn.name, info.reason, server, steps);
    connector.counters.reconnects += 1;
    connector.connect(`${steps.join('; ')}: falling back to ${order[connector.tier]}`);
  }
}
