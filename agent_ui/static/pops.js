// One pop on the agent desktop: a header the agent can read at a glance
// (state, caller, who it probably is) and the full card below it.
//
// A ringing pop always shows its whole card: the agent reads who is calling
// before answering, whatever else is on screen (a wrap-up, another call
// ringing).  Of the other pops only the focused one shows its body, the
// rest their header, so a 1366×768 screen never becomes a wall of finished
// calls.  Clicking a header focuses that pop.  Numbers are shown as the
// server wrote them for the agent's region (caller.display,
// card.caller_display); the raw number stays for links and matching.

import { el, text, longText, plain } from './dom.js';
import { dateTime } from './format.js';
import { renderCard, missingSources, possibleBadge } from './card.js';

const STATE_LABEL = {
  ringing: 'Ringing',
  missed: 'Missed: caller still waiting in the queue',
  answered: 'On call',
  wrapup: 'Ended: outcome needed',
  transferred: 'Transferred',
};

// call: the desktop's record of one call (see agent.js).
// actions: onFocus(call), onChoose(call, index), onClose(call),
// createContactUrl, dispositionLabel.
export function renderPop(call, focused, actions) {
  const open = focused || call.state === 'ringing';
  const pop = el('article', {
    class: `pop pop-${call.state}${focused ? ' is-focused' : ''}${open ? ' is-open' : ''}`,
    dataset: { callId: call.call_id, state: call.state },
    'aria-label': `Call from ${callerDisplay(call) || 'withheld number'}`,
  });
  pop.append(renderHeader(call, open, actions));
  const body = el('div', { class: 'pop-body' });
  const notes = renderNotes(call.notes);
  if (notes) body.append(notes);
  body.append(renderCard(call.card, {
    chosen: call.chosen,
    onChoose: (index) => actions.onChoose(call, index),
    createContactUrl: actions.createContactUrl,
    agentId: actions.agentId,
    callerNumber: callerNumber(call),
    dispositionLabel: actions.dispositionLabel,
  }));
  pop.append(body);
  return pop;
}

export function callerNumber(call) {
  const caller = call.caller || {};
  return caller.number || (call.card && call.card.caller_number) || null;
}

// The number as the agent reads it ('912 34 56 78', '+1 415-555-0100').
export function callerDisplay(call) {
  const caller = call.caller || {};
  return caller.display || (call.card && call.card.caller_display) || callerNumber(call);
}

// The same name to a reader, case and spaces aside (customer_lookup/display.py same_name).
export function sameName(a, b) {
  if (!a || !b) return false;
  const squash = (v) => String(v).replace(/\s+/g, '').toLocaleLowerCase();
  return squash(a) === squash(b);
}

// Ringing calls first, then the call in progress, the calls owing an
// outcome, transferred ones; within a state, in the order they came (a
// card does not jump while the agent reads it).
const STATE_ORDER = { ringing: 0, missed: 1, answered: 1, wrapup: 2, transferred: 3 };
export function displayOrder(calls) {
  const rank = (call) => STATE_ORDER[call.state] ?? 4;
  return [...calls].map((call, i) => ({ call, i }))
    .sort((a, b) => rank(a.call) - rank(b.call) || a.i - b.i)
    .map((x) => x.call);
}

// Who the card says is calling, in a few words, for the header.
export function summary(call) {
  const card = call.card;
  if (!card) return { text: 'No customer data', vip: false };
  const persons = Array.isArray(card.persons) ? card.persons : [];
  if (card.status === 'known' && persons[0]) return { text: persons[0].name || '(no name)', vip: !!persons[0].vip, person: persons[0] };
  if (card.status === 'multiple') {
    const chosen = persons[call.chosen];
    if (chosen) return { text: chosen.name || '(no name)', vip: !!chosen.vip, person: chosen };
    return { text: `${persons.length} possible customers`, vip: false };
  }
  if (card.status === 'withheld') return { text: 'Withheld number', vip: false };
  return { text: 'New caller', vip: false };
}

function renderHeader(call, open, actions) {
  const caller = call.caller || {};
  const number = callerDisplay(call);
  const who = summary(call);
  let stateText = STATE_LABEL[call.state] || call.state;
  if (call.state === 'transferred' && call.transferredTo) stateText = `Transferred to ${plain(call.transferredTo, 64)}`;

  const header = el('header', { class: 'pop-header' });
  // The header is a button-like region: keyboard users focus a pop with Enter.
  const main = el('div', {
    class: 'pop-head-main', role: 'button', tabindex: '0', 'aria-expanded': open ? 'true' : 'false',
    onclick: () => actions.onFocus(call),
    onkeydown: (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        actions.onFocus(call);
      }
    },
  },
  el('span', { class: 'pop-state' }, stateText),
  el('span', { class: 'pop-caller' },
    longText(number || 'Withheld', 'pop-caller-number'),
    // The caller-ID name only when it says more than the customer's name beside it.
    caller.name && !sameName(caller.name, who.text) && longText(caller.name, 'pop-caller-name muted')),
  el('span', { class: 'pop-who' }, longText(who.text, 'pop-summary'), who.vip && el('span', { class: 'badge badge-vip' }, 'VIP'), possibleBadge(who.person)),
  missingBadge(call.card),
  call.queue && el('span', { class: 'pop-queue muted' }, 'queue ', text(call.queue, 'queue-name')));
  header.append(main);

  if (call.transferredFrom) {
    header.append(el('p', { class: 'pop-transferred-from muted' }, 'Transferred from agent ', text(call.transferredFrom)));
  }
  if (call.state === 'transferred') {
    header.append(el('button', { type: 'button', class: 'pop-close', onclick: () => actions.onClose(call) }, 'Close'));
  }
  return header;
}

// Visible even on a folded pop: "2 sources missing", names in the tooltip.
function missingBadge(card) {
  const names = missingSources(card);
  if (!names.length) return null;
  return el('span', { class: 'badge badge-missing', title: names.join(', ') },
    names.length === 1 ? `${plain(names[0], 40)} missing` : `${names.length} sources missing`);
}

// Notes other people added to this call while it was in progress.
function renderNotes(notes) {
  if (!Array.isArray(notes) || !notes.length) return null;
  const list = el('ul', { class: 'pop-notes' });
  for (const note of notes.slice(-5)) {
    if (note && typeof note === 'object') {
      const author = note.author || note.by || note.username;
      const at = note.created_at || note.at || note.ts;
      list.append(el('li', {},
        author && text(`${plain(author, 64)}: `, 'note-author'),
        longText(plain(note.text ?? note.note ?? note, 1000), 'note-text'),
        at && el('span', { class: 'muted' }, ' ', dateTime(at))));
    } else {
      list.append(el('li', {}, longText(plain(note, 1000), 'note-text')));
    }
  }
  return el('div', { class: 'pop-notes-box' }, el('h4', {}, 'Notes on this call'), list);
}
