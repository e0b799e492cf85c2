// The login form: POST /api/v1/session {username, password} as JSON.
//
// The server sets the session cookie on success; we only move on to where
// the visitor was going.  `data-next` was made a local path by the server
// (pages.safe_next) and is checked again here, so a crafted ?next= can
// never send someone to another site after they typed their password.

import { postJSON } from './api.js';

const form = document.getElementById('login-form');
const error = document.getElementById('login-error');
const submit = document.getElementById('login-submit');

export function localPath(value) {
  const s = String(value || '');
  return s.startsWith('/') && !s.startsWith('//') && !s.includes('\\') ? s : '/';
}

function showError(message) {
  error.textContent = message || '';
  error.hidden = !message;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    showError('Enter your user name and password.');
    return;
  }
  submit.disabled = true;
  showError('');
  const result = await postJSON('/api/v1/session', { username, password });
  submit.disabled = false;
  if (!result.ok) {
    // 401 from the login call means wrong credentials, not an expired session.
    showError(result.status === 401 ? 'Wrong user name or password (or the account is locked).' : result.error);
    form.elements.password.value = '';
    form.elements.password.focus();
    return;
  }
  location.assign(localPath(form.dataset.next));
});
