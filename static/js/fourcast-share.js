// One connection per browser: tabs of one origin that use the same credential (and transport)
// share a single connection instead of holding one each.
//
//   const client = createClient({ token, transport: 'auto' });   // shared where possible
//   const solo = createClient({ token, share: false });          // this tab's own connection
//   client.on('sharing', ({ mode, tabs }) => ...);  // worker | leader | follower | off
//
// Where the browser has SharedWorker, the connection lives in one (fourcast-worker.js). Where it
// has not, the tabs elect a leader with a Web Lock; the leader holds the connection and relays
// over a BroadcastChannel, and when it closes the next tab in line takes over. Either way the
// connection is a plain FourcastClient (the same transport code), driven by a ShareHub.
//
// Each tab keeps its own cursor and seen ids per channel. Whenever it (re)attaches a channel to
// a hub (start, leader change, transport change), the hub answers with the cursor from which it
// relays; the tab reads what lies between its own cursor and that one over HTTP, then the relayed
// events. Overlaps are dropped by id, so nothing is lost or shown twice. Publishing needs no
// connection: each tab publishes over REST with an Idempotency-Key.

import { Emitter, FourcastError, SeenIds, randomId } from './fourcast-util.js';
import { FourcastClient } from './fourcast.js';
import { SHARED_OPTIONS, ShareHub } from './fourcast-hub.js';

const CATCH_UP_LIMIT = 500;
const enc = encodeURIComponent;

/** Can this page share a connection at all? (Web Locks are needed either way: tab liveness.) */
export function canShare() {
  const locks = globalThis.navigator && navigator.locks;
  const worker = typeof SharedWorker === 'function';
  const election = typeof BroadcastChannel === 'function';
  return !!locks && (worker || election);
}

/**
 * A client for this page: shared across tabs unless `opts.share === false` (or the browser
 * cannot share), else a FourcastClient of its own. `opts.identity` names who a cookie-only client
 * (no token) is signed in as, so that different people never share one connection.
 */
export function createClient(opts = {}) {
  if (opts.share === false || !canShare()) return new FourcastClient({ ...opts, share: false });
  return new SharedClient(opts);
}

/** Short hash of a credential: tabs compare it, nobody needs the credential back from it. */
async function fingerprint(text) {
  if (globalThis.crypto && crypto.subtle) {
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
    return [...new Uint8Array(digest).slice(0, 12)].map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  let h = 0x811c9dc5; // FNV-1a, where SubtleCrypto is missing (not a secure context)
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16);
}

export class SharedClient extends Emitter {
  constructor(opts = {}) {
    super();
    // The REST side of this tab: publishes and catch-up reads (it never connects itself).
    this.rest = new FourcastClient({ ...opts, share: false });
    this.options = this.rest.options;
    this.identity = opts.identity != null ? String(opts.identity) : null;
    this.tabId = randomId();
    this.state = 'connecting';
    this.transport = null;
    this.reason = '';
    this.sharing = { mode: 'starting', tabs: 0 };
    this.closed = false;
    this.subs = new Map(); // channel -> {handlers, cursor, seen, types, buffer, gen}
    this._post = null; // sends a message to the hub in use
    this._leading = false; // this tab holds the connection for the others (no SharedWorker)
    this._hubStats = null;
    this._counts = { delivered: 0, duplicates: 0, catchUpRequests: 0 };
    this._session = 0; // bumped on every detach: late answers of an old hub are ignored
    this._tabLock = new Promise((granted) => {
      navigator.locks.request(`fourcast-tab:${this.tabId}`, () => {
        granted();
        return new Promise((release) => {
          this._releaseTab = release;
        });
      });
    });
    this._onPageHide = () => this._bye();
    globalThis.addEventListener?.('pagehide', this._onPageHide);
    this._start();
  }

  // --- public API: the same as FourcastClient's ----------------------------------------

  subscribe(channel, onEvent, { after, onReset, types } = {}) {
    if (this.closed) throw new Error('client is closed');
    const handler = { onEvent, onReset };
    let sub = this.subs.get(channel);
    if (!sub) {
      sub = {
        handlers: new Set(),
        cursor: after != null ? String(after) : null,
        seen: new SeenIds(),
        types: new Set(types || []),
        buffer: [],
        gen: 0,
      };
      this.subs.set(channel, sub);
      this._attachChannel(channel, sub);
    } else if ((types || []).some((t) => !sub.types.has(t))) {
      for (const t of types) sub.types.add(t);
      this._send({ op: 'subscribe', channel, types: [...sub.types] });
    }
    sub.handlers.add(handler);
    return () => {
      sub.handlers.delete(handler);
      if (sub.handlers.size || this.subs.get(channel) !== sub) return;
      this.subs.delete(channel);
      this._send({ op: 'unsubscribe', channel });
    };
  }

  publish(channel, type, data, opts) {
    return this.rest.publish(channel, type, data, opts);
  }

  stats() {
    const base = this._hubStats || this.rest.stats();
    return {
      ...base,
      transport: this.transport,
      state: this.state,
      reason: this.reason,
      delivered: this._counts.delivered,
      duplicatesSuppressed: this._counts.duplicates,
      catchUpRequests: this._counts.catchUpRequests,
      sharing: { ...this.sharing },
    };
  }

  dropConnection() {
    this._send({ op: 'drop' });
  }

  /** Another transport means another shared connection (tabs share per transport). */
  setTransport(name) {
    this.rest.setTransport(name);
    this._restart();
  }

  setToken(token) {
    this.rest.setToken(token);
    this._restart();
  }

  cursor(channel) {
    const sub = this.subs.get(channel);
    return sub ? sub.cursor : null;
  }

  close() {
    if (this.closed) return;
    this._bye();
    this.closed = true;
    this._session += 1;
    if (this._detachHub) this._detachHub(); // a leader hands the connection on
    this._detachHub = null;
    this._post = null;
    globalThis.removeEventListener?.('pagehide', this._onPageHide);
    if (this._releaseTab) this._releaseTab();
    this.rest.close();
    this._setState('offline');
  }

  // --- joining a hub ------------------------------------------------------------------

  async _start() {
    const session = this._session;
    const { baseUrl, transport, token } = this.options;
    const who = token ? `token:${await fingerprint(token)}` : `cookie:${this.identity ?? ''}`;
    await this._tabLock;
    if (this.closed || session !== this._session) return;
    const key = `${new URL(baseUrl).origin}|${transport}|${who}`;
    if (typeof SharedWorker === 'function' && !this._noWorker) {
      try {
        this._useWorker(key);
        return;
      } catch (err) {
        console.warn('fourcast: no SharedWorker, electing a leader tab instead', err);
      }
    }
    this._elect(key);
  }

  _useWorker(key) {
    const url = new URL('./fourcast-worker.js', import.meta.url);
    const worker = new SharedWorker(url, { type: 'module', name: `fourcast ${key}` });
    const port = worker.port;
    const session = this._session;
    let heard = false;
    port.onmessage = (e) => {
      heard = true;
      if (session === this._session) this._fromHub(e.data);
    };
    worker.addEventListener('error', () => {
      // The worker could not start (blocked, or failed to load): elect a leader tab instead.
      if (heard || session !== this._session || this.closed) return;
      console.warn('fourcast: the SharedWorker failed to start; electing a leader tab instead');
      this._noWorker = true;
      this._restart();
    });
    port.start();
    this._post = (msg) => port.postMessage({ ...msg, tab: this.tabId });
    this._detachHub = () => port.close();
    this._setSharing('worker');
    this._attach();
  }

  /** No SharedWorker: the tab holding the lock leads; the others follow over a BroadcastChannel. */
  _elect(key) {
    const session = this._session;
    const bc = new BroadcastChannel(`fourcast ${key}`);
    let hub = null;
    let stepDown = null;
    bc.onmessage = (e) => {
      const msg = e.data;
      if (session !== this._session || !msg) return;
      if (msg.to === 'hub') {
        if (hub) hub.handle({ postMessage: (m) => bc.postMessage(m) }, msg);
      } else if (msg.op === 'leader') {
        if (!hub) this._attach(); // a new leader: tell it what this tab reads
      } else if (msg.to === this.tabId) {
        this._fromHub(msg);
      }
    };
    this._post = (msg) => bc.postMessage({ ...msg, tab: this.tabId, to: 'hub' });
    this._setSharing('follower');
    navigator.locks.request(`fourcast-leader ${key}`, () => {
      if (session !== this._session || this.closed) return null;
      hub = new ShareHub('leader');
      this._leading = true;
      const local = new MessageChannel();
      local.port1.onmessage = (e) => hub.handle(local.port1, e.data);
      local.port2.onmessage = (e) => {
        if (session === this._session) this._fromHub(e.data);
      };
      this._post = (msg) => local.port2.postMessage({ ...msg, tab: this.tabId });
      this._attach();
      bc.postMessage({ op: 'leader', tab: this.tabId });
      return new Promise((resolve) => {
        stepDown = resolve;
      });
    });
    this._detachHub = () => {
      this._leading = false;
      if (hub) hub.close();
      if (stepDown) stepDown(); // frees the lock: the next tab in line leads
      bc.close();
    };
    this._attach();
  }

  /** Say hello and (re)subscribe every channel: to a new hub, or a hub that forgot this tab. */
  _attach() {
    const options = {};
    for (const k of SHARED_OPTIONS) if (this.options[k] != null) options[k] = this.options[k];
    this._send({ op: 'hello', options });
    for (const [channel, sub] of this.subs) this._attachChannel(channel, sub);
  }

  _attachChannel(channel, sub) {
    sub.gen += 1;
    sub.buffer = []; // relayed events wait until the catch-up read is done
    this._send({ op: 'subscribe', channel, types: [...sub.types] });
  }

  _send(msg) {
    if (this._post && !this.closed) this._post(msg);
  }

  _bye() {
    this._send({ op: 'bye' });
  }

  _restart() {
    this._bye();
    this._session += 1;
    if (this._detachHub) this._detachHub();
    this._detachHub = null;
    this._post = null;
    this._setState('connecting');
    this._start();
  }

  // --- what the hub says --------------------------------------------------------------

  _fromHub(msg) {
    if (!msg || this.closed) return;
    switch (msg.op) {
      case 'status':
        this._hubStats = msg.stats;
        this._setSharing(msg.mode === 'worker' ? 'worker' : this._leading ? 'leader' : 'follower', msg.tabs);
        if (msg.transport !== this.transport || msg.reason !== this.reason) {
          this.transport = msg.transport;
          this.reason = msg.reason;
          this.emit('transport', { transport: msg.transport, reason: msg.reason });
        }
        this._setState(msg.state);
        break;
      case 'subscribed':
        this._subscribed(msg.channel, msg.cursor);
        break;
      case 'event': {
        const sub = this.subs.get(msg.channel);
        if (!sub) return;
        if (sub.buffer) sub.buffer.push(msg.event);
        else this._deliver(msg.channel, sub, msg.event);
        break;
      }
      case 'reset':
        this._reset(msg.channel);
        break;
      case 'error': {
        const e = msg.error || {};
        this.emit('error', {
          channel: msg.channel,
          error: new FourcastError(e.code || 'error', e.message, { status: e.status || 0 }),
        });
        break;
      }
      default:
        break;
    }
  }

  /** The hub relays from `cursor` on: read what lies between this tab's cursor and it. */
  async _subscribed(channel, cursor) {
    const sub = this.subs.get(channel);
    if (!sub || !sub.buffer) return;
    const gen = sub.gen;
    if (sub.cursor == null) {
      sub.cursor = cursor;
    } else if (cursor == null || String(cursor) !== sub.cursor) {
      await this._catchUp(channel, sub, gen);
    }
    if (sub.gen !== gen || this.subs.get(channel) !== sub) return;
    const buffered = sub.buffer || [];
    sub.buffer = null;
    for (const event of buffered) this._deliver(channel, sub, event);
  }

  async _catchUp(channel, sub, gen) {
    let after = sub.cursor;
    for (let page = 0; page < 100; page += 1) {
      let body;
      try {
        this._counts.catchUpRequests += 1;
        const q = `after=${enc(after)}&limit=${CATCH_UP_LIMIT}`;
        const res = await this.rest.request(`/api/channels/${enc(channel)}/events?${q}`, { count: true });
        if (!res.ok) throw await this.rest.errorFrom(res);
        body = await res.json();
      } catch (err) {
        this.emit('error', { channel, error: err });
        return;
      }
      if (sub.gen !== gen) return;
      if (body.reset) this._reset(channel);
      const events = Array.isArray(body.events) ? body.events : [];
      for (const event of events) this._deliver(channel, sub, event);
      if (events.length < CATCH_UP_LIMIT || body.next == null) return;
      after = String(body.next);
    }
  }

  _deliver(channel, sub, event) {
    if (!event) return;
    if (event.id != null) {
      const id = String(event.id);
      if (sub.seen.has(id)) {
        this._counts.duplicates += 1;
        return;
      }
      sub.seen.add(id);
      sub.cursor = id;
    }
    this._counts.delivered += 1;
    for (const h of [...sub.handlers]) {
      try {
        h.onEvent(event);
      } catch (err) {
        console.error('fourcast: event handler threw', err);
      }
    }
  }

  _reset(channel) {
    const sub = this.subs.get(channel);
    if (!sub) return;
    sub.seen = new SeenIds();
    const info = { channel, transport: this.transport };
    this.emit('reset', info);
    for (const h of [...sub.handlers]) if (h.onReset) h.onReset(info);
  }

  _setState(state) {
    if (!state || state === this.state) return;
    this.state = state;
    this.emit('state', state);
  }

  _setSharing(mode, tabs = this.sharing.tabs) {
    if (mode === this.sharing.mode && tabs === this.sharing.tabs) return;
    this.sharing = { mode, tabs };
    this.emit('sharing', { ...this.sharing });
  }
}
