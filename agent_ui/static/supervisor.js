// The supervisor dashboard: every queue as a tile, every agent as a row,
// the alerts on top.  Fed by the supervisor feed of /ws only (pushed, not
// polled); times (longest wait, time in state) count up in the browser
// between messages.

import { byId, clear } from './dom.js';
import {
  queueTile, agentRow, placeRow, removeRow, alertItem, alertsOf, queueNameOf, tick, stateSummary,
} from './supervisor-common.js';
import { SupervisorFeed } from './supervisor-feed.js';

const root = byId('sup-dashboard');
const queuesBox = byId('queues');
const queuesEmpty = byId('queues-empty');
const alertsBox = byId('alerts');
const agentsBody = byId('agents-body');
const agentsEmpty = byId('agents-empty');
const agentsSummary = byId('agents-summary');

let seenAlerts = new Set();

function drawQueue(entry) {
  const name = queueNameOf(entry.msg);
  const tile = queueTile(entry, feed.clock, { link: true });
  const old = [...queuesBox.querySelectorAll('.queue-tile')].find((t) => t.dataset.queue === name);
  if (old) old.replaceWith(tile);
  else {
    // queues in name order
    const after = [...queuesBox.querySelectorAll('.queue-tile')].find((t) => t.dataset.queue.localeCompare(name) > 0);
    queuesBox.insertBefore(tile, after || null);
  }
  queuesEmpty.hidden = true;
  drawAlerts();
  tick(tile, feed.clock);
}

function removeQueue(name) {
  const old = [...queuesBox.querySelectorAll('.queue-tile')].find((t) => t.dataset.queue === name);
  if (old) old.remove();
  queuesEmpty.hidden = feed.queues.size > 0;
  drawAlerts();
}

// Every queue's alerts in one list; an alert that was not there before
// flashes once.
function drawAlerts() {
  const now = new Set();
  clear(alertsBox);
  const names = [...feed.queues.keys()].sort((a, b) => a.localeCompare(b));
  for (const name of names) {
    for (const alert of alertsOf(feed.queues.get(name).msg)) {
      const key = `${name}\u0000${alert.kind}`;
      const item = alertItem(name, alert, true);
      if (!seenAlerts.has(key)) item.classList.add('is-new');
      now.add(key);
      alertsBox.append(item);
    }
  }
  seenAlerts = now;
  alertsBox.hidden = now.size === 0;
  document.title = `${now.size ? `(${now.size}) ` : ''}Supervisor · screenpop`;
}

function drawAgent(entry) {
  const row = agentRow(entry, { queues: true, talk: true });
  placeRow(agentsBody, row, row.dataset.agentId);
  tick(row, feed.clock);
  drawAgentSummary();
}

function removeAgent(id) {
  removeRow(agentsBody, id);
  drawAgentSummary();
}

function drawAgentSummary() {
  agentsEmpty.hidden = feed.agents.size > 0;
  agentsSummary.textContent = stateSummary(feed.agents.values());
}

const feed = new SupervisorFeed({
  onQueue: drawQueue,
  onAgent: drawAgent,
  onRemoveQueue: removeQueue,
  onRemoveAgent: removeAgent,
});

setInterval(() => tick(root, feed.clock), 1000);
alertsBox.hidden = true;
feed.start();

window.screenpop = feed.view({
  get alerts() { return [...seenAlerts].map((k) => k.split('\u0000')); },
});
