// The outcome form (disposition, notes, follow-up date), used by the agent
// desktop's wrap-up and by the interaction page to set an outcome later.
//
// It owns the form's behaviour only: what to do after a save is the page's
// business (onSaved).  The server's error message is shown as it came.

import { putJSON, callPath } from './api.js';

export class OutcomeForm {
  // form: the <form>; ids of its fields are fixed by the templates.
  constructor(form, { onSaved }) {
    this.form = form;
    this.onSaved = onSaved;
    this.callId = null;
    this.busy = false;
    this.disposition = form.querySelector('[name="disposition"]');
    this.notes = form.querySelector('[name="notes"]');
    this.followUp = form.querySelector('[name="follow_up"]');
    this.error = form.querySelector('.form-error');
    this.submit = form.querySelector('[type="submit"]');
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.save();
    });
  }

  // Point the form at a call; clears what was typed for another call.
  open(callId, values = {}) {
    if (this.callId === callId) return;
    this.callId = callId;
    this.disposition.value = values.disposition || '';
    this.notes.value = values.notes || '';
    this.followUp.value = values.follow_up || '';
    this.showError('');
  }

  close() {
    this.callId = null;
  }

  // The body the API expects: {disposition, notes, follow_up}; an empty date
  // is null, not "".
  body() {
    return {
      disposition: this.disposition.value,
      notes: this.notes.value,
      follow_up: this.followUp.value || null,
    };
  }

  async save() {
    if (this.busy || !this.callId) return;
    if (!this.disposition.value) {
      this.showError('Choose an outcome first.');
      this.disposition.focus();
      return;
    }
    const callId = this.callId;
    this.busy = true;
    this.submit.disabled = true;
    this.showError('');
    const result = await putJSON(`/api/v1/interactions/${callPath(callId)}/outcome`, this.body());
    this.busy = false;
    this.submit.disabled = false;
    if (!result.ok) {
      this.showError(result.error);
      return;
    }
    this.callId = null;
    this.onSaved(callId, result.data);
  }

  showError(message) {
    if (!this.error) return;
    this.error.textContent = message || '';
    this.error.hidden = !message;
  }
}

// code -> label, read from the <select> the server rendered from config
// (or ui-config.js filled in later): looked up on each call, so a late
// fill is seen.  An unknown code is shown as the code itself.
export function dispositionLabel(select, code) {
  if (select) {
    for (const option of select.options) {
      if (option.value && option.value === code) return option.textContent;
    }
  }
  return code;
}
