// How a FourcastClient stays connected: the connection in use (and, in `auto`, a better one being
// tried), what a drop leads to (fourcast-drops.js: a reconnect with backoff, the step down to the
// next transport when one fails before it was useful, the wait for a new token after the server
// refused the credentials), the step back up after a while (fourcast-stepup.js), and the browser
// going offline and online.
// It drives its client's state and transport (`_setState`, `_setTransport`) and reads its
// channels; connections report to the client, which passes `useful` and `dropped` on here.

import { Backoff, watchNetwork } from './fourcast-util.js';
import { createConnection } from './fourcast-transports.js';
import { afterRefusal, transportOrder } from './fourcast-auto.js';
import { onDrop, scheduleReconnect } from './fourcast-drops.js';
import { promote, scheduleStepUp, stepUpFrom } from './fourcast-stepup.js';

export class Connector {
  constructor(client, { backoff, counters, clock }) {
    this.client = client;
    this.counters = counters;
    this.clock = clock;
    this.conn = null; // the connection in use
    this.probeConn = null; // a better transport being tried (auto step-up)
    this.tier = 0; // index in transportOrder() of the transport in use
    this.choice = null; // why this transport is in use
    this.stepDowns = []; // why each step down of the current story happened
    this.sseProven = false;
    this.backoff = new Backoff(backoff);
    this.timers = { reconnect: null, stepUp: null };
    this.gen = 0; // bumped on close/offline: stale async work checks it
    this.steppingDown = false; // asking the server which transports it has, after a refusal
    this.liveAt = 0;
    this.dropAt = null;
    this.everLive = false;
    this.needToken = false; // the credentials were refused (401): wait for setToken
    this.retriedAccepted = false; // the last drop was an SSE refusal accepted when asked again
    this.unwatchNetwork = watchNetwork(() => this.goOnline(), () => this.goOffline());
  }

  get auto() {
    return this.client.options.transport === 'auto';
  }

  order() {
    return transportOrder(this.client.options.transport);
  }

  conns() {
    return [this.conn, this.probeConn].filter(Boolean);
  }

  ensureConnected() {
    const c = this.client;
    if (c.closed || this.conn || this.timers.reconnect || c.state === 'offline') return;
    if (this.steppingDown) return; // the step down connects, to the transport it settles on
    if (!this.clock.syncing) this.clock.sync(c);
    this.connect();
  }

  /** A new transport choice: start the story over, at the best transport. */
  restartFresh() {
    this.tier = 0;
    this.choice = null;
    this.stepDowns = [];
    this.backoff.reset();
    this.restart();
  }

  restart() {
    this.clearTimers();
    this._closeConns();
    this.connect();
  }

  /** Close everything for good (the client is closing). */
  close() {
    this.gen += 1;
    this.clearTimers();
    this._closeConns();
    this.unwatchNetwork();
  }

  _closeConns() {
    for (const conn of this.conns()) conn.close();
    this.conn = null;
    this.probeConn = null;
  }

  clearTimers() {
    clearTimeout(this.timers.reconnect);
    clearTimeout(this.timers.stepUp);
    this.clock.stop();
    this.timers = { reconnect: null, stepUp: null };
  }

  connect(reason) {
    const c = this.client;
    if (c.closed) return;
    this.needToken = false;
    // Wait for a first channel with a known start: "useful" means delivering something.
    if (![...c.subs.values()].some((s) => s.ready)) return;
    const order = this.order();
    if (!order.length) {
      c._setTransport(null, 'no transport available in this browser');
      c._setState('offline');
      return;
    }
    this.tier = Math.min(this.tier, order.length - 1);
    const name = order[this.tier];
    // `choice` says why this transport is in use; `reason` shows it, or while reconnecting
    // what went wrong, and returns to the choice once live again.
    if (reason) {
      this.choice = reason;
      c._setTransport(name, reason);
    } else if (name !== c.transport || !this.choice) {
      this.choice = this.auto ? `${name}: the best transport, tried first` : `${name}: chosen explicitly`;
      c._setTransport(name, this.choice);
    }
    // In auto mode, check harder that an SSE stream really delivers (a buffering proxy).
    const probe = this.auto && name === 'sse' && !this.sseProven;
    const conn = createConnection(name, c, { probe });
    conn.tier = this.tier;
    this.conn = conn;
    for (const [ch, sub] of c.subs) if (sub.ready) conn.addChannel(ch);
    c._setState(this.everLive ? 'reconnecting' : 'connecting');
    conn.start();
  }

  useful(conn) {
    if (conn === this.probeConn) {
      this._promote(conn);
      return;
    }
    if (conn !== this.conn) return;
    if (conn.name === 'sse') this.sseProven = true;
    this.retriedAccepted = false;
    this.stepDowns = []; // the choice keeps the story; a later step down starts a new one
    this.liveAt = Date.now();
    this.everLive = true;
    if (this.dropAt != null) {
      this.counters.lastRecoveryMs = Date.now() - this.dropAt;
      this.dropAt = null;
    }
    this.client._setTransport(conn.name, this.choice);
    this.client._setState('live');
    this._scheduleStepUp();
  }

  /** A connection dropped: what happens next (fourcast-drops.js). */
  dropped(conn, info) {
    onDrop(this, conn, info);
  }

  /** Ask the server why `conn` failed before it was useful (fourcast-auto.js). */
  _afterRefusal(conn, info) {
    afterRefusal(this, conn, info);
  }

  _scheduleReconnect(minDelay, reason) {
    scheduleReconnect(this, minDelay, reason);
  }

  _scheduleStepUp() {
    scheduleStepUp(this);
  }

  _stepUpFrom(tier) {
    stepUpFrom(this, tier);
  }

  _promote(probe) {
    promote(this, probe);
  }

  goOffline() {
    const c = this.client;
    if (c.closed) return;
    this.gen += 1;
    this.clearTimers();
    const wasLive = c.state === 'live';
    this._closeConns();
    if (wasLive && this.dropAt == null) this.dropAt = Date.now();
    c._setTransport(c.transport, 'the browser is offline; waiting for the network');
    c._setState('offline');
  }

  /** A new token (setToken): a client waiting since its credentials were refused connects. */
  newToken() {
    const c = this.client;
    if (!this.needToken || c.closed || this.conn) return;
    this.backoff.reset();
    c._setState(this.everLive ? 'reconnecting' : 'connecting');
    this.connect();
  }

  goOnline() {
    const c = this.client;
    if (c.closed || c.state !== 'offline' || this.conn || this.needToken) return;
    this.backoff.reset();
    c._setState(this.everLive ? 'reconnecting' : 'connecting');
    if (c.subs.size) this.connect();
  }
}
