// Helpers shared by the demo pages: DOM building (text only, never HTML), the JSON API, the
// session (per browser or per tab), and small formatting functions.

import { FourcastError, errorFromResponse } from './fourcast-util.js';

/**
 * Create an element. `props`: {class, text, dataset, attrs, on}; children: nodes or strings.
 * Strings always become text nodes, so user data can never turn into markup.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text != null) node.textContent = String(props.text);
  for (const [k, v] of Object.entries(props.dataset || {})) node.dataset[k] = String(v);
  for (const [k, v] of Object.entries(props.attrs || {})) {
    if (v === false || v == null) continue;
    node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const [k, fn] of Object.entries(props.on || {})) node.addEventListener(k, fn);
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** Set an element's text; show it when non-empty, hide it when empty. */
export function setMessage(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

/** Call the JSON API. Throws FourcastError on a non-2xx answer. */
export async function api(path, { method = 'GET', body, token, signal, credentials = 'same-origin' } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials,
      signal,
    });
  } catch (err) {
    throw new FourcastError('network', `network error: ${err.message}`);
  }
  if (!res.ok) throw await errorFromResponse(res);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

const SESSION_KEY = 'fourcast.session';
// Set while this browser has a guest in its cookie, so a first visit does not ask (a 401).
const BROWSER_GUEST_KEY = 'fourcast.browser-guest';

/**
 * Who this page is. A guest of the browser lives in the session cookie (HttpOnly: the page
 * never sees the token; requests and connections carry the cookie), so all of a person's tabs
 * are one person and can share a connection. A guest of one tab only ({token, user} in
 * sessionStorage) is signed in without touching the cookie, so the browser's guest stays.
 */
export const session = {
  /** This tab's own guest, or null. */
  load() {
    try {
      const raw = sessionStorage.getItem(SESSION_KEY);
      const value = raw ? JSON.parse(raw) : null;
      return value && value.token && value.user ? value : null;
    } catch {
      return null;
    }
  },
  save(value) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  },
  /** The browser's guest (from the session cookie) as {token: null, user}, or null. */
  async browserGuest() {
    if (!localStorage.getItem(BROWSER_GUEST_KEY)) return null;
    try {
      const body = await api('/api/session');
      return body && body.user ? { token: null, user: body.user } : null;
    } catch (err) {
      if (err.status !== 401) throw err;
      localStorage.removeItem(BROWSER_GUEST_KEY); // the cookie expired
      return null;
    }
  },
  /**
   * POST /api/session: a guest session for `name`. `perBrowser`: the cookie keeps it for every
   * tab ({token: null}); otherwise for this tab only: the answer's cookie is not stored
   * (credentials 'omit') and the token goes to sessionStorage.
   */
  async signIn(name, { perBrowser = false } = {}) {
    const body = await api('/api/session', {
      method: 'POST',
      body: { name },
      credentials: perBrowser ? 'same-origin' : 'omit',
    });
    if (perBrowser) {
      localStorage.setItem(BROWSER_GUEST_KEY, '1');
      return { token: null, user: body.user };
    }
    const value = { token: body.token, user: body.user };
    this.save(value);
    return value;
  },
  /** DELETE /api/session: a tab's guest by token (the cookie untouched), else the cookie. */
  async signOut(value) {
    if (value && value.token) {
      this.clear();
      await api('/api/session', { method: 'DELETE', token: value.token, credentials: 'omit' });
    } else {
      localStorage.removeItem(BROWSER_GUEST_KEY);
      await api('/api/session', { method: 'DELETE' });
    }
  },
};

/** 'user:42' -> '42'; '42' -> '42'. */
export function userIdOf(from) {
  if (from == null) return null;
  const s = String(from);
  return s.startsWith('user:') ? s.slice(5) : s;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  dateStyle: 'medium',
  timeStyle: 'short',
});

/** A <time> element for a timestamp (ms since the epoch, or an ISO string). */
export function timeEl(ts) {
  const date = new Date(typeof ts === 'number' ? ts : Date.parse(ts));
  if (Number.isNaN(date.getTime())) return el('time');
  const today = new Date().toDateString() === date.toDateString();
  return el('time', {
    text: today ? timeFmt.format(date) : dateTimeFmt.format(date),
    attrs: { datetime: date.toISOString(), title: dateTimeFmt.format(date) },
  });
}

/** Bytes as a short human string. */
export function formatBytes(n) {
  if (n == null) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** Milliseconds as a short string. */
export function formatMs(ms) {
  if (ms == null || !Number.isFinite(ms)) return '–';
  if (Math.abs(ms) < 10) return `${ms.toFixed(1)} ms`;
  if (Math.abs(ms) < 10000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Only http(s) links (relative ones resolved against this page) are safe to follow. */
export function safeUrl(url) {
  if (typeof url !== 'string' || !url) return null;
  try {
    const u = new URL(url, window.location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

/** The ?transport= of this page's URL, if valid. */
export function transportFromUrl(allowed) {
  const value = new URLSearchParams(window.location.search).get('transport');
  return value && allowed.includes(value) ? value : null;
}
