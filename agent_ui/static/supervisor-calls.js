// Today's calls on the two drill-down pages (one queue, one agent): the list
// in #calls-body (markup: the calls_today macro of _supervisor.html), from
// the page's REST address, GET /api/v1/queues/{queue} or
// GET /api/v1/agents/{agent_id}.
//
// Not polled: the page loads it again (schedule()) when its feed says a
// call was answered, ended or got its outcome.  One copy for both pages so
// that the retry, the last-answer-wins and the "not known yet" rules are
// the same on both.  Every value is data: dom.js (textContent) only.

import { el, text, longText, clear, byId } from './dom.js';
import { dateTime, duration } from './format.js';
import { getJSON, callPath } from './api.js';

export class CallsToday {
  // url: the REST address; noun: what the page is of ('queue', 'agent'),
  // for "No such …"; onData(data): the page's own use of a good answer,
  // before the list is drawn (showing the header when the REST answer
  // comes before the socket's replay); row(item): one call as a <tr>
  // (callRow).
  constructor({ url, noun, onData, row }) {
    this.url = url;
    this.noun = noun;
    this.onData = onData;
    this.row = row;
    this.body = byId('calls-body');
    this.status = byId('calls-status');
    this.timer = null;
    this.latest = 0;
    // 404 at the last load: not known yet (a queue or agent with no call
    // since the server started); the page loads again on the first feed
    // message about it.
    this.missing = false;
    this.loaded = 0; // lists drawn, for the tests (window.screenpop.callsLoaded)
  }

  // A burst of feed messages costs one request.
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 800);
  }

  async load() {
    const mine = ++this.latest;
    const result = await getJSON(this.url);
    if (mine !== this.latest) return; // a newer load is under way: its answer wins
    if (!result.ok) {
      // storage busy or the server restarting: try again by itself
      if (result.status === 0 || result.status >= 500) this.timer = setTimeout(() => this.load(), 5000);
      this.missing = result.status === 404;
      clear(this.status).append(el('span', { class: 'error' },
        result.status === 404 ? `No such ${this.noun}.` : 'Could not load today\'s calls: ', result.status === 404 ? null : text(result.error)));
      return;
    }
    this.missing = false;
    const data = result.data && typeof result.data === 'object' ? result.data : {};
    this.onData(data);
    const calls = Array.isArray(data.calls_today) ? data.calls_today.filter((c) => c && typeof c === 'object') : [];
    clear(this.body);
    for (const call of calls) this.body.append(this.row(call));
    this.loaded += 1;
    this.status.textContent = calls.length ? `${calls.length} call${calls.length > 1 ? 's' : ''} today, newest first.` : 'No calls today yet.';
  }
}

// One call of the list as a row: when (linking to the call's record; its
// id when there is no time), caller, customer, `party` (the page's own
// column: the agent who took it on a queue's page, the queue on an
// agent's), wait, talk, how it ended, then `more` (the outcome and what
// else the page shows).
export function callRow(item, when, party, ...more) {
  return el('tr', { dataset: { callId: String(item.call_id ?? '') } },
    el('td', { class: 'col-when' }, el('a', { class: 'call-link', href: `/interactions/${callPath(item.call_id)}` }, when ? dateTime(when) : String(item.call_id ?? ''))),
    el('td', { class: 'col-number' }, text(item.caller_number || 'withheld', 'caller-number')),
    el('td', { class: 'col-customer' }, longText(item.customer_name || '', 'customer-name')),
    party,
    el('td', { class: 'col-num' }, item.wait_seconds != null ? duration(item.wait_seconds) : ''),
    el('td', { class: 'col-num' }, item.talk_seconds != null ? duration(item.talk_seconds) : ''),
    el('td', { class: 'col-end' }, text(item.end_reason || (item.ended_at ? '' : 'in progress'), 'end-reason')),
    ...more);
}
