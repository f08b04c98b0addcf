// An SSE connection's stream read with fetch rather than EventSource, which says nothing of what
// it receives: the probe that the first bytes arrive (nothing buffers the response), and, after an
// EventSource was refused, the one request that learns why. These work on an SseConnection
// (fourcast-sse.js): its `_probe` and `_refused` call them.

import { FourcastError, saysLater } from './fourcast-util.js';

const enc = encodeURIComponent;

/** What a failed HTTP request tells the drop: refused credentials, how long to wait, "later". */
export function failure(err) {
  const info = { minDelay: err.retryAfter || 0 };
  if (err.status) info.code = err.status;
  if (err.status === 401) info.auth = true;
  if (saysLater(err.status, err.retryAfter)) info.later = true;
  return info;
}

/** Read the first bytes of a stream with fetch: proves nothing buffers the response. */
export async function probeStream(conn, ch) {
  const { probeTimeout } = conn.host.options;
  const timer = setTimeout(() => conn.abort.abort(), probeTimeout);
  try {
    const res = await fetchStream(conn, ch, conn.abort.signal);
    if (!res) return false;
    const reader = res.body.getReader();
    const { value } = await reader.read();
    reader.cancel().catch(() => {});
    if (!value || !value.length) throw new Error('stream ended at once');
    return true;
  } catch (err) {
    const why = conn.abort.signal.aborted
      ? `sse stream sent nothing within ${probeTimeout / 1000} s`
      : `sse probe failed (${err.message})`;
    conn._drop(why, failure(err));
    return false;
  } finally {
    clearTimeout(timer);
    conn.abort = new AbortController();
  }
}

/**
 * GET a channel's stream with fetch, authenticated as an EventSource of ours is: the response
 * (null once this connection closed), or a FourcastError with the status of a refusal.
 */
async function fetchStream(conn, ch, signal) {
  const query = await conn.host.sseAuthQuery();
  if (conn.closed) return null;
  const res = await conn.host.request(`/api/channels/${enc(ch)}/stream${query}`, {
    signal,
    headers: { Accept: 'text/event-stream' },
    count: true,
    auth: false,
  });
  if (res.ok) return res;
  const { code, retryAfter } = await conn.host.errorFrom(res);
  const msg = `stream answered HTTP ${res.status} (${code})`;
  throw new FourcastError(code, msg, { status: res.status, retryAfter });
}

/**
 * An EventSource refused (a status other than 200) says nothing of why: ask once more with
 * fetch, so that a 401 (a signed-out cookie) waits for a new token as on the other transports
 * and a 429 or 503 waits for its Retry-After, instead of retrying blind. Accepted this time,
 * the refusal was transient: the drop says so (`acceptedAfter`), for the connector to retry SSE.
 */
export async function askWhyRefused(conn, ch) {
  const es = conn.sources.get(ch);
  if (es) es.onerror = null;
  const why = `sse stream for ${ch} was refused`;
  const ctl = new AbortController();
  const stop = () => ctl.abort();
  conn.abort.signal.addEventListener('abort', stop, { once: true });
  const timer = setTimeout(stop, conn.host.options.probeTimeout);
  try {
    const res = await fetchStream(conn, ch, ctl.signal);
    if (!res) return; // this connection closed meanwhile
    res.body.cancel().catch(() => {});
    // Accepted this time: a transient refusal, worth SSE once more (the connector makes only
    // the first such drop in a row "later", so a stream the EventSource never opens steps down).
    conn._drop(`${why} (accepted when asked again)`, { acceptedAfter: true });
  } catch (err) {
    conn._drop(err.status ? `${why}: ${err.message}` : why, failure(err));
  } finally {
    clearTimeout(timer);
  }
}
