// The channels one tab of a SharedClient reads, each with its own cursor and seen ids. Whenever a
// channel is (re)attached to a hub, the events it relays wait in a buffer while the tab reads over
// HTTP what lies between its own cursor and the one the hub relays from (page after page, a failed
// read retried); overlaps drop by id. The buffer follows once the read has reached it.

import { Backoff, SeenIds, sleep } from './fourcast-util.js';
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
      waiting: null, // AbortController of a catch-up waiting to retry
    };
    this.subs.set(channel, sub);
    return sub;
  }

  /** Attached to a hub (again): relayed events wait until the catch-up read is done. */
  attach(sub) {
    sub.gen += 1;
    sub.buffer = [];
    this._stopWaiting(sub);
  }

  /** The tab is closing: no catch-up waits on. */
  close() {
    for (const sub of this.subs.values()) this._stopWaiting(sub);
  }

  _stopWaiting(sub) {
    if (sub.waiting) sub.waiting.abort();
    sub.waiting = null;
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
      await this._catchUp(channel, sub, gen, cursor == null ? null : String(cursor));
    }
    if (!this._current(channel, sub, gen)) return;
    const buffered = sub.buffer || [];
    sub.buffer = null;
    for (const event of buffered) this._deliver(channel, sub, event);
  }

  _current(channel, sub, gen) {
    return sub.gen === gen && this.subs.get(channel) === sub && !this.tab.closed;
  }

  /**
   * Read the events after this tab's cursor up to `until` (the hub's), page after page while an
   * answer is cut short (`truncated`) or full. A failed read is retried after its Retry-After
   * plus a backoff while the relayed events keep waiting; only an answer that says the channel
   * cannot be read (401, 403, 404 ...) ends the catch-up short.
   */
  async _catchUp(channel, sub, gen, until) {
    const { rest } = this.tab;
    const backoff = new Backoff({ base: 500, cap: 15000 });
    let after = sub.cursor;
    while (after !== until) {
      let body;
      try {
        this.counts.catchUpRequests += 1;
        const q = `after=${enc(after)}&limit=${CATCH_UP_LIMIT}`;
        const res = await rest.request(`/api/channels/${enc(channel)}/events?${q}`, { count: true });
        if (!res.ok) throw await rest.errorFrom(res);
        body = await res.json();
      } catch (err) {
        if (!this._current(channel, sub, gen)) return;
        this.tab.emit('error', { channel, error: err });
        if (!retryable(err)) return;
        sub.waiting = new AbortController();
        // Retry-After plus a jittered backoff: the tabs of a new hub do not all come back at once.
        await sleep((err.retryAfter || 0) + backoff.next(), sub.waiting.signal);
        if (!this._current(channel, sub, gen)) return;
        sub.waiting = null;
        continue;
      }
      if (!this._current(channel, sub, gen)) return;
      backoff.reset();
      if (body.reset) this.reset(channel);
      const events = Array.isArray(body.events) ? body.events : [];
      for (const event of events) this._deliver(channel, sub, event);
      const more = body.truncated === true || events.length >= CATCH_UP_LIMIT;
      if (!more || body.next == null || String(body.next) === after) return;
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

/** A read that may work later: the network, 408, 429, 5xx (and anything with a Retry-After). */
function retryable(err) {
  const status = err.status || 0;
  return !status || status === 408 || status === 429 || status >= 500 || err.retryAfter != null;
}
