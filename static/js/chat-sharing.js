// Sharing one connection with this browser's other tabs: the toggle (it reloads the page) and
// the line saying who holds the connection.

import { ui } from './chat-page.js';

const SHARE_KEY = 'fourcast.share';

/** Share the connection with this browser's other tabs? (?share=off|on, else the last choice.) */
export function shareWanted() {
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

export function renderSharing({ mode, tabs }) {
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
