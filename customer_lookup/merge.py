"""Merge the records every source returned for one number into persons.

Pure code.  Each source's record query returns columns; columns with names
the card knows go to their section (identity, sales, billing, support),
the rest are kept per source under ``extra``.  Records are the same person
when they share an email address or a billing account number, the only links
real systems have in common; with no link at all, records found by the same
number are one person unless that would join two linked groups.  Several
groups left means several people behind one number: the card lists them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from adapters.values import jsonable
from customer_lookup.card import Person

IDENTITY = {"name", "full_name", "first_name", "last_name", "company", "email", "vip", "flags"}
SALES = {"lifetime_value", "orders", "recent_orders", "last_order_at", "customer_since", "segment"}
BILLING = {"account", "account_no", "billing_account", "balance", "currency", "balance_as_of", "overdue", "overdue_amount", "invoices", "payments", "credit_limit"}
SUPPORT = {"open_tickets", "tickets", "last_contact", "satisfaction"}
ACCOUNT_COLUMNS = ("account_no", "account", "billing_account")
JSON_COLUMNS = {"orders", "recent_orders", "invoices", "payments", "open_tickets", "tickets", "flags"}


@dataclass(frozen=True, slots=True)
class SourceRecord:
    source: str
    key: str
    record: dict[str, Any]
    possible: bool = False  # found on the last digits of an invalid stored number only


def merge(records: Iterable[SourceRecord], source_order: list[str] | None = None) -> list[Person]:
    records = [SourceRecord(r.source, r.key, _decode_json(r.record), r.possible) for r in records]
    if source_order:
        rank = {name: i for i, name in enumerate(source_order)}
        records.sort(key=lambda r: rank.get(r.source, len(rank)))
    groups = _group(records)
    persons = [_person(group) for group in groups]
    persons.sort(key=lambda p: (p.match != "sure", not p.vip, p.name or "", p.email or ""))
    return persons


def _decode_json(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for column in JSON_COLUMNS & out.keys():
        value = out[column]
        if isinstance(value, str) and value[:1] in "[{":
            try:
                out[column] = jsonable(json.loads(value))  # depth capped: the pop must still encode
            except (ValueError, RecursionError):  # nested past the parser's depth: kept as text, never the whole card lost
                pass
    return out


def _links(record: dict[str, Any]) -> set[str]:
    links = set()
    email = record.get("email")
    if isinstance(email, str) and "@" in email:
        links.add("email:" + email.strip().lower())
    for column in ACCOUNT_COLUMNS:
        account = record.get(column)
        if account not in (None, ""):
            links.add("account:" + str(account).strip().upper())
    return links


def _group(records: list[SourceRecord]) -> list[list[SourceRecord]]:
    """Union-find over shared links; unlinked records join the only group, if one."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    unlinked = []
    for i, record in enumerate(records):
        links = _links(record.record)
        if not links:
            unlinked.append(i)
        for link in links:
            if link in owner:
                parent[find(i)] = find(owner[link])
            else:
                owner[link] = i
    linked_roots = {find(i) for i in range(len(records)) if i not in unlinked}
    if len(linked_roots) == 1:
        (root,) = linked_roots
        for i in unlinked:
            parent[i] = root
    elif not linked_roots and unlinked:
        # Nothing links anything: one record per source is one person; two
        # records from the same source are two people.
        by_source: dict[str, int] = {}
        if all(by_source.setdefault(records[i].source, i) == i for i in unlinked):
            for i in unlinked:
                parent[i] = unlinked[0]
    groups: dict[int, list[SourceRecord]] = {}
    for i, record in enumerate(records):
        groups.setdefault(find(i), []).append(record)
    return list(groups.values())


def _person(group: list[SourceRecord]) -> Person:
    person = Person()
    for item in group:
        record = item.record
        person.keys.setdefault(item.source, []).append(item.key)
        if item.possible:
            person.possible.setdefault(item.source, []).append(item.key)
        name = record.get("name") or record.get("full_name") or " ".join(
            str(record[k]) for k in ("first_name", "last_name") if record.get(k)
        )
        person.name = person.name or (str(name) if name else None)
        person.company = person.company or _text(record.get("company"))
        person.email = person.email or _text(record.get("email"))
        person.vip = person.vip or _truthy(record.get("vip"))
        flags = record.get("flags")
        for flag in flags if isinstance(flags, list) else ([flags] if flags else []):
            if str(flag) not in person.flags:
                person.flags.append(str(flag))
        for section, columns in (("sales", SALES), ("billing", BILLING), ("support", SUPPORT)):
            values = {k: v for k, v in record.items() if k in columns and v is not None}  # NULL is "not known here", never a value
            if values:
                current = getattr(person, section) or {}
                for key, value in values.items():
                    current.setdefault(key, value)
                setattr(person, section, current)
        rest = {k: v for k, v in record.items() if k not in IDENTITY | SALES | BILLING | SUPPORT}
        if rest:
            person.extra.setdefault(item.source, {}).update(rest)
    person.match = "possible" if all(item.possible for item in group) else "sure"
    if person.billing is not None:
        person.billing.setdefault("account", next((person.billing[c] for c in ACCOUNT_COLUMNS if person.billing.get(c)), None))
    return person


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "t", "vip")
    return bool(value)
