"""The [privacy] rules on their own: card numbers (Luhn) in text, phone numbers by role."""
from __future__ import annotations

import pytest

from screenpop.config import ConfigError, load_settings
from screenpop.security.privacy import NO_MASKING, PrivacyRules, luhn_ok, mask_card_numbers, mask_phone

VISA = "4111111111111111"  # Luhn-valid test numbers
AMEX = "378282246310005"


@pytest.mark.parametrize(("text", "shown"), [
    (f"card {VISA} ok", "card ************1111 ok"),
    ("card 4111 1111 1111 1111.", "card **** **** **** 1111."),
    ("card 4111-1111-1111-1111", "card ****-****-****-1111"),
    (f"amex {AMEX}", "amex ***********0005"),
    (f"{VISA}", "************1111"),
    ("two: 5555555555554444 and 4012888888881881", "two: ************4444 and ************1881"),
])
def test_luhn_valid_card_numbers_keep_only_their_last_four_digits(text, shown):
    assert mask_card_numbers(text) == shown


@pytest.mark.parametrize("text", [
    "card 4111111111111112",  # fails Luhn
    "call me on +34 600 111 222",  # a phone number
    "order 123456789012",  # 12 digits: too short for a card
    "ref 41111111111111111111",  # 20 digits: too long
    "4111  1111 1111 1111",  # a double space breaks the run
    "no digits at all",
])
def test_other_numbers_are_left_alone(text):
    assert mask_card_numbers(text) == text


def test_luhn():
    assert luhn_ok(VISA) and luhn_ok(AMEX) and not luhn_ok("4111111111111112")


def test_phone_keeps_the_plus_separators_and_last_digits():
    assert mask_phone("+34600111222", 4) == "+*******1222"
    assert mask_phone("(415) 555-0100", 3) == "(***) ***-*100"
    assert mask_phone("123", 4) == "123"
    assert mask_phone("+34600111222", 0) == "+***********"


RECORD = {
    "call_id": "c-1", "caller_number": "+34600111222", "caller_e164": "+34600111222", "caller_name": "Ana 4111111111111111",
    "transfers": [{"to_number": "+34911222333", "to_agent": None}],
    "notes": [{"author": "alice", "text": f"paid with {VISA}"}],
    "card": {"e164": "+34600111222", "persons": [{"history": [{"notes": [f"card {VISA}"]}]}]},
}


def test_view_masks_phones_only_for_configured_roles_and_cards_for_everyone():
    rules = PrivacyRules(partial_phone_roles=frozenset({"agent"}), phone_visible_digits=3)
    agent = rules.view(RECORD, "agent")
    assert agent["caller_number"] == "+********222" and agent["caller_e164"] == "+********222"
    assert agent["transfers"][0]["to_number"] == "+********333"
    assert agent["card"]["e164"] == "+********222"
    assert agent["notes"][0]["text"] == "paid with ************1111"
    assert agent["card"]["persons"][0]["history"][0]["notes"] == ["card ************1111"]
    assert agent["caller_name"] == RECORD["caller_name"]  # a name is not a note: a caller ID is shown as sent
    supervisor = rules.view(RECORD, "supervisor")
    assert supervisor["caller_number"] == "+34600111222"
    assert supervisor["notes"][0]["text"] == "paid with ************1111"
    assert RECORD["notes"][0]["text"] == f"paid with {VISA}"  # the input is never changed


@pytest.mark.parametrize(("name", "shown"), [
    ("+34600111222", "+********222"),  # the trunk put the number in the display name
    ("600 111 222", "*** *** 222"),
    ("(415) 555-0100", "(***) ***-*100"),
    ("Ana Garcia", "Ana Garcia"),  # a name is shown as sent
    ("Caller 3", "Caller 3"),
    ("<unknown>", "<unknown>"),
    ("", ""),
])
def test_a_caller_name_that_is_only_a_number_is_masked_like_the_number(name, shown):
    rules = PrivacyRules(partial_phone_roles=frozenset({"agent"}), phone_visible_digits=3)
    assert rules.view({"caller_name": name}, "agent") == {"caller_name": shown}
    assert rules.view({"caller_name": name}, "supervisor") == {"caller_name": name}


def test_no_masking_returns_the_data_itself():
    assert NO_MASKING.view(RECORD, "agent") is RECORD
    assert NO_MASKING.on_save(f"x {VISA}") == f"x {VISA}"


def test_on_save_masks_only_when_configured():
    assert PrivacyRules().on_save(f"x {VISA}") == "x ************1111"
    assert PrivacyRules(mask_cards_on_save=False).on_save(f"x {VISA}") == f"x {VISA}"
    assert PrivacyRules().on_save(None) is None and PrivacyRules().on_save(7) == 7


def test_privacy_config_from_file_and_environment(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[privacy]\npartial_phone_roles = ["agent"]\nphone_visible_digits = 2\nmask_cards_on_save = false\n')
    rules = PrivacyRules.from_settings(load_settings(path, env={}).privacy)
    assert rules == PrivacyRules(True, False, frozenset({"agent"}), 2)
    env = {"SCREENPOP_PRIVACY__PARTIAL_PHONE_ROLES": "agent,supervisor", "SCREENPOP_SECURITY__TOKEN_CACHE_SECONDS": "2"}
    settings = load_settings(None, env=env)
    assert settings.privacy.partial_phone_roles == ["agent", "supervisor"] and settings.security.token_cache_seconds == 2.0
    with pytest.raises(ConfigError, match="unknown role"):
        load_settings(None, env={"SCREENPOP_PRIVACY__PARTIAL_PHONE_ROLES": "agents"})
    with pytest.raises(ConfigError, match="phone_visible_digits"):
        load_settings(None, env={"SCREENPOP_PRIVACY__PHONE_VISIBLE_DIGITS": "20"})
    with pytest.raises(ConfigError, match="token_cache_seconds"):
        load_settings(None, env={"SCREENPOP_SECURITY__TOKEN_CACHE_SECONDS": "0"})


def test_the_number_written_for_a_reader_is_masked_like_the_number():
    """Pops and cards also carry the number as a person reads it (caller.display,
    card.caller_display, a record's caller_display): masked the same way."""
    rules = PrivacyRules(partial_phone_roles=frozenset({"agent"}), phone_visible_digits=3)
    pop = {"type": "pop", "caller": {"number": "+34600111222", "display": "600 11 12 22", "e164": "+34600111222"},
           "card": {"caller_display": "600 11 12 22", "e164": "+34600111222"}}
    shown = rules.view(pop, "agent")
    assert shown["caller"]["display"] == "*** ** *2 22" and shown["card"]["caller_display"] == "*** ** *2 22"
    assert "600" not in repr(shown)
    assert rules.view({"caller_number": "+34600111222", "caller_display": "600 11 12 22"}, "agent")["caller_display"] == "*** ** *2 22"
