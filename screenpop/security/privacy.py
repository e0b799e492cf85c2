"""PII masking rules (``[privacy]``): card numbers in free text, phone numbers per role.

Why rules on keys rather than on types: the same numbers travel in several
shapes (an interaction record, a pop over the WebSocket, the calls in
progress, a card's call history), and a key-driven walk masks them all the
same way without each edge knowing every shape.

* Card numbers (PAN): 13 to 19 digits, optionally grouped by single spaces
  or dashes, that pass the Luhn check, in any note text.  All digits but the
  last four become ``*`` (PCI DSS allows showing the last four).  With
  ``mask_cards_on_save`` the note is masked before it is stored, so no PAN
  ever reaches the database; display masking then catches notes written
  before the rule was switched on.  Phone numbers in notes are left alone:
  a number that fails Luhn is never touched, and one in ten that passes is
  the accepted price of never storing a PAN.
* Phone numbers: for the roles in ``partial_phone_roles`` every digit but
  the last ``phone_visible_digits`` becomes ``*`` (``+34*******222``), in the
  fields named in :data:`PHONE_KEYS`; a leading ``+`` and the separators stay
  so the shape is still recognisable.  Other roles see numbers whole.
  A caller ID *name* that is itself a number (many trunks put the number in
  the display name when there is no name) is masked like the number it
  repeats; a name with letters is shown as sent.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

MASK = "*"
PAN = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
# Keys whose string value is free text that may hold a card number.
TEXT_KEYS = frozenset({"text", "notes"})
# Keys whose string value is a caller's (or transfer target's) phone number.
PHONE_KEYS = frozenset({"number", "caller_number", "caller_e164", "e164", "to_number",
                        "display", "caller_display"})  # the number as written for a reader (customer_lookup.display)
# Keys whose string value is a caller ID name: masked as a phone when it is only a number.
NAME_KEYS = frozenset({"caller_name"})
# A record's keys only an admin sees (telephony.events.ADMIN_ONLY).
ADMIN_ONLY = frozenset({"hidden_number", "hidden_name"})
NUMBER_ONLY = re.compile(r"\+?[\d\s().\-/]*\d[\d\s().\-/]*")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask_card_numbers(text: str) -> str:
    """``text`` with every Luhn-valid 13-19 digit run masked but its last four digits."""

    def replace(match: re.Match) -> str:
        run = match.group(0)
        digits = re.sub(r"\D", "", run)
        if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
            return run
        return _mask_digits(run, 4)

    return PAN.sub(replace, text) if any(ch.isdigit() for ch in text) else text


def mask_phone(number: str, visible: int) -> str:
    """All digits but the last ``visible`` as ``*``; ``+`` and separators kept."""
    return _mask_digits(number, visible)


def _mask_digits(text: str, visible: int) -> str:
    """Every digit of ``text`` but the last ``visible`` as ``*``; the rest kept."""
    keep_from = sum(ch.isdigit() for ch in text) - visible
    out, seen = [], 0
    for ch in text:
        if ch.isdigit():
            out.append(MASK if seen < keep_from else ch)
            seen += 1
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class PrivacyRules:
    mask_card_numbers: bool = True
    mask_cards_on_save: bool = True
    partial_phone_roles: frozenset[str] = field(default_factory=frozenset)
    phone_visible_digits: int = 4

    @classmethod
    def from_settings(cls, settings: Any) -> "PrivacyRules":
        """From ``[privacy]`` (:class:`screenpop.config.PrivacySettings`)."""
        return cls(settings.mask_card_numbers, settings.mask_cards_on_save,
                   frozenset(settings.partial_phone_roles), settings.phone_visible_digits)

    def on_save(self, text: Any) -> Any:
        """A note as it should be stored (non-strings pass: the store refuses them with its reason)."""
        if self.mask_card_numbers and self.mask_cards_on_save and isinstance(text, str):
            return mask_card_numbers(text)
        return text

    def masks_for(self, role: str | None) -> bool:
        """Would :meth:`view` change anything for ``role``?"""
        return self.mask_card_numbers or (role in self.partial_phone_roles)

    def view(self, data: Any, role: str | None) -> Any:
        """``data`` (JSON-ready: dicts, lists, strings, ...) as ``role`` may see it.
        Returns new containers where something changed; never mutates ``data``
        (cards and pops are shared with other agents' messages).  A restricted
        caller's kept number (an interaction record's ``hidden_number``) is
        for admins only."""
        if role != "admin" and isinstance(data, dict) and not ADMIN_ONLY.isdisjoint(data):
            data = {k: v for k, v in data.items() if k not in ADMIN_ONLY}
        phones = role in self.partial_phone_roles
        if not (self.mask_card_numbers or phones):
            return data
        return _walk(data, None, self.mask_card_numbers, self.phone_visible_digits if phones else None)

    def view_all(self, items: Iterable[Any], role: str | None) -> list[Any]:
        return [self.view(item, role) for item in items]


def _walk(value: Any, key: str | None, cards: bool, phone_digits: int | None) -> Any:
    if isinstance(value, str):
        if cards and key in TEXT_KEYS:
            return mask_card_numbers(value)
        if phone_digits is not None and (key in PHONE_KEYS or key in NAME_KEYS and NUMBER_ONLY.fullmatch(value)):
            return mask_phone(value, phone_digits)
        return value
    if isinstance(value, dict):
        return {k: _walk(v, k, cards, phone_digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        # a list under a text key (several notes) keeps the key's rule
        return [_walk(v, key if key in TEXT_KEYS else None, cards, phone_digits) for v in value]
    return value


NO_MASKING = PrivacyRules(mask_card_numbers=False, mask_cards_on_save=False)
