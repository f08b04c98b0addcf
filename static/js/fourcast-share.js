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
// connection is a plain FourcastClient (the same transport code), driven by a ShareHub
// (fourcast-share-join.js finds the hub).
//
// Each tab keeps its own cursor and seen ids per channel. Whenever it (re)attaches a channel to
// a hub (start, leader change, transport change), the hub answers with the cursor from which it
// relays; the tab reads what lies between its own cursor and that one over HTTP, then the relayed
// events. Overlaps are dropped by id, so nothing is lost or shown twice. Publishing needs no
// connection: each tab publishes over REST with an Idempotency-Key.

import { Emitter, FourcastError, randomId } from './fourcast-util.js';
import { FourcastClient } from './fourcast.js';
import { SHARED_OPTIONS } from './fourcast-hub.js';
import { joinHub } from './fourcast-share-join.js';
import { TabChannels } from './fourcast-share-channels.js';

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
    this._channels = new TabChannels(this);
    this._post = null; // sends a message to the hub in use
    this._leading = false; // this tab holds the connection for the others (no SharedWorker)
    this._hubStats = null;
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

  /** The channels this tab reads: channel -> {handlers, cursor, seen, types, buffer, gen}. */
  get subs() {
    return this._channels.subs;
  }

  // --- public API: the same as FourcastClient's ----------------------------------------

  subscribe(channel, onEvent, { after, onReset, types } = {}) {
    if (this.closed) throw new Error('client is closed');
    const handler = { onEvent, onReset };
    let sub = this.subs.get(channel);
    if (!sub) {
      sub = this._channels.add(channel, after, types);
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
      delivered: this._channels.counts.delivered,
      duplicatesSuppressed: this._channels.counts.duplicates,
      catchUpRequests: this._channels.counts.catchUpRequests,
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
    this._channels.close();
    this._setState('offline');
  }

  // --- joining a hub ------------------------------------------------------------------

  /** Join a hub (fourcast-share-join.js): a SharedWorker, else a leader elected among tabs. */
  _start() {
    return joinHub(this);
  }

  /** Say hello and (re)subscribe every channel: to a new hub, or a hub that forgot this tab. */
  _attach() {
    const options = {};
    for (const k of SHARED_OPTIONS) if (this.options[k] != null) options[k] = this.options[k];
    this._send({ op: 'hello', options });
    for (const [channel, sub] of this.subs) this._attachChannel(channel, sub);
  }

  _attachChannel(channel, sub) {
    this._channels.attach(sub);
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
        this._channels.subscribed(msg.channel, msg.cursor);
        break;
      case 'event':
        this._channels.relayed(msg.channel, msg.event);
        break;
      case 'reset':
        this._channels.reset(msg.channel);
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
