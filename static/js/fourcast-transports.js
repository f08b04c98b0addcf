// The four ways of reading a fourcast channel log. Each connection class is single-use: it is
// started once, reports "useful" once it delivers (WS welcome, SSE streams open, first poll
// answer), and reports one "drop" when it ends; the client then builds a fresh one that resumes
// from the cursors it kept. Connections never keep cursors themselves: they ask the host.
//
// The host (FourcastClient) provides:
//   cursorFor(ch), setCursor(ch, cursor, conn), deliver(ch, event, conn), resetChannel(ch, conn),
//   channelError(ch, err, conn), connUseful(conn), connDropped(conn, info), count(stats),
//   clockSample(serverTs, t0, t1), request(path, init), sseAuthQuery(), options.

import { FourcastError, sleep, wallClock } from './fourcast-util.js';

/** Event types an EventSource listens for (it only surfaces named events it was asked about). */
export const DEFAULT_SSE_TYPES = [
  'message',
  'chat.message',
  'typing',
  'presence.join',
  'presence.leave',
  'notification',
  'notification.read',
];

const enc = encodeURIComponent;

class BaseConnection {
  constructor(host, { probe = false } = {}) {
    this.host = host;
    this.probe = probe; // auto mode: check harder that the transport really delivers
    this.channels = new Set();
    this.useful = false;
    this.closed = false;
  }

  /** Mark useful (once) and tell the host. */
  _useful() {
    if (this.useful || this.closed) return;
    this.useful = true;
    this.host.connUseful(this);
  }

  /** End this connection (once) and tell the host why. */
  _drop(reason, extra = {}) {
    if (this.closed) return;
    this.closed = true;
    this._teardown();
    this.host.connDropped(this, { useful: this.useful, reason, ...extra });
  }

  /** Close on purpose: no drop report. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this._teardown();
  }

  /** Simulate a network drop: end the connection as if the network had failed. */
  drop() {
    this._drop('connection dropped (simulated)', { simulated: true });
  }

  _teardown() {}
}

// ---------------------------------------------------------------------------------------------
// WebSocket: one socket, many channels, publish with ack.

export class WsConnection extends BaseConnection {
  name = 'websocket';

  constructor(host, opts) {
    super(host, opts);
    this.pending = new Map(); // ref -> {resolve, reject, timer, kind}
    this.refSeq = 0;
    this.ws = null;
    this.timers = [];
    this.lastFrameAt = 0;
  }

  start() {
    const { baseUrl, token, welcomeTimeout } = this.host.options;
    const url = new URL('/ws', baseUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    let sendAuthOp = false;
    try {
      const protocols = ['fourcast.v1'];
      if (token) protocols.push(`fourcast.bearer.${token}`);
      this.ws = new WebSocket(url.href, protocols);
    } catch (err) {
      if (!(err instanceof DOMException) || !token) throw err;
      // The token is not a valid subprotocol token: authenticate with the first message.
      this.ws = new WebSocket(url.href, ['fourcast.v1']);
      sendAuthOp = true;
    }
    this.host.count({ requests: 1 }); // the upgrade request
    const ws = this.ws;
    this._timer(() => this._drop(`no welcome within ${welcomeTimeout / 1000} s`), welcomeTimeout);
    ws.onopen = () => {
      if (sendAuthOp) this._send({ op: 'auth', token, ref: this._ref() });
    };
    ws.onmessage = (e) => this._onFrame(e.data);
    ws.onerror = () => {}; // always followed by close
    ws.onclose = (e) => {
      const info = { code: e.code };
      if (e.code === 4403) info.fatal = true;
      if (e.code === 1008 || e.code === 4401) info.auth = true;
      if (e.code === 1013) info.minDelay = 5000;
      const why = e.reason ? `: ${e.reason}` : '';
      const what = this.useful ? 'closed' : 'refused or closed before welcome';
      this._drop(`websocket ${what} (code ${e.code}${why})`, info);
    };
  }

  _timer(fn, ms, repeat = false) {
    const id = repeat ? setInterval(fn, ms) : setTimeout(fn, ms);
    this.timers.push(id);
    return id;
  }

  _ref() {
    this.refSeq += 1;
    return `r${this.refSeq}`;
  }

  _send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  _request(obj, kind, timeout = 10000) {
    const ref = this._ref();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new FourcastError('timeout', `no ack for ${kind} within ${timeout / 1000} s`));
      }, timeout);
      this.pending.set(ref, { resolve, reject, timer, kind, channel: obj.channel });
      if (!this._send({ ...obj, ref })) {
        clearTimeout(timer);
        this.pending.delete(ref);
        reject(new FourcastError('not_connected', 'websocket is not open'));
      }
    });
  }

  _onFrame(text) {
    this.lastFrameAt = Date.now();
    this.host.count({ bytes: text.length });
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    switch (msg.op) {
      case 'welcome':
        this._onWelcome(msg);
        break;
      case 'event': {
        const { op: _op, ...event } = msg;
        this.host.count({ messages: 1 });
        this.host.deliver(event.channel, event, this);
        break;
      }
      case 'reset':
        this.host.resetChannel(msg.channel, this);
        break;
      case 'ack':
      case 'error':
        this._settle(msg);
        break;
      case 'pong':
        this._onPong(msg);
        break;
      default:
        break;
    }
  }

  _onWelcome(msg) {
    for (const id of this.timers) clearTimeout(id);
    this.timers = [];
    this.welcome = msg;
    for (const ch of this.channels) this._subscribe(ch);
    // Application-level ping: measures the clock offset and notices a dead socket (no frame
    // at all for a while) faster than TCP would.
    const beat = Math.max(5, Math.min(Number(msg.heartbeat) || 25, 60)) * 1000;
    this._timer(() => this._ping(), Math.min(beat, 15000), true);
    this._timer(
      () => {
        if (Date.now() - this.lastFrameAt > beat * 2 + 10000) this._drop('websocket went silent');
      },
      5000,
      true,
    );
    this._ping();
    this._useful();
  }

  _ping() {
    const t0 = wallClock();
    this.lastPing = { ref: this._ref(), t0 };
    this._send({ op: 'ping', ts: t0, ref: this.lastPing.ref });
  }

  _onPong(msg) {
    const t1 = wallClock();
    const ping = this.lastPing;
    if (!ping || (msg.ref && msg.ref !== ping.ref)) return;
    this.lastPing = null;
    const ts = Number(msg.server_ts ?? msg.ts);
    // A server that echoes our own ts tells us the round trip only, not its clock.
    if (Number.isFinite(ts) && ts !== ping.t0) this.host.clockSample(ts, ping.t0, t1);
  }

  _settle(msg) {
    const entry = msg.ref ? this.pending.get(msg.ref) : null;
    if (!entry) {
      if (msg.op === 'error') {
        const err = new FourcastError(msg.code || 'error', msg.message);
        this.host.channelError(msg.channel || null, err, this);
      }
      return;
    }
    this.pending.delete(msg.ref);
    clearTimeout(entry.timer);
    if (msg.op === 'ack') entry.resolve(msg);
    else entry.reject(new FourcastError(msg.code || 'error', msg.message));
  }

  _subscribe(ch) {
    const frame = { op: 'subscribe', channel: ch };
    const after = this.host.cursorFor(ch);
    if (after != null) frame.after = after;
    this._request(frame, 'subscribe')
      .then((ack) => {
        // A live-only subscription learns where it started: resume from there after a drop.
        if (ack.next != null && this.host.cursorFor(ch) == null) {
          this.host.setCursor(ch, String(ack.next), this);
        }
      })
      .catch((err) => {
      if (err.code !== 'not_connected' && err.code !== 'timeout') {
        this.host.channelError(ch, err, this);
      }
    });
  }

  addChannel(ch) {
    if (this.channels.has(ch)) return;
    this.channels.add(ch);
    if (this.welcome) this._subscribe(ch);
  }

  removeChannel(ch) {
    if (!this.channels.delete(ch)) return;
    if (this.welcome) this._send({ op: 'unsubscribe', channel: ch, ref: this._ref() });
  }

  /** Publish over the socket; resolves with the ack. */
  publish(channel, type, data, ephemeral) {
    const frame = { op: 'publish', channel, type, data };
    if (ephemeral) frame.ephemeral = true;
    return this._request(frame, 'publish');
  }

  get canPublish() {
    return !!this.welcome && !this.closed;
  }

  _teardown() {
    for (const id of this.timers) {
      clearTimeout(id);
      clearInterval(id);
    }
    this.timers = [];
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(new FourcastError('connection_lost', 'connection lost before the ack'));
    }
    this.pending.clear();
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.onmessage = null;
      this.ws.onopen = null;
      try {
        this.ws.close(1000);
      } catch {
        // already closing
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events: one EventSource per channel. EventSource's own reconnect is switched off
// (we close on the first error) so that resume uses our cursor, a fresh ticket, and our backoff.

export class SseConnection extends BaseConnection {
  name = 'sse';

  constructor(host, opts) {
    super(host, opts);
    this.sources = new Map(); // channel -> EventSource
    this.opened = new Set();
    this.timers = [];
    this.abort = new AbortController();
  }

  async start() {
    if (this.probe && this.channels.size) {
      const ok = await this._probe([...this.channels][0]);
      if (!ok || this.closed) return;
    }
    this.started = true;
    if (!this.channels.size) this._useful();
    for (const ch of this.channels) this._open(ch);
  }

  /** Read the first bytes of a stream with fetch: proves nothing buffers the response. */
  async _probe(ch) {
    const { probeTimeout } = this.host.options;
    const timer = setTimeout(() => this.abort.abort(), probeTimeout);
    try {
      const query = await this.host.sseAuthQuery();
      if (this.closed) return false;
      const res = await this.host.request(`/api/channels/${enc(ch)}/stream${query}`, {
        signal: this.abort.signal,
        headers: { Accept: 'text/event-stream' },
        count: true,
        auth: false,
      });
      if (!res.ok) throw new Error(`stream answered HTTP ${res.status}`);
      const reader = res.body.getReader();
      const { value } = await reader.read();
      reader.cancel().catch(() => {});
      if (!value || !value.length) throw new Error('stream ended at once');
      return true;
    } catch (err) {
      const why = this.abort.signal.aborted
        ? `sse stream sent nothing within ${probeTimeout / 1000} s`
        : `sse probe failed (${err.message})`;
      this._drop(why);
      return false;
    } finally {
      clearTimeout(timer);
      this.abort = new AbortController();
    }
  }

  async _open(ch) {
    const { probeTimeout, baseUrl } = this.host.options;
    let query;
    try {
      query = await this.host.sseAuthQuery();
    } catch (err) {
      this._drop(`could not get a stream ticket (${err.message})`);
      return;
    }
    if (this.closed || !this.channels.has(ch)) return;
    const params = new URLSearchParams(query.slice(1));
    const after = this.host.cursorFor(ch);
    if (after != null) params.set('after', after);
    const qs = params.toString();
    const url = new URL(`/api/channels/${enc(ch)}/stream${qs ? `?${qs}` : ''}`, baseUrl);
    // Cross-origin without a ticket can only use the cookie, which needs withCredentials (and
    // a CORS answer allowing credentials).
    const crossOrigin = url.origin !== globalThis.location?.origin;
    const es = new EventSource(url.href, { withCredentials: crossOrigin && !params.has('ticket') });
    this.host.count({ requests: 1 });
    this.sources.set(ch, es);
    const openTimer = setTimeout(() => {
      if (!this.opened.has(ch)) this._drop(`sse stream did not open within ${probeTimeout / 1000} s`);
    }, probeTimeout);
    this.timers.push(openTimer);
    es.onopen = () => {
      clearTimeout(openTimer);
      this.opened.add(ch);
      if ([...this.channels].every((c) => this.opened.has(c))) this._useful();
    };
    es.onerror = () => {
      // readyState CLOSED: the server refused (non-200 or wrong type); CONNECTING: the stream
      // broke. Either way we take over the reconnect.
      const refused = es.readyState === EventSource.CLOSED;
      const state = this.opened.has(ch) ? 'broke' : refused ? 'was refused' : 'failed to open';
      this._drop(`sse stream for ${ch} ${state}`);
    };
    const onData = (e) => {
      // Payload estimate: the data line plus the id: and event: lines around it.
      this.host.count({ bytes: e.data.length + (e.lastEventId || '').length + e.type.length + 20 });
      let event;
      try {
        event = JSON.parse(e.data);
      } catch {
        return;
      }
      this.host.count({ messages: 1 });
      this.host.deliver(ch, event, this);
    };
    // Events come unnamed (`message`, the type inside the data); named frames are control only.
    es.addEventListener('message', onData);
    es.addEventListener('reset', () => this.host.resetChannel(ch, this));
  }

  /** Every event type already arrives through the one `message` listener. */
  listenFor() {}

  addChannel(ch) {
    if (this.channels.has(ch)) return;
    this.channels.add(ch);
    if (this.started) this._open(ch);
  }

  removeChannel(ch) {
    if (!this.channels.delete(ch)) return;
    const es = this.sources.get(ch);
    if (es) es.close();
    this.sources.delete(ch);
    this.opened.delete(ch);
  }

  _teardown() {
    this.abort.abort();
    for (const id of this.timers) clearTimeout(id);
    for (const es of this.sources.values()) {
      es.onerror = null;
      es.close();
    }
    this.sources.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Short and long polling: one request loop per channel, each carrying the `next` cursor on.

export class PollConnection extends BaseConnection {
  constructor(host, opts, { long }) {
    super(host, opts);
    this.long = long;
    this.name = long ? 'longpoll' : 'shortpoll';
    this.abort = new AbortController();
    this.loops = new Map(); // channel -> AbortController
  }

  start() {
    this.started = true;
    if (!this.channels.size) this._useful();
    for (const ch of this.channels) this._loop(ch);
  }

  addChannel(ch) {
    if (this.channels.has(ch)) return;
    this.channels.add(ch);
    if (this.started && !this.closed) this._loop(ch);
  }

  removeChannel(ch) {
    if (!this.channels.delete(ch)) return;
    const ctl = this.loops.get(ch);
    if (ctl) ctl.abort();
    this.loops.delete(ch);
  }

  async _loop(ch) {
    const ctl = new AbortController();
    this.loops.set(ch, ctl);
    const stop = () => ctl.abort();
    this.abort.signal.addEventListener('abort', stop, { once: true });
    const { pollInterval, longPollWait } = this.host.options;
    // The first read of a long-poll loop does not wait: it catches up at once and shows the
    // transport works (a held request on a quiet channel would say nothing for `wait` seconds).
    let first = true;
    while (!this.closed && !ctl.signal.aborted) {
      const after = this.host.cursorFor(ch);
      const params = new URLSearchParams();
      let initial = false;
      if (after != null) {
        params.set('after', after);
        params.set('limit', '500');
      } else {
        // No cursor yet: ask for the newest event only, to learn where "now" is.
        params.set('limit', '1');
        initial = true;
      }
      const wait = this.long && !initial && !first ? longPollWait : 0;
      first = false;
      if (wait) params.set('wait', String(wait));
      const started = Date.now();
      const timeout = setTimeout(() => ctl.abort(), (wait + 15) * 1000);
      let body;
      try {
        const res = await this.host.request(`/api/channels/${enc(ch)}/events?${params}`, {
          signal: ctl.signal,
          count: true,
        });
        if (res.status === 403 || res.status === 404) {
          const err = await this.host.errorFrom(res);
          this.host.channelError(ch, err, this);
          return;
        }
        if (!res.ok) {
          const err = await this.host.errorFrom(res);
          const extra = { code: res.status, minDelay: err.retryAfter || 0 };
          if (res.status === 401) extra.auth = true;
          this._drop(`${this.name} answered HTTP ${res.status} (${err.code})`, extra);
          return;
        }
        const text = await res.text();
        this.host.count({ bytes: text.length });
        body = JSON.parse(text);
      } catch (err) {
        if (this.closed || (ctl.signal.aborted && !this.channels.has(ch))) return;
        const why = ctl.signal.aborted ? 'timed out' : `failed (${err.message})`;
        this._drop(`${this.name} request ${why}`);
        return;
      } finally {
        clearTimeout(timeout);
      }
      if (this.closed || ctl.signal.aborted) return;
      this._useful();
      if (body.reset) this.host.resetChannel(ch, this);
      const events = Array.isArray(body.events) ? body.events : [];
      if (!initial) {
        this.host.count({ messages: events.length });
        for (const event of events) this.host.deliver(ch, event, this);
      }
      if (body.next != null) this.host.setCursor(ch, String(body.next), this);
      const full = events.length >= 500;
      if (full) continue; // catching up: read the rest at once
      if (!this.long) {
        await sleep(pollInterval, ctl.signal);
      } else if (wait && !events.length && Date.now() - started < 1000) {
        // A long poll that returns empty at once (a server or proxy ignoring `wait`) must not
        // become a hot loop.
        await sleep(1000, ctl.signal);
      }
    }
  }

  _teardown() {
    this.abort.abort();
  }
}

/** Build a connection for a transport name. */
export function createConnection(name, host, opts = {}) {
  switch (name) {
    case 'websocket':
      return new WsConnection(host, opts);
    case 'sse':
      return new SseConnection(host, opts);
    case 'longpoll':
      return new PollConnection(host, opts, { long: true });
    case 'shortpoll':
      return new PollConnection(host, opts, { long: false });
    default:
      throw new Error(`unknown transport ${name}`);
  }
}
