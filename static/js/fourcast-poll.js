// Short and long polling: one request loop per channel, each carrying the `next` cursor on.

import { saysLater, sleep } from './fourcast-util.js';
import { BaseConnection } from './fourcast-connection.js';

const enc = encodeURIComponent;

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
    if (this._track(ch) && this.started && !this.closed) this._loop(ch);
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
          if (saysLater(res.status, err.retryAfter)) extra.later = true; // no step down
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
