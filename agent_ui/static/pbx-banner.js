// The PBX link's state on every screen (the server's `pbx` messages): while
// Asterisk's AMI link is down the desktop cannot pop and the dashboard does
// not move, so the screen says so instead of looking calm.  Shown:
// "PBX link down since 14:51:13 (25 s): calls are not shown until it is
// back", hidden again when it is back.

import { clockTime } from './format.js';

let downSince = null;
let timer = null;

function banner() {
  return document.getElementById('pbx-banner');
}

function draw() {
  const box = banner();
  if (!box) return;
  if (downSince === null) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  const seconds = Math.max(0, Math.round((Date.now() - downSince.getTime()) / 1000));
  box.textContent = `PBX link down since ${clockTime(downSince)} (${seconds} s): calls are not shown until it is back.`;
  box.hidden = false;
}

export function onPbx(msg) {
  if (!msg || msg.type !== 'pbx') return;
  const since = msg.state === 'down' && msg.since ? new Date(msg.since) : null;
  downSince = since && !Number.isNaN(since.getTime()) ? since : null;
  if (downSince !== null && timer === null) timer = setInterval(draw, 1000);
  if (downSince === null && timer !== null) { clearInterval(timer); timer = null; }
  draw();
}
