// What the supervisor pages and the wallboard share: reading the queue and
// agent messages of the supervisor feed (tolerant of odd or missing
// fields), the thresholds and their colours, times that tick in the
// browser, and the queue tile.
//
// Message shapes (docs/design.md, supervisor feed of /ws):
//   queue: {queue, waiting: [{call_id, caller_number, caller_display, customer_name, vip,
//           since, position}], longest_wait_seconds, agents: {logged_in,
//           available, ringing, on_call, wrap_up, paused, unavailable},
//           today: {offered, answered, abandoned, avg_wait_seconds,
//           avg_talk_seconds, service_level, sl_threshold_seconds},
//           alerts: [{kind, message, value, threshold}], updated_at}
//   agent: {agent_id, name, state, pause_reason, since, queues, call:
//           {call_id, queue, caller_number, caller_display, customer_name, card} | null,
//           today: {answered, talk_seconds}}
// Every value is data: it goes on screen through dom.js (textContent) only.

import { el, text, longText, append } from './dom.js';
import { duration, number, parseTime } from './format.js';

export const AGENT_STATES = ['available', 'ringing', 'on_call', 'wrap_up', 'paused', 'unavailable', 'logged_out'];
export const STATE_LABEL = {
  available: 'Available',
  ringing: 'Ringing',
  on_call: 'On call',
  wrap_up: 'Wrap-up',
  paused: 'Paused',
  unavailable: 'Unavailable',
  logged_out: 'Logged out',
  unknown: 'Unknown',
};
// The queue's agent counters, in the order a supervisor reads them.
export const QUEUE_AGENT_STATES = ['available', 'ringing', 'on_call', 'wrap_up', 'paused', 'unavailable'];

// ------------------------------------------------------------------ the clock

// Times in messages are the server's; the browser's clock may be off by
// minutes.  hello.server_time gives the offset, so "waiting 0:45" is the
// same on every screen.
export class ServerClock {
  constructor() {
    this.offsetMs = 0;
  }

  fromHello(msg) {
    this.fromStamp(msg && msg.server_time);
  }

  // Queue and agent messages carry `updated_at`, the supervision clock when
  // the message was built (pushed at once).  That clock may run ahead of the
  // wall clock (the PBX's, with a simulator at speed): following it keeps
  // `since` times from looking like the future.
  fromStamp(iso) {
    const t = Date.parse(iso);
    if (Number.isFinite(t)) this.offsetMs = t - Date.now();
  }

  now() {
    return Date.now() + this.offsetMs;
  }

  // Seconds since a server time (ISO text); null when it is not a time.
  elapsed(iso) {
    const d = parseTime(iso);
    if (!d) return null;
    return Math.max(0, (this.now() - d.getTime()) / 1000);
  }

  // The server time `seconds` ago, as ISO text.
  ago(seconds) {
    return new Date(this.now() - Math.max(0, seconds) * 1000).toISOString();
  }
}

// ------------------------------------------------------------------ messages

export function num(value) {
  if (value === null || value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

// 'on-call' and 'on_call' alike; the older protocol's 'offline' is logged out.
export function agentState(value) {
  const s = String(value || '').trim().toLowerCase().replace(/[-\s]/g, '_');
  if (s === 'offline') return 'logged_out';
  if (s === 'wrapup') return 'wrap_up';
  return AGENT_STATES.includes(s) ? s : 'unknown';
}

export function agentIdOf(msg) {
  const id = msg && (msg.agent_id ?? msg.agent);
  return id === null || id === undefined || id === '' ? null : String(id);
}

export function queueNameOf(msg) {
  const name = msg && msg.queue;
  return name === null || name === undefined || name === '' ? null : String(name);
}

// The callers waiting, oldest first.  `waiting` may also arrive as a bare
// count (older servers): then there is no list, only the number.
export function waitingList(queue) {
  if (!Array.isArray(queue.waiting)) return [];
  return queue.waiting.filter((w) => w && typeof w === 'object')
    .slice()
    .sort((a, b) => (num(a.position) ?? 1e9) - (num(b.position) ?? 1e9));
}

export function waitingCount(queue) {
  if (Array.isArray(queue.waiting)) return queue.waiting.length;
  return num(queue.waiting) ?? 0;
}

// When the longest waiting caller started waiting (server time, ISO), so
// the page can count up every second between messages: the oldest `since`
// of the list, else the server's longest_wait_seconds counted from when
// the message came.  Null when nobody waits.
export function longestWaitSince(queue, clock, receivedAt) {
  if (waitingCount(queue) === 0) return null;
  let oldest = null;
  for (const w of waitingList(queue)) {
    const t = parseTime(w.since);
    if (t && (oldest === null || t < oldest)) oldest = t;
  }
  if (oldest) return oldest.toISOString();
  const seconds = num(queue.longest_wait_seconds);
  if (seconds === null) return null;
  const age = receivedAt ? (Date.now() - receivedAt) / 1000 : 0;
  return clock.ago(seconds + age);
}

// ------------------------------------------------------------------ thresholds

// The alert thresholds of a queue: from the message's own `thresholds`
// ({longest_wait_seconds, service_level}) when the server sends them, else
// learnt from an alert it raised earlier (thresholds are configuration:
// they do not change between messages).
const learnt = new Map(); // `${queue}\u0000${kind}` -> threshold

export function thresholds(queue) {
  const name = queueNameOf(queue) || '';
  const given = queue && queue.thresholds && typeof queue.thresholds === 'object' ? queue.thresholds : {};
  for (const alert of alertsOf(queue)) {
    const t = num(alert.threshold);
    if (t !== null && (alert.kind === 'longest_wait' || alert.kind === 'service_level')) learnt.set(`${name}\u0000${alert.kind}`, t);
  }
  const wait = num(given.longest_wait_seconds ?? given.longest_wait) ?? learnt.get(`${name}\u0000longest_wait`) ?? null;
  let sl = num(given.service_level ?? given.service_level_min) ?? learnt.get(`${name}\u0000service_level`) ?? null;
  if (sl !== null && sl > 1) sl /= 100; // a threshold written as 80 (%) rather than 0.8
  return { wait, sl };
}

// link_up false: the server lost the PBX; what it sends is the last known state.
export function linkDown(queue) {
  return Boolean(queue) && queue.link_up === false;
}

export function alertsOf(queue) {
  return queue && Array.isArray(queue.alerts) ? queue.alerts.filter((a) => a && typeof a === 'object') : [];
}

export function hasAlert(queue, kind) {
  return alertsOf(queue).some((a) => a.kind === kind);
}

// green / amber / red for the longest wait: red from the threshold on (or
// while the server says so), amber from three quarters of it.
export function waitLevel(queue, seconds) {
  if (hasAlert(queue, 'longest_wait')) return 'red';
  const { wait } = thresholds(queue);
  if (seconds === null || seconds === undefined) return 'green';
  if (wait === null) return 'green';
  if (seconds >= wait) return 'red';
  if (seconds >= wait * 0.75) return 'amber';
  return 'green';
}

// Service level: red under the threshold (or alert), amber within five
// points above it, green above; 'none' before the first call of the day.
export function slLevel(queue) {
  const sl = num(queue.today && queue.today.service_level);
  if (sl === null) return hasAlert(queue, 'service_level') ? 'red' : 'none';
  if (hasAlert(queue, 'service_level')) return 'red';
  const { sl: min } = thresholds(queue);
  if (min === null) return 'green';
  if (sl < min) return 'red';
  if (sl < min + 0.05) return 'amber';
  return 'green';
}

const RANK = { none: 0, green: 1, amber: 2, red: 3 };
export function worst(...levels) {
  return levels.reduce((a, b) => ((RANK[b] ?? 0) > (RANK[a] ?? 0) ? b : a), 'none');
}

export function percent(value) {
  const n = num(value);
  return n === null ? '–' : `${Math.round(Math.min(1, Math.max(0, n)) * 100)}%`;
}

export function seconds(value) {
  const n = num(value);
  return n === null ? '–' : duration(n);
}

// ------------------------------------------------------------------ ticking

// Elements with data-since (server time, ISO) show the time since then,
// refreshed by tick(); with data-warn/data-alarm (seconds) they also carry
// data-level, and every [data-level-host] takes the worst level inside it
// (plus its own data-base-level, set when it was drawn).
export function tick(root, clock) {
  const timed = [...root.querySelectorAll('[data-since]')];
  if (root.matches && root.matches('[data-since]')) timed.push(root);
  for (const node of timed) {
    const s = clock.elapsed(node.dataset.since);
    node.textContent = s === null ? '–' : duration(s);
    if (node.dataset.alarm) {
      const alarm = Number(node.dataset.alarm);
      const warn = Number(node.dataset.warn || alarm);
      const forced = node.dataset.forced === 'red';
      node.dataset.level = forced || (s !== null && s >= alarm) ? 'red' : s !== null && s >= warn ? 'amber' : 'green';
    }
  }
  const hosts = [...root.querySelectorAll('[data-level-host]')];
  if (root.matches && root.matches('[data-level-host]')) hosts.push(root);
  for (const host of hosts) {
    const levels = [...host.querySelectorAll('[data-level]')].map((n) => n.dataset.level);
    host.dataset.level = worst(host.dataset.baseLevel || 'none', ...levels);
  }
}

// A ticking time: `since` ISO or null (shows –).  thresholdSeconds: colour it.
export function ticker(since, cls, { alarm = null, forced = false } = {}) {
  const attrs = { class: `tick ${cls}`, role: 'timer' };
  if (since) attrs['data-since'] = since;
  if (alarm !== null) {
    attrs['data-alarm'] = String(alarm);
    attrs['data-warn'] = String(alarm * 0.75);
  }
  if (forced) attrs['data-forced'] = 'red';
  const node = el('span', attrs, '–');
  if (!since) node.dataset.level = forced ? 'red' : 'green';
  return node;
}

// ------------------------------------------------------------------ drawing

export function queuePath(name) {
  return `/supervisor/queues/${encodeURIComponent(String(name))}`;
}

export function agentPath(id) {
  return `/supervisor/agents/${encodeURIComponent(String(id))}`;
}

export function stateBadge(state, pauseReason) {
  const s = agentState(state);
  return el('span', { class: `state-badge state-${s}`, dataset: { state: s }, title: s === 'paused' && pauseReason ? `Paused: ${pauseReason}` : null },
    STATE_LABEL[s] || s,
    s === 'paused' && pauseReason ? text(` (${pauseReason})`, 'pause-reason') : null);
}

function stat(cls, value, label, level) {
  return el('div', { class: `stat ${cls}`, dataset: level ? { level } : {} },
    el('span', { class: 'stat-value' }, value),
    el('span', { class: 'stat-label' }, label));
}

// One queue as a tile: waiting, longest wait (ticking), service level,
// agents by state, today's numbers, alerts.  opts.link: the name links to
// the queue's page.  entry: {msg, receivedAt}.
export function queueTile(entry, clock, opts = {}) {
  const queue = entry.msg;
  const name = queueNameOf(queue) || '?';
  const today = queue.today && typeof queue.today === 'object' ? queue.today : {};
  const agents = queue.agents && typeof queue.agents === 'object' ? queue.agents : {};
  const alerts = alertsOf(queue);
  const { wait } = thresholds(queue);
  const since = longestWaitSince(queue, clock, entry.receivedAt);
  const sl = slLevel(queue);
  const waitForced = hasAlert(queue, 'longest_wait');
  const slThreshold = num(today.sl_threshold_seconds);

  const waitValue = ticker(since, 'longest-wait', { alarm: wait, forced: waitForced });
  const tile = el('article', {
    class: 'queue-tile',
    dataset: { queue: name, levelHost: '', baseLevel: alerts.length ? 'red' : sl === 'amber' ? 'amber' : 'green', alerts: String(alerts.length) },
  });
  // dom.js append: the sections a queue does not have (null) are skipped
  append(tile,
    el('header', { class: 'queue-tile-head' },
      opts.link ? el('a', { class: 'queue-name', href: queuePath(name) }, longText(name, 'queue-name-text'))
        : el('span', { class: 'queue-name' }, longText(name, 'queue-name-text')),
      alerts.length ? el('span', { class: 'alert-badge', title: alerts.map((a) => String(a.message || a.kind)).join('\n') }, `${alerts.length} alert${alerts.length > 1 ? 's' : ''}`) : null),
    el('div', { class: 'big-stats' },
      stat('stat-waiting', el('span', { class: 'waiting-count' }, String(waitingCount(queue))), 'waiting'),
      el('div', { class: 'stat stat-wait' }, el('span', { class: 'stat-value' }, waitValue), el('span', { class: 'stat-label' }, 'longest wait')),
      stat('stat-sl', el('span', { class: 'sl-value' }, percent(today.service_level)),
        slThreshold !== null ? `service level (${number(slThreshold)} s)` : 'service level', sl)),
    el('ul', { class: 'agent-counts', 'aria-label': 'Agents by state' },
      QUEUE_AGENT_STATES.map((s) => el('li', { class: `count-${s}`, dataset: { state: s } },
        el('strong', { class: 'count-value' }, String(num(agents[s]) ?? 0)), ' ', STATE_LABEL[s].toLowerCase())),
      num(agents.logged_in) !== null && el('li', { class: 'count-logged-in muted' }, `of ${num(agents.logged_in)} logged in`)),
    el('dl', { class: 'today-stats' },
      el('dt', {}, 'Offered'), el('dd', { class: 'today-offered' }, String(num(today.offered) ?? 0)),
      el('dt', {}, 'Answered'), el('dd', { class: 'today-answered' }, String(num(today.answered) ?? 0)),
      el('dt', {}, 'Abandoned'), el('dd', { class: 'today-abandoned' }, String(num(today.abandoned) ?? 0)),
      el('dt', {}, 'Avg wait'), el('dd', { class: 'today-avg-wait' }, seconds(today.avg_wait_seconds)),
      el('dt', {}, 'Avg talk'), el('dd', { class: 'today-avg-talk' }, seconds(today.avg_talk_seconds))));
  // The alerts' words are in the page's alert list; the tile has the badge and the colour.
  if (linkDown(queue)) {
    tile.dataset.link = 'down';
    tile.append(el('p', { class: 'link-down', role: 'note' }, 'PBX link down: last known state'));
  }
  return tile;
}

export function alertItem(queueName, alert, withQueue = false) {
  return el('li', { class: `alert alert-${String(alert.kind || 'other').replace(/[^a-z_]/g, '')}`, dataset: { queue: queueName, kind: String(alert.kind || '') } },
    withQueue ? el('strong', { class: 'alert-queue' }, longText(queueName)) : null,
    withQueue ? ': ' : null,
    text(alert.message || alertText(alert), 'alert-message'));
}

function alertText(alert) {
  const value = num(alert.value);
  const limit = num(alert.threshold);
  if (alert.kind === 'longest_wait') return `Longest wait ${seconds(value)} (limit ${seconds(limit)})`;
  if (alert.kind === 'service_level') return `Service level ${percent(value)} (minimum ${percent(limit)})`;
  return String(alert.kind || 'alert');
}

// One agent's current call in a line: number, customer, queue.
export function callSummary(call) {
  if (!call || typeof call !== 'object') return null;
  return el('span', { class: 'call-summary' },
    text(call.caller_display || call.caller_number || 'withheld', 'call-number'),
    call.customer_name ? ' · ' : null,
    call.customer_name ? longText(call.customer_name, 'call-customer') : null,
    call.queue ? text(` (${call.queue})`, 'call-queue muted') : null);
}

// One agent as a table row: name (to the agent's page), state, time in
// state (ticking), queues, current call, today's numbers.
// opts.queues / opts.talk: include those columns.
export function agentRow(entry, opts = {}) {
  const agent = entry.msg;
  const id = agentIdOf(agent) || '?';
  const state = agentState(agent.state);
  const today = agent.today && typeof agent.today === 'object' ? agent.today : {};
  const queues = Array.isArray(agent.queues) ? agent.queues.map(String) : [];
  return el('tr', { class: `agent-row state-row-${state}`, dataset: { agentId: id, state } },
    el('td', { class: 'col-agent-name' },
      el('a', { class: 'agent-link', href: agentPath(id) }, longText(agent.name || id, 'agent-name')),
      agent.name ? text(id, 'agent-id muted') : null),
    el('td', { class: 'col-state' }, stateBadge(state, agent.pause_reason)),
    el('td', { class: 'col-num col-in-state' }, ticker(agent.since || null, 'in-state')),
    opts.queues ? el('td', { class: 'col-agent-queues' }, queueLinks(queues)) : null,
    el('td', { class: 'col-current' }, callSummary(agent.call)),
    el('td', { class: 'col-num agent-answered' }, String(num(today.answered) ?? 0)),
    opts.talk ? el('td', { class: 'col-num agent-talk' }, seconds(today.talk_seconds ?? 0)) : null);
}

export function queueLinks(names) {
  const box = el('span', { class: 'queue-links' });
  names.forEach((name, i) => {
    if (i) box.append(', ');
    box.append(el('a', { href: queuePath(name) }, text(name, 'queue-link')));
  });
  return box;
}

// Agents in a stable order (by id, numerically when they are numbers), so
// rows do not jump around as states change.
export function compareAgentIds(a, b) {
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function agentRowOf(tbody, id) {
  return [...tbody.children].find((r) => r.dataset.agentId === id);
}

// Insert or replace the row of one agent in a tbody kept in id order.
export function placeRow(tbody, row, id) {
  const old = agentRowOf(tbody, id);
  if (old) {
    old.replaceWith(row);
    return;
  }
  const after = [...tbody.children].find((r) => compareAgentIds(r.dataset.agentId, id) > 0);
  tbody.insertBefore(row, after || null);
}

export function removeRow(tbody, id) {
  const old = agentRowOf(tbody, id);
  if (old) old.remove();
}

// "3 available · 2 on call · 1 paused" over a set of agent messages.
export function stateSummary(entries) {
  const counts = new Map();
  for (const entry of entries) {
    const s = agentState(entry.msg.state);
    counts.set(s, (counts.get(s) || 0) + 1);
  }
  return AGENT_STATES.filter((s) => counts.get(s)).map((s) => `${counts.get(s)} ${STATE_LABEL[s].toLowerCase()}`).join(' · ');
}
