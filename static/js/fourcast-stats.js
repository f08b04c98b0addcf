// What a FourcastClient counts for its stats(): events, bytes, requests, drops and recoveries,
// and the latency of every event delivered, on the server's clock.

import { percentile, wallClock } from './fourcast-util.js';

const MAX_SAMPLES = 2000;

export function newCounters() {
  return {
    messages: 0,
    delivered: 0,
    duplicates: 0,
    resets: 0,
    bytes: 0,
    httpRequests: 0,
    reconnects: 0,
    lastRecoveryMs: null,
    drops: 0,
  };
}

/** The latest latencies (ms), oldest dropped first. */
export class LatencyLog {
  constructor() {
    this.samples = [];
  }

  /** An event stamped `ts` by the server arrives now; `clock` (a ServerClock) relates the two. */
  add(ts, clock) {
    // The offset is known to within half a round trip: a figure below zero is that error.
    this.samples.push(Math.max(0, wallClock() + clock.offset - ts));
    if (this.samples.length > MAX_SAMPLES) this.samples.splice(0, this.samples.length - MAX_SAMPLES);
  }
}

/**
 * What FourcastClient.stats() returns, counters over all of a client's connections so far:
 * `messages` events read off the wire (duplicates included), `delivered` events handed to
 * handlers, `duplicatesSuppressed`, `resets`, `bytes` (payload lengths: frames, SSE data
 * lines, poll bodies), `httpRequests` (made to receive: polls, stream opens, tickets, upgrades,
 * start cursors; not publishes or clock syncs), `reconnects` (attempts after a drop), `drops`,
 * `lastRecoveryMs` (from a drop to live again), and `latency` (now - event.ts, corrected by the
 * server clock offset from GET /api/time or WS pong, in ms: p50, p95, p99, samples).
 */
export function statsReport({ transport, state, reason }, counters, latency, clock) {
  const c = counters;
  const samples = latency.samples.slice();
  return {
    transport,
    state,
    reason,
    messages: c.messages,
    delivered: c.delivered,
    duplicatesSuppressed: c.duplicates,
    resets: c.resets,
    bytes: c.bytes,
    httpRequests: c.httpRequests,
    reconnects: c.reconnects,
    drops: c.drops,
    lastRecoveryMs: c.lastRecoveryMs,
    latency: {
      count: samples.length,
      p50: percentile(samples, 50),
      p95: percentile(samples, 95),
      p99: percentile(samples, 99),
      last: samples.length ? samples[samples.length - 1] : null,
      samples,
    },
    clock: { offsetMs: clock.offset, rttMs: clock.rtt, synced: clock.synced },
  };
}
