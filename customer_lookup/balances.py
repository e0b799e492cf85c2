"""Balances pushed by billing systems (``PUT /api/v1/billing/balances/{account}``).

A pushed balance is newer than what the billing database said when the card
was built, so it is kept here and laid over every card that shows that
account.  Validation is pure and strict: a bad payload is refused whole with
a reason, nothing half-written.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = Decimal("1e12")
CLOCK_SKEW = timedelta(minutes=5)  # how far in the future an as_of may be


class InvalidBalance(ValueError):
    """The payload cannot be used; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class PushedBalance:
    account: str
    balance: str  # decimal as text: money is never a float
    currency: str
    as_of: str  # ISO 8601 UTC
    overdue_amount: str = "0"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> "PushedBalance":
        return cls(**json.loads(text))


def parse_balance(account: str, payload: Any, now: datetime | None = None) -> PushedBalance:
    if not isinstance(account, str) or not ACCOUNT.fullmatch(account):
        raise InvalidBalance("account must be 1-64 letters, digits or . _ : -")
    if not isinstance(payload, dict):
        raise InvalidBalance("body must be a JSON object")
    unknown = set(payload) - {"balance", "currency", "as_of", "overdue_amount"}
    if unknown:
        raise InvalidBalance(f"unknown field(s): {', '.join(sorted(unknown))}")
    balance = _amount(payload.get("balance"), "balance", required=True)
    overdue = _amount(payload.get("overdue_amount", "0"), "overdue_amount", required=False)
    if Decimal(overdue) < 0:
        raise InvalidBalance("overdue_amount cannot be negative")
    currency = payload.get("currency")
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        raise InvalidBalance("currency must be a three-letter ISO 4217 code such as EUR")
    now = now or datetime.now(timezone.utc)
    as_of_raw = payload.get("as_of")
    if as_of_raw is None:
        as_of = now
    else:
        if not isinstance(as_of_raw, str):
            raise InvalidBalance("as_of must be an ISO 8601 date-time string")
        try:
            as_of = datetime.fromisoformat(as_of_raw.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidBalance("as_of must be an ISO 8601 date-time such as 2026-11-23T10:00:00Z") from None
        if as_of.tzinfo is None:
            raise InvalidBalance("as_of must carry a time zone (Z or +hh:mm)")
        if as_of > now + CLOCK_SKEW:
            raise InvalidBalance("as_of is in the future")
    stamp = as_of.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return PushedBalance(account, balance, currency, stamp, overdue)


def _amount(value: Any, name: str, required: bool) -> str:
    if value is None:
        if required:
            raise InvalidBalance(f"{name} is required")
        return "0"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidBalance(f"{name} must be a number or a decimal string")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidBalance(f"{name} must be a decimal number") from None
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise InvalidBalance(f"{name} is out of range")
    return str(amount.quantize(Decimal("0.01")))


def apply_balance(billing: dict[str, Any] | None, pushed: PushedBalance) -> dict[str, Any]:
    """The card's billing section with the pushed balance laid over it, unless
    the source's own figure is newer."""
    billing = dict(billing or {})
    source_as_of = billing.get("balance_as_of")
    if source_as_of and str(source_as_of) > pushed.as_of:
        return billing
    billing.update(
        account=pushed.account,
        balance=pushed.balance,
        currency=pushed.currency,
        balance_as_of=pushed.as_of,
        overdue_amount=pushed.overdue_amount,
        pushed=True,
    )
    return billing


class MemoryBalanceStore:
    def __init__(self) -> None:
        self._balances: dict[str, PushedBalance] = {}

    async def put(self, balance: PushedBalance) -> None:
        self._balances[balance.account] = balance

    async def get_many(self, accounts: list[str]) -> dict[str, PushedBalance]:
        return {a: self._balances[a] for a in accounts if a in self._balances}


class RedisBalanceStore:
    """One hash field per account, shared by every node."""

    def __init__(self, redis, key: str = "screenpop:balances") -> None:
        self._redis = redis
        self._key = key

    async def put(self, balance: PushedBalance) -> None:
        await self._redis.hset(self._key, balance.account, balance.to_json())

    async def get_many(self, accounts: list[str]) -> dict[str, PushedBalance]:
        if not accounts:
            return {}
        values = await self._redis.hmget(self._key, accounts)
        return {a: PushedBalance.from_json(v) for a, v in zip(accounts, values) if v}
