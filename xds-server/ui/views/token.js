// The admin token prompt: shown when the API answers 401. The token stays in this tab's
// sessionStorage (gone when the tab closes) and is sent only as a bearer header.

import { token } from '../api.js';
import { h } from '../dom.js';

/** Renders the prompt into `container`; `onToken` runs once a token is entered. */
export function tokenPrompt(container, refused, onToken) {
  const input = h('input', { type: 'password', id: 'token', name: 'token', required: true,
    autocomplete: 'off', 'aria-describedby': 'token-help' });
  const form = h('form', {
    onsubmit: (e) => {
      e.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      token.set(value);
      onToken();
    },
  },
  h('label', { for: 'token' }, 'Admin token'), ' ', input, ' ',
  h('button', { type: 'submit' }, 'Use token'));
  container.replaceChildren(h('section', {},
    h('h1', { id: 'view-title', tabindex: '-1' }, 'Admin token needed'),
    refused ? h('p', { class: 'error', role: 'alert', id: 'token-refused' },
      'The server refused that token; check it and try again.') : null,
    h('p', { id: 'token-help' }, 'This server\'s API asks for its admin token (the contents of the '
      + 'file given to --admin-token-file). It is kept for this tab only and sent as a header.'),
    form));
  input.focus();
}
