"""Password hashing: scrypt, self-describing, never raising on bad input."""
from __future__ import annotations

import base64

import pytest

from screenpop.auth import passwords
from screenpop.auth.passwords import PasswordRejected, hash_password, needs_rehash, verify_password

N = 2**4


def test_hash_verifies_and_describes_itself():
    stored = hash_password("correct horse", n=N)
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", N, 8, 1)
    assert len(base64.b64decode(salt)) == passwords.SALT_BYTES and len(base64.b64decode(key)) == passwords.KEY_BYTES
    assert verify_password(stored, "correct horse")
    assert "correct horse" not in stored


def test_wrong_password_is_refused():
    stored = hash_password("correct horse", n=N)
    for wrong in ["correct hors", "Correct horse", "correct horse ", "", "x" * 5000]:
        assert not verify_password(stored, wrong)


def test_each_hash_has_its_own_salt():
    assert hash_password("same", n=N) != hash_password("same", n=N)


def test_unicode_forms_match():
    assert verify_password(hash_password("caf\u00e9", n=N), "cafe\u0301")


def test_default_cost_is_the_real_one():
    stored = hash_password("pw")
    assert stored.split("$")[1:4] == [str(2**14), "8", "1"] and verify_password(stored, "pw")
    assert not needs_rehash(stored) and needs_rehash(hash_password("pw", n=N))


def _tamper(stored: str, index: int, value: str) -> str:
    parts = stored.split("$")
    parts[index] = value
    return "$".join(parts)


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: _tamper(s, 5, base64.b64encode(b"\0" * 32).decode()),  # other key
        lambda s: _tamper(s, 4, base64.b64encode(b"x" * 16).decode()),  # other salt
        lambda s: _tamper(s, 1, str(2**5)),  # other cost
        lambda s: _tamper(s, 1, "3"),  # not a power of two
        lambda s: _tamper(s, 1, str(2**30)),  # absurd memory
        lambda s: _tamper(s, 2, "1000"),
        lambda s: _tamper(s, 0, "bcrypt"),
        lambda s: _tamper(s, 5, "not base64!"),
        lambda s: s + "$extra",
        lambda s: s[:-4],
        lambda s: "",
        lambda s: None,
    ],
)
def test_tampered_or_malformed_hash_never_matches_and_never_raises(damage):
    stored = hash_password("correct horse", n=N)
    assert not verify_password(damage(stored), "correct horse")


@pytest.mark.parametrize("bad", ["", "x" * (passwords.MAX_LENGTH + 1), None])
def test_unacceptable_passwords_are_rejected(bad):
    with pytest.raises(PasswordRejected):
        hash_password(bad, n=N)
