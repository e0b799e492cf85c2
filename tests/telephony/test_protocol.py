"""The AMI codec: framing, damaged input, encoding."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from telephony.protocol import AmiDecoder, decode_all, encode_message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAPTURE = (FIXTURES / "support_answered.ami").read_bytes()
REFERENCE, _ = decode_all(CAPTURE)

header_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"), max_size=40
)
keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,20}", fullmatch=True)
messages = st.dictionaries(keys, header_text, min_size=1, max_size=8).map(lambda d: {"Event": "Test", **d})


def feed_in_chunks(data: bytes, cuts: list[int]) -> tuple[list[dict], AmiDecoder]:
    decoder = AmiDecoder()
    out, last = [], 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        out += decoder.feed(data[last:cut])
        last = cut
    out += decoder.close()
    return out, decoder


def test_capture_decodes_with_banner_and_no_damage():
    messages, decoder = decode_all(CAPTURE)
    assert decoder.banner == "Asterisk Call Manager/11.0.0"
    assert messages[0] == {"Response": "Success", "ActionID": "cap1", "Message": "Authentication accepted"}
    assert messages[1]["Event"] == "FullyBooted"
    assert decoder.stats.skipped == 0 and decoder.stats.messages == len(messages)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=len(CAPTURE)), max_size=60))
def test_any_chunking_of_a_real_capture_gives_the_same_messages(cuts):
    out, decoder = feed_in_chunks(CAPTURE, cuts)
    assert out == REFERENCE
    assert decoder.banner == "Asterisk Call Manager/11.0.0"


@given(st.lists(messages, min_size=1, max_size=5), st.lists(st.integers(min_value=0, max_value=5000), max_size=20))
def test_encode_then_decode_round_trips_in_any_chunking(batch, cuts):
    data = b"".join(encode_message(m) for m in batch)
    out, decoder = feed_in_chunks(data, cuts)
    assert out == batch
    assert decoder.stats.skipped == 0


@pytest.mark.parametrize("name", ["José Núñez", "Zoë Ångström", "佐藤 健", "Ωmega 🙂"])
def test_multibyte_names_survive_a_split_in_every_position(name):
    data = encode_message({"Event": "NewCallerid", "CallerIDName": name, "Uniqueid": "1.1"})
    for cut in range(1, len(data)):
        decoder = AmiDecoder()
        out = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert out == [{"Event": "NewCallerid", "CallerIDName": name, "Uniqueid": "1.1"}], cut


damage = st.sampled_from(
    [
        b"this line has no colon\r\n",  # garbage line inside an event
        b"\xff\xfe\xfa broken bytes: \xc3\r\n",  # non-UTF-8
        b"Key: " + b"x" * 40000 + b"\r\n",  # enormous header
        b"Orphan: header without event\r\n\r\n",  # a block that is neither event nor response
        b"\r\n\r\n\r\n",  # stray empty lines
    ]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=len(REFERENCE) - 1), damage), max_size=6),
    st.lists(st.integers(min_value=0, max_value=len(CAPTURE)), max_size=20),
)
def test_damage_is_counted_and_skipped_without_losing_neighbours(injections, cuts):
    """Garbage between or inside events never costs another event."""
    blocks = [encode_message(m) for m in REFERENCE]
    damaged_events = set()
    for index, junk in injections:
        if junk.endswith(b"\r\n\r\n") or junk.startswith(b"\r\n"):
            blocks[index] = junk + blocks[index]  # between events
        else:
            blocks[index] = blocks[index][:-2] + junk + b"\r\n"  # inside event `index`
            damaged_events.add(index)
    out, decoder = feed_in_chunks(b"".join(blocks), cuts)
    expected = [m for i, m in enumerate(REFERENCE) if i not in damaged_events]
    kept = [m for m in out if m in expected]
    assert kept == expected  # every undamaged event arrives, in order
    assert len(out) == len(REFERENCE)  # a damaged event loses only its bad line
    if any(junk != b"\r\n\r\n\r\n" for _, junk in injections):  # stray empty lines are harmless
        assert decoder.stats.skipped + decoder.stats.invalid_utf8 > 0


def test_non_utf8_bytes_are_replaced_and_counted():
    decoder = AmiDecoder()
    out = decoder.feed(b"Event: Test\r\nCallerIDName: Jos\xe9\r\nUniqueid: 1\r\n\r\n")
    assert out == [{"Event": "Test", "CallerIDName": "Jos\ufffd", "Uniqueid": "1"}]
    assert decoder.stats.invalid_utf8 == 1


def test_a_message_larger_than_the_limit_is_dropped_alone():
    decoder = AmiDecoder(max_message_bytes=1000)
    huge = b"Event: Huge\r\n" + b"".join(b"K%d: %s\r\n" % (i, b"v" * 50) for i in range(100)) + b"\r\n"
    data = b"Event: Before\r\n\r\n" + huge + b"Event: After\r\n\r\n"
    out = []
    for i in range(0, len(data), 100):
        out += decoder.feed(data[i : i + 100])
    assert out == [{"Event": "Before"}, {"Event": "After"}]
    assert decoder.stats.oversized == 1


def test_truncated_stream_end_is_counted():
    decoder = AmiDecoder()
    assert decoder.feed(b"Event: Whole\r\n\r\nEvent: Cut\r\nUniqu") == [{"Event": "Whole"}]
    decoder.close()
    assert decoder.stats.truncated == 1


def test_bare_lf_line_ends_are_tolerated():
    out, _ = decode_all(b"Event: A\nX: 1\n\nEvent: B\n\n")
    assert out == [{"Event": "A", "X": "1"}, {"Event": "B"}]


def test_repeated_headers_keep_every_value():
    out, _ = decode_all(b"Event: A\r\nChanVariable: a=1\r\nChanVariable: b=2\r\n\r\n")
    assert out == [{"Event": "A", "ChanVariable": "a=1\nb=2"}]


def test_old_style_command_output_is_kept():
    out, _ = decode_all(b"Response: Follows\r\nPrivilege: Command\r\nline one\r\nline two\r\n--END COMMAND--\r\n\r\n")
    assert out[0]["Output"] == "line one\nline two\n--END COMMAND--"


@pytest.mark.parametrize("bad", [{"Action": "Originate", "Channel": "x\r\nAction: Hangup"}, {"Bad:Key": "v"}, {"Key\n": "v"}])
def test_encoding_refuses_header_injection(bad):
    with pytest.raises(ValueError):
        encode_message(bad)
