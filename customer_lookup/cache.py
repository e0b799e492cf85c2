"""Merged cards, cached per normalized number.

A cached card is served at once; past ``fresh_seconds`` it is still served
but the lookup service refreshes it in the background, so a repeat caller
never waits on a slow system.  Past ``max_age_seconds`` it is gone.  Each
entry remembers the billing accounts it shows, so a pushed balance can patch
exactly the cards that show it.  Two implementations, one interface:
in-process LRU (embedded) and Redis (several nodes).
"""
from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from customer_lookup.card import CustomerCard, card_from_dict


@dataclass(slots=True)
class CachedCard:
    card: CustomerCard
    stored_at: float

    def age(self, now: float) -> float:
        return now - self.stored_at


def card_accounts(card: CustomerCard) -> list[str]:
    return sorted({str(p.billing["account"]) for p in card.persons if p.billing and p.billing.get("account")})


class MemoryCardCache:
    def __init__(self, max_entries: int = 50_000, max_age_seconds: float = 3600.0, clock: Callable[[], float] = time.time):
        self.max_entries = max_entries
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()  # JSON text: no aliasing of mutable cards
        self._by_account: dict[str, set[str]] = {}
        self._accounts_of: dict[str, list[str]] = {}  # key -> its accounts: forgetting a card is not a walk over every account

    async def get(self, key: str) -> CachedCard | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        text, stored_at = entry
        if self._clock() - stored_at > self.max_age_seconds:
            await self.invalidate(key)
            return None
        self._entries.move_to_end(key)
        return CachedCard(card_from_dict(json.loads(text)), stored_at)

    async def put(self, key: str, card: CustomerCard) -> None:
        await self.invalidate(key)
        self._entries[key] = (json.dumps(card.to_dict()), self._clock())
        accounts = card_accounts(card)
        if accounts:
            self._accounts_of[key] = accounts
        for account in accounts:
            self._by_account.setdefault(account, set()).add(key)
        while len(self._entries) > self.max_entries:
            oldest, _ = self._entries.popitem(last=False)
            self._forget_accounts(oldest)

    async def invalidate(self, key: str) -> None:
        if self._entries.pop(key, None) is not None:
            self._forget_accounts(key)

    async def keys_for_account(self, account: str) -> list[str]:
        return sorted(self._by_account.get(account, ()))

    async def clear(self) -> None:
        self._entries.clear()
        self._by_account.clear()
        self._accounts_of.clear()

    def _forget_accounts(self, key: str) -> None:
        for account in self._accounts_of.pop(key, ()):
            keys = self._by_account.get(account)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_account[account]

    def __len__(self) -> int:
        return len(self._entries)


class RedisCardCache:
    """``{prefix}card:{key}`` holds the card JSON and its time; ``{prefix}acct:{account}``
    the set of card keys showing that account.  Both expire with the card."""

    def __init__(self, redis, prefix: str = "screenpop:cache:", max_age_seconds: float = 3600.0, clock: Callable[[], float] = time.time):
        self._redis = redis
        self._prefix = prefix
        self.max_age_seconds = max_age_seconds
        self._clock = clock

    async def get(self, key: str) -> CachedCard | None:
        raw = await self._redis.get(self._prefix + "card:" + key)
        if raw is None:
            return None
        data = json.loads(raw)
        return CachedCard(card_from_dict(data["card"]), data["stored_at"])

    async def put(self, key: str, card: CustomerCard) -> None:
        ttl = max(1, int(self.max_age_seconds))
        payload = json.dumps({"card": card.to_dict(), "stored_at": self._clock()})
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._prefix + "card:" + key, payload, ex=ttl)
            for account in card_accounts(card):
                pipe.sadd(self._prefix + "acct:" + account, key)
                pipe.expire(self._prefix + "acct:" + account, ttl)
            await pipe.execute()

    async def invalidate(self, key: str) -> None:
        await self._redis.delete(self._prefix + "card:" + key)

    async def keys_for_account(self, account: str) -> list[str]:
        members = await self._redis.smembers(self._prefix + "acct:" + account)
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def clear(self) -> None:
        async for name in self._redis.scan_iter(match=self._prefix + "*", count=1000):
            await self._redis.delete(name)
