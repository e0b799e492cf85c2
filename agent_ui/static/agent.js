// The agent desktop: WebSocket messages in, pops and status on screen.
//
// State is one Map of calls this screen shows, keyed by call_id, each in
// one of four states:
//   ringing      popped, the phone rings
//   answered     this agent talks to the caller (the timer runs)
//   wrapup       the call ended; the pop stays until the outcome is saved
//   transferred  handed to someone else; stays until the agent closes it
// The status bar is derived from the calls (On call > Ringing > Wrap-up >
// Ready), never stored separately, so it cannot disagree with the pops.
//
// A pop is rendered synchronously in the message handler: nothing (no
// fetch, no animation) stands between the frame arriving and the card
// being on screen.  A ringing call is never hidden: it is drawn whole and
// above every other pop (pops.js), also while the previous call still owes
// its outcome; the wrap-up form stays beside the pops (below them on a
// narrow screen) and the status bar links to it.

import { el, text, clear, byId } from './dom.js';
import { duration } from './format.js';
import { renderPop, callerNumber, callerDisplay, summary, displayOrder } from './pops.js';
import { OutcomeForm, dispositionLabel } from './outcome.js';
import { LiveSocket, socketURL } from './socket.js';
import { getJSON, sessionAlive, loginURL } from './api.js';
import { saveWrapups, loadWrapups } from './persist.js';
import { uiConfig, ensureDispositions } from './ui-config.js';
import { onPbx } from './pbx-banner.js';

const desk = byId('agent-desk');
const popsBox = byId('pops');
const emptyBox = byId('pops-empty');
const statusBar = byId('status');
const statusLabel = byId('status-label');
const statusDetail = byId('status-detail');
const timerBox = byId('call-timer');
const banner = byId('conn-banner');
const notices = byId('notices');
const wrapupBox = byId('wrapup');
const wrapupCaller = byId('wrapup-caller');

const dispositionSelect = byId('outcome-disposition');
const agentId = desk.dataset.agentId || '';

const calls = new Map();
let focusedId = null;
let status = 'ready';
let connected = false;
let hellos = 0;
let clockOffsetMs = 0; // server clock minus ours, from 'hello'
let received = 0;

// ------------------------------------------------------------------ rendering

const actions = {
  onFocus: (call) => focus(call.call_id),
  onChoose: (call, index) => {
    call.chosen = index;
    draw(call);
  },
  onClose: (call) => remove(call),
  createContactUrl: desk.dataset.createContactUrl || null,
  agentId,
  dispositionLabel: (code) => dispositionLabel(dispositionSelect, code),
};

function draw(call) {
  const node = renderPop(call, call.call_id === focusedId, actions);
  if (call.node && call.node.parentNode) call.node.replaceWith(node);
  else popsBox.append(node);
  call.node = node;
}

function drawAll() {
  for (const call of displayOrder(calls.values())) {
    draw(call);
    popsBox.append(call.node); // moves it into place: ringing calls on top
  }
  emptyBox.hidden = calls.size > 0;
}

function focus(callId) {
  if (focusedId === callId) return;
  focusedId = callId;
  drawAll();
}

// After a change: the focus goes to the most urgent kind of call present,
// the call in progress first, then a ringing phone, then an outcome owed;
// a focused call of that kind keeps it.  A ringing pop is open anyway, so
// the focus decides which other pop is open: none while a phone rings
// (the wrap-up's card folds to its header, its form stays beside).
const URGENCY = ['answered', 'ringing', 'wrapup'];
function refocus() {
  const list = [...calls.values()];
  const focused = calls.get(focusedId);
  const top = URGENCY.find((state) => list.some((c) => c.state === state));
  if (top && (!focused || focused.state !== top)) focusedId = list.find((c) => c.state === top).call_id;
  else if (!focused) focusedId = list.length ? list[list.length - 1].call_id : null;
}

// ---------------------------------------------------------------- status bar

function computeStatus() {
  const states = new Set([...calls.values()].map((c) => c.state));
  if (states.has('answered')) return 'on-call';
  if (states.has('ringing')) return 'ringing';
  if (states.has('wrapup')) return 'wrap-up';
  return 'ready';
}

const STATUS_LABEL = { ready: 'Ready', ringing: 'Ringing', 'on-call': 'On call', 'wrap-up': 'Wrap-up' };

function updateStatus() {
  saveWrapups(agentId, [...calls.values()]);
  status = computeStatus();
  statusBar.dataset.status = status;
  statusLabel.textContent = STATUS_LABEL[status];
  const list = [...calls.values()];
  const ringing = list.filter((c) => c.state === 'ringing');
  const current = list.find((c) => c.state === 'answered');
  const wrapups = list.filter((c) => c.state === 'wrapup');
  clear(statusDetail);
  if (status === 'on-call') statusDetail.append(describe(current));
  else if (status === 'ringing') statusDetail.append(ringing.length > 1 ? `${ringing.length} calls ringing` : describe(ringing[0]));
  else if (status === 'wrap-up') statusDetail.append('Record the outcome of ', describe(wrapups[0]));
  if (status === 'on-call' && wrapups.length) statusDetail.append(text(` · ${wrapups.length} outcome(s) to record`, 'muted'));
  if (status !== 'on-call' && ringing.length && wrapups.length) {
    statusDetail.append(text(' · ', 'muted'), el('a', { href: '#wrapup', class: 'status-link' }, 'outcome still to record'));
  }
  tick();
  updateWrapup();
  document.title = `${status === 'ringing' ? `(${ringing.length}) ` : ''}${STATUS_LABEL[status]} · screenpop`;
}

function describe(call) {
  if (!call) return '';
  return el('span', { class: 'status-call' }, text(callerDisplay(call) || 'Withheld', 'status-number'), ' ', text(summary(call).text, 'status-who'));
}

// The call timer shows the talk time of the call in progress.
function tick() {
  const current = [...calls.values()].find((c) => c.state === 'answered');
  timerBox.hidden = !current;
  if (current) timerBox.textContent = duration((Date.now() - current.answeredAt) / 1000);
}
setInterval(tick, 1000);

// --------------------------------------------------------------- wrap-up form

const outcome = new OutcomeForm(byId('outcome-form'), {
  onSaved: (callId) => {
    const call = calls.get(callId);
    if (call) remove(call);
    notice('ok', 'Outcome saved.');
  },
});

let formFocusedFor = null;

// The form serves the oldest call waiting for its outcome.
function updateWrapup() {
  const next = [...calls.values()].filter((c) => c.state === 'wrapup').sort((a, b) => a.endedAt - b.endedAt)[0];
  if (!next) {
    outcome.close();
    wrapupBox.hidden = true;
    return;
  }
  outcome.open(next.call_id);
  clear(wrapupCaller).append(text(callerDisplay(next) || 'Withheld', 'wrapup-number'), ' ', text(summary(next).text, 'wrapup-who'));
  wrapupBox.hidden = false;
  wrapupBox.dataset.callId = next.call_id;
  // Focus the form once per call, when nothing more urgent is going on: a
  // ringing phone or a call in progress beats paperwork.
  if (status === 'wrap-up' && formFocusedFor !== next.call_id) {
    formFocusedFor = next.call_id;
    byId('outcome-disposition').focus();
  }
}

// ------------------------------------------------------------------ notices

// A short line under the status bar that goes away by itself; data in it
// goes through text() like everywhere else.
function notice(kind, ...content) {
  const item = el('li', { class: `notice notice-${kind}` }, ...content);
  notices.prepend(item);
  while (notices.children.length > 4) notices.lastChild.remove();
  setTimeout(() => item.remove(), kind === 'error' ? 15000 : 8000);
  return item;
}

// ------------------------------------------------------------------ messages

function serverTime(ts) {
  const t = Date.parse(ts);
  if (!Number.isFinite(t)) return Date.now();
  const local = t - clockOffsetMs;
  // A timestamp in the future or hours old is a clock problem, not a call.
  return local > Date.now() || Date.now() - local > 12 * 3600 * 1000 ? Date.now() : local;
}

function onPop(msg) {
  if (!msg.call_id) return;
  let call = calls.get(msg.call_id);
  if (!call) {
    call = { call_id: String(msg.call_id), state: 'ringing', chosen: null, node: null, answeredAt: null, endedAt: null };
    calls.set(call.call_id, call);
    if (!calls.get(focusedId) || calls.get(focusedId).state !== 'answered') focusedId = call.call_id;
  }
  call.caller = msg.caller && typeof msg.caller === 'object' ? msg.caller : {};
  call.queue = msg.queue || null;
  call.card = msg.card || null;
  call.notes = Array.isArray(msg.notes) ? msg.notes : [];
  call.transferredFrom = msg.transferred_from || null;
  call.updatedAt = Date.now();
  if (call.chosen !== null && !(call.card && call.card.persons && call.card.persons[call.chosen])) call.chosen = null;
  // Local wrap-up outranks a replayed pop: the agent still owes the outcome.
  if (call.state !== 'wrapup') {
    if (msg.state === 'answered') {
      // A replay after a reload: the server's answer time, when it sends one,
      // keeps the timer honest; otherwise it restarts from now.
      if (call.state !== 'answered') call.answeredAt = msg.answered_at ? serverTime(msg.answered_at) : Date.now();
      call.state = 'answered';
    } else if (call.state !== 'answered') {
      call.state = msg.state === 'missed' ? 'missed' : 'ringing';
    }
  }
  refocus();
  drawAll();
  updateStatus();
  socket.send({ type: 'ack', call_id: call.call_id });
}

function onRetract(msg) {
  const call = calls.get(msg.call_id);
  if (!call || call.state === 'wrapup') return;
  remove(call);
  const reason = msg.reason ? String(msg.reason) : 'withdrawn';
  const item = notice('retract', 'Call from ', text(callerDisplay(call) || 'withheld number'), ' is gone: ', text(reason, 'retract-reason'));
  item.dataset.callId = call.call_id;
}

function onCall(msg) {
  const call = calls.get(msg.call_id);
  if (!call) return;
  if (msg.event === 'answered') {
    call.state = 'answered';
    call.answeredAt = serverTime(msg.ts);
    focusedId = call.call_id;
  } else if (msg.event === 'ended') {
    if (call.state === 'transferred' || call.state === 'wrapup') return;
    if (call.state === 'ringing' || call.state === 'missed') {
      // Never talked to this agent (caller hung up while it rang): nothing
      // to wrap up.  Normally a retract says so; this covers its absence.
      remove(call);
      notice('retract', 'Call from ', text(callerDisplay(call) || 'withheld number'), ' ended before it was answered.');
      return;
    }
    call.state = 'wrapup';
    call.endedAt = Date.now();
    call.endReason = msg.reason || null;
  } else if (msg.event === 'transferred') {
    call.state = 'transferred';
    call.transferredTo = msg.to || null;
  } else if (msg.event === 'missed' || msg.event === 'ringing') {
    // A queue rings this agent again and again while the caller waits
    // (queues.conf retry): one card, ringing <-> missed, until a retract.
    if (call.state !== 'ringing' && call.state !== 'missed') return;
    call.state = msg.event;
  } else {
    return;
  }
  refocus();
  drawAll();
  updateStatus();
}

function onCard(msg) {
  const call = calls.get(msg.call_id);
  if (!call || !msg.card) return;
  call.card = msg.card;
  if (call.chosen !== null && !(call.card.persons && call.card.persons[call.chosen])) call.chosen = null;
  draw(call);
  updateStatus();
}

function remove(call) {
  calls.delete(call.call_id);
  if (call.node) call.node.remove();
  if (focusedId === call.call_id) focusedId = null;
  refocus();
  drawAll();
  updateStatus();
}

function onHello(msg) {
  hellos += 1;
  connected = true;
  const t = Date.parse(msg.server_time);
  if (Number.isFinite(t)) clockOffsetMs = t - Date.now();
  banner.hidden = true;
  if (hellos > 1) reconcile(Date.now());
}

// After a reconnect the server replays the pops still in progress; calls we
// still show that it no longer has ended while we were away.  Only calls
// not touched since `since` are judged, so a pop that arrives during the
// request is never mistaken for a stale one.
async function reconcile(since) {
  const result = await getJSON('/api/v1/pops');
  if (!result.ok || !result.data || !Array.isArray(result.data.items)) return;
  const live = new Set(result.data.items.map((p) => p && String(p.call_id)));
  for (const call of [...calls.values()]) {
    if (live.has(call.call_id) || call.updatedAt >= since) continue;
    if (call.state === 'ringing' || call.state === 'missed') remove(call);
    else if (call.state === 'answered') onCall({ call_id: call.call_id, event: 'ended' });
  }
  for (const pop of result.data.items) if (pop && pop.call_id && !calls.has(String(pop.call_id))) onPop(pop);
}

const handlers = {
  hello: onHello,
  pop: onPop,
  retract: onRetract,
  call: onCall,
  card: onCard,
  pbx: onPbx,
  error: (msg) => notice('error', 'Server: ', text(msg.reason || 'error')),
};

function onMessage(msg) {
  received += 1;
  const handler = handlers[msg.type];
  if (!handler) return; // pong, queue, agent: not for this page
  try {
    handler(msg);
  } catch (err) {
    // One malformed message must not stop the next pop from showing.
    console.error('screenpop: could not handle', msg.type, err);
  }
}

function onSocketState(state, info) {
  if (state === 'open') return; // connected only once the server says hello
  connected = false;
  if (state === 'reconnecting') {
    if (info.code === SESSION_ENDED || info.attempt >= 2) checkSession();
    banner.hidden = false;
    clear(banner).append(el('strong', {}, 'Connection lost. '), `Reconnecting in ${Math.max(1, Math.round(info.delayMs / 1000))} s…`);
  } else if (state === 'connecting' && info.reconnect) {
    banner.hidden = false;
    clear(banner).append(el('strong', {}, 'Connection lost. '), 'Reconnecting…');
  }
}

// Two failed reconnects in a row: perhaps the session expired (the socket
// cannot tell a 401 from a dead server).  Wrap-ups are in sessionStorage,
// so they are still owed after logging in again.
const SESSION_ENDED = 4401; // close code: logout, disabled account or expiry (docs/design.md)
let checking = false;
async function checkSession() {
  if (checking) return;
  checking = true;
  try {
    if (!(await sessionAlive())) {
      socket.stop();
      location.assign(loginURL());
    }
  } finally {
    checking = false;
  }
}

const socket = new LiveSocket(socketURL('/ws'), { onMessage, onState: onSocketState });

// Read-only view for tests and for a curious agent's console.
window.screenpop = Object.freeze({
  get status() { return status; },
  get connected() { return connected; },
  get hellos() { return hellos; },
  get received() { return received; },
  get focused() { return focusedId; },
  get wrapup() { return outcome.callId; },
  get pops() {
    return [...calls.values()].map((c) => ({
      call_id: c.call_id,
      state: c.state,
      queue: c.queue,
      caller_number: callerNumber(c),
      caller_display: callerDisplay(c),
      card_status: c.card ? c.card.status : null,
      chosen: c.chosen,
    }));
  },
  reconnect() { socket.ws && socket.ws.close(4001, 'asked from the console'); },
});

for (const call of loadWrapups(agentId)) calls.set(call.call_id, call);
refocus();
drawAll();
updateStatus();
socket.start();

// Config the server did not render into the page (see ui-config.js); the
// socket is already connecting, so this never delays a pop.
ensureDispositions(dispositionSelect);
if (!actions.createContactUrl) {
  uiConfig().then((config) => {
    if (typeof config.create_contact_url === 'string' && config.create_contact_url) {
      actions.createContactUrl = config.create_contact_url;
      drawAll();
    }
  });
}
