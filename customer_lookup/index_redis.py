"""The phone index in one Redis shared by every node (see :mod:`customer_lookup.index`).

Every step that reads the live pointer and touches a generation is one Lua
script, so a lookup racing a rebuild's swap sees either the old generation
or the new one, never a mix, and a crashed node's half-built generation is
taken over rather than left to block rebuilds forever.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict
from typing import Callable

from customer_lookup.index import BuildInProgress, IndexBuildStats, Progress, Rows, normalized_batches, phone_keys, totals

log = logging.getLogger(__name__)

# Layout under the prefix P: "current" and "building" (hashes source -> generation),
# "built" (source -> JSON of the last build), "seq" (generation counter), and per
# generation G: "gG:n:<phone key>" (set of records), "gG:r:<record>" (set of phone
# keys), "gG:meta" (source, numbers, entries, touched).  Generations are numbered
# across sources, so "gG:*" names exactly one generation's keys.  The scripts make
# every read-pointer-then-touch-generation step atomic against a swap.
_LUA_LIB = """
local P = ARGV[1]
local function nk(g, key) return P .. 'g' .. g .. ':n:' .. key end
local function rk(g, rec) return P .. 'g' .. g .. ':r:' .. rec end
local function meta(g) return P .. 'g' .. g .. ':meta' end
local function add(g, rec, key, c)
  local n = nk(g, key)
  if redis.call('SADD', n, rec) == 1 then
    c[1] = c[1] + 1
    if redis.call('SCARD', n) == 1 then c[2] = c[2] + 1 end
  end
  redis.call('SADD', rk(g, rec), key)
end
local function drop(g, rec, c)
  local r = rk(g, rec)
  for _, key in ipairs(redis.call('SMEMBERS', r)) do
    local n = nk(g, key)
    if redis.call('SREM', n, rec) == 1 then
      c[1] = c[1] - 1
      if redis.call('EXISTS', n) == 0 then c[2] = c[2] - 1 end
    end
  end
  redis.call('DEL', r)
end
local function count(g, c)
  if c[1] ~= 0 then redis.call('HINCRBY', meta(g), 'entries', c[1]) end
  if c[2] ~= 0 then redis.call('HINCRBY', meta(g), 'numbers', c[2]) end
end
"""
_LOOKUP = _LUA_LIB + """
local cur = redis.call('HGETALL', P .. 'current')
local out = {}
for k = 2, #ARGV do
  for i = 1, #cur, 2 do
    local m = redis.call('SMEMBERS', nk(cur[i + 1], ARGV[k]))
    if #m > 0 then out[#out + 1] = ARGV[k]; out[#out + 1] = cur[i]; out[#out + 1] = m end
  end
end
return out
"""
_CLAIM = _LUA_LIB + """
local source, now = ARGV[2], tonumber(ARGV[3])
local old = redis.call('HGET', P .. 'building', source)
if old and now - tonumber(redis.call('HGET', meta(old), 'touched') or '0') < tonumber(ARGV[4]) then
  return {0, old}
end
local g = tostring(redis.call('INCR', P .. 'seq'))
redis.call('HSET', P .. 'building', source, g)
redis.call('HSET', meta(g), 'source', source, 'touched', ARGV[3], 'numbers', 0, 'entries', 0)
return {g, old or ''}
"""
_ADD_BATCH = _LUA_LIB + """
local g = ARGV[3]
if redis.call('HGET', P .. 'building', ARGV[2]) ~= g then return 0 end
local c = {0, 0}
for i = 5, #ARGV, 2 do add(g, ARGV[i], ARGV[i + 1], c) end
count(g, c)
redis.call('HSET', meta(g), 'touched', ARGV[4])
return 1
"""
_SWAP = _LUA_LIB + """
local source, g = ARGV[2], ARGV[3]
if redis.call('HGET', P .. 'building', source) ~= g then return {0, ''} end
redis.call('HDEL', P .. 'building', source)
local old = redis.call('HGET', P .. 'current', source)
redis.call('HSET', P .. 'current', source, g)
redis.call('HSET', P .. 'built', source, ARGV[4])
return {1, old or ''}
"""
_ABANDON = _LUA_LIB + """
if redis.call('HGET', P .. 'building', ARGV[2]) == ARGV[3] then redis.call('HDEL', P .. 'building', ARGV[2]) end
return 1
"""
_UPDATE = _LUA_LIB + """
local source, rec = ARGV[2], ARGV[3]
local cur = redis.call('HGET', P .. 'current', source)
if not cur and ARGV[4] == '1' then
  cur = tostring(redis.call('INCR', P .. 'seq'))
  redis.call('HSET', P .. 'current', source, cur)
  redis.call('HSET', meta(cur), 'source', source, 'numbers', 0, 'entries', 0)
end
local gens = {}
if cur then gens[#gens + 1] = cur end
local b = redis.call('HGET', P .. 'building', source)
if b and b ~= cur then gens[#gens + 1] = b end
for _, g in ipairs(gens) do
  local c = {0, 0}
  drop(g, rec, c)
  for i = 5, #ARGV do add(g, rec, ARGV[i], c) end
  count(g, c)
end
return #gens
"""


class RedisPhoneIndex:
    """The index in one Redis shared by every node.  A lookup is one script
    call (one round trip), atomic against a swap.  A rebuild writes a new
    generation in batches, one script call per batch with the next batch
    normalized while Redis applies the previous one, then switches the
    pointer and deletes the old generation.  A build whose node died is
    taken over once it has not written for ``stale_seconds``."""

    def __init__(self, redis, prefix: str = "screenpop:phones:", *, stale_seconds: float = 300.0, clock: Callable[[], float] = time.time):
        self._redis = redis
        self._prefix = prefix
        self._stale = stale_seconds
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._lookup, self._claim, self._add_batch, self._swap, self._abandon, self._update = (
            redis.register_script(src) for src in (_LOOKUP, _CLAIM, _ADD_BATCH, _SWAP, _ABANDON, _UPDATE)
        )

    async def lookup(self, key: str) -> dict[str, list[str]]:
        if not key:
            return {}
        return (await self.lookup_many([key])).get(key, {})

    async def lookup_many(self, keys: list[str]) -> dict[str, dict[str, list[str]]]:
        """Several keys in one round trip (one script call, atomic against a
        swap): key -> source -> records."""
        keys = [k for k in keys if k]
        if not keys:
            return {}
        reply = await self._lookup(args=[self._prefix, *keys])
        found: dict[str, dict[str, list[str]]] = {}
        for i in range(0, len(reply), 3):
            found.setdefault(_text(reply[i]), {})[_text(reply[i + 1])] = sorted(_text(m) for m in reply[i + 2])
        return found

    async def replace_source(self, source: str, rows: Rows, *, default_region: str, progress: Progress | None = None,
                             paced: bool = False) -> IndexBuildStats:
        async with self._locks.setdefault(source, asyncio.Lock()):
            started = time.perf_counter()
            stats = IndexBuildStats(source)
            gen, stale = await self._claim(args=[self._prefix, source, self._clock(), self._stale])
            if gen == 0:
                raise BuildInProgress(f"source {source!r} is being rebuilt by another node (generation {_text(stale)})")
            gen, stale = _text(gen), _text(stale)
            if stale:
                log.warning("phone index: taking over the stale build source=%s generation=%s", source, stale)
                await self._drop(stale)
            try:
                await self._fill(source, gen, rows, default_region, stats, progress, paced)
                stats.seconds = time.perf_counter() - started
                built = json.dumps({"built_at": self._clock(), "build": asdict(stats), "region": default_region.upper()})
                swapped, old = await self._swap(args=[self._prefix, source, gen, built])
                if not swapped:
                    raise BuildInProgress(f"source {source!r}: this build was taken over by another node")
            except BaseException:
                await self._give_up(source, gen)
                raise
            if _text(old):
                await self._drop(_text(old))
            return stats

    async def update_record(self, source: str, record_key: str, phones: list[str], *, default_region: str) -> None:
        keys = phone_keys(phones, default_region)
        await self._update(args=[self._prefix, source, str(record_key), "1" if keys else "0", *keys])

    async def remove_record(self, source: str, record_key: str) -> None:
        await self._update(args=[self._prefix, source, str(record_key), "0"])

    async def stats(self) -> dict:
        current = {_text(k): _text(v) for k, v in (await self._redis.hgetall(self._prefix + "current")).items()}
        built = {_text(k): json.loads(v) for k, v in (await self._redis.hgetall(self._prefix + "built")).items()}
        async with self._redis.pipeline(transaction=False) as pipe:
            for gen in current.values():
                pipe.hmget(f"{self._prefix}g{gen}:meta", "numbers", "entries")
            counts = await pipe.execute()
        sources = {}
        for (name, _gen), (numbers, entries) in sorted(zip(current.items(), counts)):
            last = built.get(name, {})
            sources[name] = {
                "numbers": int(numbers or 0),
                "entries": int(entries or 0),
                "built_at": last.get("built_at"),
                "build": last.get("build"),
                "region": last.get("region"),
            }
        return totals(sources)

    async def _fill(self, source, gen, rows, default_region, stats, progress, paced: bool) -> None:
        in_flight: asyncio.Future | None = None
        try:
            async for batch in normalized_batches(rows, default_region, stats, progress, paced=paced):
                args = [self._prefix, source, gen, self._clock()]
                for record, key in batch:
                    args += (record, key)
                if in_flight is not None and not await in_flight:
                    raise BuildInProgress(f"source {source!r}: this build was taken over by another node")
                in_flight = asyncio.ensure_future(self._add_batch(args=args))
            if in_flight is not None and not await in_flight:
                raise BuildInProgress(f"source {source!r}: this build was taken over by another node")
        finally:
            if in_flight is not None and not in_flight.done():
                # Let the batch land before any clean-up, or its keys would outlive the drop.
                await asyncio.wait([in_flight])
            if in_flight is not None and not in_flight.cancelled():
                in_flight.exception()  # retrieved: reported through the error being raised, if any

    async def _give_up(self, source: str, gen: str) -> None:
        """A failed or cancelled build leaves nothing behind."""
        try:
            await self._abandon(args=[self._prefix, source, gen])
            await self._drop(gen)
        except Exception as exc:  # the original error matters more
            log.warning("phone index: could not clean up generation %s of %s: %s", gen, source, exc)

    async def _drop(self, gen: str) -> None:
        pattern = _glob_escape(f"{self._prefix}g{gen}:") + "*"
        names: list = []
        async for name in self._redis.scan_iter(match=pattern, count=10_000):
            names.append(name)
            if len(names) >= 5000:
                await self._redis.unlink(*names)
                names = []
        if names:
            await self._redis.unlink(*names)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
