"""The card as a person reads it: phone numbers written the way the agent's
country writes them, fields under human labels.

The card itself (:mod:`customer_lookup.card`) keeps what the systems said:
the number as received, its E.164 form, each source's columns under their
own names.  Other code matches, links and logs on those, so nothing here
replaces them; :meth:`CardDisplay.card` returns a copy of the card's dict
with display values *added* (``caller_display``, each person's ``details``).
It runs where the pop and card messages are built (screenpop.orchestrator),
once per message, and is pure: no I/O, never raises on odd data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import phonenumbers
from phonenumbers import PhoneNumberFormat

from customer_lookup.phones import is_withheld, normalize

# Words written in capitals in a label made from a field name ("sla_tier" → "SLA tier").
ACRONYMS = frozenset({"id", "sla", "vat", "iban", "bic", "url", "vip", "crm", "nps", "csat", "sms", "ip", "api", "eu", "uk", "us"})
# A column whose value is a phone number, by its name: shown formatted like the caller's.
_PHONE_FIELD = re.compile(r"(^|_)(phone|mobile|tel|telephone|fax|msisdn|cell)(_|$|\d)", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
MAX_DETAILS = 10  # per source, as the card has always shown


def format_phone(raw: object, agent_region: str, read_region: str | None = None) -> str | None:
    """``raw`` as the agent would write it: national format for a number of
    the agent's own country (``'912 34 56 78'`` in ES), international for any
    other (``'+1 415-555-0100'``).  ``read_region`` is the region a number
    without a country code is read in (a source's own ``default_region``;
    the agent's by default).  A withheld or blank number is None (the page
    says "Withheld"); a number that cannot be understood is shown as given,
    trimmed, rather than guessed at."""
    if raw is None or (isinstance(raw, str) and is_withheld(raw)):
        return None
    phone = normalize(raw if isinstance(raw, str) else str(raw), read_region or agent_region)
    if phone.e164 is None:
        return phone.raw or None
    number = phonenumbers.parse(phone.e164, None)
    own = number.country_code == phonenumbers.country_code_for_region(agent_region.upper())
    shown = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL if own else PhoneNumberFormat.INTERNATIONAL)
    return f"{shown} ext. {phone.extension}" if phone.extension else shown


def default_label(name: str) -> str:
    """A label from a column name when the source gives none:
    ``account_status`` → "Account status", ``slaTier`` → "SLA tier"."""
    words = [w for w in re.split(r"[_\-\s.]+", _CAMEL.sub("_", str(name))) if w]
    if not words:
        return str(name)
    out = [w.upper() if w.lower() in ACRONYMS else w.lower() for w in words]
    if out[0] == out[0].lower():
        out[0] = out[0][:1].upper() + out[0][1:]
    return " ".join(out)


def same_name(a: object, b: object) -> bool:
    """Whether two names are the same to a reader: case and spaces aside
    (the caller-ID name "ANA  GARCIA" is the customer "Ana Garcia")."""
    if not a or not b:
        return False
    return _squash(a) == _squash(b)


def _squash(value: object) -> str:
    return "".join(str(value).split()).casefold()


@dataclass(frozen=True, slots=True)
class CardDisplay:
    """How cards are shown on one deployment: the agents' region, and per
    source its labels (``[[sources]] labels``) and the region its stored
    numbers are written in (``[[sources]] default_region``)."""

    region: str = "ES"
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source_regions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings) -> CardDisplay:
        """From ``screenpop.config.Settings``: ``[lookup] default_region`` and each ``[[sources]]``."""
        return cls(
            region=settings.lookup.default_region,
            labels={s.name: dict(s.labels) for s in settings.sources if s.labels},
            source_regions={s.name: s.default_region for s in settings.sources if s.default_region},
        )

    def phone(self, raw: object, source: str | None = None) -> str | None:
        return format_phone(raw, self.region, self.source_regions.get(source or "") or None)

    def label(self, source: str, name: str) -> str:
        return self.labels.get(source, {}).get(name) or default_label(name)

    def caller(self, number: str | None, name: str | None, e164: str | None) -> dict[str, Any]:
        """The pop's ``caller``: the number as received (``number``), as the agent reads it (``display``)."""
        return {"number": number, "display": self.phone(number), "name": name, "e164": e164}

    def card(self, card: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A copy of ``card`` (``CustomerCard.to_dict()``) with ``caller_display``
        and, for each person, ``details``: the ``extra`` columns as
        ``{source, field, label, value}`` in the order the sources gave
        them, phone columns formatted.  The dict given is not changed (its
        nested values are shared with the cached card)."""
        if card is None:
            return None
        out = dict(card)
        out["caller_display"] = self.phone(card.get("caller_number") or card.get("e164"))
        persons = card.get("persons")
        if isinstance(persons, list):
            out["persons"] = [self._person(p) if isinstance(p, Mapping) else p for p in persons]
        return out

    def _person(self, person: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(person)
        details = []
        extra = person.get("extra")
        for source, columns in (extra.items() if isinstance(extra, Mapping) else ()):
            if not isinstance(columns, Mapping):
                continue
            filled = [(k, v) for k, v in columns.items() if v is not None and v != ""]
            for name, value in filled[:MAX_DETAILS]:
                if isinstance(value, str) and _PHONE_FIELD.search(str(name)):
                    value = self.phone(value, str(source)) or value
                details.append({"source": str(source), "field": str(name), "label": self.label(str(source), str(name)), "value": value})
        out["details"] = details
        return out
