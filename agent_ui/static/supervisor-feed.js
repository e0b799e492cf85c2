// The supervisor feed of /ws, for the three supervisor pages.
//
// A supervisor's socket (no ?agent=) gets `hello`, then the current state
// of every queue and every agent (a replay), then each change as it
// happens: nothing here polls.  The feed keeps the latest message per queue
// and per agent and tells the page what changed.
//
// After a reconnect the server replays everything again; a queue or agent
// it no longer mentions within a few seconds of the new hello is gone
// (removed from config, or the server restarted without it) and is dropped.
//
// The connection state is shown in #live-state and, when the link is lost,
// in #conn-banner: a supervisor must never mistake frozen numbers for a
// quiet floor.

import { el, clear, byId } from './dom.js';
import { LiveSocket, socketURL } from './socket.js';
import { onPbx } from './pbx-banner.js';
import { sessionAlive, loginURL } from './api.js';
import { ServerClock, agentIdOf, queueNameOf, linkDown } from './supervisor-common.js';

const SESSION_ENDED = 4401;
const SWEEP_AFTER_MS = 4000;

export class SupervisorFeed {
  // onQueue(entry), onAgent(entry), onRemoveQueue(name), onRemoveAgent(id),
  // onHello(); entry: {msg, receivedAt, generation}.
  constructor(handlers) {
    this.handlers = handlers;
    this.clock = new ServerClock();
    this.queues = new Map();
    this.agents = new Map();
    this.generation = 0;
    this.hellos = 0;
    this.received = 0;
    this.connected = false;
    this.banner = byId('conn-banner');
    this.live = byId('live-state');
    this.checking = false;
    this.sweepTimer = null;
    this.pbxDown = false;
    this.socket = new LiveSocket(socketURL('/ws'), {
      onMessage: (msg) => this.onMessage(msg),
      onState: (state, info) => this.onSocketState(state, info),
    });
  }

  start() {
    this.socket.start();
    return this;
  }

  onMessage(msg) {
    this.received += 1;
    try {
      if (msg.type === 'hello') this.onHello(msg);
      else if (msg.type === 'queue') this.onQueue(msg);
      else if (msg.type === 'agent') this.onAgent(msg);
      else if (msg.type === 'pbx') onPbx(msg);
      else if (msg.type === 'error') console.warn('screenpop: server error', msg.reason);
    } catch (err) {
      // One odd message must not stop the next one from showing.
      console.error('screenpop: could not handle', msg.type, err);
    }
  }

  onHello(msg) {
    this.hellos += 1;
    this.generation += 1;
    this.connected = true;
    this.clock.fromHello(msg);
    if (this.banner) this.banner.hidden = true;
    this.setLive('live', 'Live');
    if (this.hellos > 1) {
      clearTimeout(this.sweepTimer);
      const generation = this.generation;
      this.sweepTimer = setTimeout(() => this.sweep(generation), SWEEP_AFTER_MS);
    }
    if (this.handlers.onHello) this.handlers.onHello(msg);
  }

  sweep(generation) {
    if (generation !== this.generation) return;
    for (const [name, entry] of [...this.queues]) {
      if (entry.generation < generation) {
        this.queues.delete(name);
        if (this.handlers.onRemoveQueue) this.handlers.onRemoveQueue(name);
        this.showPbxState();
      }
    }
    for (const [id, entry] of [...this.agents]) {
      if (entry.generation < generation) {
        this.agents.delete(id);
        if (this.handlers.onRemoveAgent) this.handlers.onRemoveAgent(id);
      }
    }
  }

  onQueue(msg) {
    const name = queueNameOf(msg);
    if (name === null) return;
    this.clock.fromStamp(msg.updated_at);
    const entry = { msg, receivedAt: Date.now(), generation: this.generation };
    this.queues.set(name, entry);
    if (this.handlers.onQueue) this.handlers.onQueue(entry);
    this.showPbxState();
  }

  // The server says when it lost the PBX (queue messages' link_up): then
  // every number is the last known one, and the page must say so.
  showPbxState() {
    const box = byId('pbx-banner');
    if (!box) return;
    this.pbxDown = [...this.queues.values()].some((e) => linkDown(e.msg));
    box.hidden = !this.pbxDown;
    if (this.pbxDown) clear(box).append(el('strong', {}, 'The PBX link is down. '), 'Queues and agents show their last known state until it is back.');
  }

  onAgent(msg) {
    const id = agentIdOf(msg);
    if (id === null) return;
    this.clock.fromStamp(msg.updated_at);
    const entry = { msg, receivedAt: Date.now(), generation: this.generation, previous: this.agents.get(id) || null };
    this.agents.set(id, entry);
    if (this.handlers.onAgent) this.handlers.onAgent(entry);
    entry.previous = null; // keep one message of history, not a chain
  }

  setLive(state, label) {
    if (!this.live) return;
    this.live.dataset.live = state;
    this.live.textContent = label;
  }

  onSocketState(state, info) {
    if (state === 'open') return; // live only once the server says hello
    this.connected = false;
    if (state === 'reconnecting') {
      if (info.code === SESSION_ENDED || info.attempt >= 2) this.checkSession();
      this.setLive('lost', 'Not live');
      this.showBanner(`Reconnecting in ${Math.max(1, Math.round(info.delayMs / 1000))} s… The numbers below are frozen until then.`);
    } else if (state === 'connecting' && info.reconnect) {
      this.setLive('lost', 'Not live');
      this.showBanner('Reconnecting… The numbers below are frozen until then.');
    }
  }

  showBanner(message) {
    if (!this.banner) return;
    this.banner.hidden = false;
    clear(this.banner).append(el('strong', {}, 'Connection lost. '), message);
  }

  // After failed reconnects: a 401 on the upgrade looks like any other
  // failure to a WebSocket, so ask whether the session still holds.
  async checkSession() {
    if (this.checking) return;
    this.checking = true;
    try {
      if (!(await sessionAlive())) {
        this.socket.stop();
        location.assign(loginURL());
      }
    } finally {
      this.checking = false;
    }
  }

  // Read-only view for tests and a curious supervisor's console.
  view(extra = {}) {
    const feed = this;
    const view = {
      get connected() { return feed.connected; },
      get hellos() { return feed.hellos; },
      get received() { return feed.received; },
      get queues() { return [...feed.queues.keys()]; },
      get agents() { return [...feed.agents.keys()]; },
      get pbxDown() { return Boolean(feed.pbxDown); },
      reconnect() { if (feed.socket.ws) feed.socket.ws.close(4001, 'asked from the console'); },
    };
    // getters of `extra` stay getters (a spread would freeze their values)
    Object.defineProperties(view, Object.getOwnPropertyDescriptors(extra));
    return Object.freeze(view);
  }
}
