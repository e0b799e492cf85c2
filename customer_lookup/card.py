"""The customer card: everything known about a caller, from every source.

Plain dataclasses, JSON-ready through ``to_dict``/``card_from_dict`` (the card
travels over the bus, sits in the cache and is pushed to browsers).  A card
always says which sources answered and why the others did not, so a gap on
the agent's screen is explained, never silent.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# Why a card has no person, or several.
KNOWN, MULTIPLE, UNKNOWN, WITHHELD = "known", "multiple", "unknown", "withheld"

# Per-source outcome of one lookup.
OK, NO_MATCH, TIMEOUT, ERROR, SKIPPED, PENDING = "ok", "no-match", "timeout", "error", "skipped", "pending"


@dataclass(slots=True)
class SourceStatus:
    status: str  # ok | no-match | timeout | error | skipped (circuit open) | pending (late data may follow)
    detail: str | None = None
    elapsed_ms: float | None = None
    records: int = 0

    @property
    def missing(self) -> bool:
        return self.status in (TIMEOUT, ERROR, SKIPPED, PENDING)


@dataclass(slots=True)
class Person:
    """One customer as merged across systems."""

    name: str | None = None
    company: str | None = None
    email: str | None = None
    vip: bool = False
    flags: list[str] = field(default_factory=list)
    keys: dict[str, list[str]] = field(default_factory=dict)  # source -> record keys merged here
    sales: dict[str, Any] | None = None  # lifetime_value, orders, ...
    billing: dict[str, Any] | None = None  # account, balance, currency, balance_as_of, overdue_amount, invoices
    support: dict[str, Any] | None = None  # open_tickets, last_contact
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # source -> columns the card does not know
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier calls, newest first
    # "sure": found by the caller's number; "possible": every record of this
    # person was found only by a stored number that is invalid in its
    # source's region and matches the caller's national number on its last
    # digits (customer_lookup.phones.possible_keys).  ``possible`` names
    # those records (source -> record keys), also when the person is sure.
    match: str = "sure"
    possible: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class CustomerCard:
    status: str  # known | multiple | unknown | withheld
    caller_number: str | None  # as received
    e164: str | None
    persons: list[Person] = field(default_factory=list)
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    generated_at: str = ""
    cached: bool = False
    number_kind: str | None = None  # e164 | national | short | invalid | withheld | empty

    @property
    def person(self) -> Person | None:
        return self.persons[0] if self.status == KNOWN else None

    @property
    def missing_sources(self) -> list[str]:
        return [name for name, status in self.sources.items() if status.missing]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the wire and the cache (both serialize it at once).
        Not ``dataclasses.asdict``: its deep copy was the costliest step of a
        pop under load; nested values are shared, so treat the result as read-only."""
        out = _shallow(self)
        out["persons"] = [_shallow(person) for person in self.persons]
        out["sources"] = {name: _shallow(status) for name, status in self.sources.items()}
        out["missing_sources"] = self.missing_sources
        return out


def _shallow(obj) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in _FIELDS[type(obj)]}


_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (SourceStatus, Person, CustomerCard)}


def card_from_dict(data: dict[str, Any]) -> CustomerCard:
    persons = [Person(**p) for p in data.get("persons", [])]
    sources = {name: SourceStatus(**s) for name, s in data.get("sources", {}).items()}
    fields = {k: v for k, v in data.items() if k in CustomerCard.__dataclass_fields__ and k not in ("persons", "sources")}
    return CustomerCard(persons=persons, sources=sources, **fields)
