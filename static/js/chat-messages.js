// The chat's message list: history (and older pages of it), live messages, authors' names, and
// my messages pending until the server confirms them (sent by the composer: chat-composer.js).

import { api, el, setMessage, timeEl, userIdOf } from './ui.js';
import { authFailed, authors, names, page, room, shownName, ui } from './chat-page.js';

let olderCursor = null;
export const rendered = new Set(); // message ids on screen
export const pendingMine = []; // {node, text}: my messages sent, not yet confirmed
const reloads = new Set(); // per history reload in flight: [{id, ts, node}] shown live meanwhile
let fromHistory = false; // appending a history answer (not live)

/** The author's name: as the room knows them, else the one the server put in the message. */
function authorName(event) {
  const id = userIdOf(event.from);
  const sent = event.data && typeof event.data.name === 'string' ? event.data.name : '';
  if (id != null && sent && authors.get(String(id)) !== sent) {
    // Someone the page knows only by their messages: told apart from others of their name,
    // also in the messages on screen already (once this one is).
    authors.set(String(id), sent);
    queueMicrotask(refreshAuthorNames);
  }
  return shownName(id, names.get(String(id)) || sent || event.name || (event.user && event.user.name) || id || 'unknown');
}

/** A message as the list shows it (also a pending one of mine). */
export function messageNode(event) {
  const mine = page.me && userIdOf(event.from) === String(page.me.user.id);
  const text = event.data && typeof event.data.text === 'string' ? event.data.text : '';
  const li = el(
    'li',
    {
      class: mine ? 'message mine' : 'message',
      dataset: { testid: 'message', id: event.id ?? '', from: event.from ?? '', ts: event.ts ?? '' },
    },
    el('div', { class: 'message-meta' },
      el('span', { class: 'author', text: authorName(event), dataset: { testid: 'message-author' } }),
      event.ts ? timeEl(event.ts) : null,
    ),
    el('p', { class: 'text', text, dataset: { testid: 'message-text' } }),
  );
  return li;
}

const MEMBERS_PAGE = 1000; // the most the server sends at once
const MEMBERS_PAGES = 3;
/* At most three pages (the first 3,000 people to join): a room of any size costs a visit three
   requests, not one per thousand guests. Past them an author is still named, by the name the
   server put in their message; what the list adds is telling apart two people of one name. */

/** Names of the room's members (also those offline), so history shows who wrote what. */
export async function loadMembers() {
  const path = `/api/rooms/${encodeURIComponent(room)}/members?limit=${MEMBERS_PAGE}`;
  try {
    let after = null;
    for (let n = 0; n < MEMBERS_PAGES; n++) {
      const more = after == null ? '' : `&after=${encodeURIComponent(after)}`;
      const body = await api(path + more, { token: page.me.token });
      for (const m of (body && body.members) || []) if (m.user != null && m.name) names.set(userIdOf(m.user), m.name);
      after = body && body.next;
      if (after == null) break;
    }
  } catch (err) {
    authFailed(err); // otherwise optional: presence, the session and messages still name people
  }
  refreshAuthorNames();
}

/** Names learnt late (presence, members) replace ids already on screen. */
export function refreshAuthorNames() {
  for (const li of ui.messages.querySelectorAll('[data-testid="message"]')) {
    const id = String(userIdOf(li.dataset.from));
    const known = names.has(id) ? names.get(id) : authors.get(id);
    const name = known !== undefined ? shownName(id, known) : undefined;
    const author = li.querySelector('[data-testid="message-author"]');
    if (name && author && author.textContent !== name) author.textContent = name;
  }
}

function nearBottom() {
  const s = ui.scroll;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

export function scrollToBottom() {
  ui.scroll.scrollTop = ui.scroll.scrollHeight;
}

/** A message shown (or confirmed) live: each history reload in flight keeps it, as its answer
 * may have been read before the message was kept. */
function shownLive(id, ts, node) {
  if (fromHistory) return;
  for (const arrived of reloads) arrived.push({ id, ts: Number(ts), node });
}

/** Turn a pending (sent, not yet confirmed) message node into the confirmed one. */
export function confirmPending(entry, id, ts) {
  const at = pendingMine.indexOf(entry);
  if (at !== -1) pendingMine.splice(at, 1);
  const node = entry.node;
  // Its time was this browser's clock: the server's now (or none), which placeByTime compares.
  node.dataset.ts = ts ?? '';
  if (id) {
    rendered.add(id);
    node.dataset.id = id;
    shownLive(id, ts, node);
  }
  node.classList.remove('pending');
  delete node.dataset.pending;
}

export function appendMessage(event) {
  if (event.id != null) {
    const id = String(event.id);
    if (rendered.has(id)) return;
    // Our own message, back live before the publish call returned: confirm the pending copy
    // in place rather than show it twice.
    if (page.me && userIdOf(event.from) === String(page.me.user.id) && event.type === 'chat.message') {
      const text = event.data && event.data.text;
      const entry = pendingMine.find((p) => p.text === text);
      if (entry) {
        confirmPending(entry, id, event.ts);
        return;
      }
    }
    rendered.add(id);
  }
  const stick = nearBottom();
  const node = messageNode(event);
  placeByTime(node, Number(event.ts));
  if (event.id != null) shownLive(String(event.id), event.ts, node);
  ui.empty.hidden = true;
  if (stick) scrollToBottom();
}

/**
 * Add a message at its place in server order: at the bottom, unless it is older than messages
 * already shown (a replay after a reset reaching the page after its history reload, older than
 * the reloaded history's newest): then after the newest one not newer than it. The page compares
 * `ts`, as the history does (an `id` is a cursor, not to be parsed). The walk up stops at a pending
 * message of mine (its time is this browser's clock), as at one without a time.
 */
function placeByTime(node, ts) {
  let after = ui.messages.lastElementChild;
  if (Number.isFinite(ts)) {
    while (after && after.dataset.pending !== 'true' && Number(after.dataset.ts) > ts) {
      after = after.previousElementSibling;
    }
  }
  if (after === ui.messages.lastElementChild) ui.messages.append(node);
  else if (after) after.after(node);
  else ui.messages.prepend(node);
}

function sortChronological(messages) {
  const list = [...messages];
  if (list.length > 1 && Number(list[0].ts) > Number(list[list.length - 1].ts)) list.reverse();
  return list;
}

export async function loadHistory() {
  const arrived = [];
  reloads.add(arrived);
  try {
    const body = await api(`/api/rooms/${encodeURIComponent(room)}/messages?limit=100`, {
      token: page.me.token,
    });
    reloads.delete(arrived);
    const messages = sortChronological(body.messages || []);
    // Messages of mine sent and not yet answered stay: the history may confirm them (its copy
    // is then this node) or not have them yet (their answer or event confirms them later).
    const sending = pendingMine.map((p) => p.node);
    rendered.clear();
    ui.messages.replaceChildren();
    fromHistory = true;
    try {
      for (const m of messages) appendMessage(m);
    } finally {
      fromHistory = false;
    }
    // Messages shown live while the history was read, and kept after it (not in it, newer
    // than its newest), stay after it in the order they came: the server's.
    const newest = messages.length ? Number(messages[messages.length - 1].ts) : -Infinity;
    for (const { id, ts, node } of arrived) {
      if (rendered.has(id) || ts <= newest) continue;
      rendered.add(id);
      ui.messages.append(node);
    }
    ui.messages.append(...sending);
    olderCursor = body.before ?? null;
    ui.loadOlder.hidden = olderCursor == null;
    ui.empty.hidden = ui.messages.childElementCount === 0;
    scrollToBottom();
  } catch (err) {
    if (authFailed(err)) return;
    setMessage(ui.notice, `Could not load the history: ${err.message}`);
  } finally {
    reloads.delete(arrived);
  }
}

ui.loadOlder.addEventListener('click', async () => {
  if (olderCursor == null) return;
  ui.loadOlder.disabled = true;
  try {
    const q = new URLSearchParams({ limit: '100', before: olderCursor });
    const body = await api(`/api/rooms/${encodeURIComponent(room)}/messages?${q}`, { token: page.me.token });
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

export function onRoomReset() {
  // The server could not resume from our cursor (too old): it replays from the oldest retained
  // event. Reload the history so the screen matches the log, and say so.
  setMessage(ui.notice, 'The connection resumed past the retained history: messages reloaded.');
  loadHistory();
}

/** Empty the list (signed out, or another guest). */
export function clearMessages() {
  rendered.clear();
  pendingMine.length = 0;
  ui.messages.replaceChildren();
}
