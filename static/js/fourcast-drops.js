// What a drop means to a Connector (fourcast-connector.js), whose `dropped` and `_scheduleReconnect`
// call these: refused credentials wait for a new token, a fatal drop stops, an offline browser
// waits for the network, a transport that failed before it was useful is stepped down from or
// turned off (fourcast-auto.js, unless the server said "later"), and anything else reconnects
// after a backoff.

import { FourcastError } from './fourcast-util.js';

/** A drop of the connection in use (or of a step-up probe): what happens next. */
export function onDrop(connector, conn, info) {
  const c = connector.client;
  if (conn === connector.probeConn) {
    connector.probeConn = null;
    connector._stepUpFrom(conn.tier + 1);
    return;
  }
  if (conn !== connector.conn || c.closed) return;
  connector.conn = null;
  clearTimeout(connector.timers.stepUp);
  // An EventSource refused whose stream a fetch then had accepted: transient, "later" once; a
  // second in a row (the EventSource never opens it here) is a refusal like any other.
  if (info.acceptedAfter && !connector.retriedAccepted) info = { ...info, later: true };
  connector.retriedAccepted = Boolean(info.acceptedAfter);
  connector.counters.drops += 1;
  if (connector.dropAt == null && info.useful) connector.dropAt = Date.now();
  if (info.useful && Date.now() - connector.liveAt > 10000) connector.backoff.reset();
  c.emit('drop', { transport: conn.name, ...info });
  if (info.auth) {
    // The same credentials would be refused again: no reconnect until setToken (newToken).
    connector.needToken = true;
    connector._closeConns();
    c._setTransport(conn.name, `${info.reason}: not reconnecting until a new token is set`);
    c._setState('offline');
    const error = new FourcastError('unauthorized', info.reason, { status: 401 });
    c.emit('error', { channel: null, error });
    return;
  }
  if (info.fatal) {
    c._setTransport(conn.name, `${info.reason}: not reconnecting`);
    c._setState('offline');
    return;
  }
  if (globalThis.navigator && navigator.onLine === false) {
    connector.goOffline();
    return;
  }
  c._setState(connector.everLive ? 'reconnecting' : 'connecting');
  // Failed before it was useful: `auto` may step down, and any transport may be turned off;
  // unless the server said "later" (a WebSocket close 1008 or 1013, an HTTP 429, a 503 with
  // Retry-After): wait at least as long as asked, then the same transport.
  const refused = !info.useful && !info.simulated && !info.later;
  const lastTier = connector.tier >= connector.order().length - 1;
  if (refused && (connector.auto ? !lastTier : !info.minDelay)) {
    connector._afterRefusal(conn, info);
    return;
  }
  connector._scheduleReconnect(info.minDelay || 0, `${info.reason}; retrying ${conn.name}`);
}

/** Reconnect to the transport in use after the backoff, and at least `minDelay` ms. */
export function scheduleReconnect(connector, minDelay, reason) {
  const c = connector.client;
  if (c.closed || connector.timers.reconnect) return;
  const delay = connector.backoff.next(minDelay);
  if (reason) c._setTransport(c.transport, reason);
  connector.timers.reconnect = setTimeout(() => {
    connector.timers.reconnect = null;
    if (c.closed || connector.conn || c.state === 'offline') return;
    connector.counters.reconnects += 1;
    connector.connect();
  }, delay);
}
