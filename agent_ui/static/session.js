// Log out from the top bar of every logged-in page.
//
// DELETE /api/v1/session ends the session on the server (a cookie merely
// forgotten by the browser would stay valid until it expires); the CSRF
// header proves the click came from our page.  Whatever the answer, the
// browser goes to the login page: a failed logout of an expired session is
// still "logged out" for the person at the keyboard.

import { deleteJSON } from './api.js';

const button = document.getElementById('logout');
if (button) {
  button.addEventListener('click', async () => {
    button.disabled = true;
    await deleteJSON('/api/v1/session');
    location.assign('/login');
  });
}
