// The UI's configuration from GET /api/v1/config/ui:
// {dispositions, create_contact_url, agent_id, role, display_name}.
//
// Pages normally arrive with the dispositions already rendered into their
// <select>s by the server; this is the fallback for a page rendered without
// them, so the outcome form is never a dead end.  Fetched at most once.

import { getJSON } from './api.js';
import { el } from './dom.js';

let pending = null;

export function uiConfig() {
  if (!pending) pending = getJSON('/api/v1/config/ui').then((r) => (r.ok && r.data && typeof r.data === 'object' ? r.data : {}));
  return pending;
}

// Same shapes pages.normalize_dispositions accepts: codes, {code, label},
// [code, label], or one {code: label} mapping.
export function dispositionPairs(value) {
  if (!value) return [];
  const items = Array.isArray(value) ? value : typeof value === 'object' ? Object.entries(value) : [];
  const out = [];
  for (const item of items) {
    let code;
    let label;
    if (typeof item === 'string') [code, label] = [item, null];
    else if (Array.isArray(item) && item.length === 2) [code, label] = item;
    else if (item && typeof item === 'object') [code, label] = [item.code, item.label];
    if (code === null || code === undefined || code === '') continue;
    out.push([String(code), label === null || label === undefined || label === '' ? humanize(String(code)) : String(label)]);
  }
  return out;
}

// Same rule as pages.humanize: 'wrong_number' -> 'Wrong number'.
export function humanize(code) {
  const text = code.replace(/[_-]/g, ' ').trim();
  return text ? text[0].toUpperCase() + text.slice(1) : code;
}

// Fill every given <select> that has no real option yet; resolves to the
// code -> label map of what was added (empty when nothing was needed).
export async function ensureDispositions(...selects) {
  const empty = selects.filter((s) => s && ![...s.options].some((o) => o.value));
  if (!empty.length) return new Map();
  const config = await uiConfig();
  const pairs = dispositionPairs(config.dispositions);
  for (const select of empty) {
    for (const [code, label] of pairs) select.append(el('option', { value: code }, label));
  }
  return new Map(pairs);
}
