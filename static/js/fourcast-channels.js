// The bookkeeping of a channel a client reads (FourcastClient, and each tab of a SharedClient):
// its cursor is the id of the last event handed out, so a resume starts after it; the ids seen
// drop the overlap of a replay, or of two connections during a switch.

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
