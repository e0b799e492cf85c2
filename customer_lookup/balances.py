"""Balances pushed by billing systems (``PUT /api/v1/billing/balances/{account}``).

A pushed balance is newer than what the billing database said when the card
was built, so it is kept here and laid over every card that shows that
account.  Validation is pure and strict: a bad payload is refused whole with
a reason, nothing half-written.

What a push may not do, and who says so:

* name an account nobody knows (404): :func:`find_account` asks the billing
  sources, the ``[[sources]]`` whose ``fields`` declare ``currency`` and
  ``account_no`` (or ``account``), i.e. whose records are keyed by the
  account number, and the balances already stored;
* use a currency that is not ISO 4217 (422, :func:`parse_balance`) or not
  the account's (422: the billing source's ``currency``, else the stored
  balance's);
* go back in time (409): a store's ``put`` is a check-and-set, atomic on
  every node (a Lua script on Redis), that keeps the newer ``as_of``.  So a
  card, which is patched from the stored balance, never shows a balance
  older than one it showed before.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from customer_lookup.merge import ACCOUNT_COLUMNS

log = logging.getLogger(__name__)

ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_AMOUNT = Decimal("1e12")
CLOCK_SKEW = timedelta(minutes=5)  # how far in the future an as_of may be
LOOKUP_SECONDS = 3.0  # how long a push waits for the billing sources to say whether an account exists

# ISO 4217 codes in use (list of 2024, with XCG and ZWG), funds codes
# included; not the precious metals, bond units, SDR, test (XTS) or "no
# currency" (XXX) codes, which no account is kept in.
ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN
NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL
SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES
VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
""".split())


class InvalidBalance(ValueError):
    """The payload cannot be used; the message says which field and why.
    ``status``: 400 for a malformed payload, 422 for a well-formed one whose
    meaning is refused (a currency that does not exist)."""

    status = 400


class UnknownCurrency(InvalidBalance):
    status = 422


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
    if not isinstance(currency, str):
        raise InvalidBalance("currency must be a three-letter ISO 4217 code such as EUR")
    if currency not in ISO_4217:
        raise UnknownCurrency(f"currency {currency[:8]!r} is not an ISO 4217 code such as EUR")
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


@dataclass(frozen=True, slots=True)
class Account:
    """An account a push may name: who knows it and in which currency it is kept."""

    account: str
    currency: str | None  # None: the source does not say (any ISO 4217 currency is taken)
    known_by: str  # a source's name, or "stored balance"


class AccountCheckFailed(RuntimeError):
    """No billing source could say whether the account exists (all failed or timed out)."""


def billing_sources(sources: Iterable[Any]) -> list[Any]:
    """The sources whose records are keyed by the account number: they
    declare ``currency`` and ``account_no`` or ``account`` among their fields
    (the demo's ``billing``; ``sales`` only links to an account)."""
    keyed_by = set(ACCOUNT_COLUMNS) - {"billing_account"}
    return [s for s in sources if "currency" in getattr(s, "fields", ()) and keyed_by & set(getattr(s, "fields", ()))]


def _names_account(record: dict[str, Any] | None, account: str) -> bool:
    return bool(record) and any(str(record.get(column) or "") == account for column in ACCOUNT_COLUMNS)


async def find_account(account: str, sources: Iterable[Any], balances, *, timeout: float = LOOKUP_SECONDS) -> Account | None:
    """The account as the billing sources (first) or the stored balances know
    it; None when none does.  With no billing source configured there is
    nothing to check against: every well-formed account is taken (and its
    first push sets its currency).  Raises :class:`AccountCheckFailed` when
    it is known nowhere and a billing source could not answer: "unknown"
    would be a guess."""
    asked = billing_sources(sources)
    stored_task = asyncio.ensure_future(balances.get_many([account]))
    fetches = [asyncio.ensure_future(asyncio.wait_for(source.fetch(account), timeout)) for source in asked]
    results = await asyncio.gather(*fetches, return_exceptions=True)
    stored = (await stored_task).get(account)
    failed = []
    for source, result in zip(asked, results):
        if isinstance(result, BaseException):
            failed.append(source.name)
            log.warning("billing account check failed source=%s account=%s reason=%s", source.name, account,
                        type(result).__name__)
        elif _names_account(result, account):
            currency = result.get("currency")
            return Account(account, str(currency).strip().upper() if currency else None, source.name)
    if stored is not None:
        return Account(account, stored.currency, "stored balance")
    if not asked:
        return Account(account, None, "no billing source")
    if failed:
        raise AccountCheckFailed(f"billing source(s) {', '.join(failed)} did not answer")
    return None


class MemoryBalanceStore:
    """One process's balances.  ``put`` is atomic without a lock: nothing is
    awaited between its check and its set."""

    def __init__(self) -> None:
        self._balances: dict[str, PushedBalance] = {}

    async def put(self, balance: PushedBalance) -> PushedBalance | None:
        """Store ``balance`` unless a newer one is stored; returns that newer
        one (nothing changed) or None (stored).  The same ``as_of`` again is
        taken (a retried push)."""
        current = self._balances.get(balance.account)
        if current is not None and current.as_of > balance.as_of:
            return current
        self._balances[balance.account] = balance
        return None

    async def get_many(self, accounts: list[str]) -> dict[str, PushedBalance]:
        return {a: self._balances[a] for a in accounts if a in self._balances}


# The check-and-set of RedisBalanceStore.put, in one step on the server:
# two nodes pushing at once can neither interleave nor overwrite a newer
# balance.  ``as_of`` is fixed-width UTC text, so text order is time order.
_PUT_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, stored = pcall(cjson.decode, current)
  if ok and type(stored) == 'table' and type(stored['as_of']) == 'string' and stored['as_of'] > ARGV[3] then
    return current
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return false
"""


class RedisBalanceStore:
    """One hash field per account, shared by every node."""

    def __init__(self, redis, key: str = "screenpop:balances") -> None:
        self._redis = redis
        self._key = key
        self._put_if_newer = redis.register_script(_PUT_IF_NEWER)

    async def put(self, balance: PushedBalance) -> PushedBalance | None:
        """As :meth:`MemoryBalanceStore.put`, atomic across nodes."""
        newer = await self._put_if_newer(keys=[self._key], args=[balance.account, balance.to_json(), balance.as_of])
        return PushedBalance.from_json(newer) if newer else None

    async def get_many(self, accounts: list[str]) -> dict[str, PushedBalance]:
        if not accounts:
            return {}
        values = await self._redis.hmget(self._key, accounts)
        return {a: PushedBalance.from_json(v) for a, v in zip(accounts, values) if v}
