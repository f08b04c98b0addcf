// fourcast browser client: one API over WebSocket, SSE, long polling and short polling.
//
//   const client = createClient({ token, transport: 'auto' }); // tabs share one connection
//   const solo = new FourcastClient({ token });                 // this tab's own connection
//   client.on('state', (s) => ...);            // connecting | live | reconnecting | offline
//   client.on('transport', ({ transport, reason }) => ...);
//   const off = client.subscribe('room:lobby', (event) => ...);
//   await client.publish('room:lobby', 'chat.message', { text: 'hi' });
//
// Every channel is an ordered log with cursors, so the client keeps the last cursor per channel
// and resumes from it after any drop, on whichever transport it uses next; it de-duplicates
// durable events by id, so an overlap (a replay, or two connections during a switch) is harmless.

import { Emitter, SeenIds, errorFromResponse } from './fourcast-util.js';
import { TRANSPORTS } from './fourcast-auto.js';
import { Connector } from './fourcast-connector.js';
import { ServerClock } from './fourcast-clock.js';
import { LatencyLog, newCounters, statsReport } from './fourcast-stats.js';
import { StreamAuth, publishEvent } from './fourcast-rest.js';
import { addType, deliverEvent, resetSub, sseTypesOf, startCursor } from './fourcast-channels.js';
import { clientOptions } from './fourcast-options.js';

export { FourcastError } from './fourcast-util.js';
export { TRANSPORTS } from './fourcast-auto.js';

const STATES = ['connecting', 'live', 'reconnecting', 'offline'];

export class FourcastClient extends Emitter {
  /** @param {object} opts see `clientOptions` (fourcast-options.js) */
  constructor(opts = {}) {
    super();
    this.options = clientOptions(opts);
    this.state = 'connecting';
    this.transport = null;
    this.reason = '';
    this.subs = new Map(); // channel -> {handlers, cursor, ready, seen}
    this.closed = false;
    this._clock = new ServerClock();
    this._counters = newCounters();
    this._latency = new LatencyLog();
    this._streamAuth = new StreamAuth(this);
    this._connector = new Connector(this, {
      backoff: opts.backoff,
      counters: this._counters,
      clock: this._clock,
    });
  }

  /** The connection in use, or null. */
  get conn() {
    return this._connector.conn;
  }

  /** A better transport being tried (auto step-up), or null. */
  get probeConn() {
    return this._connector.probeConn;
  }

  // --- public API --------------------------------------------------------------------------

  /**
   * Receive the events of `channel`. Without `after`, from now on (the client first asks the
   * server where "now" is, so even a drop before the first event loses nothing); with `after`,
   * every event after that cursor. Returns a function that unsubscribes.
   * `opts.onReset({channel})` is called when the server could not resume from the cursor.
   * `opts.types` adds event types SSE must listen for (EventSource only surfaces named types).
   */
  subscribe(channel, onEvent, { after, onReset, types } = {}) {
    if (this.closed) throw new Error('client is closed');
    const handler = { onEvent, onReset };
    let sub = this.subs.get(channel);
    if (!sub) {
      sub = { handlers: new Set(), cursor: null, ready: false, seen: new SeenIds(), types: [] };
      this.subs.set(channel, sub);
      if (after != null) {
        sub.cursor = String(after);
        this._ready(channel, sub);
      } else {
        this._resolveStart(channel, sub);
      }
    }
    sub.handlers.add(handler);
    for (const type of types || []) this._addType(sub, type);
    this._ensureConnected();
    return () => {
      sub.handlers.delete(handler);
      if (sub.handlers.size || this.subs.get(channel) !== sub) return;
      this.subs.delete(channel);
      for (const conn of this._conns()) conn.removeChannel(channel);
    };
  }

  /** Publish an event: over a live WebSocket, else REST (`publishEvent`, fourcast-rest.js). */
  publish(channel, type, data, opts = {}) {
    return publishEvent(this, channel, type, data, opts);
  }

  /** Counters over all of this client's connections so far (`statsReport`, fourcast-stats.js). */
  stats() {
    const { transport, state, reason } = this;
    return statsReport({ transport, state, reason }, this._counters, this._latency, this._clock);
  }

  /** Simulate a network drop of the current connection; the client recovers by itself. */
  dropConnection() {
    if (this.conn) this.conn.drop();
  }

  /** Switch transport ('auto' or a name) without losing subscriptions or cursors. */
  setTransport(name) {
    if (name !== 'auto' && !TRANSPORTS.includes(name)) throw new Error(`unknown transport ${name}`);
    this.options.transport = name;
    this._connector.restartFresh();
  }

  /** Use a new token from the next connection on; after a 401 (or 4401 close), connect now. */
  setToken(token) {
    this.options.token = token || null;
    this._connector.newToken();
  }

  /** The last cursor seen on a channel (to resume elsewhere), or null. */
  cursor(channel) {
    return this.cursorFor(channel);
  }

  /** Close everything; the client cannot be used afterwards. */
  close() {
    this.closed = true;
    this._connector.close();
    this._setState('offline');
  }

  // --- state (driven by the Connector) ------------------------------------------------------

  _conns() {
    return this._connector.conns();
  }

  _setState(state) {
    if (!STATES.includes(state) || state === this.state) return;
    this.state = state;
    this.emit('state', state);
  }

  _setTransport(transport, reason) {
    const changed = transport !== this.transport || reason !== this.reason;
    this.transport = transport;
    this.reason = reason;
    if (changed) this.emit('transport', { transport, reason });
  }

  _ensureConnected() {
    this._connector.ensureConnected();
  }

  connUseful(conn) {
    this._connector.useful(conn);
  }

  connDropped(conn, info) {
    this._connector.dropped(conn, info);
  }

  // --- subscriptions and delivery (called by connections) ---------------------------------

  /** Learn the channel's current cursor so that a live-only subscription still resumes. */
  async _resolveStart(channel, sub) {
    await startCursor(this, channel, sub);
    this._ready(channel, sub);
  }

  _ready(channel, sub) {
    if (this.subs.get(channel) !== sub || sub.ready) return;
    sub.ready = true;
    this.emit('subscribed', { channel, cursor: sub.cursor });
    for (const conn of this._conns()) conn.addChannel(channel);
    this._ensureConnected();
  }

  _addType(sub, type) {
    addType(this, sub, type);
  }

  sseTypes() {
    return sseTypesOf(this);
  }

  cursorFor(channel) {
    const sub = this.subs.get(channel);
    return sub ? sub.cursor : null;
  }

  setCursor(channel, cursor, conn) {
    const sub = this.subs.get(channel);
    if (sub && conn === this.conn) sub.cursor = cursor;
  }

  deliver(channel, event, conn) {
    const sub = this.subs.get(channel || event.channel);
    if (sub && event) deliverEvent(this, sub, event, conn);
  }

  resetChannel(channel, conn, cursor = null) {
    const sub = this.subs.get(channel);
    if (!sub || (conn !== this.conn && conn !== this.probeConn)) return;
    resetSub(this, sub, channel, conn, cursor);
  }

  channelError(channel, error, _conn) {
    this.emit('error', { channel, error });
  }

  count({ messages = 0, bytes = 0, requests = 0 }) {
    this._counters.messages += messages;
    this._counters.bytes += bytes;
    this._counters.httpRequests += requests;
  }

  // --- HTTP ------------------------------------------------------------------------------

  /** fetch against the server, with the bearer token unless `auth: false`. */
  request(path, { count = false, auth = true, headers = {}, ...init } = {}) {
    const url = new URL(path, this.options.baseUrl);
    const h = { Accept: 'application/json', ...headers };
    if (auth && this.options.token) h.Authorization = `Bearer ${this.options.token}`;
    if (count) this._counters.httpRequests += 1;
    return fetch(url.href, { credentials: 'same-origin', ...init, headers: h });
  }

  errorFrom(res) {
    return errorFromResponse(res);
  }

  /** `?ticket=...` for an EventSource, or '' to rely on the session cookie. */
  sseAuthQuery() {
    return this._streamAuth.query();
  }

  /** The server's clock said `serverTs` between our t0 and t1 (GET /api/time, or a WS pong). */
  clockSample(serverTs, t0, t1) {
    this._clock.add(serverTs, t0, t1);
  }
}

export default FourcastClient;

// Sharing one connection across tabs: createClient() is the usual way to make a client.
export { SharedClient, canShare, createClient } from './fourcast-share.js';
