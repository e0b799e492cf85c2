// A WebSocket that keeps itself connected.
//
// The agent desktop is useless without its socket, so a drop is retried
// forever with exponential backoff (0.5 s doubling to 30 s, with jitter so
// 2,000 browsers do not reconnect in the same millisecond after a server
// restart).  The backoff resets only once the server has said something:
// a server that accepts and immediately closes must not be hammered.
//
// A socket can also die silently (laptop lid, NAT timeout); the browser may
// not notice for minutes.  We send an application ping every 20 s and treat
// 50 s without any frame as a dead link.

const PING_EVERY_MS = 20000;
const SILENCE_LIMIT_MS = 50000;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;

export class LiveSocket {
  // onMessage(obj) for every JSON frame; onState(state, info) with state
  // 'connecting' | 'open' | 'reconnecting' (info.delayMs) | 'stopped'.
  constructor(url, { onMessage, onState }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState || (() => {});
    this.ws = null;
    this.attempt = 0;
    this.lastFrameAt = 0;
    this.timer = null;
    this.retryTimer = null;
    this.stopped = false;
    this.everOpened = false;
    this.lastCloseCode = null;
    window.addEventListener('online', () => this.retryNow());
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.timer);
    if (this.ws) this.ws.close(1000, 'page closed');
    this.onState('stopped', {});
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  retryNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  connect() {
    this.onState('connecting', { attempt: this.attempt, reconnect: this.everOpened || this.attempt > 0 });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    let heard = false;
    ws.addEventListener('open', () => {
      this.everOpened = true;
      this.lastFrameAt = Date.now();
      this.onState('open', {});
      clearInterval(this.timer);
      this.timer = setInterval(() => this.watchdog(ws), PING_EVERY_MS);
    });
    ws.addEventListener('message', (event) => {
      this.lastFrameAt = Date.now();
      if (!heard) {
        heard = true;
        this.attempt = 0;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn('screenpop: ignoring a frame that is not JSON');
        return;
      }
      if (message && typeof message === 'object') this.onMessage(message);
    });
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws) return; // an older socket we already replaced
      clearInterval(this.timer);
      this.ws = null;
      this.lastCloseCode = event.code;
      if (!this.stopped) this.scheduleRetry();
    });
    // 'error' is always followed by 'close'; nothing to do here.
  }

  watchdog(ws) {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
      ws.close(4000, 'no frames from server');
      return;
    }
    ws.send(JSON.stringify({ type: 'ping', id: Date.now() }));
  }

  scheduleRetry() {
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    const delayMs = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt += 1;
    // code: the last close code (4401 = the server ended our session; a
    // refused handshake shows as 1006, which is why callers also count attempts).
    this.onState('reconnecting', { delayMs, attempt: this.attempt, code: this.lastCloseCode });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }
}

// Same origin as the page: the session cookie goes along with the upgrade.
export function socketURL(path = '/ws') {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}
