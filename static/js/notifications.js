// The notification bell: unread count, a list of unread notifications, live `notification`
// events on the user's private channel, and "mark read".

import { api, el, safeUrl, setMessage, timeEl } from './ui.js';

const $ = (id) => document.getElementById(id);

export class Notifications {
  constructor({ client, token, user, onAuthError }) {
    this.client = client;
    this.token = token;
    this.user = user;
    this.onAuthError = onAuthError || (() => false);
    this.items = new Map(); // notification id -> notification
    this.unread = 0;
    this.off = null;
    this.bell = $('bell');
    this.count = $('bell-count');
    this.panel = $('notifications');
    this.list = $('notifications-list');
    this.empty = $('notifications-empty');
    this.markAll = $('mark-all-read');
    this._onBell = () => this.toggle();
    this._onKey = (e) => {
      if (e.key === 'Escape' && !this.panel.hidden) {
        this.toggle(false);
        this.bell.focus();
      }
    };
    this._onDocClick = (e) => {
      // composedPath, not contains(): a "Mark read" button is gone from the DOM (the list was
      // re-rendered) by the time its click bubbles here, and that click was inside the panel.
      const path = e.composedPath();
      if (!this.panel.hidden && !path.includes(this.panel) && !path.includes(this.bell)) {
        this.toggle(false);
      }
    };
    this._onMarkAll = () => this.markAllRead();
  }

  start() {
    this.bell.addEventListener('click', this._onBell);
    this.markAll.addEventListener('click', this._onMarkAll);
    document.addEventListener('keydown', this._onKey);
    document.addEventListener('click', this._onDocClick);
    this.off = this.client.subscribe(`user:${this.user.id}`, (event) => this.onEvent(event));
    this.load();
  }

  stop() {
    if (this.off) this.off();
    this.bell.removeEventListener('click', this._onBell);
    this.markAll.removeEventListener('click', this._onMarkAll);
    document.removeEventListener('keydown', this._onKey);
    document.removeEventListener('click', this._onDocClick);
    this.items.clear();
    this.list.replaceChildren();
    this.setUnread(0);
    this.toggle(false);
  }

  async load() {
    try {
      const body = await api('/api/notifications?unread=true', { token: this.token });
      for (const n of body.notifications || []) this.items.set(String(n.id), n);
      this.setUnread(typeof body.unread === 'number' ? body.unread : this.items.size);
      this.render();
    } catch (err) {
      if (this.onAuthError(err)) return;
      setMessage(this.empty, 'Notifications are unavailable right now.');
    }
  }

  onEvent(event) {
    const data = event.data && typeof event.data === 'object' ? event.data : {};
    if (event.type === 'notification.read') {
      // Read here or in another tab: `id` null means all of them; `unread` is the server's count.
      if (data.id == null) this.items.clear();
      else this.items.delete(String(data.id));
      this.setUnread(typeof data.unread === 'number' ? data.unread : this.items.size);
      this.render();
      return;
    }
    if (event.type !== 'notification') return;
    const n = { ...data, id: data.id ?? event.id, created_at: data.created_at ?? event.ts };
    const key = String(n.id);
    if (this.items.has(key) || n.read_at) return;
    this.items.set(key, n);
    this.setUnread(this.unread + 1);
    this.render();
    this.bell.classList.remove('ring');
    void this.bell.offsetWidth; // restart the animation
    this.bell.classList.add('ring');
  }

  setUnread(n) {
    this.unread = Math.max(0, n);
    this.count.textContent = String(this.unread);
    this.count.dataset.count = String(this.unread);
    this.bell.setAttribute('aria-label', `Notifications, ${this.unread} unread`);
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.bell.setAttribute('aria-expanded', String(open));
    if (open) {
      const first = this.panel.querySelector('a, button');
      if (first) first.focus();
    }
  }

  render() {
    const when = (n) => {
      const t = typeof n.created_at === 'number' ? n.created_at : Date.parse(n.created_at);
      return Number.isFinite(t) ? t : 0;
    };
    const list = [...this.items.values()].sort((a, b) => when(b) - when(a));
    this.list.replaceChildren(...list.map((n) => this.itemNode(n)));
    this.empty.hidden = list.length > 0;
    if (list.length === 0) this.empty.textContent = 'No unread notifications.';
  }

  itemNode(n) {
    const href = safeUrl(n.url);
    const title = n.title || 'Notification';
    const heading = href
      ? el('a', {
          class: 'title',
          text: title,
          attrs: { href },
          on: { click: () => this.markRead(n) },
        })
      : el('span', { class: 'title', text: title });
    return el(
      'li',
      { class: 'notification', dataset: { testid: 'notification', id: String(n.id) } },
      heading,
      n.body ? el('p', { class: 'body', text: n.body }) : null,
      el(
        'div',
        { class: 'notification-foot' },
        n.created_at ? timeEl(n.created_at) : null,
        el('button', {
          class: 'link-button',
          text: 'Mark read',
          attrs: { type: 'button' },
          dataset: { testid: 'notification-read' },
          on: { click: () => this.markRead(n) },
        }),
      ),
    );
  }

  async markRead(n) {
    const key = String(n.id);
    if (!this.items.has(key)) return;
    this.items.delete(key);
    this.setUnread(this.unread - 1);
    this.render();
    try {
      const body = await api(`/api/notifications/${encodeURIComponent(key)}/read`, {
        method: 'POST',
        token: this.token,
      });
      if (body && typeof body.unread === 'number') this.setUnread(body.unread);
    } catch (err) {
      if (this.onAuthError(err)) return;
      // Put it back: the server still counts it unread.
      this.items.set(key, n);
      this.setUnread(this.unread + 1);
      this.render();
    }
  }

  async markAllRead() {
    const before = new Map(this.items);
    this.items.clear();
    this.setUnread(0);
    this.render();
    try {
      const body = await api('/api/notifications/read-all', { method: 'POST', token: this.token });
      if (body && typeof body.unread === 'number') this.setUnread(body.unread);
    } catch (err) {
      if (this.onAuthError(err)) return;
      for (const [k, n] of before) if (!this.items.has(k)) this.items.set(k, n);
      this.setUnread(this.unread + before.size);
      this.render();
      return;
    }
    this.bell.focus();
    this.toggle(false);
  }
}
