// The chat's composer: a message sent shows at once in the list as pending (chat-messages.js)
// until the server confirms it; typing in it tells the room, at most every TYPING_SEND_EVERY.

import { setMessage } from './ui.js';
import { authFailed, channel, page, ui } from './chat-page.js';
import { confirmPending, messageNode, pendingMine, rendered, scrollToBottom } from './chat-messages.js';

const TYPING_SEND_EVERY = 2000;

let lastTypingSent = 0;

ui.composer.addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = ui.input.value.trim();
  if (!text || !page.client) return;
  ui.input.value = '';
  setMessage(ui.sendError, '');
  const pending = messageNode({
    id: null,
    from: `user:${page.me.user.id}`,
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
    const event = await page.client.publish(channel, 'chat.message', { text });
    const id = event && event.id != null ? String(event.id) : null;
    if (pendingMine.includes(entry)) {
      if (id && rendered.has(id)) {
        // Shown already (a history reload, say): drop the pending copy.
        pendingMine.splice(pendingMine.indexOf(entry), 1);
        pending.remove();
      } else {
        confirmPending(entry, id, event.ts);
      }
    }
    lastTypingSent = 0;
  } catch (err) {
    if (pendingMine.includes(entry)) {
      pendingMine.splice(pendingMine.indexOf(entry), 1);
      pending.remove();
    } // else an event of mine with this text confirmed it (another tab's, this one failed): kept
    if (authFailed(err)) return;
    if (!ui.input.value) ui.input.value = text;
    setMessage(ui.sendError, `Not sent: ${err.message}`);
  }
});

ui.input.addEventListener('input', () => {
  if (!page.client || !ui.input.value.trim()) return;
  const now = Date.now();
  if (now - lastTypingSent < TYPING_SEND_EVERY) return;
  lastTypingSent = now;
  // The name is a fallback for display only: receivers prefer the name presence reports.
  page.client.publish(channel, 'typing', { name: page.me.user.name }, { ephemeral: true }).catch(() => {});
});
