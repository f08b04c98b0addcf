// Server-Sent Events: one EventSource per channel. EventSource's own reconnect is switched off
// (we close on the first error) so that resume uses our cursor, a fresh ticket, and our backoff.
// A stream silent for `sseStaleAfter` is checked (see _checkStale): a network that dropped
// without a word leaves an EventSource open, and its keepalive comments never reach the page.
// The stream read with fetch (the probe, the question after a refusal) is fourcast-sse-fetch.js.

import { BaseConnection } from './fourcast-connection.js';
import { askWhyRefused, failure, probeStream } from './fourcast-sse-fetch.js';

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

export class SseConnection extends BaseConnection {
  name = 'sse';

  constructor(host, opts) {
    super(host, opts);
    this.sources = new Map(); // channel -> EventSource
    this.opened = new Set();
    this.timers = [];
    this.abort = new AbortController();
    this.heardAt = new Map(); // channel -> when its stream last opened or said something
  }

  async start() {
    if (this.probe && this.channels.size) {
      const ok = await this._probe([...this.channels][0]);
      if (!ok || this.closed) return;
    }
    this.started = true;
    if (!this.channels.size) this._useful();
    for (const ch of this.channels) this._open(ch);
    const every = Math.max(250, this.host.options.sseStaleAfter / 4);
    this.timers.push(setInterval(() => this._checkStale(), every));
  }

  /**
   * A stream silent for `sseStaleAfter` may be dead (a half-open connection): read one event
   * after its cursor. No answer within `probeTimeout` (the network is gone), or a durable event
   * there that the stream has still not delivered a quarter of `sseStaleAfter` later, means the
   * stream is stale: drop, to resume by cursor. A quiet channel costs one small request per
   * `sseStaleAfter`.
   */
  async _checkStale() {
    const { sseStaleAfter, probeTimeout } = this.host.options;
    for (const ch of this.opened) {
      if (Date.now() - (this.heardAt.get(ch) || 0) < sseStaleAfter) continue;
      this.heardAt.set(ch, Date.now());
      const cursor = this.host.cursorFor(ch);
      if (cursor == null) continue;
      const timeout = AbortSignal.timeout(probeTimeout);
      let body;
      try {
        const q = new URLSearchParams({ after: cursor, limit: '1' });
        const res = await this.host.request(`/api/channels/${enc(ch)}/events?${q}`, {
          signal: AbortSignal.any([this.abort.signal, timeout]),
          count: true,
        });
        body = res.ok ? await res.json() : null;
      } catch {
        if (timeout.aborted) this._drop(`sse stream for ${ch} went stale (no answer to a check)`);
        continue; // else unreachable (the stream fails too) or closed
      }
      const missed = body && Array.isArray(body.events) && body.events.some((e) => e.id != null);
      if (!missed || this.closed) continue;
      const grace = setTimeout(() => {
        if (this.host.cursorFor(ch) === cursor) this._drop(`sse stream for ${ch} went stale`);
      }, sseStaleAfter / 4);
      this.timers.push(grace);
    }
  }

  /** Read the first bytes of a stream with fetch (fourcast-sse-fetch.js). */
  _probe(ch) {
    return probeStream(this, ch);
  }

  /** An EventSource refused: ask once more with fetch why (fourcast-sse-fetch.js). */
  _refused(ch) {
    return askWhyRefused(this, ch);
  }

  async _open(ch) {
    const { probeTimeout, baseUrl } = this.host.options;
    let query;
    try {
      query = await this.host.sseAuthQuery();
    } catch (err) {
      // 401 (signed out, token revoked or expired): an auth drop, as the other transports say it.
      this._drop(`could not get a stream ticket (${err.message})`, failure(err));
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
      this.heardAt.set(ch, Date.now());
      this.opened.add(ch);
      if ([...this.channels].every((c) => this.opened.has(c))) this._useful();
    };
    es.onerror = () => {
      // readyState CLOSED: the server refused (non-200 or wrong type); CONNECTING: the stream
      // broke. Either way we take over the reconnect.
      if (this.opened.has(ch)) {
        this._drop(`sse stream for ${ch} broke`);
      } else if (es.readyState === EventSource.CLOSED) {
        clearTimeout(openTimer); // answered: _refused learns what the answer was
        this._refused(ch);
      } else {
        this._drop(`sse stream for ${ch} failed to open`);
      }
    };
    const onData = (e) => {
      this.heardAt.set(ch, Date.now());
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
    // Its `id:` is the cursor the stream now stands after (an older server sends none).
    es.addEventListener('reset', (e) => {
      this.heardAt.set(ch, Date.now());
      this.host.resetChannel(ch, this, e.lastEventId || null);
    });
  }

  /** Every event type already arrives through the one `message` listener. */
  listenFor() {}

  addChannel(ch) {
    if (this._track(ch) && this.started) this._open(ch);
  }

  removeChannel(ch) {
    if (!this.channels.delete(ch)) return;
    const es = this.sources.get(ch);
    if (es) es.close();
    this.sources.delete(ch);
    this.opened.delete(ch);
    this.heardAt.delete(ch);
  }

  _teardown() {
    this.abort.abort();
    for (const id of this.timers) {
      clearTimeout(id);
      clearInterval(id);
    }
    for (const es of this.sources.values()) {
      es.onerror = null;
      es.close();
    }
    this.sources.clear();
  }
}
