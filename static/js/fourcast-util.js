// Small helpers shared by the fourcast client modules: an event emitter, backoff with full
// jitter, an error type for API failures, and percentile maths for the stats.

/** Minimal event emitter: on(name, fn) returns an "off" function. */
export class Emitter {
  constructor() {
    this._handlers = new Map();
  }

  on(name, fn) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this.off(name, fn);
  }

  off(name, fn) {
    const set = this._handlers.get(name);
    if (set) set.delete(fn);
  }

  emit(name, payload) {
    const set = this._handlers.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(payload);
      } catch (err) {
        // A broken listener must not break delivery to the others (or the transport loop).
        console.error(`fourcast: '${name}' listener threw`, err);
      }
    }
  }
}

/** An API error: `code` and `message` from the `{"error": {...}}` body, the HTTP status. */
export class FourcastError extends Error {
  constructor(code, message, { status = 0, retryAfter = null } = {}) {
    super(message || code);
    this.name = 'FourcastError';
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * Exponential backoff with full jitter (AWS architecture blog): the n-th retry waits a random
 * time in [0, min(cap, base * 2^n)], so a crowd of clients that lost the same server does not
 * come back in lockstep.
 */
export class Backoff {
  constructor({ base = 500, cap = 30000 } = {}) {
    this.base = base;
    this.cap = cap;
    this.attempt = 0;
  }

  next(minimum = 0) {
    const ceiling = Math.min(this.cap, this.base * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.max(minimum, Math.floor(Math.random() * ceiling));
  }

  reset() {
    this.attempt = 0;
  }
}

/** Parse a Retry-After header (seconds or HTTP date) into milliseconds, or null. */
export function retryAfterMs(value) {
  if (!value) return null;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, when - Date.now());
}

/**
 * Does a refused HTTP request say "later"? A `429` always does (too many requests: a budget that
 * refills, never a transport that cannot work here), a `503` only with a Retry-After. Then the
 * client waits at least the Retry-After (or its own backoff) and tries the same transport again:
 * `auto` does not step down (the same rule as the Python client's `busy`). A 503 without
 * Retry-After, or another status, may mean the transport is unusable here, and `auto` steps down.
 */
export function saysLater(status, retryAfter) {
  return status === 429 || (status === 503 && retryAfter != null);
}

/** Build a FourcastError from a non-2xx fetch Response (reads its body). */
export async function errorFromResponse(res) {
  let code = `http_${res.status}`;
  let message = res.statusText || code;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    } else if (body && typeof body.detail === 'string') {
      message = body.detail;
    }
  } catch {
    // Not JSON: keep the status text.
  }
  return new FourcastError(code, message, {
    status: res.status,
    retryAfter: retryAfterMs(res.headers.get('Retry-After')),
  });
}

/** The q-th percentile (0..100) of a list of numbers, nearest-rank; null when empty. */
export function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((q / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** A random id: crypto.randomUUID where available (secure contexts), else 128 random bits. */
export function randomId() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Wall-clock time in ms with sub-millisecond precision (Date.now() is whole ms, too coarse for
 * latencies of a millisecond or two on a LAN); falls back to Date.now().
 */
export function wallClock() {
  const perf = globalThis.performance;
  if (perf && typeof perf.now === 'function' && Number.isFinite(perf.timeOrigin)) {
    return perf.timeOrigin + perf.now();
  }
  return Date.now();
}

/** Call `online` / `offline` on the browser's network events; returns a function that stops. */
export function watchNetwork(online, offline) {
  if (globalThis.addEventListener) {
    globalThis.addEventListener('online', online);
    globalThis.addEventListener('offline', offline);
  }
  return () => {
    if (!globalThis.removeEventListener) return;
    globalThis.removeEventListener('online', online);
    globalThis.removeEventListener('offline', offline);
  };
}

/** Resolve after `ms`, or at once when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal && signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    }
  });
}

/** A bounded "have I seen this id" set: remembers the last `size` ids. */
export class SeenIds {
  constructor(size = 2000) {
    this.size = size;
    this._set = new Set();
  }

  has(id) {
    return this._set.has(id);
  }

  add(id) {
    this._set.add(id);
    if (this._set.size > this.size) {
      // Sets iterate in insertion order: drop the oldest.
      this._set.delete(this._set.values().next().value);
    }
  }
}
