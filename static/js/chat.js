// The chat demo: sign-in, history, live messages, presence, typing, notifications, and a
// transport picker that shows the live connection state and why the transport was chosen.

import { TRANSPORTS, createClient } from './fourcast.js';
import { api, el, session, setMessage, timeEl, transportFromUrl, userIdOf } from './ui.js';
import { Notifications } from './notifications.js';

const TYPING_SEND_EVERY = 2000;
const TYPING_SHOW_FOR = 3000;
const TRANSPORT_KEY = 'fourcast.transport';
const SHARE_KEY = 'fourcast.share';

const $ = (id) => document.getElementById(id);
const root = $('chat');
const room = root.dataset.room;
const channel = `room:${room}`;

const ui = {
  signin: $('signin'),
  signinForm: $('signin-form'),
  signinName: $('signin-name'),
  signinError: $('signin-error'),
  signinTitle: $('signin-title'),
  signinHint: $('signin-hint'),
  anotherGuest: $('another-guest'),
  share: $('share-toggle'),
  shared: $('conn-shared'),
  app: $('chat-app'),
  currentUser: $('current-user'),
  signout: $('signout'),
  picker: $('transport-picker'),
  state: $('conn-state'),
  transport: $('conn-transport'),
  reason: $('transport-reason'),
  scroll: $('messages-scroll'),
  messages: $('messages'),
  empty: $('messages-empty'),
  loadOlder: $('load-older'),
  notice: $('history-notice'),
  typing: $('typing-indicator'),
  composer: $('composer'),
  input: $('message-input'),
  send: $('send-button'),
  sendError: $('send-error'),
  presence: $('presence-list'),
  presenceCount: $('presence-count'),
  presenceNote: $('presence-note'),
};

let me = null; // {token, user}
let client = null;
let notifications = null;
let unsubscribers = [];
let presenceTimer = null;
let presenceDebounce = null;
let olderCursor = null;
const rendered = new Set(); // message ids on screen
const pendingMine = []; // {node, text}: my messages sent, not yet confirmed
const names = new Map(); // user id -> display name (from trusted sources: presence, session)
const typists = new Map(); // user id -> {name, until}
let lastTypingSent = 0;
let typingTimer = null;

// --- session ------------------------------------------------------------------------------

/** The sign-in form: for the browser's guest, or (`tabOnly`) for another guest in this tab. */
function showSignIn(message, { tabOnly = false } = {}) {
  teardown();
  ui.app.hidden = true;
  ui.signin.hidden = false;
  ui.signinForm.dataset.mode = tabOnly ? 'tab' : 'browser';
  ui.signinTitle.textContent = tabOnly ? 'Join as another guest' : 'Join';
  ui.signinHint.textContent = tabOnly
    ? 'This guest is kept for this tab only; your other tabs stay who they are.'
    : 'Pick a name to chat as a guest. This browser remembers it: your other tabs join as you too.';
  setMessage(ui.signinError, message || '');
  ui.signinName.focus();
}

ui.signinForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = ui.signinName.value.trim();
  if (!name) {
    setMessage(ui.signinError, 'Please enter a name.');
    ui.signinName.focus();
    return;
  }
  const button = ui.signinForm.querySelector('button');
  button.disabled = true;
  setMessage(ui.signinError, '');
  try {
    me = await session.signIn(name, { perBrowser: ui.signinForm.dataset.mode !== 'tab' });
    await start();
  } catch (err) {
    setMessage(ui.signinError, `Could not sign in: ${err.message}`);
  } finally {
    button.disabled = false;
  }
});

ui.signout.addEventListener('click', async () => {
  const who = me;
  me = null;
  teardown();
  try {
    await session.signOut(who);
  } catch {
    // Signed out locally either way.
  }
  // A tab's own guest signs out back to the browser's guest, if there is one.
  boot();
});

ui.anotherGuest.addEventListener('click', () => {
  me = null;
  showSignIn('', { tabOnly: true });
});

/** Share the connection with this browser's other tabs? (?share=off|on, else the last choice.) */
function shareWanted() {
  const param = new URLSearchParams(window.location.search).get('share');
  if (param === 'off' || param === 'on') return param === 'on';
  return localStorage.getItem(SHARE_KEY) !== 'off';
}

ui.share.addEventListener('change', () => {
  const value = ui.share.checked ? 'on' : 'off';
  localStorage.setItem(SHARE_KEY, value);
  const url = new URL(window.location.href);
  url.searchParams.set('share', value);
  window.location.assign(url); // a fresh page: the client starts over, shared or not
});

function renderSharing({ mode, tabs }) {
  const n = tabs || 1;
  const others = n === 1 ? 'no other tab yet' : `${n - 1} other tab${n === 2 ? '' : 's'}`;
  const text = {
    worker: `shared with ${others} (SharedWorker)`,
    leader: `shared with ${others}: this tab holds the connection`,
    follower: `shared with ${others}: another tab holds the connection`,
    starting: 'sharing…',
  }[mode] || 'this tab only';
  ui.shared.textContent = text;
  ui.shared.dataset.mode = mode;
  ui.shared.dataset.tabs = String(n);
}

function authFailed(err) {
  if (err && err.status === 401) {
    session.clear();
    me = null;
    showSignIn('Your session has expired: please sign in again.');
    return true;
  }
  return false;
}

// --- start / stop -------------------------------------------------------------------------

async function start() {
  ui.signin.hidden = true;
  ui.app.hidden = false;
  ui.currentUser.textContent = me.user.name;
  names.set(String(me.user.id), me.user.name);
  try {
    await api(`/api/rooms/${encodeURIComponent(room)}/join`, { method: 'POST', token: me.token });
  } catch (err) {
    if (authFailed(err)) return;
    // Joining records membership; reading and writing the room work without it.
    console.warn('join failed', err);
  }

  await loadMembers();

  const initial = transportFromUrl(['auto', ...TRANSPORTS]) || sessionStorage.getItem(TRANSPORT_KEY) || 'auto';
  ui.picker.value = initial;
  const share = shareWanted();
  ui.share.checked = share;
  // Without a token the cookie signs the client in: `identity` keeps different people apart.
  client = createClient({ token: me.token, identity: me.user.id, transport: initial, share });
  renderSharing(client.sharing || { mode: 'off', tabs: 1 });
  client.on('sharing', renderSharing);
  client.on('state', renderState);
  client.on('transport', renderTransport);
  client.on('error', ({ channel: ch, error }) => {
    if (error && error.status === 401) authFailed(error);
    else console.warn('fourcast error', ch, error);
  });
  renderState(client.state);

  // Learn where "now" is before reading history, then subscribe after that cursor: a message
  // that lands in between shows up once (ids de-duplicate), never zero times.
  let after = null;
  try {
    const head = await api(`/api/channels/${encodeURIComponent(channel)}/events?limit=1`, {
      token: me.token,
    });
    after = head && head.next != null ? String(head.next) : null;
  } catch (err) {
    if (authFailed(err)) return;
  }
  await loadHistory();
  if (!client) return;
  unsubscribers.push(
    client.subscribe(channel, onRoomEvent, {
      after: after ?? undefined,
      onReset: onRoomReset,
    }),
  );

  notifications = new Notifications({ client, token: me.token, user: me.user, onAuthError: authFailed });
  notifications.start();

  refreshPresence();
  schedulePresencePolling();
  ui.input.focus();
}

function teardown() {
  for (const off of unsubscribers) off();
  unsubscribers = [];
  if (notifications) notifications.stop();
  notifications = null;
  if (client) client.close();
  client = null;
  clearTimeout(presenceTimer);
  clearTimeout(presenceDebounce);
  clearTimeout(typingTimer);
  rendered.clear();
  pendingMine.length = 0;
  typists.clear();
  ui.messages.replaceChildren();
  ui.presence.replaceChildren();
  ui.typing.textContent = '';
}

// --- connection state ---------------------------------------------------------------------

function renderState(state) {
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  ui.send.disabled = false; // REST publish works even while the stream reconnects
  if (state === 'live') refreshPresence();
  schedulePresencePolling();
}

function renderTransport({ transport, reason }) {
  ui.transport.textContent = transport || '';
  ui.transport.dataset.transport = transport || '';
  ui.reason.textContent = reason || '';
  schedulePresencePolling();
}

ui.picker.addEventListener('change', () => {
  const value = ui.picker.value;
  sessionStorage.setItem(TRANSPORT_KEY, value);
  const url = new URL(window.location.href);
  url.searchParams.set('transport', value);
  window.history.replaceState(null, '', url);
  if (client) client.setTransport(value);
});

// --- messages -----------------------------------------------------------------------------

function authorName(event) {
  const id = userIdOf(event.from);
  return shownName(id, names.get(String(id)) || event.name || (event.user && event.user.name) || id || 'unknown');
}

/** The name, with the end of the id when someone else here has the same name. */
function shownName(id, name) {
  for (const [other, n] of names) if (n === name && other !== String(id)) return `${name} #${String(id).slice(-4)}`;
  return name;
}

function messageNode(event) {
  const mine = me && userIdOf(event.from) === String(me.user.id);
  const text = event.data && typeof event.data.text === 'string' ? event.data.text : '';
  const li = el(
    'li',
    {
      class: mine ? 'message mine' : 'message',
      dataset: { testid: 'message', id: event.id ?? '', from: event.from ?? '' },
    },
    el('div', { class: 'message-meta' },
      el('span', { class: 'author', text: authorName(event), dataset: { testid: 'message-author' } }),
      event.ts ? timeEl(event.ts) : null,
    ),
    el('p', { class: 'text', text, dataset: { testid: 'message-text' } }),
  );
  return li;
}

/** Names of the room's members (also those offline), so history shows who wrote what. */
async function loadMembers() {
  try {
    const body = await api(`/api/rooms/${encodeURIComponent(room)}/members`, { token: me.token });
    const list = Array.isArray(body) ? body : (body && body.members) || [];
    for (const m of list) if (m.user != null && m.name) names.set(userIdOf(m.user), m.name);
    refreshAuthorNames();
  } catch (err) {
    authFailed(err); // otherwise optional: presence and the session still name people
  }
}

/** Names learnt late (presence, members) replace ids already on screen. */
function refreshAuthorNames() {
  for (const li of ui.messages.querySelectorAll('[data-testid="message"]')) {
    const id = String(userIdOf(li.dataset.from));
    const name = names.has(id) ? shownName(id, names.get(id)) : undefined;
    const author = li.querySelector('[data-testid="message-author"]');
    if (name && author && author.textContent !== name) author.textContent = name;
  }
}

function nearBottom() {
  const s = ui.scroll;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollToBottom() {
  ui.scroll.scrollTop = ui.scroll.scrollHeight;
}

/** Turn a pending (sent, not yet confirmed) message node into the confirmed one. */
function confirmPending(entry, id) {
  const at = pendingMine.indexOf(entry);
  if (at !== -1) pendingMine.splice(at, 1);
  const node = entry.node;
  if (id) {
    rendered.add(id);
    node.dataset.id = id;
  }
  node.classList.remove('pending');
  delete node.dataset.pending;
}

function appendMessage(event) {
  if (event.id != null) {
    const id = String(event.id);
    if (rendered.has(id)) return;
    // Our own message, back live before the publish call returned: confirm the pending copy
    // in place rather than show it twice.
    if (me && userIdOf(event.from) === String(me.user.id) && event.type === 'chat.message') {
      const text = event.data && event.data.text;
      const entry = pendingMine.find((p) => p.text === text);
      if (entry) {
        confirmPending(entry, id);
        return;
      }
    }
    rendered.add(id);
  }
  const stick = nearBottom();
  ui.messages.append(messageNode(event));
  ui.empty.hidden = true;
  if (stick) scrollToBottom();
}

function sortChronological(messages) {
  const list = [...messages];
  if (list.length > 1 && Number(list[0].ts) > Number(list[list.length - 1].ts)) list.reverse();
  return list;
}

async function loadHistory() {
  try {
    const body = await api(`/api/rooms/${encodeURIComponent(room)}/messages?limit=100`, {
      token: me.token,
    });
    const messages = sortChronological(body.messages || []);
    rendered.clear();
    ui.messages.replaceChildren();
    for (const m of messages) appendMessage(m);
    olderCursor = body.before ?? null;
    ui.loadOlder.hidden = olderCursor == null;
    ui.empty.hidden = messages.length > 0;
    scrollToBottom();
  } catch (err) {
    if (authFailed(err)) return;
    setMessage(ui.notice, `Could not load the history: ${err.message}`);
  }
}

ui.loadOlder.addEventListener('click', async () => {
  if (olderCursor == null) return;
  ui.loadOlder.disabled = true;
  try {
    const q = new URLSearchParams({ limit: '100', before: olderCursor });
    const body = await api(`/api/rooms/${encodeURIComponent(room)}/messages?${q}`, { token: me.token });
    const messages = sortChronological(body.messages || []);
    const before = ui.scroll.scrollHeight;
    const fragment = document.createDocumentFragment();
    for (const m of messages) {
      const id = m.id != null ? String(m.id) : null;
      if (id && rendered.has(id)) continue;
      if (id) rendered.add(id);
      fragment.append(messageNode(m));
    }
    ui.messages.prepend(fragment);
    ui.scroll.scrollTop += ui.scroll.scrollHeight - before; // keep the view where it was
    olderCursor = body.before ?? null;
    ui.loadOlder.hidden = olderCursor == null;
  } catch (err) {
    if (!authFailed(err)) setMessage(ui.notice, `Could not load older messages: ${err.message}`);
  } finally {
    ui.loadOlder.disabled = false;
  }
});

function onRoomEvent(event) {
  switch (event.type) {
    case 'chat.message':
      appendMessage(event);
      clearTypist(userIdOf(event.from));
      break;
    case 'typing':
      onTyping(event);
      break;
    case 'presence.join':
    case 'presence.leave':
      onPresenceEvent(event);
      break;
    default:
      break;
  }
}

function onRoomReset() {
  // The server could not resume from our cursor (too old): it replays from the oldest retained
  // event. Reload the history so the screen matches the log, and say so.
  setMessage(ui.notice, 'The connection resumed past the retained history: messages reloaded.');
  loadHistory();
}

// --- sending ------------------------------------------------------------------------------

ui.composer.addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = ui.input.value.trim();
  if (!text || !client) return;
  ui.input.value = '';
  setMessage(ui.sendError, '');
  const pending = messageNode({
    id: null,
    from: `user:${me.user.id}`,
    ts: Date.now(),
    data: { text },
  });
  pending.classList.add('pending');
  pending.dataset.pending = 'true';
  const entry = { node: pending, text };
  pendingMine.push(entry);
  ui.messages.append(pending);
  ui.empty.hidden = true;
  scrollToBottom();
  try {
    const event = await client.publish(channel, 'chat.message', { text });
    const id = event && event.id != null ? String(event.id) : null;
    if (pendingMine.includes(entry)) {
      if (id && rendered.has(id)) {
        // Shown already (a history reload, say): drop the pending copy.
        pendingMine.splice(pendingMine.indexOf(entry), 1);
        pending.remove();
      } else {
        confirmPending(entry, id);
      }
    }
    lastTypingSent = 0;
  } catch (err) {
    if (pendingMine.includes(entry)) pendingMine.splice(pendingMine.indexOf(entry), 1);
    pending.remove();
    if (authFailed(err)) return;
    if (!ui.input.value) ui.input.value = text;
    setMessage(ui.sendError, `Not sent: ${err.message}`);
  }
});

ui.input.addEventListener('input', () => {
  if (!client || !ui.input.value.trim()) return;
  const now = Date.now();
  if (now - lastTypingSent < TYPING_SEND_EVERY) return;
  lastTypingSent = now;
  // The name is a fallback for display only: receivers prefer the name presence reports.
  client.publish(channel, 'typing', { name: me.user.name }, { ephemeral: true }).catch(() => {});
});

// --- typing -------------------------------------------------------------------------------

function onTyping(event) {
  const id = userIdOf(event.from);
  if (!id || (me && id === String(me.user.id))) return;
  const name = names.get(id) || (event.data && event.data.name) || 'Someone';
  typists.set(id, { name, until: Date.now() + TYPING_SHOW_FOR });
  renderTyping();
}

function clearTypist(id) {
  if (id && typists.delete(String(id))) renderTyping();
}

function renderTyping() {
  clearTimeout(typingTimer);
  const now = Date.now();
  for (const [id, t] of typists) if (t.until <= now) typists.delete(id);
  const list = [...typists.values()].map((t) => t.name);
  let text = '';
  if (list.length === 1) text = `${list[0]} is typing…`;
  else if (list.length === 2) text = `${list[0]} and ${list[1]} are typing…`;
  else if (list.length > 2) text = `${list.length} people are typing…`;
  ui.typing.textContent = text;
  ui.typing.dataset.count = String(list.length);
  if (typists.size) {
    const next = Math.min(...[...typists.values()].map((t) => t.until)) - now;
    typingTimer = setTimeout(renderTyping, Math.max(50, next));
  }
}

// --- presence -----------------------------------------------------------------------------

function onPresenceEvent(event) {
  const data = event.data || {};
  const id = data.user != null ? userIdOf(data.user) : null;
  if (id && data.name) names.set(id, data.name);
  if (event.type === 'presence.leave' && id) clearTypist(id);
  clearTimeout(presenceDebounce);
  presenceDebounce = setTimeout(refreshPresence, 250);
}

function polling() {
  return client && (client.transport === 'longpoll' || client.transport === 'shortpoll');
}

function schedulePresencePolling() {
  clearTimeout(presenceTimer);
  if (!client) return;
  // Pollers cannot see ephemeral typing events: read `typing` from the presence endpoint.
  const every = polling() ? 2000 : 30000;
  presenceTimer = setTimeout(async () => {
    await refreshPresence();
    schedulePresencePolling();
  }, every);
}

async function refreshPresence() {
  if (!me || !client) return;
  let body;
  try {
    body = await api(`/api/channels/${encodeURIComponent(channel)}/presence`, { token: me.token });
  } catch (err) {
    if (authFailed(err)) return;
    setMessage(ui.presenceNote, 'Presence is unavailable right now.');
    return;
  }
  setMessage(ui.presenceNote, '');
  const members = Array.isArray(body.members) ? body.members : [];
  for (const m of members) if (m.user != null && m.name) names.set(userIdOf(m.user), m.name);
  renderPresence(members);
  refreshAuthorNames();
  if (Array.isArray(body.typing)) {
    const until = Date.now() + TYPING_SHOW_FOR;
    for (const t of body.typing) {
      const id = userIdOf(t.user);
      if (!id || id === String(me.user.id)) continue;
      typists.set(id, { name: t.name || names.get(id) || 'Someone', until });
    }
    renderTyping();
  }
}

function renderPresence(members) {
  const sorted = [...members].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  const items = sorted.map((m) => {
    const id = userIdOf(m.user);
    const transports = Array.isArray(m.transports) ? m.transports : [];
    const isMe = me && id === String(me.user.id);
    return el(
      'li',
      { class: isMe ? 'member me' : 'member', dataset: { testid: 'presence-member', user: id ?? '' } },
      el('span', { class: 'dot', attrs: { 'aria-hidden': 'true' } }),
      el('span', { class: 'name', text: shownName(id, m.name || id), dataset: { testid: 'presence-name' } }),
      isMe ? el('span', { class: 'muted', text: ' (you)' }) : null,
      el(
        'span',
        { class: 'transports', dataset: { testid: 'presence-transports' } },
        transports.map((t) => el('span', { class: 'chip', text: String(t) })),
      ),
    );
  });
  ui.presence.replaceChildren(...items);
  ui.presenceCount.textContent = `(${members.length})`;
}

// --- boot ---------------------------------------------------------------------------------

async function boot() {
  me = session.load(); // a guest of this tab only, if one was made here
  if (me) {
    try {
      const who = await api('/api/session', { token: me.token, credentials: 'omit' });
      if (who && who.user) me.user = { ...me.user, ...who.user };
    } catch (err) {
      if (err.status === 401) session.clear();
      me = err.status === 401 ? null : me;
    }
  }
  if (!me) {
    try {
      me = await session.browserGuest(); // this browser's guest (the session cookie)
    } catch {
      me = null;
    }
  }
  if (!me) {
    showSignIn('');
    return;
  }
  await start();
}

boot();
