// What the chat page's panels share: its elements, the room, who is signed in with which client,
// the names people go by, and what a 401 means (sign in again).

import { session } from './ui.js';

const $ = (id) => document.getElementById(id);
const root = $('chat');
export const room = root.dataset.room;
export const channel = `room:${room}`;

export const ui = {
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

/** Who is signed in ({token, user}) and the client reading the room: null when signed out. */
export const page = { me: null, client: null };
export const names = new Map(); // user id -> display name (from trusted sources: presence, session)

/** The name, with the end of the id when someone else here has the same name. */
export function shownName(id, name) {
  for (const [other, n] of names) if (n === name && other !== String(id)) return `${name} #${String(id).slice(-4)}`;
  return name;
}

let sessionExpired = () => {};

/** What to do once the session has expired (chat.js: show the sign-in form). */
export function onSessionExpired(fn) {
  sessionExpired = fn;
}

/** A 401 ends the session here: forget it and sign in again. True when `err` was one. */
export function authFailed(err) {
  if (err && err.status === 401) {
    session.clear();
    page.me = null;
    sessionExpired();
    return true;
  }
  return false;
}
