// The channels one tab of a SharedClient reads, each with its own cursor and seen ids. Whenever a
// channel is (re)attached to a hub, the events it relays wait in a buffer while the tab reads over
// HTTP what lies between its own cursor and the one the hub relays from; overlaps drop by id.

import { SeenIds } from './fourcast-util.js';
import { firstSight, handOut, handOutReset } from './fourcast-channels.js';

const CATCH_UP_LIMIT = 500;
const enc = encodeURIComponent;

export class TabChannels {
  /** `tab`: the SharedClient (its `rest` client reads, `emit` tells, `transport` names resets). */
  constructor(tab) {
    this.tab = tab;
    this.subs = new Map(); // channel -> {handlers, cursor, seen, types, buffer, gen}
    this.counts = { delivered: 0, duplicates: 0, catchUpRequests: 0 };
  }

  /** A new channel, read after `after` (else from where the hub starts). */
  add(channel, after, types) {
    const sub = {
      handlers: new Set(),
      cursor: after != null ? String(after) : null,
      seen: new SeenIds(),
      types: new Set(types || []),
      buffer: [],
      gen: 0,
    };
    this.subs.set(channel, sub);
    return sub;
  }

  /** Attached to a hub (again): relayed events wait until the catch-up read is done. */
  attach(sub) {
    sub.gen += 1;
    sub.buffer = [];
  }

  /** An event the hub relays. */
  relayed(channel, event) {
    const sub = this.subs.get(channel);
    if (!sub) return;
    if (sub.buffer) sub.buffer.push(event);
    else this._deliver(channel, sub, event);
  }

  /** The hub relays from `cursor` on: read what lies between this tab's cursor and it. */
  async subscribed(channel, cursor) {
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
    const { rest } = this.tab;
    let after = sub.cursor;
    for (let page = 0; page < 100; page += 1) {
      let body;
      try {
        this.counts.catchUpRequests += 1;
        const q = `after=${enc(after)}&limit=${CATCH_UP_LIMIT}`;
        const res = await rest.request(`/api/channels/${enc(channel)}/events?${q}`, { count: true });
        if (!res.ok) throw await rest.errorFrom(res);
        body = await res.json();
      } catch (err) {
        this.tab.emit('error', { channel, error: err });
        return;
      }
      if (sub.gen !== gen) return;
      if (body.reset) this.reset(channel);
      const events = Array.isArray(body.events) ? body.events : [];
      for (const event of events) this._deliver(channel, sub, event);
      if (events.length < CATCH_UP_LIMIT || body.next == null) return;
      after = String(body.next);
    }
  }

  _deliver(channel, sub, event) {
    if (!event) return;
    if (event.id != null && !firstSight(sub, event)) {
      this.counts.duplicates += 1;
      return;
    }
    this.counts.delivered += 1;
    handOut(sub, event);
  }

  /** The server could not resume from the cursor: it replays from its oldest retained event. */
  reset(channel) {
    const sub = this.subs.get(channel);
    if (!sub) return;
    sub.seen = new SeenIds();
    const info = { channel, transport: this.tab.transport };
    this.tab.emit('reset', info);
    handOutReset(sub, info);
  }
}
