"""Small helpers shared by the adapter tests."""
from __future__ import annotations

import phonenumbers

from adapters.base import build_source
from adapters.demo import demo_sources


def e164(raw: str, region: str = "ES") -> str | None:
    """What the lookup does with a stored number (extensions dropped)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def open_sources(dsns: dict[str, str]) -> dict:
    return {s.name: build_source(s) for s in demo_sources(dsns)}


async def phone_rows(dsns: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """system -> every (key, phone as stored)."""
    out = {}
    for name, source in open_sources(dsns).items():
        try:
            out[name] = [row async for row in source.iter_phones()]
        finally:
            await source.close()
    return out


async def phone_index(dsns: dict[str, str]) -> dict[str, set[tuple[str, str]]]:
    """E.164 -> {(system, key)}, the way the lookup's index sees the demo."""
    index: dict[str, set[tuple[str, str]]] = {}
    for system, rows in (await phone_rows(dsns)).items():
        for key, raw in rows:
            number = e164(raw)
            if number:
                index.setdefault(number, set()).add((system, key))
    return index


async def fetch(dsns: dict[str, str], system: str, key: str):
    (settings,) = [s for s in demo_sources(dsns) if s.name == system]
    source = build_source(settings)
    try:
        return await source.fetch(key)
    finally:
        await source.close()
