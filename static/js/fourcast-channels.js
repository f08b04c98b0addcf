// The bookkeeping of a channel a client reads (FourcastClient, and each tab of a SharedClient):
// its cursor is the id of the last event handed out, so a resume starts after it; the ids seen
// drop the overlap of a replay, or of two connections during a switch. A FourcastClient's
// delivery, resets and SSE event types are here too (its `deliver`, `resetChannel`, `_addType`
// and `sseTypes` call them).

import { SeenIds, errorFromResponse } from './fourcast-util.js';
import { DEFAULT_SSE_TYPES } from './fourcast-transports.js';

/**
 * Ask the server where "now" is on `channel` (the `next` of a one-event read), so that a
 * subscription made without a cursor still resumes from there after a drop before its first
 * event. Unreachable: the subscription starts live-only, and its first event gives the cursor.
 */
export async function startCursor(client, channel, sub) {
  try {
    const res = await client.request(`/api/channels/${encodeURIComponent(channel)}/events?limit=1`, {
      count: true,
      signal: AbortSignal.timeout(10000),
    });
    if (res.ok) {
      const text = await res.text();
      client.count({ bytes: text.length });
      const body = JSON.parse(text);
      if (body.next != null && sub.cursor == null) sub.cursor = String(body.next);
    } else if (res.status === 403 || res.status === 401) {
      client.emit('error', { channel, error: await errorFromResponse(res) });
    }
  } catch {
    // Unreachable right now: see above.
  }
}

/** Note an event that has an id: false when it was seen already (a duplicate to drop). */
export function firstSight(sub, event) {
  const id = String(event.id);
  if (sub.seen.has(id)) return false;
  sub.seen.add(id);
  sub.cursor = id;
  return true;
}

/** Hand an event to every handler of the channel: one that throws does not stop the others. */
export function handOut(sub, event) {
  for (const h of [...sub.handlers]) {
    try {
      h.onEvent(event);
    } catch (err) {
      console.error('fourcast: event handler threw', err);
    }
  }
}

/** Tell the channel's handlers that the server could not resume from its cursor. */
export function handOutReset(sub, info) {
  for (const h of [...sub.handlers]) if (h.onReset) h.onReset(info);
}

/**
 * An event a connection of `client` read. Durable ones (with an id) reach the handlers once,
 * whichever connections read them; an ephemeral one has no id to de-duplicate by, so only the
 * connection in use passes it on.
 */
export function deliverEvent(client, sub, event, conn) {
  if (event.id == null) {
    if (conn !== client.conn) return;
  } else if (!firstSight(sub, event)) {
    client._counters.duplicates += 1;
    return;
  }
  client._counters.delivered += 1;
  if (typeof event.ts === 'number') client._latency.add(event.ts, client._clock);
  handOut(sub, event);
}

/**
 * `conn` of `client` could not resume `channel` from its cursor. `cursor`, when the server told
 * it, is where the channel now resumes from: kept, or on a channel with nothing retained every
 * reconnect would be reset again.
 */
export function resetSub(client, sub, channel, conn, cursor) {
  client._counters.resets += 1;
  if (cursor != null) sub.cursor = String(cursor);
  // The server replays from its oldest retained event, all newer than our cursor: forget the
  // ids we saw, so a server that lost its log (and reuses ids) cannot make us drop events.
  sub.seen = new SeenIds();
  const info = { channel, transport: conn.name };
  client.emit('reset', info);
  handOutReset(sub, info);
}

/** Note an event type a channel wants; tell the connections of `client` if SSE would miss it. */
export function addType(client, sub, type) {
  if (sub.types.includes(type)) return;
  sub.types.push(type);
  const known = DEFAULT_SSE_TYPES.includes(type) || client.options.eventTypes.includes(type);
  if (!known) for (const conn of client._conns()) if (conn.listenFor) conn.listenFor(type);
}

/** The event types an EventSource of `client` listens for: defaults, options, its channels'. */
export function sseTypesOf(client) {
  const types = new Set([...DEFAULT_SSE_TYPES, ...client.options.eventTypes]);
  for (const sub of client.subs.values()) for (const t of sub.types) types.add(t);
  return [...types];
}
