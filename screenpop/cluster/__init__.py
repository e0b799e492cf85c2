"""Several screenpop nodes behaving as one service.

One node at a time holds the AMI link (the *ingester*, elected by a Redis
lease: :mod:`.lease`, :mod:`.election`); it tracks calls, decides pops and
publishes every message over the bus (:mod:`.bus`).  Every node, the
ingester included, delivers what the bus carries to the sockets it holds,
so an agent gets their pops whichever node their browser reached.  The
ingester also keeps the live call state in Redis (:mod:`.livecalls`):
reconnecting browsers on any node get their pops back from it, and the next
ingester picks the calls up from it when the current one dies.

Why Redis Streams for every kind of message, and pub/sub for none:

* ``agents`` (pop, retract, call, card): a node that blinks (a restart of
  Redis, a network hiccup, a long GC) must still deliver the retract of a
  pop it delivered, or an agent keeps a dead card on screen.  A stream is
  read from the node's own last-seen id, so a reader that reconnects
  catches up; pub/sub drops what was published while it was away, and
  redis-py's pub/sub neither reconnects nor notices a half-open socket by
  itself.  Capped (``MAXLEN ~``) because only the last seconds matter.
* ``supervisors`` (queue and agent state): each message replaces the
  previous one for its queue or agent, so a missed one is only stale until
  the next; but a supervisor who opens the dashboard on another node needs
  the current state at once.  Stream for ordering and catch-up, plus the
  latest message per key in a hash that any node reads to seed its mirror.
* ``commands`` (a note added, a pushed balance, from whichever node served
  the HTTP request, for the ingester's live calls): losing one would lose
  a note on a transferred call's card; a stream again.
* ``events`` (call events, for integrations and ``screenpop watch``-like
  tools): a stream is the only kind a late reader can read back.

The embedded default (:class:`~.bus.LocalBus`) has the same interface and
the same local semantics: published messages reach this node's handlers at
once, in order.
"""
