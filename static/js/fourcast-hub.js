// The side of a shared connection that holds it: one FourcastClient (the very transport code a
// tab uses on its own) serving every tab of one origin, credential and transport. It runs in a
// SharedWorker (fourcast-worker.js), or, where there is none, in the tab elected leader
// (fourcast-share.js).
//
// Tabs talk to it in messages (tab -> hub):
//   {op:'hello', tab, options}        options for the connection (the first hello's are used)
//   {op:'subscribe', tab, channel, types}, {op:'unsubscribe', tab, channel}
//   {op:'drop', tab}                  simulate a network drop of the shared connection
//   {op:'bye', tab}                   the tab is going away
// and it answers (hub -> tab):
//   {op:'status', mode, state, transport, reason, tabs, stats}
//   {op:'subscribed', channel, cursor} from here on every event of `channel` after `cursor` is
//                                      relayed to this tab (it fetches what it missed before)
//   {op:'event', channel, event}, {op:'reset', channel}, {op:'error', channel, error}
//
// Subscriptions are reference-counted: a channel stays subscribed on the connection while any
// tab wants it. A tab that goes away without a word (closed, crashed) is noticed by its Web Lock
// (`fourcast-tab:<id>`, held for the tab's life) being free.

import { FourcastClient } from './fourcast.js';

const TAB_CHECK_MS = 1000;

/** The options a tab may pass for the shared connection (structured-cloneable only). */
export const SHARED_OPTIONS = [
  'baseUrl',
  'token',
  'transport',
  'pollInterval',
  'longPollWait',
  'welcomeTimeout',
  'probeTimeout',
  'sseStaleAfter',
  'stepUpAfter',
  'sseAuth',
  'eventTypes',
];

export class ShareHub {
  /** @param {'worker'|'leader'} mode where the hub runs (shown on the page) */
  constructor(mode) {
    this.mode = mode;
    this.client = null;
    this.tabs = new Map(); // tab id -> {port, channels: Set<string>}
    this.channels = new Map(); // channel -> {tabs: Set<tab id>, offs: [fn], types: Set, waiting: Set}
    this._timer = setInterval(() => this._reap(), TAB_CHECK_MS);
  }

  /** A message from a tab; `port` is how to answer it (postMessage). */
  handle(port, msg) {
    if (!msg || typeof msg.tab !== 'string') return;
    if (msg.op === 'hello') {
      this._hello(port, msg);
      return;
    }
    if (!this.tabs.has(msg.tab)) return; // not (or no longer) known: it says hello again
    switch (msg.op) {
      case 'subscribe':
        this._subscribe(msg.tab, String(msg.channel), msg.types || []);
        break;
      case 'unsubscribe':
        this._unsubscribe(msg.tab, String(msg.channel));
        break;
      case 'drop':
        if (this.client) this.client.dropConnection();
        break;
      case 'bye':
        this._remove(msg.tab);
        break;
      default:
        break;
    }
  }

  /** Stop serving (the leader tab closes or steps down): the connection closes. */
  close() {
    clearInterval(this._timer);
    if (this.client) this.client.close();
    this.client = null;
    this.tabs.clear();
    this.channels.clear();
  }

  _hello(port, msg) {
    const known = this.tabs.get(msg.tab);
    if (known) {
      known.port = port;
    } else {
      this.tabs.set(msg.tab, { port, channels: new Set() });
    }
    if (!this.client) this._open(msg.options || {});
    this._status();
  }

  _open(options) {
    const opts = { share: false };
    for (const key of SHARED_OPTIONS) if (options[key] != null) opts[key] = options[key];
    const client = new FourcastClient(opts);
    this.client = client;
    client.on('state', () => this._status());
    client.on('transport', () => this._status());
    client.on('subscribed', ({ channel, cursor }) => {
      const ch = this.channels.get(channel);
      if (!ch) return;
      for (const tab of ch.waiting) this._send(tab, { op: 'subscribed', channel, cursor });
      ch.waiting.clear();
    });
    client.on('error', ({ channel, error }) => {
      const plain = { code: error.code, message: error.message, status: error.status };
      const to = channel ? this.channels.get(channel)?.tabs || [] : this.tabs.keys();
      for (const tab of to) this._send(tab, { op: 'error', channel, error: plain });
    });
  }

  _subscribe(tab, channel, types) {
    const entry = this.tabs.get(tab);
    let ch = this.channels.get(channel);
    if (!ch) {
      ch = { tabs: new Set(), offs: [], types: new Set(types), waiting: new Set() };
      this.channels.set(channel, ch);
      ch.waiting.add(tab);
      ch.tabs.add(tab);
      entry.channels.add(channel);
      ch.offs.push(
        this.client.subscribe(channel, (event) => this._relay(channel, event), {
          types,
          onReset: () => this._toChannel(channel, { op: 'reset', channel }),
        }),
      );
      return;
    }
    const extra = types.filter((t) => !ch.types.has(t));
    if (extra.length) {
      for (const t of extra) ch.types.add(t);
      ch.offs.push(this.client.subscribe(channel, () => {}, { types: extra }));
    }
    ch.tabs.add(tab);
    entry.channels.add(channel);
    if (ch.waiting.size) {
      ch.waiting.add(tab); // the connection does not know where the channel starts yet
    } else {
      // Events relayed from now on follow this cursor, in this port's order.
      this._send(tab, { op: 'subscribed', channel, cursor: this.client.cursor(channel) });
    }
  }

  _unsubscribe(tab, channel) {
    const entry = this.tabs.get(tab);
    if (entry) entry.channels.delete(channel);
    const ch = this.channels.get(channel);
    if (!ch) return;
    ch.tabs.delete(tab);
    ch.waiting.delete(tab);
    if (ch.tabs.size) return;
    this.channels.delete(channel);
    for (const off of ch.offs) off();
  }

  _remove(tab) {
    const entry = this.tabs.get(tab);
    if (!entry) return;
    for (const channel of [...entry.channels]) this._unsubscribe(tab, channel);
    this.tabs.delete(tab);
    if (!this.tabs.size && this.mode === 'worker' && this.client) {
      // Nobody left: free the server's connection (a new tab opens a fresh one).
      this.client.close();
      this.client = null;
    }
    this._status();
  }

  /** Tabs whose life lock is free are gone (closed or crashed without a goodbye). */
  async _reap() {
    if (!this.tabs.size || !globalThis.navigator?.locks) return;
    let held;
    try {
      const state = await navigator.locks.query();
      held = new Set(state.held.map((l) => l.name));
    } catch {
      return;
    }
    for (const tab of [...this.tabs.keys()]) if (!held.has(`fourcast-tab:${tab}`)) this._remove(tab);
  }

  _relay(channel, event) {
    this._toChannel(channel, { op: 'event', channel, event });
  }

  _toChannel(channel, msg) {
    const ch = this.channels.get(channel);
    if (!ch) return;
    for (const tab of ch.tabs) if (!ch.waiting.has(tab)) this._send(tab, msg);
  }

  _send(tab, msg) {
    const entry = this.tabs.get(tab);
    if (!entry) return;
    try {
      entry.port.postMessage({ ...msg, to: tab });
    } catch {
      this._remove(tab);
    }
  }

  _status() {
    const c = this.client;
    const stats = c ? c.stats() : null;
    if (stats) delete stats.latency.samples; // the figures only, not every sample
    const msg = {
      op: 'status',
      mode: this.mode,
      state: c ? c.state : 'offline',
      transport: c ? c.transport : null,
      reason: c ? c.reason : '',
      tabs: this.tabs.size,
      stats,
    };
    for (const tab of this.tabs.keys()) this._send(tab, msg);
  }
}
