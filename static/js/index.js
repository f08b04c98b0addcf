// Start page: the room form opens /chat/<room> (room names as the server accepts them).

const form = document.querySelector('[data-testid="room-form"]');
if (form) {
  const input = form.querySelector('input');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const room = input.value.trim();
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(room)) {
      input.setCustomValidity('1 to 64 letters, digits, dots, dashes or underscores');
      input.reportValidity();
      return;
    }
    window.location.assign(`/chat/${encodeURIComponent(room)}`);
  });
  input.addEventListener('input', () => input.setCustomValidity(''));
}
