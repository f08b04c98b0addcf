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
export const authors = new Map(); // user id -> the name in their messages, for those not in `names`

// Letters of other scripts that look like Latin ones, and Latin ones that look like each other.
const LOOKALIKES = new Map(Object.entries({
  '\u0430': 'a', '\u0435': 'e', '\u043e': 'o', '\u0440': 'p', '\u0441': 'c', '\u0443': 'y',
  '\u0445': 'x', '\u0455': 's', '\u0456': 'l', '\u0458': 'j', '\u04cf': 'l', '\u0501': 'd',
  '\u03b1': 'a', '\u03bf': 'o', '\u03c1': 'p', '\u03b9': 'l', '\u03ba': 'k', '\u03bd': 'v',
  '\u0131': 'l', i: 'l', 1: 'l', '|': 'l', 0: 'o', rn: 'm', vv: 'w',
}));
const LOOKALIKE_RE = new RegExp(
  [...LOOKALIKES.keys()].sort((a, b) => b.length - a.length).map((k) => k.replace(/[|\\]/g, '\\$&')).join('|'),
  'gu',
);

const looks = new Map(); // name -> its look: each name shown is compared with everyone's here
const MAX_LOOKS = 10000;

/** What a name looks like: two names alike here pass for each other on screen. */
function lookOf(name) {
  let look = looks.get(name);
  if (look === undefined) {
    const folded = String(name).normalize('NFKC').toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '');
    look = folded.replace(LOOKALIKE_RE, (ch) => LOOKALIKES.get(ch));
    if (looks.size >= MAX_LOOKS) looks.clear();
    looks.set(name, look);
  }
  return look;
}

/** The name, with the end of the id when someone else here has the same name, or one that looks
 *  the same (another script's letters, fullwidth, another case, accents). */
export function shownName(id, name) {
  const look = lookOf(name);
  const suffixed = `${name} #${String(id).slice(-4)}`;
  for (const [other, n] of names) if (other !== String(id) && lookOf(n) === look) return suffixed;
  for (const [other, n] of authors) {
    if (other !== String(id) && !names.has(other) && lookOf(n) === look) return suffixed;
  }
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
