// WebSocket: one socket, many channels, publish with ack, and an application-level ping that
// measures the server clock and notices a dead socket. A subscribe the server refuses for now
// (`rate_limited`, `unavailable`: an error op with `retry_after`) is sent again later.
// A close 1008 answering our `auth` op means bad credentials; any other 1008 is a close for abuse
// (docs/protocol.md): the person is still signed in, so back off and reconnect. That close and a
// 1013 (try again later, from a proxy: fourcast sends none) ask for a wait, not another transport:
// at least LATER_MS, and `auto` keeps the WebSocket even when the close came before the welcome.

import { FourcastError, wallClock } from './fourcast-util.js';
import { BaseConnection } from './fourcast-connection.js';
import { errorOp, forgetChannel, subscribeChannel } from './fourcast-ws-subscribe.js';

const LATER_MS = 5000; // the least wait after a close 1008 for abuse or 1013

export class WsConnection extends BaseConnection {
  name = 'websocket';

  constructor(host, opts) {
    super(host, opts);
    this.pending = new Map(); // ref -> {resolve, reject, timer, kind}
    this.refSeq = 0;
    this.ws = null;
    this.timers = [];
    this.lastFrameAt = 0;
    this.subSeq = 0;
    this.subscribing = new Map(); // channel -> {seq, timer, backoff}: its latest subscribe
    this.authRef = null; // the ref of an `auth` op not yet answered
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
      if (!sendAuthOp) return;
      this.authRef = this._ref();
      this._send({ op: 'auth', token, ref: this.authRef });
    };
    ws.onmessage = (e) => this._onFrame(e.data);
    ws.onerror = () => {}; // always followed by close
    ws.onclose = (e) => {
      const info = { code: e.code };
      if (e.code === 4403) info.fatal = true;
      if (e.code === 4401 || (e.code === 1008 && this.authRef)) info.auth = true;
      else if (e.code === 1008 || e.code === 1013) {
        info.minDelay = LATER_MS;
        info.later = true; // not a reason to step down
      }
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
        this.host.resetChannel(msg.channel, this, msg.next ?? null);
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
    if (msg.ref && msg.ref === this.authRef) this.authRef = null;
    const entry = msg.ref ? this.pending.get(msg.ref) : null;
    if (!entry) {
      if (msg.op === 'error') this.host.channelError(msg.channel || null, errorOp(msg), this);
      return;
    }
    this.pending.delete(msg.ref);
    clearTimeout(entry.timer);
    if (msg.op === 'ack') entry.resolve(msg);
    else entry.reject(errorOp(msg));
  }

  _subscribe(ch) {
    subscribeChannel(this, ch);
  }

  addChannel(ch) {
    if (this._track(ch) && this.welcome) this._subscribe(ch);
  }

  removeChannel(ch) {
    if (!this.channels.delete(ch)) return;
    this._forget(ch);
    if (this.welcome) this._send({ op: 'unsubscribe', channel: ch, ref: this._ref() });
  }

  /** Stop retrying a channel's subscribe. */
  _forget(ch) {
    forgetChannel(this, ch);
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
    for (const ch of [...this.subscribing.keys()]) this._forget(ch);
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
