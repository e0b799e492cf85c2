"""Phone numbers for the demo people, and how each system writes them.

A person has canonical numbers (country, national significant number); each
business system then writes them its own way, the way real systems drift
apart over years of different data-entry screens and imports:

=========  ==========================================================
sales      international: ``+34 912 34 56 78``, some ``+34912345678``
           or ``0034 912345678``
billing    ``0034912345678`` or national ``912 345 678`` / ``912345678``;
           foreign numbers sometimes national only (unreachable)
support    ``(91) 234-5678``, mobiles ``600-11-12-22``, some with
           ``ext 12``; US numbers mostly ``(415) 555-0100`` without +1
=========  ==========================================================

Numbers are unique per person (a counter per country and line type mapped
through a permutation, so they look random but never collide) except where
the generator shares them on purpose, and never one of :data:`RESERVED`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

COUNTRY_CODES = {"ES": "34", "US": "1", "GB": "44", "FR": "33", "DE": "49", "SG": "65", "MX": "52"}

# Numbers the demo uses on purpose: personas, the unknown caller, the demo's
# own unknown numbers.  The random generator never produces them.
RESERVED = frozenset({
    "+34912345678", "+34912345679", "+34912345680", "+34600111222", "+14155550100", "+6591234567",
    "+34913000111", "+34913000222", "+34913000333", "+34611223301", "+34611223302",
    "+34918812311", "+34914186027",
})

_ES_LAND = ("91", "93", "95", "96")
_ONE_SPACE = {"US", "MX"}  # mobiles and landlines look alike there
_US_AREAS = ("415", "212", "305", "617", "312", "206", "512", "303", "404", "702", "213", "646", "718", "808", "907")


@dataclass(frozen=True, slots=True)
class Phone:
    country: str
    nsn: str  # national significant number, digits only
    mobile: bool

    @property
    def e164(self) -> str:
        return f"+{COUNTRY_CODES[self.country]}{self.nsn}"


def _perm(n: int, space: int, salt: int = 0) -> int:
    """A bijection on range(space) that scatters consecutive n."""
    return (n * 7_368_787 + 1_299_709 + salt * 104_729) % space  # multiplier coprime to 10**k


class NumberPlan:
    """Hands out unique numbers, deterministically in call order."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, bool], int] = {}

    def new(self, country: str, mobile: bool) -> Phone:
        space = (country, mobile and country not in _ONE_SPACE)
        while True:
            n = self._counters.get(space, 0)
            self._counters[space] = n + 1
            phone = Phone(country, _nsn(country, mobile, n), mobile)
            if phone.e164 not in RESERVED:
                return phone


def _nsn(country: str, mobile: bool, n: int) -> str:
    if country == "ES":
        if mobile:
            return f"6{_perm(n, 10**8, 11):08d}"
        block, rest = divmod(_perm(n, 4 * 10**7, 12), 10**7)
        return f"{_ES_LAND[block]}{rest:07d}"
    if country == "US":
        space = len(_US_AREAS) * 10**4
        exchange, n = divmod(n, space)  # past 555-xxxx (150k numbers) use 556, 557...
        area, line = divmod(_perm(n, space, 1), 10**4)
        return f"{_US_AREAS[area]}{555 + exchange}{line:04d}"
    if country == "GB":
        return f"74{_perm(n, 10**8, 2):08d}" if mobile else f"207{_perm(n, 10**7, 3):07d}"
    if country == "FR":
        return f"6{_perm(n, 8 * 10**7, 4):08d}" if mobile else f"1{_perm(n, 10**8, 5):08d}"  # 60..67, 1x
    if country == "DE":
        return f"151{_perm(n, 10**8, 6):08d}" if mobile else f"30{_perm(n, 10**8, 7):08d}"
    if country == "SG":
        return str(91_000_000 + _perm(n, 8 * 10**6, 8)) if mobile else f"6{_perm(n, 10**7, 9):07d}"  # 91..98, 6x
    if country == "MX":
        return f"55{_perm(n, 10**8, 10):08d}"
    raise ValueError(country)


# ----------------------------------------------------------------- formats

def grouped(p: Phone) -> str:
    """The national number grouped the way the country prints it."""
    n = p.nsn
    if p.country == "ES":
        return f"{n[:3]} {n[3:5]} {n[5:7]} {n[7:]}"
    if p.country == "US":
        return f"{n[:3]}-{n[3:6]}-{n[6:]}"
    if p.country == "GB":
        return f"{n[:4]} {n[4:]}" if p.mobile else f"{n[:2]} {n[2:6]} {n[6:]}"
    if p.country == "FR":
        return " ".join([n[0]] + [n[i : i + 2] for i in range(1, 9, 2)])
    if p.country == "DE":
        return f"{n[:3]} {n[3:]}" if p.mobile else f"{n[:2]} {n[2:]}"
    if p.country == "SG":
        return f"{n[:4]} {n[4:]}"
    return f"{n[:2]} {n[2:6]} {n[6:]}"  # MX


def international(p: Phone) -> str:
    return f"+{COUNTRY_CODES[p.country]} {grouped(p)}"


def national(p: Phone) -> str:
    """As dialled inside the country: useless to a Spanish system for a foreigner."""
    if p.country == "ES":
        return f"{p.nsn[:3]} {p.nsn[3:6]} {p.nsn[6:]}"
    if p.country == "US":
        return f"({p.nsn[:3]}) {p.nsn[3:6]}-{p.nsn[6:]}"
    if p.country in ("GB", "FR", "DE"):
        return "0" + grouped(p)
    return grouped(p)


def sales_format(p: Phone, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.80:
        return international(p)
    if r < 0.92:
        return p.e164
    return f"00{COUNTRY_CODES[p.country]} {p.nsn}"


def billing_format(p: Phone, rng: random.Random) -> str:
    r = rng.random()
    if p.country != "ES":
        return f"00{COUNTRY_CODES[p.country]}{p.nsn}" if r < 0.8 else national(p)
    if r < 0.45:
        return f"0034{p.nsn}"
    if r < 0.85:
        return national(p)
    return p.nsn


def support_format(p: Phone, rng: random.Random) -> str:
    r = rng.random()
    n = p.nsn
    if p.country == "ES":
        text = f"{n[:3]}-{n[3:5]}-{n[5:7]}-{n[7:]}" if p.mobile else f"({n[:2]}) {n[2:5]}-{n[5:]}"
        if not p.mobile and r < 0.15:
            text += rng.choice((" ext 12", " ext. 3", " x204", " ext 1105"))
        return text
    if p.country == "US":
        return national(p) if r < 0.7 else f"+1 ({n[:3]}) {n[3:6]}-{n[6:]}"
    if p.country == "GB" and not p.mobile:
        return f"+44 (0){grouped(p)}"
    return f"+{COUNTRY_CODES[p.country]}-{grouped(p).replace(' ', '-')}"
