// JSON calls to the REST API with the page's CSRF token.
//
// The session cookie authenticates; the X-CSRF-Token header (copied from
// <meta name="csrf-token">) proves the request comes from our own page.  Every
// call resolves to {ok, status, data, error} and never throws, so callers
// have one path for network failures, 4xx and 5xx.

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute('content') || '' : '';
}

export async function request(method, url, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken();
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    return { ok: false, status: 0, data: null, error: `Could not reach the server (${err && err.message ? err.message : err}).` };
  }
  let data = null;
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (response.ok) return { ok: true, status: response.status, data, error: null };
  return { ok: false, status: response.status, data, error: errorMessage(response, data) };
}

// The server's own words when it sent {error: "…"}; otherwise the status.
function errorMessage(response, data) {
  if (response.status === 401) return 'Your session has expired: log in again.';
  if (data && typeof data.error === 'string' && data.error) return data.error;
  return `The server answered ${response.status} ${response.statusText || ''}`.trim() + '.';
}

export const getJSON = (url) => request('GET', url);
export const putJSON = (url, body) => request('PUT', url, body);
export const deleteJSON = (url) => request('DELETE', url);
export const postJSON = (url, body) => request('POST', url, body);

// Whether the session still holds: a WebSocket cannot see the 401 that
// refused its upgrade, so after failed reconnects the desktop asks here and
// goes to the login page instead of retrying forever.  Network errors count
// as "alive" (the server is just down: keep retrying).
export async function sessionAlive() {
  const result = await getJSON('/api/v1/session');
  return result.status !== 401;
}

export function loginURL() {
  return `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
}

// Path segment for a call id: ids come from Asterisk ("1795383229.38") but
// are data, so they are encoded rather than trusted.
export function callPath(callId) {
  return encodeURIComponent(String(callId));
}
