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

import {
  Backoff,
  Emitter,
  FourcastError,
  SeenIds,
  errorFromResponse,
  percentile,
  randomId,
  sleep,
  wallClock,
} from './fourcast-util.js';
import { DEFAULT_SSE_TYPES, createConnection } from './fourcast-transports.js';

export { FourcastError } from './fourcast-util.js';

/** Transports, best first: the order `auto` tries them in. */
export const TRANSPORTS = ['websocket', 'sse', 'longpoll', 'shortpoll'];

const STATES = ['connecting', 'live', 'reconnecting', 'offline'];
const MAX_SAMPLES = 2000;

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

export class FourcastClient extends Emitter {
  /**
   * @param {object} opts
   * @param {string} [opts.baseUrl] server origin (default: this page's)
   * @param {string} [opts.token] bearer token from POST /api/session (or a service key)
   * @param {'auto'|'websocket'|'sse'|'longpoll'|'shortpoll'} [opts.transport]
   * @param {number} [opts.pollInterval] short-poll period, ms
   * @param {number} [opts.longPollWait] long-poll `wait`, s
   * @param {number} [opts.welcomeTimeout] ms a WebSocket may take to say welcome
   * @param {number} [opts.probeTimeout] ms an SSE stream may take to open / send its first bytes
   * @param {number} [opts.stepUpAfter] ms on a fallback before `auto` retries a better transport
   * @param {'auto'|'cookie'|'ticket'} [opts.sseAuth] how EventSource authenticates
   * @param {string[]} [opts.eventTypes] extra event types SSE must listen for
   */
  constructor(opts = {}) {
    super();
    const origin = globalThis.location ? globalThis.location.origin : undefined;
    this.options = {
      baseUrl: opts.baseUrl || origin,
      token: opts.token || null,
      transport: opts.transport || 'auto',
      pollInterval: opts.pollInterval ?? 1000,
      longPollWait: opts.longPollWait ?? 25,
      welcomeTimeout: opts.welcomeTimeout ?? 4000,
      probeTimeout: opts.probeTimeout ?? 5000,
      stepUpAfter: opts.stepUpAfter ?? 60000,
      sseAuth: opts.sseAuth || 'auto',
      eventTypes: opts.eventTypes || [],
    };
    if (opts.transport && opts.transport !== 'auto' && !TRANSPORTS.includes(opts.transport)) {
      throw new Error(`unknown transport '${opts.transport}'`);
    }
    this.state = 'connecting';
    this.transport = null;
    this.reason = '';
    this.subs = new Map(); // channel -> {handlers, cursor, ready, seen}
    this.conn = null; // the connection in use
    this.probeConn = null; // a better transport being tried (auto step-up)
    this.closed = false;
    this._tier = 0;
    this._backoff = new Backoff(opts.backoff);
    this._timers = { reconnect: null, stepUp: null, clock: null };
    this._gen = 0; // bumped on close/offline: stale async work checks it
    this._steppingDown = false; // asking the server which transports it has, after a refusal
    this._liveAt = 0;
    this._dropAt = null;
    this._everLive = false;
    this._noTickets = false;
    this._clock = { offset: 0, rtt: null, synced: false, samples: [] };
    this._counters = {
      messages: 0,
      delivered: 0,
      duplicates: 0,
      resets: 0,
      bytes: 0,
      httpRequests: 0,
      reconnects: 0,
      lastRecoveryMs: null,
      drops: 0,
    };
    this._latency = [];
    this._onOnline = () => this._goOnline();
    this._onOffline = () => this._goOffline();
    if (globalThis.addEventListener) {
      globalThis.addEventListener('online', this._onOnline);
      globalThis.addEventListener('offline', this._onOffline);
    }
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

  /**
   * Publish an event. Over a live WebSocket: the `publish` op, resolved by its ack; otherwise
   * REST with an Idempotency-Key, retried on network errors, 429 and 503. Resolves with the
   * event (`id` null when ephemeral).
   */
  async publish(channel, type, data, { ephemeral = false, idempotencyKey } = {}) {
    if (this.conn && this.conn.canPublish) {
      try {
        const ack = await this.conn.publish(channel, type, data, ephemeral);
        const { op: _op, ref: _ref, ...rest } = ack;
        const event = rest.event || rest;
        return { id: null, channel, type, data, ts: null, from: null, ...event };
      } catch (err) {
        if (err.code !== 'not_connected') throw err;
      }
    }
    return this._publishRest(channel, type, data, ephemeral, idempotencyKey || randomId());
  }

  /**
   * Counters over all of this client's connections so far:
   * `messages` events read off the wire (duplicates included), `delivered` events handed to
   * handlers, `duplicatesSuppressed`, `resets`, `bytes` (payload lengths: frames, SSE data
   * lines, poll bodies), `httpRequests` (made to receive: polls, stream opens, tickets, upgrades,
   * start cursors; not publishes or clock syncs), `reconnects` (attempts after a drop), `drops`,
   * `lastRecoveryMs` (from a drop to live again), and `latency` (now - event.ts, corrected by the
   * server clock offset from GET /api/time or WS pong, in ms: p50, p95, p99, samples).
   */
  stats() {
    const c = this._counters;
    const samples = this._latency.slice();
    return {
      transport: this.transport,
      state: this.state,
      reason: this.reason,
      messages: c.messages,
      delivered: c.delivered,
      duplicatesSuppressed: c.duplicates,
      resets: c.resets,
      bytes: c.bytes,
      httpRequests: c.httpRequests,
      reconnects: c.reconnects,
      drops: c.drops,
      lastRecoveryMs: c.lastRecoveryMs,
      latency: {
        count: samples.length,
        p50: percentile(samples, 50),
        p95: percentile(samples, 95),
        p99: percentile(samples, 99),
        last: samples.length ? samples[samples.length - 1] : null,
        samples,
      },
      clock: { offsetMs: this._clock.offset, rttMs: this._clock.rtt, synced: this._clock.synced },
    };
  }

  /** Simulate a network drop of the current connection; the client recovers by itself. */
  dropConnection() {
    if (this.conn) this.conn.drop();
  }

  /** Switch transport ('auto' or a name) without losing subscriptions or cursors. */
  setTransport(name) {
    if (name !== 'auto' && !TRANSPORTS.includes(name)) throw new Error(`unknown transport ${name}`);
    this.options.transport = name;
    this._tier = 0;
    this._choice = null;
    this._stepDowns = [];
    this._backoff.reset();
    this._restart();
  }

  /** Use a new token from the next connection on (e.g. after a 4401 close). */
  setToken(token) {
    this.options.token = token || null;
  }

  /** The last cursor seen on a channel (to resume elsewhere), or null. */
  cursor(channel) {
    const sub = this.subs.get(channel);
    return sub ? sub.cursor : null;
  }

  /** Close everything; the client cannot be used afterwards. */
  close() {
    this.closed = true;
    this._gen += 1;
    this._clearTimers();
    for (const conn of this._conns()) conn.close();
    this.conn = null;
    this.probeConn = null;
    if (globalThis.removeEventListener) {
      globalThis.removeEventListener('online', this._onOnline);
      globalThis.removeEventListener('offline', this._onOffline);
    }
    this._setState('offline');
  }

  // --- connection management ---------------------------------------------------------------

  _order() {
    const mode = this.options.transport;
    const names = mode === 'auto' ? TRANSPORTS : [mode];
    return names.filter(available);
  }

  get _auto() {
    return this.options.transport === 'auto';
  }

  _conns() {
    return [this.conn, this.probeConn].filter(Boolean);
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
    if (this.closed || this.conn || this._timers.reconnect || this.state === 'offline') return;
    if (this._steppingDown) return; // the step down connects, to the transport it settles on
    if (!this._timers.clock) this._syncClock();
    this._connect();
  }

  _restart() {
    this._clearTimers();
    for (const conn of this._conns()) conn.close();
    this.conn = null;
    this.probeConn = null;
    this._connect();
  }

  _clearTimers() {
    clearTimeout(this._timers.reconnect);
    clearTimeout(this._timers.stepUp);
    clearInterval(this._timers.clock);
    this._timers = { reconnect: null, stepUp: null, clock: null };
  }

  _connect(reason) {
    if (this.closed) return;
    // Wait for a first channel with a known start: "useful" means delivering something.
    if (![...this.subs.values()].some((s) => s.ready)) return;
    const order = this._order();
    if (!order.length) {
      this._setTransport(null, 'no transport available in this browser');
      this._setState('offline');
      return;
    }
    this._tier = Math.min(this._tier, order.length - 1);
    const name = order[this._tier];
    // `_choice` says why this transport is in use; `reason` shows it, or while reconnecting
    // what went wrong, and returns to the choice once live again.
    if (reason) {
      this._choice = reason;
      this._setTransport(name, reason);
    } else if (name !== this.transport || !this._choice) {
      this._choice = this._auto
        ? `${name}: the best transport, tried first`
        : `${name}: chosen explicitly`;
      this._setTransport(name, this._choice);
    }
    // In auto mode, check harder that an SSE stream really delivers (a buffering proxy).
    const probe = this._auto && name === 'sse' && !this._sseProven;
    const conn = createConnection(name, this, { probe });
    conn.tier = this._tier;
    this.conn = conn;
    for (const [ch, sub] of this.subs) if (sub.ready) conn.addChannel(ch);
    this._setState(this._everLive ? 'reconnecting' : 'connecting');
    conn.start();
  }

  connUseful(conn) {
    if (conn === this.probeConn) {
      this._promote(conn);
      return;
    }
    if (conn !== this.conn) return;
    if (conn.name === 'sse') this._sseProven = true;
    this._stepDowns = []; // the choice keeps the story; a later step down starts a new one
    this._liveAt = Date.now();
    this._everLive = true;
    if (this._dropAt != null) {
      this._counters.lastRecoveryMs = Date.now() - this._dropAt;
      this._dropAt = null;
    }
    this._setTransport(conn.name, this._choice);
    this._setState('live');
    this._scheduleStepUp();
  }

  connDropped(conn, info) {
    if (conn === this.probeConn) {
      this.probeConn = null;
      this._stepUpFrom(conn.tier + 1);
      return;
    }
    if (conn !== this.conn || this.closed) return;
    this.conn = null;
    clearTimeout(this._timers.stepUp);
    this._counters.drops += 1;
    if (this._dropAt == null && info.useful) this._dropAt = Date.now();
    if (info.useful && Date.now() - this._liveAt > 10000) this._backoff.reset();
    this.emit('drop', { transport: conn.name, ...info });
    if (info.auth) {
      this.emit('error', {
        channel: null,
        error: new FourcastError('unauthorized', info.reason, { status: 401 }),
      });
    }
    if (info.fatal) {
      this._setTransport(conn.name, `${info.reason}: not reconnecting`);
      this._setState('offline');
      return;
    }
    if (globalThis.navigator && navigator.onLine === false) {
      this._goOffline();
      return;
    }
    this._setState(this._everLive ? 'reconnecting' : 'connecting');
    const canStepDown = this._auto && !info.useful && !info.auth && !info.simulated;
    if (canStepDown && this._tier < this._order().length - 1) {
      this._maybeStepDown(conn, info);
      return;
    }
    this._scheduleReconnect(info.minDelay || 0, `${info.reason}; retrying ${conn.name}`);
  }

  /**
   * A transport failed before it was useful: fall back, unless the whole server is down. The
   * server's GET /api/info says which transports it has turned off: that explains a refusal the
   * browser hides (a refused WebSocket handshake is only "code 1006"), and lets `auto` skip the
   * next ones that are off too. The reason shown lists every step down, in order.
   */
  async _maybeStepDown(conn, info) {
    const gen = this._gen;
    this._steppingDown = true;
    let server;
    try {
      server = await this._serverInfo();
    } finally {
      this._steppingDown = false;
    }
    if (gen !== this._gen || this.closed || this.conn) return;
    if (!server.reachable) {
      this._scheduleReconnect(0, `${info.reason}; server unreachable, retrying ${conn.name}`);
      return;
    }
    const off = (name) => !!server.transports && server.transports[name] === false;
    const order = this._order();
    const steps = this._stepDowns || (this._stepDowns = []);
    steps.push(off(conn.name) ? `${conn.name} is turned off on this server (${info.reason})` : info.reason);
    this._tier += 1;
    while (this._tier < order.length - 1 && off(order[this._tier])) {
      steps.push(`${order[this._tier]} is turned off on this server too`);
      this._tier += 1;
    }
    const next = order[this._tier];
    this._counters.reconnects += 1;
    this._connect(`${steps.join('; ')}: falling back to ${next}`);
  }

  _scheduleReconnect(minDelay, reason) {
    if (this.closed || this._timers.reconnect) return;
    const delay = this._backoff.next(minDelay);
    if (reason) this._setTransport(this.transport, reason);
    this._timers.reconnect = setTimeout(() => {
      this._timers.reconnect = null;
      if (this.closed || this.conn || this.state === 'offline') return;
      this._counters.reconnects += 1;
      this._connect();
    }, delay);
  }

  _scheduleStepUp() {
    clearTimeout(this._timers.stepUp);
    if (!this._auto || this._tier === 0) return;
    this._timers.stepUp = setTimeout(() => this._stepUpFrom(0), this.options.stepUpAfter);
  }

  /** Try the transports better than the current one, best first, without interrupting it. */
  _stepUpFrom(tier) {
    if (this.closed || !this.conn || this.state !== 'live' || tier >= this._tier) {
      this._scheduleStepUp();
      return;
    }
    const name = this._order()[tier];
    const probe = createConnection(name, this, { probe: true });
    probe.tier = tier;
    this.probeConn = probe;
    for (const [ch, sub] of this.subs) if (sub.ready) probe.addChannel(ch);
    probe.start();
  }

  _promote(probe) {
    const old = this.conn;
    this.probeConn = null;
    this._stepDowns = [];
    this.conn = probe;
    this._tier = probe.tier;
    if (old) old.close();
    if (probe.name === 'sse') this._sseProven = true;
    const after = Math.round(this.options.stepUpAfter / 1000);
    const from = old ? old.name : 'a fallback';
    this._choice = `stepped up: ${probe.name} works again (retried after ${after} s on ${from})`;
    this._setTransport(probe.name, this._choice);
    this._liveAt = Date.now();
    this._setState('live');
    this._scheduleStepUp();
  }

  /** Is the server up, and which transports does it offer? (`transports` null: unknown.) */
  async _serverInfo() {
    try {
      const res = await this.request('/api/info', { signal: AbortSignal.timeout(4000) });
      if (res.status >= 500) return { reachable: false, transports: null };
      const body = res.ok ? await res.json().catch(() => null) : null;
      const transports = body && typeof body.transports === 'object' ? body.transports : null;
      return { reachable: true, transports };
    } catch {
      return { reachable: false, transports: null };
    }
  }

  _goOffline() {
    if (this.closed) return;
    this._gen += 1;
    this._clearTimers();
    const wasLive = this.state === 'live';
    for (const conn of this._conns()) conn.close();
    this.conn = null;
    this.probeConn = null;
    if (wasLive && this._dropAt == null) this._dropAt = Date.now();
    this._setTransport(this.transport, 'the browser is offline; waiting for the network');
    this._setState('offline');
  }

  _goOnline() {
    if (this.closed || this.state !== 'offline' || this.conn) return;
    this._backoff.reset();
    this._setState(this._everLive ? 'reconnecting' : 'connecting');
    if (this.subs.size) this._connect();
  }

  // --- subscriptions and delivery (called by connections) ---------------------------------

  /** Learn the channel's current cursor so that a live-only subscription still resumes. */
  async _resolveStart(channel, sub) {
    try {
      const res = await this.request(`/api/channels/${encodeURIComponent(channel)}/events?limit=1`, {
        count: true,
        signal: AbortSignal.timeout(10000),
      });
      if (res.ok) {
        const text = await res.text();
        this._counters.bytes += text.length;
        const body = JSON.parse(text);
        if (body.next != null && sub.cursor == null) sub.cursor = String(body.next);
      } else if (res.status === 403 || res.status === 401) {
        this.emit('error', { channel, error: await errorFromResponse(res) });
      }
    } catch {
      // Unreachable right now: subscribe live-only; the first event gives us a cursor.
    }
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
    if (sub.types.includes(type)) return;
    sub.types.push(type);
    const known = DEFAULT_SSE_TYPES.includes(type) || this.options.eventTypes.includes(type);
    if (!known) for (const conn of this._conns()) if (conn.listenFor) conn.listenFor(type);
  }

  sseTypes() {
    const types = new Set([...DEFAULT_SSE_TYPES, ...this.options.eventTypes]);
    for (const sub of this.subs.values()) for (const t of sub.types) types.add(t);
    return [...types];
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
    if (!sub || !event) return;
    if (event.id == null) {
      // Ephemeral: no id to de-duplicate by, so only the connection in use passes them on.
      if (conn !== this.conn) return;
    } else {
      const id = String(event.id);
      if (sub.seen.has(id)) {
        this._counters.duplicates += 1;
        return;
      }
      sub.seen.add(id);
      sub.cursor = id;
    }
    this._counters.delivered += 1;
    if (typeof event.ts === 'number') {
      // The offset is known to within half a round trip: a figure below zero is that error.
      this._latency.push(Math.max(0, wallClock() + this._clock.offset - event.ts));
      if (this._latency.length > MAX_SAMPLES) this._latency.splice(0, this._latency.length - MAX_SAMPLES);
    }
    for (const h of [...sub.handlers]) {
      try {
        h.onEvent(event);
      } catch (err) {
        console.error('fourcast: event handler threw', err);
      }
    }
  }

  resetChannel(channel, conn) {
    const sub = this.subs.get(channel);
    if (!sub || (conn !== this.conn && conn !== this.probeConn)) return;
    this._counters.resets += 1;
    // The server replays from its oldest retained event, all newer than our cursor: forget the
    // ids we saw, so a server that lost its log (and reuses ids) cannot make us drop events.
    sub.seen = new SeenIds();
    const info = { channel, transport: conn.name };
    this.emit('reset', info);
    for (const h of [...sub.handlers]) if (h.onReset) h.onReset(info);
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
  async sseAuthQuery() {
    const mode = this.options.sseAuth;
    const sameOrigin = new URL(this.options.baseUrl).origin === globalThis.location?.origin;
    // With a token, a ticket pins the stream to this client's identity: the cookie is shared by
    // all tabs and may belong to whoever signed in last.
    const wantTicket =
      mode === 'ticket' || (mode === 'auto' && (!sameOrigin || !!this.options.token));
    if (!wantTicket || !this.options.token || this._noTickets) return '';
    const res = await this.request('/api/tickets', { method: 'POST', count: true });
    if (res.status === 404 || res.status === 405) {
      if (!sameOrigin) throw new FourcastError('no_tickets', 'server has no /api/tickets');
      this._noTickets = true;
      return '';
    }
    if (!res.ok) throw await errorFromResponse(res);
    const body = await res.json();
    return `?ticket=${encodeURIComponent(body.ticket)}`;
  }

  async _publishRest(channel, type, data, ephemeral, key) {
    const body = JSON.stringify(ephemeral ? { type, data, ephemeral: true } : { type, data });
    const backoff = new Backoff({ base: 250, cap: 4000 });
    for (let attempt = 0; ; attempt += 1) {
      let res;
      try {
        res = await this.request(`/api/channels/${encodeURIComponent(channel)}/events`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
          body,
        });
      } catch (err) {
        // Network error: the same Idempotency-Key makes a retry safe.
        if (attempt >= 3) throw new FourcastError('network', err.message);
        await sleep(backoff.next());
        continue;
      }
      if (res.ok) return res.json();
      const err = await errorFromResponse(res);
      if ((res.status === 429 || res.status === 503) && attempt < 5) {
        await sleep(err.retryAfter ?? backoff.next(), undefined);
        continue;
      }
      throw err;
    }
  }

  // --- clock ---------------------------------------------------------------------------

  /** Measure the server clock offset from GET /api/time (midpoint of the round trip). */
  async _syncClock() {
    if (!this._timers.clock) {
      this._timers.clock = setInterval(() => this._syncClock(), 5 * 60 * 1000);
    }
    for (let i = 0; i < 3; i += 1) {
      try {
        const t0 = wallClock();
        const res = await this.request('/api/time', { signal: AbortSignal.timeout(5000) });
        const t1 = wallClock();
        if (!res.ok) return;
        const body = await res.json();
        this.clockSample(Number(body.ts), t0, t1);
      } catch {
        return;
      }
    }
  }

  clockSample(serverTs, t0, t1) {
    if (!Number.isFinite(serverTs)) return;
    const rtt = t1 - t0;
    const samples = this._clock.samples;
    samples.push({ offset: serverTs - (t0 + t1) / 2, rtt, at: t1 });
    while (samples.length > 8) samples.shift();
    // The sample with the shortest round trip bounds the error best.
    const best = samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this._clock.offset = best.offset;
    this._clock.rtt = best.rtt;
    this._clock.synced = true;
  }
}

export default FourcastClient;

// Sharing one connection across tabs: createClient() is the usual way to make a client.
export { SharedClient, canShare, createClient } from './fourcast-share.js';
