// One queue: its tile, who is waiting (each wait ticking), the agents who
// serve it (live from /ws), and today's calls from
// GET /api/v1/queues/{queue}, fetched again whenever the queue's counters
// say a call was answered, abandoned or offered (pushed, not polled).

import { el, text, longText, clear, byId } from './dom.js';
import { dispositionLabel } from './outcome.js';
import { ensureDispositions } from './ui-config.js';
import {
  queueTile, agentRow, placeRow, removeRow, alertItem, alertsOf, waitingList, waitingCount, ticker, tick, stateSummary, num,
} from './supervisor-common.js';
import { SupervisorFeed } from './supervisor-feed.js';
import { CallsToday, callRow } from './supervisor-calls.js';

const root = byId('sup-queue');
const queueName = root.dataset.queue;
const tileBox = byId('queue-tile-box');
const missing = byId('queue-missing');
const alertsBox = byId('alerts');
const waitingBody = byId('waiting-body');
const waitingEmpty = byId('waiting-empty');
const waitingCountBox = byId('waiting-count');
const agentsBody = byId('agents-body');
const agentsEmpty = byId('agents-empty');
const agentsSummary = byId('agents-summary');
const labels = byId('disposition-labels');

let lastCounters = null;

function drawQueue(entry) {
  if (String(entry.msg.queue) !== queueName) return;
  const queue = entry.msg;
  clear(tileBox).append(queueTile(entry, feed.clock, { link: false }));
  clear(alertsBox).append(...alertsOf(queue).map((a) => alertItem(queueName, a)));
  alertsBox.hidden = alertsOf(queue).length === 0;

  clear(waitingBody);
  const list = waitingList(queue);
  for (const w of list) {
    waitingBody.append(el('tr', { class: 'waiting-row', dataset: { callId: String(w.call_id ?? '') } },
      el('td', { class: 'col-pos' }, String(num(w.position) ?? '')),
      el('td', { class: 'col-number' }, text(w.caller_display || w.caller_number || 'withheld', 'caller-number')),
      el('td', { class: 'col-customer' }, longText(w.customer_name || '', 'customer-name'),
        w.vip ? el('span', { class: 'badge badge-vip', title: 'VIP customer' }, 'VIP') : null),
      el('td', { class: 'col-num' }, ticker(w.since || null, 'waited'))));
  }
  const count = waitingCount(queue);
  waitingEmpty.hidden = count > 0;
  waitingCountBox.textContent = count ? `(${count})` : '';
  tick(root, feed.clock);
  document.title = `${alertsOf(queue).length ? '(!) ' : ''}${count} waiting · ${queueName} · screenpop`;

  const today = queue.today && typeof queue.today === 'object' ? queue.today : {};
  const counters = `${today.offered}/${today.answered}/${today.abandoned}`;
  if ((lastCounters !== null && counters !== lastCounters) || calls.missing) calls.schedule();
  lastCounters = counters;
}

function servesThisQueue(msg) {
  return Array.isArray(msg.queues) && msg.queues.map(String).includes(queueName);
}

function drawAgent(entry) {
  const id = String(entry.msg.agent_id ?? entry.msg.agent);
  if (!servesThisQueue(entry.msg)) {
    removeAgent(id);
    return;
  }
  const row = agentRow(entry, { queues: false, talk: false });
  placeRow(agentsBody, row, id);
  tick(row, feed.clock);
  drawAgentSummary();
}

function removeAgent(id) {
  removeRow(agentsBody, id);
  drawAgentSummary();
}

function drawAgentSummary() {
  const mine = [...feed.agents.values()].filter((e) => servesThisQueue(e.msg));
  agentsEmpty.hidden = mine.length > 0;
  agentsSummary.textContent = stateSummary(mine);
}

// ------------------------------------------------------------------ today's calls

const calls = new CallsToday({
  url: `/api/v1/queues/${encodeURIComponent(queueName)}`,
  noun: 'queue',
  onData: (data) => {
    if (!feed.queues.has(queueName) && data.queue !== undefined) {
      // The REST answer came before the socket's replay: show it meanwhile.
      drawQueue({ msg: data, receivedAt: Date.now() });
    }
  },
  row: (item) => callRow(item, item.queued_at || item.first_ring_at || item.started_at || item.ended_at,
    el('td', { class: 'col-agent' }, text(item.answered_by || '')),
    el('td', { class: 'col-disposition' }, text(item.disposition ? dispositionLabel(labels, String(item.disposition)) : '', 'disposition'))),
});

// ------------------------------------------------------------------ start

const feed = new SupervisorFeed({
  onQueue: drawQueue,
  onAgent: drawAgent,
  onRemoveQueue: (name) => {
    if (name !== queueName) return;
    clear(tileBox).append(missing);
    missing.textContent = 'This queue is gone.';
  },
  onRemoveAgent: removeAgent,
});

alertsBox.hidden = true;
setInterval(() => tick(root, feed.clock), 1000);
feed.start();
calls.load();
ensureDispositions(labels).then((added) => added.size && calls.load());

window.screenpop = feed.view({
  get queue() { return queueName; },
  get callsLoaded() { return calls.loaded; },
});
