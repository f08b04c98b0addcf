// The chat demo: sign-in, history, live messages, presence, typing, notifications, and a
// transport picker that shows the live connection state and why the transport was chosen.

import { TRANSPORTS, createClient } from './fourcast.js';
import { api, session, setMessage, transportFromUrl, userIdOf } from './ui.js';
import { Notifications } from './notifications.js';
import { authFailed, channel, names, onSessionExpired, page, room, ui } from './chat-page.js';
import { renderSharing, shareWanted } from './chat-sharing.js';
import { appendMessage, clearMessages, loadHistory, loadMembers, onRoomReset } from './chat-messages.js';
import './chat-composer.js';
import {
  clearTypist,
  onPresenceEvent,
  onTyping,
  refreshPresence,
  schedulePresencePolling,
  stopPresence,
} from './chat-presence.js';

const TRANSPORT_KEY = 'fourcast.transport';

let notifications = null;
let unsubscribers = [];

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
    page.me = await session.signIn(name, { perBrowser: ui.signinForm.dataset.mode !== 'tab' });
    await start();
  } catch (err) {
    setMessage(ui.signinError, `Could not sign in: ${err.message}`);
  } finally {
    button.disabled = false;
  }
});

ui.signout.addEventListener('click', async () => {
  const who = page.me;
  page.me = null;
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
  page.me = null;
  showSignIn('', { tabOnly: true });
});

onSessionExpired(() => showSignIn('Your session has expired: please sign in again.'));

// --- start / stop -------------------------------------------------------------------------

async function start() {
  ui.signin.hidden = true;
  ui.app.hidden = false;
  ui.currentUser.textContent = page.me.user.name;
  names.set(String(page.me.user.id), page.me.user.name);
  try {
    await api(`/api/rooms/${encodeURIComponent(room)}/join`, { method: 'POST', token: page.me.token });
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
  page.client = createClient({ token: page.me.token, identity: page.me.user.id, transport: initial, share });
  renderSharing(page.client.sharing || { mode: 'off', tabs: 1 });
  page.client.on('sharing', renderSharing);
  page.client.on('state', renderState);
  page.client.on('transport', renderTransport);
  page.client.on('error', ({ channel: ch, error }) => {
    if (error && error.status === 401) authFailed(error);
    else console.warn('fourcast error', ch, error);
  });
  renderState(page.client.state);

  // Learn where "now" is before reading history, then subscribe after that cursor: a message
  // that lands in between shows up once (ids de-duplicate), never zero times.
  let after = null;
  try {
    const head = await api(`/api/channels/${encodeURIComponent(channel)}/events?limit=1`, {
      token: page.me.token,
    });
    after = head && head.next != null ? String(head.next) : null;
  } catch (err) {
    if (authFailed(err)) return;
  }
  await loadHistory();
  if (!page.client) return;
  unsubscribers.push(
    page.client.subscribe(channel, onRoomEvent, {
      after: after ?? undefined,
      onReset: onRoomReset,
    }),
  );

  notifications = new Notifications({
    client: page.client,
    token: page.me.token,
    user: page.me.user,
    onAuthError: authFailed,
  });
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
  if (page.client) page.client.close();
  page.client = null;
  stopPresence();
  clearMessages();
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
  if (page.client) page.client.setTransport(value);
});

// --- room events --------------------------------------------------------------------------

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

// --- boot ---------------------------------------------------------------------------------

async function boot() {
  page.me = session.load(); // a guest of this tab only, if one was made here
  if (page.me) {
    try {
      const who = await api('/api/session', { token: page.me.token, credentials: 'omit' });
      if (who && who.user) page.me.user = { ...page.me.user, ...who.user };
    } catch (err) {
      if (err.status === 401) session.clear();
      page.me = err.status === 401 ? null : page.me;
    }
  }
  if (!page.me) {
    try {
      page.me = await session.browserGuest(); // this browser's guest (the session cookie)
    } catch {
      page.me = null;
    }
  }
  if (!page.me) {
    showSignIn('');
    return;
  }
  await start();
}

boot();
