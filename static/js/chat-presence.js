// Who is here and who is typing: presence events, the presence endpoint (polled, more often
// where the transport cannot carry ephemeral typing events), and the typing line.

import { api, el, setMessage, userIdOf } from './ui.js';
import { authFailed, channel, names, page, shownName, ui } from './chat-page.js';
import { refreshAuthorNames } from './chat-messages.js';

const TYPING_SHOW_FOR = 3000;

let presenceTimer = null;
let presenceDebounce = null;
const typists = new Map(); // user id -> {name, until}
let typingTimer = null;

export function onTyping(event) {
  const id = userIdOf(event.from);
  if (!id || (page.me && id === String(page.me.user.id))) return;
  const name = names.get(id) || (event.data && event.data.name) || 'Someone';
  typists.set(id, { name, until: Date.now() + TYPING_SHOW_FOR });
  renderTyping();
}

export function clearTypist(id) {
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

export function onPresenceEvent(event) {
  const data = event.data || {};
  const id = data.user != null ? userIdOf(data.user) : null;
  if (id && data.name) names.set(id, data.name);
  if (event.type === 'presence.leave' && id) clearTypist(id);
  clearTimeout(presenceDebounce);
  presenceDebounce = setTimeout(refreshPresence, 250);
}

function polling() {
  return page.client && (page.client.transport === 'longpoll' || page.client.transport === 'shortpoll');
}

export function schedulePresencePolling() {
  clearTimeout(presenceTimer);
  if (!page.client) return;
  // Pollers cannot see ephemeral typing events: read `typing` from the presence endpoint.
  const every = polling() ? 2000 : 30000;
  presenceTimer = setTimeout(async () => {
    await refreshPresence();
    schedulePresencePolling();
  }, every);
}

export async function refreshPresence() {
  if (!page.me || !page.client) return;
  let body;
  try {
    body = await api(`/api/channels/${encodeURIComponent(channel)}/presence`, { token: page.me.token });
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
      if (!id || id === String(page.me.user.id)) continue;
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
    const isMe = page.me && id === String(page.me.user.id);
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

/** Stop polling and forget who was here (signed out, or another guest). */
export function stopPresence() {
  clearTimeout(presenceTimer);
  clearTimeout(presenceDebounce);
  clearTimeout(typingTimer);
  typists.clear();
  ui.presence.replaceChildren();
  ui.typing.textContent = '';
}
