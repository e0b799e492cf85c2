// The wallboard: every queue in big numbers for a TV on the floor.
//
// A TV has no login, so the page holds no data and no session: it reads
// ?token= from its own address and asks GET /api/v1/wallboard?token=… every
// 2 s.  Between answers the longest wait keeps counting up in the browser.
// Colours follow the thresholds: green, amber when close, red when
// crossed (or while the server raises an alert).
//
// What can go wrong is said on the screen in big letters, never left as a
// blank or frozen board: no token in the address, a refused token, a
// server that has no wallboard, a server that does not answer (the last
// numbers stay, marked as stale, with the time of the last update).

import { el, text, clear, byId, append } from './dom.js';
import { getJSON } from './api.js';
import {
  ServerClock, queueNameOf, waitingCount, longestWaitSince, thresholds, hasAlert, slLevel, percent, seconds,
  alertsOf, num, tick, worst, ticker, linkDown,
} from './supervisor-common.js';

const POLL_MS = 2000;
const REFUSED_RETRY_MS = 10000;
const DISABLED_RETRY_MS = 30000;
const STALE_AFTER_MS = 6000;

const board = byId('wallboard');
const grid = byId('wb-queues');
const message = byId('wb-message');
const staleBox = byId('wb-stale');
const clockBox = byId('wb-clock');

const clock = new ServerClock();
const token = new URLSearchParams(location.search).get('token') || '';
let state = 'loading';
let polls = 0;
let lastOkAt = 0;
let queues = [];
let timer = null;

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function setState(next) {
  state = next;
  board.dataset.state = next;
}

function say(title, detail) {
  message.hidden = false;
  append(clear(message), el('h1', { class: 'wb-message-title' }, title), detail ? el('p', { class: 'wb-message-detail' }, detail) : null);
}

function quiet() {
  message.hidden = true;
  clear(message);
}

async function poll() {
  polls += 1;
  const result = await getJSON(`/api/v1/wallboard?token=${encodeURIComponent(token)}`);
  let next = POLL_MS;
  if (result.ok && result.data && typeof result.data === 'object') {
    lastOkAt = Date.now();
    queues = Array.isArray(result.data.queues) ? result.data.queues.filter((q) => q && typeof q === 'object' && queueNameOf(q) !== null) : [];
    // The server's clock (see ServerClock.fromStamp): the newest stamp it sent.
    const stamps = [result.data.server_time, ...queues.map((q) => q.updated_at)].filter((t) => Number.isFinite(Date.parse(t)));
    if (stamps.length) clock.fromStamp(stamps.reduce((a, b) => (Date.parse(b) > Date.parse(a) ? b : a)));
    setState('ok');
    // the server lost the PBX: its numbers are the last known ones
    const pbxDown = queues.some((q) => linkDown(q));
    staleBox.hidden = !pbxDown;
    staleBox.textContent = pbxDown ? 'PBX link down: last known state' : '';
    if (queues.length) quiet();
    else say('No queues', 'The server has no queues to show yet.');
    draw();
  } else if (result.status === 401 || result.status === 403) {
    setState('refused');
    clear(grid);
    queues = [];
    say('Wallboard token refused', 'The token in this address is not the wallboard token. Ask an administrator for the wallboard link ([supervision] wallboard_token).');
    next = REFUSED_RETRY_MS;
  } else if (result.status === 404) {
    setState('disabled');
    clear(grid);
    queues = [];
    say('No wallboard on this server', 'The server has no wallboard token configured ([supervision] wallboard_token).');
    next = DISABLED_RETRY_MS;
  } else if (lastOkAt && Date.now() - lastOkAt < STALE_AFTER_MS) {
    // one missed answer: keep the numbers, say nothing yet
  } else if (lastOkAt) {
    setState('stale');
    staleBox.hidden = false;
    staleBox.textContent = `Not updating: last update ${timeFormat.format(new Date(lastOkAt))}`;
  } else {
    setState('unreachable');
    say('Cannot reach the server', 'Retrying every few seconds…');
  }
  timer = setTimeout(poll, next);
}

// Columns and rows that fit every queue on one screen, tiles as square-ish
// as a 16:9 screen allows.
function layout(count) {
  const width = window.innerWidth || 1920;
  const height = Math.max(1, (window.innerHeight || 1080) - 80);
  let best = { cols: 1, rows: count, score: -1 };
  for (let cols = 1; cols <= Math.max(1, count); cols += 1) {
    const rows = Math.ceil(count / cols);
    const w = width / cols;
    const h = height / rows;
    const score = Math.min(w / 1.6, h); // tiles a bit wider than tall
    if (score > best.score) best = { cols, rows, score };
  }
  board.style.setProperty('--cols', String(best.cols));
  board.style.setProperty('--rows', String(best.rows));
}

function draw() {
  clear(grid);
  layout(queues.length);
  const receivedAt = Date.now();
  for (const queue of queues) grid.append(tile(queue, receivedAt));
  tick(grid, clock);
}

function tile(queue, receivedAt) {
  const name = queueNameOf(queue);
  const today = queue.today && typeof queue.today === 'object' ? queue.today : {};
  const agents = queue.agents && typeof queue.agents === 'object' ? queue.agents : {};
  const { wait } = thresholds(queue);
  const since = longestWaitSince(queue, clock, receivedAt);
  const sl = slLevel(queue);
  const alerts = alertsOf(queue);
  const base = worst(alerts.length ? 'red' : 'green', sl === 'none' ? 'green' : sl);
  return el('article', { class: 'wb-tile', dataset: { queue: name, levelHost: '', baseLevel: base, level: base } },
    el('h2', { class: 'wb-name' }, text(name, 'wb-name-text')),
    el('div', { class: 'wb-main' },
      el('div', { class: 'wb-stat wb-waiting' },
        el('span', { class: 'wb-value' }, String(waitingCount(queue))), el('span', { class: 'wb-label' }, 'waiting')),
      el('div', { class: 'wb-stat wb-wait' },
        el('span', { class: 'wb-value' }, ticker(since, 'wb-longest', { alarm: wait, forced: hasAlert(queue, 'longest_wait') })),
        el('span', { class: 'wb-label' }, 'longest wait')),
      el('div', { class: 'wb-stat wb-sl', dataset: { level: sl } },
        el('span', { class: 'wb-value' }, percent(today.service_level)),
        el('span', { class: 'wb-label' }, num(today.sl_threshold_seconds) !== null ? `SL (${num(today.sl_threshold_seconds)} s)` : 'service level'))),
    el('div', { class: 'wb-minor' },
      minor('wb-available', agents.available, 'available'),
      minor('wb-on-call', agents.on_call, 'on call'),
      minor('wb-answered', today.answered, 'answered'),
      minor('wb-abandoned', today.abandoned, 'abandoned'),
      el('span', { class: 'wb-minor-stat wb-avg-wait' }, el('strong', {}, seconds(today.avg_wait_seconds)), ' avg wait')),
    alerts.length ? el('p', { class: 'wb-alerts' }, alerts.map((a) => text(String(a.message || a.kind || 'alert'), 'wb-alert'))) : null);
}

function minor(cls, value, label) {
  return el('span', { class: `wb-minor-stat ${cls}` }, el('strong', {}, String(num(value) ?? 0)), ` ${label}`);
}

function everySecond() {
  clockBox.textContent = clockFormat.format(new Date()); // the room's time, not the PBX's
  tick(grid, clock);
  if (state === 'ok' && lastOkAt && Date.now() - lastOkAt > STALE_AFTER_MS) {
    setState('stale');
    staleBox.hidden = false;
    staleBox.textContent = `Not updating: last update ${timeFormat.format(new Date(lastOkAt))}`;
  }
}

window.addEventListener('resize', () => layout(queues.length));
setInterval(everySecond, 1000);
everySecond();

if (!token) {
  setState('no-token');
  say('This wallboard needs its token', 'Open it with the wallboard link: /wallboard?token=… (the token is [supervision] wallboard_token in the server\'s configuration).');
} else {
  poll();
}

window.screenpop = Object.freeze({
  get state() { return state; },
  get polls() { return polls; },
  get queues() { return queues.map((q) => queueNameOf(q)); },
  stop() { clearTimeout(timer); },
});
