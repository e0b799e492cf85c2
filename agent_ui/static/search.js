// Interaction search: the form's fields become the query of
// GET /api/v1/interactions, the JSON {items: [...]} become table rows.
//
// The form is a plain GET form, so the search lives in the address bar:
// reloading, bookmarking or sending the link to a colleague repeats it,
// page included (offset).  The API's `total` gives "of N"; we also ask for
// one row more than a page, so "Older" works even without a total.  Every
// cell is filled with textContent.

import { el, text, longText, clear, byId, plain } from './dom.js';
import { dateTime, date, duration } from './format.js';
import { getJSON, callPath } from './api.js';
import { dispositionLabel } from './outcome.js';
import { ensureDispositions } from './ui-config.js';

const FIELDS = ['number', 'customer', 'agent', 'since', 'until', 'disposition'];
export const PAGE = 50;

const form = byId('search-form');
const statusLine = byId('search-status');
const tbody = byId('results-body');
const table = byId('results');
const prev = byId('page-prev');
const next = byId('page-next');
const pageInfo = byId('page-info');
const dispositionSelect = form.elements.disposition;

let latest = 0; // only the answer to the newest search is shown
let offset = 0;

function paramsFromForm() {
  const params = new URLSearchParams();
  for (const name of FIELDS) {
    const value = (form.elements[name].value || '').trim();
    if (value) params.set(name, value);
  }
  return params;
}

function fillForm(params) {
  for (const name of FIELDS) {
    if (params.has(name)) form.elements[name].value = params.get(name);
  }
  const n = Number.parseInt(params.get('offset') || '0', 10);
  offset = Number.isFinite(n) && n > 0 ? n : 0;
}

// "Until 2026-11-23" means the whole of that day: the API takes dates and
// treats `until` as inclusive; we pass the dates as typed.
async function search() {
  const mine = ++latest;
  const params = paramsFromForm();
  if (offset) params.set('offset', String(offset));
  const address = params.toString();
  history.replaceState(null, '', address ? `?${address}` : location.pathname);
  params.set('limit', String(PAGE + 1));
  statusLine.textContent = 'Searching…';
  table.setAttribute('aria-busy', 'true');
  const result = await getJSON(`/api/v1/interactions?${params}`);
  if (mine !== latest) return;
  table.removeAttribute('aria-busy');
  clear(tbody);
  if (!result.ok) {
    clear(statusLine).append(el('span', { class: 'error' }, 'Search failed: ', text(result.error)));
    setPager(false);
    return;
  }
  const all = result.data && Array.isArray(result.data.items) ? result.data.items.filter((i) => i && typeof i === 'object') : [];
  const items = all.slice(0, PAGE);
  for (const item of items) tbody.append(row(item));
  const total = result.data && Number.isInteger(result.data.total) ? result.data.total : null;
  const more = all.length > PAGE || (total !== null && offset + items.length < total);
  statusLine.textContent = items.length === 0
    ? (offset ? 'No more calls.' : 'No calls match.')
    : `Calls ${offset + 1}–${offset + items.length}${total !== null ? ` of ${total}` : ''}, newest first.`;
  setPager(more);
}

function setPager(more) {
  prev.disabled = offset === 0;
  next.disabled = !more;
  pageInfo.textContent = offset || more ? `Page ${Math.floor(offset / PAGE) + 1}` : '';
}

function row(item) {
  const when = item.queued_at || item.first_ring_at || item.started_at || item.ended_at;
  const href = `/interactions/${callPath(item.call_id)}`;
  return el('tr', { dataset: { callId: String(item.call_id ?? '') } },
    el('td', { class: 'col-when' }, el('a', { class: 'call-link', href }, when ? dateTime(when) : plain(item.call_id, 64))),
    el('td', { class: 'col-number' }, text(item.caller_display || item.caller_number || 'withheld', 'caller-number')),
    el('td', { class: 'col-customer' }, longText(item.customer_name || '', 'customer-name')),
    el('td', { class: 'col-queue' }, text(item.queue || '')),
    el('td', { class: 'col-agent' }, text(item.answered_by || '')),
    el('td', { class: 'col-num col-wait' }, item.wait_seconds != null ? duration(item.wait_seconds) : ''),
    el('td', { class: 'col-num col-talk' }, item.talk_seconds != null ? duration(item.talk_seconds) : ''),
    el('td', { class: 'col-end' }, text(item.end_reason || '')),
    el('td', { class: 'col-disposition' }, text(item.disposition ? dispositionLabel(dispositionSelect, String(item.disposition)) : '', 'disposition')),
    el('td', { class: 'col-notes' }, longText(latestNote(item.notes), 'notes')),
    el('td', { class: 'col-follow-up' }, item.follow_up ? date(item.follow_up) : ''));
}

// The record's notes are a list of {author, text, created_at}, oldest
// first: the table shows the newest and how many there are.
function latestNote(notes) {
  if (typeof notes === 'string') return plain(notes, 500);
  if (!Array.isArray(notes) || !notes.length) return '';
  const last = notes[notes.length - 1];
  const body = plain(last && typeof last === 'object' ? last.text : last, 500);
  return notes.length > 1 ? `${body} (+${notes.length - 1} earlier)` : body;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  offset = 0; // a new search starts at the newest calls
  search();
});
byId('search-clear').addEventListener('click', () => {
  for (const name of FIELDS) form.elements[name].value = '';
  offset = 0;
  search();
});
prev.addEventListener('click', () => {
  offset = Math.max(0, offset - PAGE);
  search();
});
next.addEventListener('click', () => {
  offset += PAGE;
  search();
});

fillForm(new URLSearchParams(location.search));
// A late-filled <select> (ui-config.js) could not take the address's value yet.
ensureDispositions(dispositionSelect).then((added) => {
  const wanted = new URLSearchParams(location.search).get('disposition');
  if (added.size && wanted) dispositionSelect.value = wanted;
});
search();

window.screenpop = Object.freeze({
  get searches() { return latest; },
  get offset() { return offset; },
});
