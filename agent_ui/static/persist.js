// Calls waiting for their outcome survive a reload of the desktop.
//
// The server forgets a call when it ends, so a replay after a reload brings
// back ringing and answered calls but never one in wrap-up; without this an
// accidental F5 (or a login after an expired session) would let the outcome
// go unrecorded.  sessionStorage: this tab only, gone when it is closed.
// Keyed by agent id so a shared browser never shows one agent's paperwork to
// the next.

const FIELDS = ['call_id', 'caller', 'queue', 'card', 'chosen', 'endedAt', 'endReason', 'answeredAt'];

function key(agentId) {
  return `screenpop.wrapup.${agentId || '-'}`;
}

export function saveWrapups(agentId, calls) {
  const list = calls.filter((c) => c.state === 'wrapup').map((c) => Object.fromEntries(FIELDS.map((f) => [f, c[f] ?? null])));
  try {
    if (list.length) sessionStorage.setItem(key(agentId), JSON.stringify(list));
    else sessionStorage.removeItem(key(agentId));
  } catch {
    // Storage full or disabled: the desktop still works, only a reload loses wrap-ups.
  }
}

// Stored calls in wrap-up, checked field by field: storage is data too.
export function loadWrapups(agentId) {
  let list;
  try {
    list = JSON.parse(sessionStorage.getItem(key(agentId)) || '[]');
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list
    .filter((c) => c && typeof c === 'object' && typeof c.call_id === 'string' && c.call_id)
    .map((c) => ({
      call_id: c.call_id,
      caller: c.caller && typeof c.caller === 'object' ? c.caller : {},
      queue: typeof c.queue === 'string' ? c.queue : null,
      card: c.card && typeof c.card === 'object' ? c.card : null,
      chosen: Number.isInteger(c.chosen) ? c.chosen : null,
      endedAt: Number.isFinite(c.endedAt) ? c.endedAt : Date.now(),
      endReason: typeof c.endReason === 'string' ? c.endReason : null,
      answeredAt: Number.isFinite(c.answeredAt) ? c.answeredAt : null,
      state: 'wrapup',
      notes: [],
      node: null,
      updatedAt: 0,
    }));
}
