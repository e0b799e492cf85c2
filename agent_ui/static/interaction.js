// One interaction's page: the server sent a shell with the call id; this
// loads GET /api/v1/interactions/{call_id}, fills the panels with DOM APIs,
// and lets support staff add notes and set or change the outcome.
//
// Expected answer: the interaction record (InteractionRecord.to_dict():
// call_id, caller_number, caller_e164, customer_name, queue, agents_rung,
// answered_by, transfers, queued_at, answered_at, ended_at, wait_seconds,
// talk_seconds, end_reason, disposition, follow_up, outcome_by, outcome_at,
// and `notes`: [{id, author, text, created_at}], oldest first).  The outcome
// form's notes are stored as one more note by the server, so after a save
// the note list is redrawn from the answer and the form's notes emptied.

import { el, text, longText, byId, clear, plain } from './dom.js';
import { dateTime, date, duration } from './format.js';
import { getJSON, postJSON, callPath } from './api.js';
import { OutcomeForm, dispositionLabel } from './outcome.js';
import { ensureDispositions } from './ui-config.js';

const page = byId('interaction');
const callId = page.dataset.callId;
const author = page.dataset.author || '';
const grid = byId('interaction-grid');
const loadStatus = byId('load-status');
const notesList = byId('notes-list');
const noteForm = byId('note-form');
const noteText = byId('note-text');
const noteError = byId('note-error');
const noteSubmit = noteForm.querySelector('[type="submit"]');
const saved = byId('outcome-saved');
const dispositionSelect = byId('outcome-disposition');
const url = `/api/v1/interactions/${callPath(callId)}`;

let record = null;

// ---------------------------------------------------------------- loading

async function load() {
  const [result] = await Promise.all([getJSON(url), ensureDispositions(dispositionSelect)]);
  if (!result.ok || !result.data || typeof result.data !== 'object') {
    loadStatus.textContent = result.status === 404 ? 'No call with this id.' : `Could not load the call: ${result.error || 'empty answer'}`;
    loadStatus.classList.add('error');
    return;
  }
  record = result.data.interaction && typeof result.data.interaction === 'object' ? result.data.interaction : result.data;
  loadStatus.hidden = true;
  grid.hidden = false;
  renderDetails(record);
  showOutcome(record);
  renderNotes(noteListOf(result.data));
  outcome.open(callId, { disposition: record.disposition, notes: outcomeNotes(record), follow_up: record.follow_up });
}

function noteListOf(data) {
  for (const candidate of [data.notes, data.note_list, data.interaction && data.interaction.notes]) {
    if (Array.isArray(candidate)) return candidate;
  }
  return [];
}

// An older API shape kept the outcome's notes as one string on the record.
function outcomeNotes(r) {
  return typeof r.notes === 'string' ? r.notes : '';
}

// ---------------------------------------------------------------- details

function renderDetails(r) {
  clear(byId('i-caller')).append(r.caller_display || r.caller_number || 'withheld number');
  document.title = `Call from ${r.caller_display || r.caller_number || 'withheld number'} · screenpop`;
  const dl = clear(byId('i-details'));
  const row = (label, ...value) => dl.append(el('dt', {}, label), el('dd', {}, ...value));
  const time = (v) => (v ? el('time', { datetime: String(v), title: String(v) }, dateTime(v)) : dash());
  row('Customer', r.customer_name ? longText(r.customer_name, 'customer-name') : text('not identified', 'muted'));
  row('Number', text(r.caller_number || 'withheld'),
    r.caller_e164 && r.caller_e164 !== r.caller_number && text(` (${r.caller_e164})`, 'muted'));
  if (r.caller_name) row('Caller ID name', longText(r.caller_name));
  row('Queue', r.queue ? text(r.queue) : dash());
  if (Array.isArray(r.agents_rung) && r.agents_rung.length) row('Rang', text(r.agents_rung.map((a) => plain(a, 32)).join(', ')));
  row('Answered by', r.answered_by ? text(r.answered_by) : text('nobody', 'muted'));
  if (Array.isArray(r.transfers) && r.transfers.length) {
    row('Transfers', text(r.transfers.filter((t) => t && typeof t === 'object')
      .map((t) => `${plain(t.from_agent || '?', 32)} → ${plain(t.to_agent || t.to_queue || t.to_number || '?', 64)}`).join(', ')));
  }
  row('Queued', time(r.queued_at));
  row('Answered', time(r.answered_at));
  row('Ended', time(r.ended_at));
  row('Wait', r.wait_seconds != null ? duration(r.wait_seconds) : dash());
  row('Talk', r.talk_seconds != null ? duration(r.talk_seconds) : dash());
  row('End', r.end_reason ? text(r.end_reason) : dash());
  row('Call id', text(r.call_id ?? callId, 'mono'));
}

function dash() {
  return el('span', { class: 'muted' }, '–');
}

// ---------------------------------------------------------------- notes

function renderNotes(notes) {
  clear(notesList);
  const items = notes.filter((n) => n !== null && n !== undefined);
  if (!items.length) notesList.append(el('li', { id: 'notes-empty', class: 'muted' }, 'No notes yet.'));
  for (const note of items) {
    if (typeof note === 'object') notesList.append(noteItem(note.text, note.author, note.created_at));
    else notesList.append(noteItem(note, null, null));
  }
}

function noteItem(body, by, at) {
  return el('li', { class: 'note' },
    (by || at) && el('div', { class: 'note-meta muted' },
      by && text(by, 'note-author'), by && at && ' · ', at && el('time', { datetime: String(at), title: String(at) }, dateTime(at))),
    longText(plain(body, 10000), 'note-text note-body', 'div'));
}

noteForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const value = noteText.value;
  if (!value.trim()) {
    showNoteError('Write something first.');
    return;
  }
  noteSubmit.disabled = true;
  showNoteError('');
  const result = await postJSON(`${url}/notes`, { text: value });
  noteSubmit.disabled = false;
  if (!result.ok) {
    showNoteError(result.error);
    return;
  }
  const note = result.data && typeof result.data === 'object' ? result.data : {};
  byId('notes-empty')?.remove();
  notesList.append(noteItem(note.text ?? value, note.author || author, note.created_at || new Date().toISOString()));
  noteText.value = '';
});

function showNoteError(message) {
  noteError.textContent = message || '';
  noteError.hidden = !message;
}

// ---------------------------------------------------------------- outcome

const outcome = new OutcomeForm(byId('outcome-form'), {
  onSaved: (id, data) => {
    // The API answers with the updated interaction; without one, show what we sent.
    const answered = data && typeof data === 'object' && 'disposition' in data;
    const values = answered ? data : { ...outcome.body(), outcome_by: author };
    showOutcome(values);
    if (answered && Array.isArray(data.notes)) renderNotes(data.notes);
    saved.hidden = false;
    setTimeout(() => { saved.hidden = true; }, 4000);
    outcome.open(id, { disposition: values.disposition, notes: outcomeNotes(values), follow_up: values.follow_up });
  },
});

function showOutcome(values) {
  byId('current-disposition').textContent = values.disposition ? dispositionLabel(dispositionSelect, String(values.disposition)) : 'none yet';
  byId('current-follow-up').textContent = values.follow_up ? date(values.follow_up) : 'none';
  const by = clear(byId('current-by'));
  if (values.outcome_by || values.outcome_at) {
    by.append(values.outcome_by ? text(values.outcome_by) : '', values.outcome_by && values.outcome_at ? ' · ' : '',
      values.outcome_at ? dateTime(values.outcome_at) : '');
  } else {
    by.append('–');
  }
  const notes = byId('current-notes');
  notes.textContent = outcomeNotes(values);
  notes.hidden = !notes.textContent;
}

load();

window.screenpop = Object.freeze({
  callId,
  get loaded() { return record !== null; },
});
