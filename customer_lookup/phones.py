"""Phone normalization: every way a number is written in a database or sent by
a PBX becomes one index key.

Matching strings fails (``'0034 912 345 678'`` is ``'+34912345678'``), so the
index and the caller both go through :func:`normalize`.  It is pure and cached
because it runs on the pop path and for every stored row of every source.

Rules (the why of each is in the function that applies it):

* A number the ``phonenumbers`` library calls *valid* is keyed by its E.164
  form (``'+34912345678'``).  The reading under the default region wins; only
  when it is not valid do we try the fallbacks (:func:`_readings`), and the
  first valid one wins.  The extension is kept aside, never part of the key:
  ``'415.555.0100 ext. 12'`` rings the same switchboard as ``'(415) 555-0100'``.
* A number that parses but is not valid is still kept, under a flagged key
  ``'short:<REGION>:<national digits>'`` (6 digits or fewer) or
  ``'invalid:<REGION>:<national digits>'``.  The national significant digits
  plus region identify it however it was written, so ``'+4912345'``,
  ``'004912345'`` and ``'12345'`` (default region DE) share ``'short:DE:12345'``.
  Leading zeros that belong to the number stay (``'short:ES:012345'``); a
  trunk ``0`` that does not (German ``'012345'``) goes.
* Digits that no reading can parse (unknown country code, a lone digit) are
  kept as ``'raw:<digits>'``, with ``'+'`` when written internationally.
* Flagged keys never start with ``'+'``, so they never collide with E.164 keys.
* No digits at all is ``'empty'`` (``'n/a'``, ``'-'``); a withheld marker
  (``'anonymous'``, ``'<unknown>'``...) is ``'withheld'``; text longer than a
  phone field can sensibly be is ``'invalid'`` with no key.  Their key is None:
  nothing to look up, nothing to index.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import phonenumbers
from phonenumbers import CountryCodeSource, Leniency, NumberParseException, PhoneNumber, PhoneNumberMatcher

MAX_INPUT = 1024  # beyond this (whitespace stripped) a field is a note or garbage, not a number
MAX_TEXT = 128  # same, after invisible characters are dropped and compatibility forms folded
RAW_KEEP = 64  # how much of the input NormalizedPhone.raw keeps
SHORT_MAX_DIGITS = 6  # an invalid number this short is a 'short' one (service codes, extensions)
CACHE_SIZE = 32_768

WITHHELD_TOKENS = frozenset(
    {"", "unknown", "anonymous", "restricted", "private", "withheld", "unavailable"}
)
_INTERNATIONAL = frozenset(
    {
        CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN,
        CountryCodeSource.FROM_NUMBER_WITH_IDD,
        CountryCodeSource.FROM_NUMBER_WITHOUT_PLUS_SIGN,
    }
)
_FOREIGN_IDD = re.compile(r"^[\s(]*(00|011)")  # '00' (most of the world) or '011' (North America)
_NON_DIGITS = re.compile(r"[^0-9]+")
_SIP_USER = re.compile(r"^sips?:([^@;]*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NormalizedPhone:
    e164: str | None  # '+34912345678' when we can be confident, else None
    raw: str  # as given, whitespace-trimmed and cut to RAW_KEEP characters
    valid: bool  # phonenumbers.is_valid_number on the chosen parse
    kind: str  # 'e164' | 'national' | 'short' | 'invalid' | 'withheld' | 'empty'
    extension: str | None
    region: str | None  # region of the number when known
    key: str | None  # index key: e164 when valid, a flagged key otherwise, None when nothing to match


def is_withheld(raw: object) -> bool:
    """True when the caller gave no identity: None, blank, or a PBX marker such
    as ``'anonymous'`` or ``'<unknown>'`` (any case, SIP URI user part too)."""
    if raw is None:
        return True
    if not isinstance(raw, str) or len(raw) > MAX_INPUT:
        return False
    return _token(_clean(raw)) in WITHHELD_TOKENS


def normalize(raw: str | None, default_region: str = "ES", *, cached: bool = True) -> NormalizedPhone:
    """Normalize one number as stored or received; never raises.

    ``cached=False`` for a whole source read in bulk (an index rebuild): its
    numbers come once per rebuild, so through the cache they would never hit
    (50,000 numbers cycling through 32,768 entries) and would push out the
    callers' numbers, the ones that come again; the cache's entries,
    replaced at every rebuild, also left memory the soak saw grow."""
    if raw is None:
        return NormalizedPhone(None, "", False, "empty", None, None, None)
    if not isinstance(raw, str):
        raw = _as_text(raw)
    if len(raw) > MAX_INPUT:
        raw = raw.strip()
        if len(raw) > MAX_INPUT:  # checked before the cache so huge strings never become cache keys
            return NormalizedPhone(None, raw[:RAW_KEEP], False, "invalid", None, None, None)
    region = _region(default_region if isinstance(default_region, str) else "")
    return _normalize(raw, region) if cached else _normalize.__wrapped__(raw, region)


POSSIBLE_MIN_DIGITS = SHORT_MAX_DIGITS + 1  # a stored tail this long may be matched as a possible number


def possible_keys(phone: NormalizedPhone, regions) -> list[tuple[str, str]]:
    """``(region, flagged key)`` pairs under which a source of that region may
    hold this caller's number written without its country code and invalid
    there: ``4155550100`` stored in a Spanish system is ``invalid:ES:4155550100``,
    and the caller ``+1 415 555 0100``'s national number ends with those digits.

    Such a stored number says only its significant digits, so a match on
    them is a *possible* one: the card shows it as such.  Tails shorter than
    :data:`POSSIBLE_MIN_DIGITS` are never tried (a short number is an
    extension or a service code, and would match thousands of callers)."""
    if not phone.valid or phone.e164 is None:
        return []
    number = _parse(phone.e164, "ZZ")
    if number is None:
        return []
    nsn = phonenumbers.national_significant_number(number)
    return [
        (region, f"invalid:{region}:{nsn[-length:]}")
        for region in sorted({r.upper() for r in regions})
        for length in range(POSSIBLE_MIN_DIGITS, len(nsn) + 1)
    ]


def clear_cache() -> None:
    """Forget cached results (tests; a swapped phonenumbers metadata)."""
    _normalize.cache_clear()


# --------------------------------------------------------------------------- internals


@lru_cache(maxsize=CACHE_SIZE)
def _normalize(raw: str, region: str) -> NormalizedPhone:
    shown = raw.strip()[:RAW_KEEP]
    text = _clean(raw)
    token = _token(text)
    if token in WITHHELD_TOKENS:
        return NormalizedPhone(None, shown, False, "withheld" if token else "empty", None, None, None)
    if len(text) > MAX_TEXT:
        return NormalizedPhone(None, shown, False, "invalid", None, None, None)
    digits = _NON_DIGITS.sub("", text) if text.isascii() else phonenumbers.normalize_digits_only(text)
    if not digits:
        return NormalizedPhone(None, shown, False, "empty", None, None, None)

    written: dict[str, PhoneNumber] = {}  # readings that take the country code as written
    for number, how in _readings(text, digits, region):
        if phonenumbers.is_valid_number(number):
            return _valid(shown, number, _international(number, how))
        if how in (_LIBRARY, _FOREIGN_IDD_READING):
            written[how] = number
    if any(c.isalpha() for c in text):
        found = _find_in_text(text, region)
        if found is not None:
            return _valid(shown, *found)
    if written:
        # Guesses (a '+' added or dropped) never key an invalid number, only
        # what was written; a foreign prefix keeps the code the writer meant.
        return _flagged(shown, written.get(_FOREIGN_IDD_READING) or written[_LIBRARY], region)
    idd = None if text.lstrip().startswith("+") else _FOREIGN_IDD.match(text)
    international = idd is not None or text.lstrip().startswith("+")
    if idd is not None:
        digits = digits[len(idd.group(1)) :]
    kind = "short" if len(digits) <= SHORT_MAX_DIGITS else "invalid"
    return NormalizedPhone(None, shown, False, kind, None, None, "raw:" + ("+" if international else "") + digits)


# How a reading came about; decides its kind and whether it may key an invalid number.
_LIBRARY, _FOREIGN_IDD_READING, _PLUS_DROPPED, _PLUS_ADDED = "library", "foreign-idd", "plus-dropped", "plus-added"
_NANP_READING = "nanp-shape"
# '(415) 555-0100', '1 (415) 555-0100': the North American way of writing a
# number, area code in parentheses.  Databases of companies outside North
# America keep their US customers like this, without the +1.
_NANP_SHAPE = re.compile(r"^(?:1[\s.-]?)?(\(\d{3}\)[\s.-]?\d{3}[\s.-]?\d{4}(?:\s*(?:ext\.?|x|#)\s*\d{1,6})?)$", re.IGNORECASE)
_NANP_REGIONS = frozenset(phonenumbers.region_codes_for_country_code(1))


def _readings(text: str, digits: str, region: str) -> Iterator[tuple[PhoneNumber, str]]:
    """Possible parses, most trusted first.  Lazy: the common case parses once.

    1. The library's reading under the default region: handles ``'+'``, the
       region's own international prefix and national forms.
    2. Written with an international prefix ``'00'``/``'011'`` the library did
       not read as a valid number: that prefix replaced by ``'+'``.  This is the
       US ``'001 212 555 0123'`` trap: read nationally it is an invalid +1 001...
       Where a national number may itself start with ``00`` (Japan's ``0037``
       free-dial numbers) the valid national reading wins: reading 1 is tried first.
    3. Written with ``'+'`` and a country code other than the region's own that
       cannot even have this length: the digits as a national number (a ``'+'``
       typed in front of one, ``'+912345678'`` in Spain).  Never for the
       region's own code: ``'+4912345'`` in Germany is a short +49 number, not
       the national ``4912345``.
    4. Plain digits read nationally: ``'+'`` put in front, for international
       numbers stored without it (``'4930123456'``).  Not when the text has
       parentheses, which mark a national area code: ``'(415) 555-0100'`` is
       not a Swiss number.
    5. Exactly the North American shape ``'(415) 555-0100'`` outside North
       America: ``+1`` in front.  Only reached when the region's own reading is
       not valid, so a Spanish ``'(91) 234-5678'`` never gets here.
    """
    stripped = text.lstrip()
    first = _parse(text, region)
    if first is not None:
        yield first, _LIBRARY
    if stripped.startswith("+"):
        own_code = phonenumbers.country_code_for_region(region)
        if first is None or (first.country_code != own_code and not _full_length(first)):
            national = _parse(stripped[1:], region)
            if national is not None:
                yield national, _PLUS_DROPPED
        return
    idd = _FOREIGN_IDD.match(text)
    if idd is not None:
        # Also when the library took a longer prefix as the region's own IDD
        # and got an invalid number: Cambodia dials abroad with '008', so it
        # reads '00855 23 756 789' as +55 (Brazil) 23756789.
        foreign = _parse("+" + text[idd.end() :], region)
        if foreign is not None:
            yield foreign, _FOREIGN_IDD_READING
        return
    if "(" not in text and (first is None or first.country_code_source == CountryCodeSource.FROM_DEFAULT_COUNTRY):
        guessed = _parse("+" + stripped, region)
        if guessed is not None:
            yield guessed, _PLUS_ADDED
    nanp = _NANP_SHAPE.match(stripped)
    if nanp is not None and region not in _NANP_REGIONS:
        american = _parse("+1 " + nanp.group(1), region)
        if american is not None:
            yield american, _NANP_READING


def _full_length(number: PhoneNumber) -> bool:
    """A length that can be dialled from anywhere (local-only lengths do not count)."""
    return phonenumbers.is_possible_number_with_reason(number) == phonenumbers.ValidationResult.IS_POSSIBLE


def _find_in_text(text: str, region: str) -> tuple[PhoneNumber, bool] | None:
    """A number with a note around it (``'+34 912 34 56 78 (oficina)'``): the
    library would read the note's letters as a vanity number, so when no
    reading is valid look for the first valid number inside the text."""
    try:
        for match in PhoneNumberMatcher(text, region, leniency=Leniency.VALID, max_tries=4):
            written = match.raw_string.lstrip()
            return match.number, written.startswith("+") or _FOREIGN_IDD.match(written) is not None
    except Exception:  # the matcher is best effort; never let it break a pop
        return None
    return None


def _parse(text: str, region: str) -> PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region, keep_raw_input=True)
    except NumberParseException:
        return None
    except Exception:  # defensive: a library bug on odd input must not break a pop
        return None


def _international(number: PhoneNumber, how: str) -> bool:
    """Whether the chosen reading took its country code from the text (kind 'e164')."""
    if how == _LIBRARY:
        return number.country_code_source in _INTERNATIONAL
    return how in (_FOREIGN_IDD_READING, _PLUS_ADDED)


def _valid(shown: str, number: PhoneNumber, international: bool) -> NormalizedPhone:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return NormalizedPhone(
        e164=e164,
        raw=shown,
        valid=True,
        kind="e164" if international else "national",
        extension=number.extension or None,
        region=phonenumbers.region_code_for_number(number),
        key=e164,
    )


def _flagged(shown: str, number: PhoneNumber, default_region: str) -> NormalizedPhone:
    """The key is region + national significant digits, so every way of
    writing the same short or invalid number meets at one key.  The region is
    the default one when the country code is its own (so a shared code like
    +1 stays with the database's region), else the code's main region, else
    the code itself (non-geographic +800 numbers)."""
    nsn = phonenumbers.national_significant_number(number)
    if number.country_code == phonenumbers.country_code_for_region(default_region):
        region = default_region
    else:
        region = phonenumbers.region_code_for_country_code(number.country_code)
    token = region if region not in ("001", "ZZ") else f"+{number.country_code}"
    kind = "short" if len(nsn) <= SHORT_MAX_DIGITS else "invalid"
    return NormalizedPhone(
        e164=None,
        raw=shown,
        valid=False,
        kind=kind,
        extension=number.extension or None,
        region=region if region not in ("001", "ZZ") else None,
        key=f"{kind}:{token}:{nsn}",
    )


def _clean(raw: str) -> str:
    """Drop what a human cannot see and fold what a human reads as ASCII:
    right-to-left marks and zero-width spaces pasted from web pages,
    full-width digits typed on East Asian keyboards.  A SIP URI's user part
    is the number."""
    text = raw
    if not text.isascii():
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
        text = unicodedata.normalize("NFKC", text)
    text = text.strip()
    if text[:4].lower() in ("sip:", "sips"):
        user = _SIP_USER.match(text)
        if user is not None:
            text = user.group(1).strip()
    return text


def _token(text: str) -> str:
    return text.strip().strip("<>\"'").strip().lower()


@lru_cache(maxsize=256)
def _region(region: str) -> str:
    """An unknown or malformed default region reads numbers as international only."""
    if region.upper() in phonenumbers.SUPPORTED_REGIONS:
        return region.upper()
    return "ZZ"


def _as_text(raw: object) -> str:
    """Databases hand over integers (BIGINT phone columns) and bytes too."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)
