// The bookkeeping of a channel a client reads (FourcastClient, and each tab of a SharedClient):
// its cursor is the id of the last event handed out, so a resume starts after it; the ids seen
// drop the overlap of a replay, or of two connections during a switch.

import { errorFromResponse } from './fourcast-util.js';

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
