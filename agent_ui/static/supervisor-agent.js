// One agent: state and time in it (ticking), the call in progress with the
// customer card the agent sees (card.js, the desktop's own rendering), and
// today's calls with their outcomes from GET /api/v1/agents/{agent_id},
// fetched again when a call of this agent ends or an outcome may have been
// saved (pushed by the agent's state changes, not polled).

import { el, text, longText, clear, byId, plain, append } from './dom.js';
import { callPath } from './api.js';
import { renderCard } from './card.js';
import { dispositionLabel } from './outcome.js';
import { ensureDispositions } from './ui-config.js';
import { agentState, agentIdOf, STATE_LABEL, queueLinks, num, seconds, tick } from './supervisor-common.js';
import { SupervisorFeed } from './supervisor-feed.js';
import { CallsToday, callRow } from './supervisor-calls.js';

const root = byId('sup-agent');
const agentId = root.dataset.agentId;
const statusBox = byId('agent-status');
const stateLabel = byId('agent-state');
const sinceBox = byId('agent-since');
const pauseBox = byId('agent-pause');
const titleBox = byId('agent-title');
const currentNone = byId('current-none');
const currentBox = byId('current-box');
const currentHead = byId('current-head');
const currentCard = byId('current-card');
const labels = byId('disposition-labels');

let shownCallId = null;
let shownCard = null;
let chosen = null;
let lastState = null;

function drawAgent(entry) {
  if (agentIdOf(entry.msg) !== agentId) return;
  const agent = entry.msg;
  const state = agentState(agent.state);
  statusBox.dataset.state = state;
  stateLabel.textContent = STATE_LABEL[state] || state;
  clear(titleBox).append(agent.name ? `${agent.name} (${agentId})` : agentId);
  if (agent.since) sinceBox.dataset.since = String(agent.since);
  else delete sinceBox.dataset.since;
  byId('agent-since-box').hidden = !agent.since;
  pauseBox.textContent = state === 'paused' && agent.pause_reason ? String(agent.pause_reason) : '';
  const today = agent.today && typeof agent.today === 'object' ? agent.today : {};
  byId('agent-answered').textContent = String(num(today.answered) ?? 0);
  byId('agent-talk').textContent = seconds(today.talk_seconds ?? 0);
  const queues = Array.isArray(agent.queues) ? agent.queues.map(String) : [];
  clear(byId('agent-queues')).append(queues.length ? queueLinks(queues) : 'none');
  document.title = `${STATE_LABEL[state] || state} · ${agent.name || agentId} · screenpop`;
  drawCall(agent.call && typeof agent.call === 'object' ? agent.call : null);
  tick(root, feed.clock);

  // A call ended, or the agent left wrap-up (the outcome is probably saved):
  // today's list changed.
  const key = `${state}/${agent.call ? agent.call.call_id : ''}/${num(today.answered) ?? 0}`;
  if ((lastState !== null && key !== lastState) || calls.missing) calls.schedule();
  lastState = key;
}

function drawCall(call) {
  if (!call) {
    shownCallId = null;
    shownCard = null;
    chosen = null;
    currentBox.hidden = true;
    currentNone.hidden = false;
    clear(currentCard);
    return;
  }
  currentNone.hidden = true;
  currentBox.hidden = false;
  currentBox.dataset.callId = String(call.call_id ?? '');
  append(clear(currentHead),
    text(call.caller_display || call.caller_number || 'withheld', 'current-number'),
    call.customer_name ? ' · ' : null,
    call.customer_name ? longText(call.customer_name, 'current-customer') : null,
    call.queue ? el('span', { class: 'muted' }, ' from queue ', text(call.queue, 'current-queue')) : null,
    call.call_id ? el('a', { class: 'current-link', href: `/interactions/${callPath(call.call_id)}` }, 'call record') : null);
  // Redraw the card only when it changed: a supervisor reading it should
  // not lose their place on every state message.
  if (shownCallId === call.call_id && JSON.stringify(call.card ?? null) === shownCard) return;
  if (shownCallId !== call.call_id) chosen = null;
  shownCallId = call.call_id;
  shownCard = JSON.stringify(call.card ?? null);
  drawCard(call.card);
}

function drawCard(card) {
  clear(currentCard).append(renderCard(card, {
    chosen,
    onChoose: (index) => {
      chosen = index;
      drawCard(card);
    },
    dispositionLabel: (code) => dispositionLabel(labels, code),
  }));
}

// ------------------------------------------------------------------ today's calls

const calls = new CallsToday({
  url: `/api/v1/agents/${encodeURIComponent(agentId)}`,
  noun: 'agent',
  onData: (data) => {
    if (!feed.agents.has(agentId) && agentIdOf(data) === agentId) {
      // The REST answer came before the socket's replay: show it meanwhile.
      drawAgent({ msg: data, receivedAt: Date.now() });
    }
  },
  row: (item) => callRow(item, item.answered_at || item.queued_at || item.first_ring_at || item.started_at || item.ended_at,
    el('td', { class: 'col-queue' }, text(item.queue || '')),
    el('td', { class: 'col-disposition' }, text(item.disposition ? dispositionLabel(labels, String(item.disposition)) : 'none yet', item.disposition ? 'disposition' : 'disposition muted')),
    el('td', { class: 'col-notes' }, longText(notesText(item.notes), 'notes'))),
});

function notesText(notes) {
  if (typeof notes === 'string') return plain(notes, 500);
  if (!Array.isArray(notes)) return '';
  return notes.map((n) => plain(n && typeof n === 'object' ? n.text : n, 300)).filter(Boolean).join(' · ');
}

// ------------------------------------------------------------------ start

const feed = new SupervisorFeed({
  onAgent: drawAgent,
  onRemoveAgent: (id) => {
    if (id !== agentId) return;
    statusBox.dataset.state = 'unknown';
    stateLabel.textContent = 'Gone';
    drawCall(null);
  },
});

setInterval(() => tick(root, feed.clock), 1000);
feed.start();
calls.load();
// A page rendered without dispositions: labels arrive later, draw the list again.
ensureDispositions(labels).then((added) => added.size && calls.load());

window.screenpop = feed.view({
  get agent() { return agentId; },
  get callsLoaded() { return calls.loaded; },
  get shownCall() { return shownCallId; },
});
