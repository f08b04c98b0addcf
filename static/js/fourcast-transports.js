// The four ways of reading a fourcast channel log. Each connection class is single-use: it is
// started once, reports "useful" once it delivers (WS welcome, SSE streams open, first poll
// answer), and reports one "drop" when it ends; the client then builds a fresh one that resumes
// from the cursors it kept. Connections never keep cursors themselves: they ask the host.
//
// The host (FourcastClient) provides:
//   cursorFor(ch), setCursor(ch, cursor, conn), deliver(ch, event, conn), resetChannel(ch, conn),
//   channelError(ch, err, conn), connUseful(conn), connDropped(conn, info), count(stats),
//   clockSample(serverTs, t0, t1), request(path, init), sseAuthQuery(), options.

import { WsConnection } from './fourcast-ws.js';
import { SseConnection } from './fourcast-sse.js';
import { PollConnection } from './fourcast-poll.js';

export { DEFAULT_SSE_TYPES } from './fourcast-sse.js';
export { WsConnection, SseConnection, PollConnection };

/** Build a connection for a transport name. */
export function createConnection(name, host, opts = {}) {
  switch (name) {
    case 'websocket':
      return new WsConnection(host, opts);
    case 'sse':
      return new SseConnection(host, opts);
    case 'longpoll':
      return new PollConnection(host, opts, { long: true });
    case 'shortpoll':
      return new PollConnection(host, opts, { long: false });
    default:
      throw new Error(`unknown transport ${name}`);
  }
}
