// The comparison page: four clients on one room, one per transport, with live counters, a
// burst sender, per-pane "drop connection", gap and duplicate checks, and the latest benchmark.

import { FourcastClient } from './fourcast.js';
import { api, el, formatBytes, formatMs, session, setMessage } from './ui.js';
import { renderBench } from './bench.js';

const $ = (id) => document.getElementById(id);
const root = $('compare');
const room = root.dataset.room;
const channel = `room:${room}`;
const LOG_SIZE = 4;
// HTTP header bytes per request: Chromium sends about 720 B of request headers with a bearer
// token, and this server answers with about 190 B. Added per request to the payload bytes.
const HEADER_BYTES = 900;

const burstForm = $('burst-form');
const burstCount = $('burst-count');
const burstButton = $('burst-button');
const burstStatus = $('burst-status');
const errorBox = $('compare-error');

const ownBursts = new Map(); // burst id -> size (bursts this page sent)
let latestBurst = null;

// A chat message carries only its text (the server keeps `{text, name}`), so a burst message
// says which burst and which number it is in its text: "burst <id> #<seq>/<size>".
const BURST_RE = /^burst (\S+) #(\d+)\/(\d+)$/;

function burstOf(data) {
  const m = typeof data.text === 'string' ? BURST_RE.exec(data.text) : null;
  return m ? { burst: m[1], seq: Number(m[2]) } : null;
}

/** One pane: a client on one transport, plus the page-level checks of what it delivered. */
class Pane {
  constructor(node, token) {
    this.node = node;
    this.transport = node.dataset.transport;
    this.q = (name) => node.querySelector(`[data-testid="${name}"]`);
    this.seen = new Set(); // event ids this pane's handler got (duplicates must never happen)
    this.bursts = new Map(); // burst id -> {last, received}
    this.received = 0; // distinct durable events: the same figure on every transport
    this.gaps = 0;
    this.duplicates = 0;
    this.base = { bytes: 0, requests: 0, received: 0 }; // counters when the last burst began
    this.client = new FourcastClient({ token, transport: this.transport });
    this.client.on('state', (s) => {
      if (s === 'live' && this.client.stats().drops > 0) {
        this.log(`live again after ${formatMs(this.client.stats().lastRecoveryMs)}`);
      }
      const badge = this.q('pane-state');
      badge.textContent = s;
      badge.dataset.state = s;
    });
    this.client.on('transport', ({ reason }) => {
      this.q('pane-reason').textContent = reason || '';
    });
    this.client.on('reset', () => this.log('reset: resumed from the oldest retained event'));
    this.client.subscribe(channel, (event) => this.onEvent(event));
    this.q('pane-drop').addEventListener('click', () => {
      this.log('connection dropped');
      this.client.dropConnection();
    });
  }

  onEvent(event) {
    if (event.id != null) {
      const id = String(event.id);
      if (this.seen.has(id)) {
        this.duplicates += 1;
        return;
      }
      this.seen.add(id);
      this.received += 1;
    }
    if (event.type !== 'chat.message') return;
    const data = event.data || {};
    const burst = burstOf(data);
    if (burst) this.onBurst(burst);
    else this.log(typeof data.text === 'string' ? data.text : '(message)');
  }

  onBurst({ burst, seq }) {
    let b = this.bursts.get(burst);
    if (!b) {
      // A burst this page started is checked from its first message; another page's burst
      // from wherever this pane came in.
      b = { last: ownBursts.has(burst) ? 0 : seq - 1, received: 0 };
      this.bursts.set(burst, b);
    }
    if (seq > b.last + 1) {
      this.gaps += seq - b.last - 1;
      this.log(`gap: ${seq - b.last - 1} missing before #${seq}`);
    } else if (seq <= b.last) {
      this.duplicates += 1;
      this.log(`out of order or repeated: #${seq}`);
    }
    b.last = Math.max(b.last, seq);
    b.received += 1;
  }

  /** A burst begins: the per-message figures count from here. */
  markBurst() {
    const s = this.client.stats();
    this.base = { bytes: s.bytes, requests: s.httpRequests, received: this.received };
  }

  log(text) {
    const list = this.q('pane-log');
    list.prepend(el('li', { text }));
    while (list.children.length > LOG_SIZE) list.lastElementChild.remove();
  }

  render() {
    const s = this.client.stats();
    // Durable events only: pollers never see live-only ones (presence, typing), so counting
    // those would make the panes differ for no fault of the transport.
    this.q('pane-messages').textContent = String(this.received);
    this.q('pane-latency-p50').textContent = formatMs(s.latency.p50);
    this.q('pane-latency-p95').textContent = formatMs(s.latency.p95);
    this.q('pane-requests').textContent = String(s.httpRequests);
    this.q('pane-bytes').textContent = formatBytes(s.bytes);
    this.q('pane-bytes').dataset.bytes = String(s.bytes);
    this.q('pane-reconnects').textContent = String(s.reconnects);
    const delivered = this.received - this.base.received;
    const requests = s.httpRequests - this.base.requests;
    const bytes = s.bytes - this.base.bytes + HEADER_BYTES * requests;
    const perByte = this.q('pane-bytes-per-msg');
    const perRequest = this.q('pane-requests-per-msg');
    perByte.textContent = delivered ? `${Math.round(bytes / delivered).toLocaleString('en')} B` : '–';
    perByte.dataset.value = delivered ? String(bytes / delivered) : '';
    perRequest.textContent = delivered ? (requests / delivered).toFixed(2) : '–';
    perRequest.dataset.value = delivered ? String(requests / delivered) : '';
    this.q('pane-recovery').textContent = formatMs(s.lastRecoveryMs);
    const gaps = this.q('pane-gaps');
    gaps.textContent = String(this.gaps);
    gaps.dataset.ok = String(this.gaps === 0);
    const dups = this.q('pane-duplicates');
    dups.textContent = String(this.duplicates);
    dups.dataset.ok = String(this.duplicates === 0);
    const burst = this.q('pane-burst');
    if (latestBurst) {
      const b = this.bursts.get(latestBurst.id);
      const got = b ? b.received : 0;
      burst.textContent = `${got}/${latestBurst.size}`;
      burst.dataset.complete = String(got === latestBurst.size);
    }
  }
}

async function ensureSession() {
  const existing = session.load();
  if (existing) {
    try {
      await api('/api/session', { token: existing.token });
      return existing;
    } catch (err) {
      if (err.status !== 401) return existing;
      session.clear();
    }
  }
  const name = `viewer-${Math.random().toString(36).slice(2, 6)}`;
  return session.signIn(name);
}

async function sendBurst(publisher, size, panes) {
  const id = `b${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
  ownBursts.set(id, size);
  latestBurst = { id, size };
  for (const pane of panes) pane.markBurst();
  const started = performance.now();
  // One at a time: the server's order then matches `seq`, so a pane can spot a gap exactly.
  // The client retries a 429 after Retry-After with the same Idempotency-Key.
  for (let seq = 1; seq <= size; seq += 1) {
    await publisher.publish(channel, 'chat.message', { text: `burst ${id} #${seq}/${size}` });
    if (seq % 5 === 0 || seq === size) burstStatus.textContent = `sent ${seq}/${size}`;
  }
  const took = performance.now() - started;
  burstStatus.textContent = `sent ${size} in ${formatMs(took)}`;
}

async function main() {
  let me;
  try {
    me = await ensureSession();
  } catch (err) {
    setMessage(errorBox, `Could not start a session: ${err.message}`);
    return;
  }
  $('viewer').textContent = me.user.name;
  $('header-bytes').textContent = String(HEADER_BYTES);
  try {
    await api(`/api/rooms/${encodeURIComponent(room)}/join`, { method: 'POST', token: me.token });
  } catch {
    // Membership is optional for reading and publishing.
  }
  const panes = [...document.querySelectorAll('.pane')].map((node) => new Pane(node, me.token));
  // A client with no subscriptions never connects: it only publishes, over REST.
  const publisher = new FourcastClient({ token: me.token, transport: 'shortpoll' });

  burstForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const size = Math.min(1000, Math.max(1, Number.parseInt(burstCount.value, 10) || 50));
    burstButton.disabled = true;
    setMessage(errorBox, '');
    burstStatus.textContent = `sending ${size}…`;
    try {
      await sendBurst(publisher, size, panes);
    } catch (err) {
      setMessage(errorBox, `Burst stopped: ${err.message}`);
      burstStatus.textContent = 'stopped';
    } finally {
      burstButton.disabled = false;
    }
  });

  const tick = () => {
    for (const pane of panes) pane.render();
  };
  setInterval(tick, 250);
  tick();
}

main();
renderBench();
