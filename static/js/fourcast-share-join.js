// How a tab reaches the hub that holds the shared connection: a SharedWorker where the browser has
// one; else the tab that holds a Web Lock leads (its own ShareHub) and relays to the others over a
// BroadcastChannel, and when it leaves, the next tab in line takes the lock and leads.

import { ShareHub } from './fourcast-hub.js';

/** Short hash of a credential: tabs compare it, nobody needs the credential back from it. */
export async function fingerprint(text) {
  if (globalThis.crypto && crypto.subtle) {
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
    return [...new Uint8Array(digest).slice(0, 12)].map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  let h = 0x811c9dc5; // FNV-1a, where SubtleCrypto is missing (not a secure context)
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16);
}

/**
 * Join the SharedWorker for `key` (throws where it cannot be made). `tab.id` names this tab,
 * `tab.onMessage(msg)` hears the hub, `tab.onFailed()` hears that the worker could not start
 * before it said anything. Returns `{post(msg), detach()}`.
 */
export function joinWorker(key, tab) {
  const url = new URL('./fourcast-worker.js', import.meta.url);
  const worker = new SharedWorker(url, { type: 'module', name: `fourcast ${key}` });
  const port = worker.port;
  let heard = false;
  port.onmessage = (e) => {
    heard = true;
    tab.onMessage(e.data);
  };
  worker.addEventListener('error', () => {
    if (!heard) tab.onFailed();
  });
  port.start();
  return { post: (msg) => port.postMessage({ ...msg, tab: tab.id }), detach: () => port.close() };
}

/**
 * No SharedWorker: follow the leader of `key` over a BroadcastChannel, and lead once this tab
 * gets the lock. `tab`: `id`; `current()`, false once this join is over; `closed()`;
 * `attach()`, to tell a new leader what this tab reads; `onMessage(msg)` from the hub;
 * `lead(post)`, this tab leads and reaches its own hub with `post`. Returns `{post(msg),
 * detach()}`: a follower's post, and leaving (a leader frees the lock: the next tab leads).
 */
export function electLeader(key, tab) {
  const bc = new BroadcastChannel(`fourcast ${key}`);
  let hub = null;
  let stepDown = null;
  bc.onmessage = (e) => {
    const msg = e.data;
    if (!tab.current() || !msg) return;
    if (msg.to === 'hub') {
      if (hub) hub.handle({ postMessage: (m) => bc.postMessage(m) }, msg);
    } else if (msg.op === 'leader') {
      if (!hub) tab.attach(); // a new leader: tell it what this tab reads
    } else if (msg.to === tab.id) {
      tab.onMessage(msg);
    }
  };
  navigator.locks.request(`fourcast-leader ${key}`, () => {
    if (!tab.current() || tab.closed()) return null;
    hub = new ShareHub('leader');
    const local = new MessageChannel();
    local.port1.onmessage = (e) => hub.handle(local.port1, e.data);
    local.port2.onmessage = (e) => {
      if (tab.current()) tab.onMessage(e.data);
    };
    tab.lead((msg) => local.port2.postMessage({ ...msg, tab: tab.id }));
    bc.postMessage({ op: 'leader', tab: tab.id });
    return new Promise((resolve) => {
      stepDown = resolve;
    });
  });
  return {
    post: (msg) => bc.postMessage({ ...msg, tab: tab.id, to: 'hub' }),
    detach: () => {
      if (hub) hub.close();
      if (stepDown) stepDown(); // frees the lock: the next tab in line leads
      bc.close();
    },
  };
}

/**
 * Join the hub for `client` (a SharedClient): its SharedWorker where the browser has one and it
 * starts, else the leader tab elected for the same origin, transport and credential. What the
 * hub says goes to `client._fromHub`; `client._post` and `client._detachHub` are the link.
 */
export async function joinHub(client) {
  const session = client._session;
  const { baseUrl, transport, token } = client.options;
  const who = token ? `token:${await fingerprint(token)}` : `cookie:${client.identity ?? ''}`;
  await client._tabLock;
  if (client.closed || session !== client._session) return;
  const key = `${new URL(baseUrl).origin}|${transport}|${who}`;
  if (typeof SharedWorker === 'function' && !client._noWorker) {
    try {
      useWorker(client, key);
      return;
    } catch (err) {
      console.warn('fourcast: no SharedWorker, electing a leader tab instead', err);
    }
  }
  elect(client, key);
}

function useWorker(client, key) {
  const session = client._session;
  const link = joinWorker(key, {
    id: client.tabId,
    onMessage: (msg) => {
      if (session === client._session) client._fromHub(msg);
    },
    onFailed: () => {
      // The worker could not start (blocked, or failed to load): elect a leader tab instead.
      if (session !== client._session || client.closed) return;
      console.warn('fourcast: the SharedWorker failed to start; electing a leader tab instead');
      client._noWorker = true;
      client._restart();
    },
  });
  client._post = link.post;
  client._detachHub = link.detach;
  client._setSharing('worker');
  client._attach();
}

/** No SharedWorker: the tab holding the lock leads; the others follow over a BroadcastChannel. */
function elect(client, key) {
  const session = client._session;
  const link = electLeader(key, {
    id: client.tabId,
    current: () => session === client._session,
    closed: () => client.closed,
    attach: () => client._attach(),
    onMessage: (msg) => client._fromHub(msg),
    lead: (post) => {
      client._leading = true;
      client._post = post;
      client._attach();
    },
  });
  client._post = link.post;
  client._setSharing('follower');
  client._detachHub = () => {
    client._leading = false;
    link.detach();
  };
  client._attach();
}
