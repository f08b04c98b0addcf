// How `auto` steps back up from a fallback: after `stepUpAfter` ms live on it, the better
// transports are tried again, best first, each on a probe connection beside the one in use (which
// keeps delivering meanwhile); the first probe that proves useful replaces it. These work on a
// Connector (fourcast-connector.js): its `_scheduleStepUp`, `_stepUpFrom` and `_promote` call them.

import { createConnection } from './fourcast-transports.js';

/** Try the better transports after `stepUpAfter` ms, in auto mode on a fallback only. */
export function scheduleStepUp(connector) {
  clearTimeout(connector.timers.stepUp);
  if (!connector.auto || connector.tier === 0) return;
  const after = connector.client.options.stepUpAfter;
  connector.timers.stepUp = setTimeout(() => connector._stepUpFrom(0), after);
}

/** Try the transports better than the current one, best first, without interrupting it. */
export function stepUpFrom(connector, tier) {
  const c = connector.client;
  if (c.closed || !connector.conn || c.state !== 'live' || tier >= connector.tier) {
    connector._scheduleStepUp();
    return;
  }
  const name = connector.order()[tier];
  const probe = createConnection(name, c, { probe: true });
  probe.tier = tier;
  connector.probeConn = probe;
  for (const [ch, sub] of c.subs) if (sub.ready) probe.addChannel(ch);
  probe.start();
}

/** The probe proved useful: it becomes the connection in use, and the old one closes. */
export function promote(connector, probe) {
  const old = connector.conn;
  connector.probeConn = null;
  connector.stepDowns = [];
  connector.conn = probe;
  connector.tier = probe.tier;
  if (old) old.close();
  if (probe.name === 'sse') connector.sseProven = true;
  const after = Math.round(connector.client.options.stepUpAfter / 1000);
  const from = old ? old.name : 'a fallback';
  connector.choice = `stepped up: ${probe.name} works again (retried after ${after} s on ${from})`;
  connector.client._setTransport(probe.name, connector.choice);
  connector.liveAt = Date.now();
  connector.client._setState('live');
  connector._scheduleStepUp();
}
