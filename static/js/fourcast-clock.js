// The server's clock as a client sees it: the offset to add to this browser's clock, so that an
// event's latency (now - event.ts) is measured on one clock. Samples come from GET /api/time and
// from WebSocket pongs.

import { wallClock } from './fourcast-util.js';

const RESYNC_EVERY = 5 * 60 * 1000;

export class ServerClock {
  constructor() {
    this.offset = 0;
    this.rtt = null;
    this.synced = false;
    this.samples = [];
    this.timer = null;
  }

  get syncing() {
    return this.timer != null;
  }

  /** Measure the offset now, and again every few minutes until stop(). */
  async sync(client) {
    if (!this.timer) {
      this.timer = setInterval(() => this.sync(client), RESYNC_EVERY);
    }
    // Midpoint of the round trip; a few tries, since the shortest round trip bounds the error.
    for (let i = 0; i < 3; i += 1) {
      try {
        const t0 = wallClock();
        const res = await client.request('/api/time', { signal: AbortSignal.timeout(5000) });
        const t1 = wallClock();
        if (!res.ok) return;
        const body = await res.json();
        client.clockSample(Number(body.ts), t0, t1);
      } catch {
        return;
      }
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  /** The server said `serverTs` between our t0 and t1. */
  add(serverTs, t0, t1) {
    if (!Number.isFinite(serverTs)) return;
    const rtt = t1 - t0;
    const samples = this.samples;
    samples.push({ offset: serverTs - (t0 + t1) / 2, rtt, at: t1 });
    while (samples.length > 8) samples.shift();
    // The sample with the shortest round trip bounds the error best.
    const best = samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.offset = best.offset;
    this.rtt = best.rtt;
    this.synced = true;
  }
}
