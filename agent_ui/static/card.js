// The customer card (customer_lookup/card.py) as DOM, nothing else.
//
// renderCard() is pure rendering: it takes the card dict of a pop and
// returns a fresh element; the desktop (agent.js) decides where it goes and
// re-renders on 'card' updates.  Business systems put what they like in
// their records, so every field is optional and every list may turn out to
// be a string: odd data renders as text, it never throws.
//
// Every amount is shown with its currency: the item's own, else the one
// the person's accounts use (cardCurrency); an amount whose currency no
// system gave says so rather than passing for one.

import { el, append, text, longText, plain } from './dom.js';
import { money, dateTime, date, amountValue } from './format.js';

const MISSING = new Set(['timeout', 'error', 'skipped', 'pending']);
const MAX_ROWS = 5;

// opts: chosen (index of the candidate picked on a 'multiple' card),
// onChoose(index), createContactUrl ('https://crm/new?phone={number}'),
// callerNumber (fallback for the link), dispositionLabel(code) -> text.
export function renderCard(card, opts = {}) {
  const root = el('div', { class: 'card' });
  if (!card || typeof card !== 'object') {
    root.append(el('p', { class: 'card-none' }, 'No customer data for this call (the lookup did not answer).'));
    return root;
  }
  root.dataset.status = String(card.status || '');
  // What is missing goes first: the agent must know the card is incomplete
  // before reading "no open tickets" as a fact.
  const missing = renderMissing(card);
  if (missing) root.append(missing);
  const persons = Array.isArray(card.persons) ? card.persons.filter((p) => p && typeof p === 'object') : [];

  if (card.status === 'known' && persons.length) {
    root.append(renderPerson(persons[0], opts));
  } else if (card.status === 'multiple' && persons.length) {
    root.append(renderChooser(persons, opts));
    const chosen = persons[opts.chosen];
    if (chosen) root.append(renderPerson(chosen, opts));
  } else if (card.status === 'withheld') {
    root.append(el('div', { class: 'customer withheld' }, el('h3', { class: 'customer-name' }, 'Withheld number'),
      el('p', { class: 'muted' }, 'The caller hid their number: ask who is calling.')));
  } else {
    root.append(renderNewCaller(card, opts));
  }
  return root;
}

function renderNewCaller(card, opts) {
  const box = el('div', { class: 'customer new-caller' }, el('h3', { class: 'customer-name' }, 'New caller'));
  box.append(el('p', { class: 'muted' }, 'No customer has this number.'));
  const href = contactLink(opts.createContactUrl, card.e164 || card.caller_number || opts.callerNumber);
  if (href) {
    box.append(el('a', { class: 'create-contact button', href, target: '_blank', rel: 'noopener noreferrer' }, 'Create contact'));
  }
  return box;
}

// The template comes from the server's config; the number is data, so it is
// URL-encoded, and only http(s) results are linked (no javascript: URLs).
export function contactLink(template, number) {
  if (!template || !number) return null;
  const filled = String(template).split('{number}').join(encodeURIComponent(String(number)));
  try {
    const url = new URL(filled, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function renderChooser(persons, opts) {
  const list = el('ul', { class: 'chooser' });
  persons.forEach((person, index) => {
    const pressed = opts.chosen === index;
    const button = el('button', {
      type: 'button',
      class: pressed ? 'candidate is-chosen' : 'candidate',
      'aria-pressed': pressed ? 'true' : 'false',
      dataset: { index: String(index) },
      onclick: () => opts.onChoose && opts.onChoose(index),
    },
    longText(person.name || '(no name)', 'candidate-name'),
    person.vip && el('span', { class: 'badge badge-vip' }, 'VIP'),
    possibleBadge(person),
    (person.company || person.email) && text([person.company, person.email].filter(Boolean).join(' · '), 'candidate-detail muted'));
    list.append(el('li', {}, button));
  });
  return el('div', { class: 'customer multiple' },
    el('h3', { class: 'chooser-title' }, `${persons.length} customers use this number: who is calling?`),
    list);
}

function renderPerson(person, opts) {
  const box = el('div', { class: 'person' });
  const flags = Array.isArray(person.flags) ? person.flags : [];
  box.append(el('div', { class: 'customer known' },
    el('h3', { class: 'customer-title' },
      longText(person.name || '(no name)', 'customer-name'),
      person.vip && el('span', { class: 'badge badge-vip', title: 'VIP customer' }, 'VIP'),
      flags.map((flag) => text(plain(flag, 60), 'badge badge-flag')),
      possibleBadge(person)),
    (person.company || person.email) && el('p', { class: 'customer-meta' },
      person.company && longText(person.company, 'company'),
      person.company && person.email && ' · ',
      person.email && longText(person.email, 'email')),
    possibleNote(person)));

  const grid = el('div', { class: 'card-grid' });
  const currency = cardCurrency(person);
  // The dom.js append skips the sections a person does not have (null);
  // the native one would print them as the word "null".
  append(grid,
    renderBilling(person.billing, currency),
    renderSales(person.sales, currency),
    renderSupport(person.support),
    renderHistory(person.history, opts),
    renderExtra(person));
  box.append(grid);
  return box;
}

// The currency of a person's amounts when an amount does not name its own:
// the billing account's, the sales record's, else the one its orders use.
export function cardCurrency(person) {
  const billing = person.billing && typeof person.billing === 'object' ? person.billing : {};
  const sales = person.sales && typeof person.sales === 'object' ? person.sales : {};
  const orders = listOf(pick(sales, 'orders', 'recent_orders')).items;
  const own = orders.find((o) => o && typeof o === 'object' && o.currency);
  return billing.currency || sales.currency || (own && own.currency) || null;
}

// money() with the fallback currency, and a visible "currency unknown"
// when there is none: a bare 1,234.50 would be read as the agent's own.
function amount(value, currency) {
  if (currency) return money(value, currency);
  return `${money(value, null)} (currency unknown)`;
}

// A person found only by the last digits of a number a system stored
// without its country code (customer_lookup: person.match 'possible'):
// likely the caller, not certainly; the agent checks before trusting it.
const POSSIBLE_WHY = 'Found only by the last digits of a number stored without its country code: check who is calling.';
export function possibleBadge(person) {
  if (!person || person.match !== 'possible') return null;
  return el('span', { class: 'badge badge-possible', title: POSSIBLE_WHY }, 'possible match');
}

// A sure person with some records found that way: which systems' records.
function possibleNote(person) {
  if (person.match === 'possible' || !person.possible || typeof person.possible !== 'object') return null;
  const sources = Object.keys(person.possible).filter((name) => Array.isArray(person.possible[name]) && person.possible[name].length);
  if (!sources.length) return null;
  return el('p', { class: 'possible-note muted', title: POSSIBLE_WHY }, 'Possible match only: ', text(sources.join(', '), 'possible-sources'), ' record');
}

function section(cls, title, ...children) {
  return el('section', { class: `card-section ${cls}` }, el('h4', {}, title), ...children);
}

function pick(obj, ...keys) {
  for (const key of keys) {
    const value = obj[key];
    if (value !== null && value !== undefined && value !== '') return value;
  }
  return null;
}

// A list column from a record: a real array, or a string that never became
// one (merge.py keeps undecodable JSON text as it was).
function listOf(value) {
  if (Array.isArray(value)) return { items: value, raw: null };
  if (value === null || value === undefined || value === '') return { items: [], raw: null };
  return { items: [], raw: plain(value, 200) };
}

function rows(cls, items, renderItem, emptyText) {
  const list = el('ul', { class: `rows ${cls}` });
  if (!items.length) list.append(el('li', { class: 'empty muted' }, emptyText));
  for (const item of items.slice(0, MAX_ROWS)) {
    list.append(el('li', {}, item && typeof item === 'object' ? renderItem(item) : text(plain(item))));
  }
  if (items.length > MAX_ROWS) list.append(el('li', { class: 'more muted' }, `and ${items.length - MAX_ROWS} more`));
  return list;
}

function renderBilling(billing, fallback) {
  if (!billing || typeof billing !== 'object') return null;
  const currency = billing.currency || fallback || null;
  const balance = billing.balance;
  const overdue = pick(billing, 'overdue_amount', 'overdue');
  const account = pick(billing, 'account', 'account_no', 'billing_account');
  const asOf = pick(billing, 'balance_as_of', 'as_of');
  const invoices = listOf(billing.invoices);
  return section('billing', 'Balance',
    balance !== null && balance !== undefined && el('p', { class: amountValue(balance) < 0 ? 'balance credit' : 'balance' },
      text(amount(balance, currency), 'balance-amount')),
    asOf && el('p', { class: 'as-of muted' }, 'as of ', el('time', { datetime: String(asOf) }, dateTime(asOf))),
    overdue !== null && amountValue(overdue) > 0 && el('p', { class: 'overdue' }, 'Overdue ', text(amount(overdue, currency), 'overdue-amount')),
    overdue !== null && amountValue(overdue) <= 0 && el('p', { class: 'not-overdue muted' }, 'Nothing overdue'),
    account !== null && el('p', { class: 'account muted' }, 'Account ', text(account, 'account-id')),
    billing.credit_limit !== undefined && billing.credit_limit !== null && el('p', { class: 'muted' }, 'Credit limit ', text(amount(billing.credit_limit, currency))),
    invoices.items.length ? rows('invoices', invoices.items, (inv) => invoiceLine(inv, currency), '') : null,
    invoices.raw && el('p', { class: 'raw muted' }, text(invoices.raw)));
}

function invoiceLine(inv, currency) {
  const id = pick(inv, 'number', 'id', 'invoice', 'reference');
  const due = pick(inv, 'due_date', 'due', 'date');
  const total = pick(inv, 'amount', 'total', 'balance');
  const status = pick(inv, 'status', 'state');
  return joinParts(id !== null && text(`#${plain(id, 40)}`, 'ref'), due && text(`due ${date(due)}`),
    total !== null && text(amount(total, inv.currency || currency), 'amount'), status && text(plain(status, 40), 'state'));
}

function renderSales(sales, fallback) {
  if (!sales || typeof sales !== 'object') return null;
  const orders = listOf(pick(sales, 'orders', 'recent_orders'));
  const currency = sales.currency || fallback || null;
  return section('sales', 'Recent orders',
    sales.lifetime_value !== undefined && sales.lifetime_value !== null &&
      el('p', { class: 'lifetime muted' }, 'Lifetime value ', text(amount(sales.lifetime_value, currency), 'lifetime-value')),
    (sales.segment || sales.customer_since) && el('p', { class: 'muted' },
      sales.segment && text(plain(sales.segment, 60), 'segment'), sales.segment && sales.customer_since && ' · ',
      sales.customer_since && `customer since ${date(sales.customer_since)}`),
    orders.raw ? el('p', { class: 'raw muted' }, text(orders.raw)) : rows('orders', orders.items, (o) => orderLine(o, currency), 'No orders'));
}

function orderLine(order, currency) {
  const id = pick(order, 'number', 'id', 'order_id', 'reference');
  const when = pick(order, 'date', 'placed_at', 'ordered_at', 'created_at');
  const total = pick(order, 'total', 'amount', 'value');
  const status = pick(order, 'status', 'state');
  const what = pick(order, 'product', 'description', 'item', 'summary');
  return joinParts(id !== null && text(`#${plain(id, 40)}`, 'ref'), when && text(date(when)),
    what && longText(plain(what, 200), 'what'), total !== null && text(amount(total, order.currency || currency), 'amount'),
    status && text(plain(status, 40), 'state'));
}

function renderSupport(support) {
  if (!support || typeof support !== 'object') return null;
  const tickets = listOf(pick(support, 'open_tickets', 'tickets'));
  return section('support', 'Open tickets',
    tickets.raw ? el('p', { class: 'raw muted' }, text(tickets.raw)) : rows('tickets', tickets.items, ticketLine, 'No open tickets'),
    support.last_contact && el('p', { class: 'muted' }, 'Last contact ', el('time', { datetime: String(support.last_contact) }, dateTime(support.last_contact))),
    support.satisfaction !== undefined && support.satisfaction !== null && el('p', { class: 'muted' }, 'Satisfaction ', text(plain(support.satisfaction, 20))));
}

function ticketLine(ticket) {
  const id = pick(ticket, 'id', 'number', 'ticket', 'reference');
  const subject = pick(ticket, 'subject', 'title', 'summary');
  const status = pick(ticket, 'status', 'state');
  const priority = pick(ticket, 'priority');
  const opened = pick(ticket, 'opened_at', 'created_at', 'updated_at');
  return joinParts(id !== null && text(`#${plain(id, 40)}`, 'ref'), subject && longText(plain(subject, 300), 'subject'),
    priority && text(plain(priority, 20), 'priority'), status && text(plain(status, 40), 'state'), opened && text(date(opened)));
}

function renderHistory(history, opts) {
  if (!Array.isArray(history) || !history.length) return null;
  return section('history-section', 'Earlier calls', rows('history', history, (call) => historyLine(call, opts), ''));
}

// One earlier call (screenpop/interactions/rows.py history_entry): when,
// who answered, how it ended, its outcome and notes; the time links to the
// call's page (new tab: the agent may be on the phone) when this agent may
// open it: an agent opens only the calls offered to them (offered_to).
function historyLine(call, opts) {
  const label = opts.dispositionLabel || ((code) => code);
  const when = pick(call, 'started_at', 'queued_at', 'answered_at', 'ended_at');
  const stamp = when ? el('time', { datetime: String(when) }, dateTime(when)) : text('earlier call', 'muted');
  const notes = notesText(call.notes);
  return el('span', { class: 'history-call' },
    joinParts(call.call_id && mayOpen(call, opts.agentId) ? el('a', { href: `/interactions/${encodeURIComponent(String(call.call_id))}`, target: '_blank', rel: 'noopener' }, stamp) : stamp,
      call.answered_by ? text(`agent ${plain(call.answered_by, 32)}`, 'agent') : text('not answered', 'agent muted'),
      call.end_reason && text(plain(call.end_reason, 40), 'end-reason'),
      call.disposition && text(label(String(call.disposition)), 'disposition'),
      call.follow_up && text(`follow up ${date(call.follow_up)}`, 'follow-up')),
    notes && longText(notes, 'history-notes muted', 'div'));
}

function mayOpen(call, agentId) {
  if (!agentId) return true; // supervisors, support: every call
  return Array.isArray(call.offered_to) && call.offered_to.map(String).includes(String(agentId));
}

// Notes arrive as a list of {author, text, created_at} (or, from an older
// record, one string): shown as one clamped line, newest last.
function notesText(notes) {
  if (Array.isArray(notes)) {
    return notes.map((n) => (n && typeof n === 'object' ? plain(n.text ?? '', 500) : plain(n, 500))).filter(Boolean).join(' · ');
  }
  return notes ? plain(notes, 500) : '';
}

// The columns no section knows, under the labels the server gave them
// (person.details: customer_lookup/display.py, from [[sources]] labels or
// the field name).  A card without details (an older server) shows the
// field names as they are, never a half-made label of its own.
function renderExtra(person) {
  const details = Array.isArray(person.details) ? person.details : legacyDetails(person.extra);
  const shown = details.filter((d) => d && typeof d === 'object' && d.value !== null && d.value !== undefined && d.value !== '');
  if (!shown.length) return null;
  const list = el('dl', { class: 'extra' });
  for (const detail of shown) {
    list.append(el('dt', { title: `${plain(detail.source, 60)}: ${plain(detail.field, 60)}` }, text(plain(detail.label || detail.field, 80))),
      el('dd', {}, longText(plain(detail.value, 300))));
  }
  return section('extra-section', 'Other details', list);
}

function legacyDetails(extra) {
  if (!extra || typeof extra !== 'object') return [];
  return Object.entries(extra).filter(([, cols]) => cols && typeof cols === 'object')
    .flatMap(([source, cols]) => Object.entries(cols).slice(0, 10).map(([field, value]) => ({ source, field, label: field, value })));
}

// Names of the sources that did not answer (card.missing_sources, or worked
// out from card.sources for a card that lacks the list).
export function missingSources(card) {
  if (!card || typeof card !== 'object') return [];
  if (Array.isArray(card.missing_sources)) return card.missing_sources.map(String);
  const sources = card.sources && typeof card.sources === 'object' ? card.sources : {};
  return Object.keys(sources).filter((name) => sources[name] && MISSING.has(sources[name].status));
}

// "billing: timeout (deadline 150 ms)": a gap on the card is always explained.
function renderMissing(card) {
  const sources = card.sources && typeof card.sources === 'object' ? card.sources : {};
  const names = missingSources(card);
  if (!names.length) return null;
  const list = el('ul', { class: 'missing-list' });
  for (const name of names) {
    const info = sources[name] || {};
    const status = info.status === 'pending' ? 'pending, may still arrive' : info.status || 'missing';
    list.append(el('li', { class: 'missing-source', dataset: { source: String(name) } },
      text(`${name}: ${status}`), info.detail ? text(` (${plain(info.detail, 200)})`, 'muted') : null));
  }
  return el('div', { class: 'missing-sources', role: 'note' },
    el('strong', {}, card.status === 'unknown' ? 'Not every system answered, this caller may be known: ' : 'Incomplete card: '),
    list);
}

// "#12 · 3 Nov 2025 · €99.50 · shipped"
function joinParts(...parts) {
  const line = el('span', { class: 'parts' });
  parts.filter(Boolean).forEach((part, i) => {
    if (i) line.append(el('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '));
    line.append(part);
  });
  return line;
}
