// A FourcastClient's options, with their defaults.

import { TRANSPORTS } from './fourcast-auto.js';

/**
 * @param {object} opts
 * @param {string} [opts.baseUrl] server origin (default: this page's)
 * @param {string} [opts.token] bearer token from POST /api/session (or a service key)
 * @param {'auto'|'websocket'|'sse'|'longpoll'|'shortpoll'} [opts.transport]
 * @param {number} [opts.pollInterval] short-poll period, ms
 * @param {number} [opts.longPollWait] long-poll `wait`, s
 * @param {number} [opts.welcomeTimeout] ms a WebSocket may take to say welcome
 * @param {number} [opts.probeTimeout] ms an SSE stream may take to open / send its first bytes
 * @param {number} [opts.sseStaleAfter] ms an SSE stream may stay silent before the client checks
 *   with a one-event read that it has missed nothing (EventSource hides the keepalives)
 * @param {number} [opts.stepUpAfter] ms on a fallback before `auto` retries a better transport
 * @param {'auto'|'cookie'|'ticket'} [opts.sseAuth] how EventSource authenticates
 * @param {string[]} [opts.eventTypes] extra event types SSE must listen for
 * @param {{base?: number, cap?: number}} [opts.backoff] ms: reconnects, and WebSocket subscribes
 *   retried after a `retry_after`, wait a random time up to base * 2^n, at most cap
 */
export function clientOptions(opts = {}) {
  if (opts.transport && opts.transport !== 'auto' && !TRANSPORTS.includes(opts.transport)) {
    throw new Error(`unknown transport '${opts.transport}'`);
  }
  const origin = globalThis.location ? globalThis.location.origin : undefined;
  return {
    baseUrl: opts.baseUrl || origin,
    token: opts.token || null,
    transport: opts.transport || 'auto',
    pollInterval: opts.pollInterval ?? 1000,
    longPollWait: opts.longPollWait ?? 25,
    welcomeTimeout: opts.welcomeTimeout ?? 4000,
    probeTimeout: opts.probeTimeout ?? 5000,
    sseStaleAfter: opts.sseStaleAfter ?? 60000,
    stepUpAfter: opts.stepUpAfter ?? 60000,
    sseAuth: opts.sseAuth || 'auto',
    eventTypes: opts.eventTypes || [],
    backoff: opts.backoff || {},
  };
}
