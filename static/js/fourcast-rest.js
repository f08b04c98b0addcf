// What a FourcastClient does over plain HTTP besides receiving: publishing with retries, and
// the tickets an EventSource authenticates with.

import { Backoff, FourcastError, errorFromResponse, randomId, sleep } from './fourcast-util.js';

/**
 * Publish an event. Over a live WebSocket: the `publish` op, resolved by its ack; otherwise
 * REST with an Idempotency-Key, retried on network errors, 429 and 503. Resolves with the
 * event (`id` null when ephemeral).
 */
export async function publishEvent(client, channel, type, data, opts = {}) {
  const { ephemeral = false, idempotencyKey } = opts;
  const conn = client.conn;
  if (conn && conn.canPublish) {
    try {
      const ack = await conn.publish(channel, type, data, ephemeral);
      const { op: _op, ref: _ref, ...rest } = ack;
      const event = rest.event || rest;
      return { id: null, channel, type, data, ts: null, from: null, ...event };
    } catch (err) {
      if (err.code !== 'not_connected') throw err;
    }
  }
  return publishRest(client, channel, type, data, ephemeral, idempotencyKey || randomId());
}

/**
 * POST an event with an Idempotency-Key, retried on network errors, 429 and 503 (the same key
 * makes a retry safe). Resolves with the stored event.
 */
export async function publishRest(client, channel, type, data, ephemeral, key) {
  const body = JSON.stringify(ephemeral ? { type, data, ephemeral: true } : { type, data });
  const backoff = new Backoff({ base: 250, cap: 4000 });
  for (let attempt = 0; ; attempt += 1) {
    let res;
    try {
      res = await client.request(`/api/channels/${encodeURIComponent(channel)}/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
        body,
      });
    } catch (err) {
      // Network error: the same Idempotency-Key makes a retry safe.
      if (attempt >= 3) throw new FourcastError('network', err.message);
      await sleep(backoff.next());
      continue;
    }
    if (res.ok) return res.json();
    const err = await errorFromResponse(res);
    if ((res.status === 429 || res.status === 503) && attempt < 5) {
      await sleep(err.retryAfter ?? backoff.next(), undefined);
      continue;
    }
    throw err;
  }
}

/** How an EventSource authenticates: a ticket where one is wanted, else the session cookie. */
export class StreamAuth {
  constructor(client) {
    this.client = client;
    this.noTickets = false; // the server (same origin) has no /api/tickets: use the cookie
  }

  /** `?ticket=...` for an EventSource, or '' to rely on the session cookie. */
  async query() {
    const { options } = this.client;
    const mode = options.sseAuth;
    const sameOrigin = new URL(options.baseUrl).origin === globalThis.location?.origin;
    // With a token, a ticket pins the stream to this client's identity: the cookie is shared by
    // all tabs and may belong to whoever signed in last.
    const wantTicket = mode === 'ticket' || (mode === 'auto' && (!sameOrigin || !!options.token));
    if (!wantTicket || !options.token || this.noTickets) return '';
    const res = await this.client.request('/api/tickets', { method: 'POST', count: true });
    if (res.status === 404 || res.status === 405) {
      if (!sameOrigin) throw new FourcastError('no_tickets', 'server has no /api/tickets');
      this.noTickets = true;
      return '';
    }
    if (!res.ok) throw await errorFromResponse(res);
    const body = await res.json();
    return `?ticket=${encodeURIComponent(body.ticket)}`;
  }
}
