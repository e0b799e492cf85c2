"""Phone normalization: the formats real databases hold, the junk PBXs send,
and properties over generated input (never raises, idempotent, one key per number)."""
from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from customer_lookup.phones import is_withheld, normalize

# (stored as, default region) -> expected key.  Every row of one group is the same line.
SAME_NUMBER = {
    "+34912345678": [
        ("+34 912 34 56 78", "ES"), ("0034912345678", "ES"), ("912345678", "ES"), ("912 34 56 78", "ES"),
        ("+34-912-345-678", "ES"), ("(+34) 912.345.678", "ES"), ("34912345678", "ES"), ("0034 912 345 678", "DE"),
        ("011 34 912 345 678", "US"), ("+34 912 34 56 78 (oficina)", "ES"), ("tel:+34-912-34-56-78", "ES"),
        ("sip:+34912345678@pbx.example", "ES"), ("\u200e+34\u00a0912\u00a0345\u00a0678", "ES"), ("９１２３４５６７８", "ES"),
        (" 912345678 ", "ES"), ("912345678 ext. 45", "ES"),
    ],
    "+14155550100": [
        ("(415) 555-0100", "US"), ("415.555.0100", "US"), ("+1 415 555 0100", "ES"), ("001 415 555 0100", "ES"),
        ("1-415-555-0100", "US"), ("011 1 415 555 0100", "US"), ("415.555.0100 ext. 12", "US"), ("+1 (415) 555-0100 x7", "GB"),
    ],
    "+12125550123": [("001 212 555 0123", "US"), ("+1 212 555 0123", "US"), ("212-555-0123", "US")],
    "+4930123456": [("030 123456", "DE"), ("+49 30 123456", "ES"), ("0049 30 123456", "ES"), ("4930123456", "ES")],
    "+442079460958": [("020 7946 0958", "GB"), ("+44 (0)20 7946 0958", "ES"), ("0044 20 7946 0958", "DE")],
}


@pytest.mark.parametrize("stored, region, key", [(s, r, k) for k, rows in SAME_NUMBER.items() for s, r in rows])
def test_every_stored_format_gives_the_e164_key(stored, region, key):
    phone = normalize(stored, region)
    assert phone.key == key and phone.e164 == key and phone.valid


def test_extension_is_kept_aside():
    phone = normalize("415.555.0100 ext. 12", "US")
    assert (phone.key, phone.extension) == ("+14155550100", "12")


def test_us_national_reading_of_00_prefix_is_caught():
    # Read nationally under US rules this is +1 001..., a number that cannot exist.
    assert phonenumbers.is_valid_number(phonenumbers.parse("001 212 555 0123", "US")) is False
    phone = normalize("001 212 555 0123", "US")
    assert phone.e164 == "+12125550123" and phone.kind == "e164"


def test_short_numbers_written_three_ways_meet():
    keys = {normalize(s, "DE").key for s in ("12345", "+4912345", "004912345", "+49 12345")}
    assert keys == {"short:DE:12345"}
    phone = normalize("12345", "DE")
    assert (phone.valid, phone.kind, phone.e164) == (False, "short", None)


def test_invalid_but_parseable_is_flagged_not_dropped():
    phone = normalize("91 234 567", "ES")  # a digit short
    assert phone.key == "invalid:ES:91234567" and not phone.valid and phone.kind == "invalid"
    assert normalize("+34 91 234 567", "ES").key == normalize("0034 91 234 567", "ES").key == "invalid:ES:91234567"


@pytest.mark.parametrize("stored", ["(415) 555-0100", "1 (415) 555-0100", "(415)555-0100", "(415) 555.0100 ext. 7"])
def test_north_american_shape_in_a_foreign_database(stored):
    """US customers kept the American way, without +1, in a Spanish database."""
    phone = normalize(stored, "ES")
    assert phone.key == "+14155550100" and phone.kind == "national"


def test_north_american_shape_never_beats_a_valid_local_reading():
    assert normalize("(91) 234-5678", "ES").key == "+34912345678"
    assert normalize("(123) 555-0100", "ES").e164 is None  # no such area code: not guessed


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "anonymous", "Anonymous", "<unknown>", "unknown", "RESTRICTED", "private", "withheld",
            '"Anonymous"', "sip:anonymous@anonymous.invalid"],
)
def test_withheld_markers_have_no_key(raw):
    phone = normalize(raw, "ES")
    assert phone.key is None and phone.e164 is None
    assert is_withheld(raw)


@pytest.mark.parametrize(
    "raw", ["n/a", "-", "???", "x" * 5000, "9" * 5000, "'; DROP TABLE customers; --", "<script>alert(1)</script>",
            "\x00\x01\x02", "\ud800", "+", "00", "0", "+0", "🙂📞", "1" * 200, b"912345678", 912345678, 3.0, object()],
)
def test_garbage_never_raises(raw):
    phone = normalize(raw, "ES")
    assert phone.key is None or isinstance(phone.key, str)
    assert len(phone.raw) <= 64


def test_numbers_from_databases_as_integers_and_bytes():
    assert normalize(912345678, "ES").key == "+34912345678"
    assert normalize(b"+34 912 345 678", "ES").key == "+34912345678"


def test_flagged_keys_never_collide_with_e164():
    for raw in ("12345", "112", "0", "999999999999999999", "+999 123"):
        key = normalize(raw, "ES").key
        assert key is None or not key.startswith("+")


def test_bad_default_region_reads_international_only():
    assert normalize("+34912345678", "XX").key == "+34912345678"
    assert normalize("+34912345678", None).key == "+34912345678"  # type: ignore[arg-type]
    assert normalize("912345678", "nonsense").e164 is None


# ------------------------------------------------------------------ properties

REGIONS = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if phonenumbers.example_number(r) is not None)
some_regions = st.sampled_from(["ES", "US", "DE", "GB", "FR", "IT", "BR", "IN", "JP", "AU", "ZZ", "", "xx"])


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=st.text(max_size=80), region=some_regions)
def test_never_raises_on_any_text(text, region):
    phone = normalize(text, region)
    assert phone.kind in {"e164", "national", "short", "invalid", "withheld", "empty"}
    assert (phone.e164 is None) == (not phone.valid)


phoneish = st.text(alphabet="0123456789 +-().", min_size=1, max_size=25)


@settings(max_examples=600, deadline=None)
@given(text=phoneish, region=some_regions, again=some_regions)
def test_idempotent_on_its_own_output(text, region, again):
    phone = normalize(text, region)
    if phone.e164 is not None:
        # The E.164 form is the same number under every default region.
        assert normalize(phone.e164, again).key == phone.e164


@st.composite
def numbers(draw):
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]))
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    return region, example


def formats(number: phonenumbers.PhoneNumber, region: str) -> dict[str, list[str]]:
    """International forms work under any default region; national ones under the number's own."""
    fmt = phonenumbers.format_number
    intl = fmt(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    e164 = fmt(number, phonenumbers.PhoneNumberFormat.E164)
    national = fmt(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return {
        "anywhere": [e164, intl, "00" + e164[1:], intl.replace(" ", "-"), intl.replace(" ", "."), "+" + " ".join(e164[1:]),
                     fmt(number, phonenumbers.PhoneNumberFormat.RFC3966), intl + " ext. 123"],
        "home": [national, national.replace(" ", ""), e164[1:] if region != "ZZ" else e164],
    }


@settings(max_examples=300, deadline=None)
@given(numbers(), st.sampled_from(["ES", "US", "DE", "GB", "BR", "AU", "JP"]))
def test_all_formats_of_one_number_give_one_key(drawn, elsewhere):
    region, number = drawn
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assume(phonenumbers.is_valid_number(number))
    written = formats(number, region)
    for text in written["anywhere"]:
        if text.startswith("00") and _library_reads_valid(text, elsewhere):
            continue  # real ambiguities: Japan's 0037-6... free-dial numbers, Australia's 0016 prefix
        assert normalize(text, elsewhere).key == e164, (text, elsewhere)
        assert normalize(text, region).key == e164, (text, region)
    for text in written["home"][:2]:
        assert normalize(text, region).key == e164, (text, region)


def _library_reads_valid(text: str, region: str) -> bool:
    """The region's own dialling rules give a valid number: that reading wins, by design."""
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException:
        return False
