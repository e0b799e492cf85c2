"""Checks on what people type (outcome form, notes, search box).  Pure.

Everything that reaches the database from a person goes through here first,
so a bad value is refused with a reason naming the field (the API turns
:class:`InvalidInput` into a 400), never discovered as a driver error half
way through a write.  NUL characters and lone surrogates are refused because
PostgreSQL cannot store them in text at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

MAX_DISPOSITION = 64
MAX_NOTES = 10_000
MAX_NOTE = 10_000
MAX_PERSON = 128  # an author / outcome_by: a user name
MAX_CALL_ID = 128
MAX_LIMIT = 1000


class InteractionError(ValueError):
    """Base of what the interaction log refuses; the API maps it to a 4xx."""


class InvalidInput(InteractionError):
    """A value a person supplied is not acceptable; ``field`` says which (400)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownDisposition(InvalidInput):
    """The disposition is not one of the configured codes (400); ``allowed`` lists them."""

    def __init__(self, value: str, allowed: tuple[str, ...]):
        super().__init__("disposition", f"{value[:64]!r} is not one of the configured codes: {', '.join(allowed)}")
        self.allowed = allowed


class InteractionNotFound(InteractionError):
    """No interaction with this call id is logged (404)."""

    def __init__(self, call_id: str):
        super().__init__(f"no interaction with call_id {call_id[:128]!r}")
        self.call_id = call_id


@dataclass(frozen=True, slots=True)
class Outcome:
    disposition: str
    notes: str | None
    follow_up: date | None
    by: str


def text(field: str, value, *, max_len: int, required: bool = True, strip: bool = True) -> str | None:
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, not {type(value).__name__}")
    if strip:
        value = value.strip()
    if not value.strip():  # blank is empty, even where the text keeps its spaces
        if required:
            raise InvalidInput(field, "must not be empty")
        return None
    if len(value) > max_len:
        raise InvalidInput(field, f"is {len(value)} characters long, at most {max_len} allowed")
    storable(field, value)
    return value


def storable(field: str, value: str) -> str:
    if "\x00" in value:
        raise InvalidInput(field, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid Unicode text") from None
    return value


def follow_up_date(value) -> date | None:
    """A date, or ``YYYY-MM-DD`` text from a form; a datetime is refused (a
    follow-up is a day, and silently dropping a time would hide a client bug)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        raise InvalidInput("follow_up", "must be a date, not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput("follow_up", f"{value[:32]!r} is not a YYYY-MM-DD date") from None
    raise InvalidInput("follow_up", f"must be a date, not {type(value).__name__}")


def outcome(disposition, notes, follow_up, by, allowed: tuple[str, ...]) -> Outcome:
    code = text("disposition", disposition, max_len=MAX_DISPOSITION)
    if code not in allowed:
        raise UnknownDisposition(code, allowed)
    return Outcome(
        disposition=code,
        notes=text("notes", notes, max_len=MAX_NOTES, required=False, strip=False),
        follow_up=follow_up_date(follow_up),
        by=text("by", by, max_len=MAX_PERSON),
    )


def call_id(value) -> str:
    return text("call_id", value, max_len=MAX_CALL_ID)


def note(author, body) -> tuple[str, str]:
    return text("author", author, max_len=MAX_PERSON), text("text", body, max_len=MAX_NOTE, strip=False)


def page(limit, offset) -> tuple[int, int]:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidInput("offset", "must be a non-negative integer")
    return limit, offset


def time_bound(field: str, value) -> datetime | None:
    """``since``/``until`` of a search: a datetime or ISO 8601 text; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(field, f"{value[:40]!r} is not an ISO 8601 date or time") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"must be a date or time, not {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def search_term(field: str, value) -> str | None:
    """A search box: None or blank means "no filter"; anything else is matched
    literally (LIKE wildcards are escaped by the query, not refused here)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, not {type(value).__name__}")
    value = value.strip()
    return storable(field, value) if value else None
