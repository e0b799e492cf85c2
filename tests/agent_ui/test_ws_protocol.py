"""The WebSocket wire format alone: no server, no sockets."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_ui import protocol
from agent_ui.protocol import (
    Ack,
    AgentState,
    CallUpdate,
    CardUpdate,
    Error,
    Hello,
    Ping,
    Pong,
    Pop,
    ProtocolError,
    QueueState,
    Retract,
    decode_client,
    encode,
    encode_frame,
)

CARD = {"status": "known", "e164": "+34912345678", "persons": [{"name": "José García", "billing": {"balance": "-42.10", "currency": "EUR"}}]}


# ------------------------------------------------------------------ encode


@pytest.mark.parametrize(
    "message, expected",
    [
        (
            Pop("c1", "sales", {"number": "912345678", "name": None, "e164": "+34912345678"}, CARD, sent_at="2024-05-01T10:00:00.000000Z"),
            {"type": "pop", "call_id": "c1", "queue": "sales", "caller": {"number": "912345678", "name": None, "e164": "+34912345678"}, "card": CARD, "sent_at": "2024-05-01T10:00:00.000000Z"},
        ),
        (Retract("c1", "answered elsewhere"), {"type": "retract", "call_id": "c1", "reason": "answered elsewhere"}),
        (CallUpdate("c1", "transferred", {"to": "1002"}), {"type": "call", "call_id": "c1", "event": "transferred", "to": "1002"}),
        (CardUpdate("c1", CARD), {"type": "card", "call_id": "c1", "card": CARD}),
        (QueueState("sales", 3, {"longest_wait_seconds": 42}), {"type": "queue", "queue": "sales", "waiting": 3, "longest_wait_seconds": 42}),
        (AgentState("1001", "on-call", {"call_id": "c1"}), {"type": "agent", "agent": "1001", "state": "on-call", "call_id": "c1"}),
        (Error("frame is not valid JSON"), {"type": "error", "reason": "frame is not valid JSON"}),
        (Pong(7, server_time="2024-05-01T10:00:00.000000Z"), {"type": "pong", "id": 7, "server_time": "2024-05-01T10:00:00.000000Z"}),
        (
            Hello({"username": "alice", "role": "agent", "agent_id": "1001"}, server_time="T", heartbeat=20.0),
            {"type": "hello", "user": {"username": "alice", "role": "agent", "agent_id": "1001"}, "server_time": "T", "heartbeat": 20.0, "protocol": 1},
        ),
    ],
)
def test_every_server_message_has_its_documented_shape(message, expected):
    assert json.loads(encode(message)) == expected
    assert message.to_dict() == expected


def test_encoding_is_compact_keeps_unicode_and_plain_dicts_encode_the_same():
    text = encode(CardUpdate("c1", CARD))
    assert " " not in text.replace("José García", "")
    assert "José García" in text and "\\u" not in text
    assert encode({"type": "card", "call_id": "c1", "card": CARD}) == text
    assert encode_frame(CardUpdate("c1", CARD)) == text.encode("utf-8")


def test_extra_keys_never_override_the_core_fields():
    msg = CallUpdate("c1", "answered", {"call_id": "forged", "type": "pop", "agent": "1001"})
    assert msg.to_dict() == {"type": "call", "call_id": "c1", "event": "answered", "agent": "1001"}


def test_a_pop_stamps_its_sending_time_when_none_is_given():
    sent_at = Pop("c1", None, {}, None).to_dict()["sent_at"]
    assert sent_at.endswith("Z") and sent_at[:2] == "20"


@pytest.mark.parametrize(
    "bad, error",
    [
        ({"type": "popup", "call_id": "c1"}, ValueError),
        ({"call_id": "c1"}, ValueError),
        (["pop"], TypeError),
        ({"type": "card", "call_id": "c1", "card": {"balance": float("nan")}}, ValueError),
        ({"type": "card", "call_id": "c1", "card": {"when": object()}}, TypeError),
    ],
)
def test_broken_server_messages_fail_in_the_caller(bad, error):
    with pytest.raises(error):
        encode(bad)


def test_a_lone_surrogate_in_a_card_fails_before_any_socket_sees_it():
    with pytest.raises(UnicodeEncodeError):
        encode_frame({"type": "card", "call_id": "c1", "card": {"name": "\ud800"}})


def test_call_events_are_the_documented_three():
    with pytest.raises(ValueError):
        CallUpdate("c1", "exploded")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(card=st.dictionaries(st.text(), json_values, max_size=6))
def test_any_json_card_survives_the_trip(card):
    try:
        frame = encode_frame(CardUpdate("c1", card))
    except UnicodeEncodeError:  # lone surrogates: refused, as tested above
        return
    assert json.loads(frame.decode("utf-8")) == {"type": "card", "call_id": "c1", "card": card}


# ------------------------------------------------------------------ decode


def test_the_two_client_messages_decode():
    assert decode_client('{"type":"ping"}') == Ping()
    assert decode_client('{"type":"ping","id":"abc"}') == Ping("abc")
    assert decode_client('{"type":"ping","id":12}') == Ping(12)
    assert decode_client('{"type":"ack","call_id":"1700000000.42","future":"ignored"}') == Ack("1700000000.42")


@pytest.mark.parametrize(
    "frame, reason",
    [
        ("", "not valid JSON"),
        ("{not json", "not valid JSON"),
        ('{"type":"ping"', "not valid JSON"),
        ("NaN", "NaN is not valid JSON"),
        ('{"type":"ping","id":Infinity}', "Infinity is not valid JSON"),
        ("[]", "JSON object"),
        ('"ping"', "JSON object"),
        ("42", "JSON object"),
        ("null", "JSON object"),
        ("{}", "string 'type'"),
        ('{"type":7}', "string 'type'"),
        ('{"type":null}', "string 'type'"),
        ('{"type":"pop","call_id":"c1"}', "unknown message type 'pop'"),
        ('{"type":"ack"}', "call_id"),
        ('{"type":"ack","call_id":""}', "call_id"),
        ('{"type":"ack","call_id":42}', "call_id"),
        ('{"type":"ack","call_id":"' + "x" * 129 + '"}', "call_id"),
        ('{"type":"ping","id":true}', "ping 'id'"),
        ('{"type":"ping","id":{"a":1}}', "ping 'id'"),
        ('{"type":"ping","id":' + str(2**60) + "}", "ping 'id'"),
        ('{"type":"ping","id":"' + "i" * 65 + '"}', "ping 'id'"),
        ("[" * 2000 + "]" * 2000, "nested too deeply"),
        ('{"type":"ping","pad":"' + "x" * 4100 + '"}', "larger than 4096 bytes"),
        ('{"type":"ping","pad":"' + "é" * 2100 + '"}', "larger than 4096 bytes"),  # 4200 bytes in 2100+ characters
        (b'{"type":"ping"}', "binary frames"),
    ],
)
def test_hostile_or_malformed_frames_raise_protocol_error_with_a_reason(frame, reason):
    with pytest.raises(ProtocolError) as info:
        decode_client(frame)
    assert reason in info.value.reason
    assert len(info.value.reason) < 200  # it is sent back; never echo a whole frame


def test_an_unknown_type_is_not_echoed_in_full():
    with pytest.raises(ProtocolError) as info:
        decode_client(json.dumps({"type": "x" * 1000}))
    assert len(info.value.reason) < 120


@settings(max_examples=300, deadline=None)
@given(frame=st.text(max_size=300) | st.binary(max_size=64) | st.builds(json.dumps, json_values))
def test_decoding_anything_either_succeeds_or_raises_protocol_error(frame):
    try:
        message = decode_client(frame)
    except ProtocolError as exc:
        assert exc.reason
    else:
        assert isinstance(message, (Ping, Ack))


def test_protocol_error_is_a_value_error_so_callers_can_treat_it_as_bad_input():
    assert issubclass(ProtocolError, ValueError)
    assert protocol.MAX_CLIENT_FRAME == 4096
