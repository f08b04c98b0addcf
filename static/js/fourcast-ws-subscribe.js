// A WebSocket connection's subscribes (fourcast-ws.js): one `subscribe` op a channel, answered by
// an ack or an error op; a refusal for now (over the budget, the event log away) is asked again
// after the server's retry_after plus a jittered backoff, while the channel is still wanted.

import { Backoff, FourcastError } from './fourcast-util.js';

export function subscribeChannel(conn, ch) {
  const frame = { op: 'subscribe', channel: ch };
  const after = conn.host.cursorFor(ch);
  if (after != null) frame.after = after;
  conn.subSeq += 1;
  const seq = conn.subSeq;
  const state = conn.subscribing.get(ch) || { timer: null, backoff: null };
  state.seq = seq;
  conn.subscribing.set(ch, state);
  // An answer to an older subscribe of the channel (unsubscribed and subscribed again since,
  // or the connection gone) changes nothing.
  const current = () =>
    !conn.closed && conn.channels.has(ch) && conn.subscribing.get(ch) === state && state.seq === seq;
  conn._request(frame, 'subscribe')
    .then((ack) => {
      if (current()) state.backoff = null;
      // A live-only subscription learns where it started: resume from there after a drop.
      if (ack.next != null && conn.host.cursorFor(ch) == null) {
        conn.host.setCursor(ch, String(ack.next), conn);
      }
    })
    .catch((err) => {
      if (err.code === 'not_connected' || err.code === 'timeout') return;
      conn.host.channelError(ch, err, conn);
      // Refused for now (over the subscribe budget, the event log away): the channel is still
      // wanted, so ask again after the server's retry_after plus our backoff, jittered.
      if (retryable(err) && current()) {
        state.backoff = state.backoff || new Backoff(conn.host.options.backoff);
        const delay = (err.retryAfter || 0) + state.backoff.next();
        state.timer = setTimeout(() => {
          state.timer = null;
          if (current()) subscribeChannel(conn, ch);
        }, delay);
      }
    });
}

/** Stop retrying a channel's subscribe. */
export function forgetChannel(conn, ch) {
  const state = conn.subscribing.get(ch);
  if (state) clearTimeout(state.timer);
  conn.subscribing.delete(ch);
}

/** An error op as a FourcastError; `retryAfter` in ms, as for an HTTP answer's Retry-After. */
export function errorOp(msg) {
  const secs = Number(msg.retry_after);
  const retryAfter = msg.retry_after != null && Number.isFinite(secs) ? Math.max(0, secs * 1000) : null;
  return new FourcastError(msg.code || 'error', msg.message, { retryAfter });
}

/** A refusal for now, not for good (unlike `forbidden`): worth asking again later. */
function retryable(err) {
  return err.retryAfter != null || err.code === 'rate_limited' || err.code === 'unavailable';
}
