"""Password hashing with the standard library's scrypt; no I/O.

The stored string describes itself (``scrypt$N$r$p$<salt>$<hash>``) so the
cost can be raised later without breaking stored hashes: old hashes still
verify with their own parameters and :func:`needs_rehash` says when to
replace one at the next successful login.

Passwords are NFC-normalized before hashing, so the same password typed on
two keyboards that compose accents differently still matches.  Verification
never raises: a malformed or tampered stored hash is simply "no match", and
the parameters read from it are bounded so a corrupt row cannot make one
login allocate gigabytes.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import unicodedata
from pathlib import Path

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
MAX_LENGTH = 1024

# Bounds on parameters read back from storage (a tampered row is not trusted):
# at most 256 MiB of scrypt memory and a bounded amount of work per login.
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 16
_MAX_MEMORY = 256 * 2**20


# Accounts that can see every call and change other people's access get a
# password nobody guesses: at least this long and not on the shipped list of
# common passwords.  Agents are not held to it (they log in many times a
# shift on a shared desk), nor are the demo's own accounts (created in the
# store directly, password "demo"): the rule is checked where a person sets
# a password (``screenpop users add`` / ``passwd``, through
# AccountStore.create_user / set_password).
STRONG_ROLES = frozenset({"admin", "supervisor"})
MIN_STRONG_LENGTH = 12
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")


class PasswordRejected(ValueError):
    """The password cannot be set (empty, longer than MAX_LENGTH, or too weak
    for the role); the message says why."""


def check_acceptable(password: str) -> None:
    if not isinstance(password, str) or password == "":
        raise PasswordRejected("the password must not be empty")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"the password must be at most {MAX_LENGTH} characters")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lowercased (read once)."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def check_strength(password: str, role: str) -> None:
    """Refuse a weak password for an admin or supervisor account (pure; the
    length is counted in characters, after NFC as the hash sees them)."""
    if role not in STRONG_ROLES:
        return
    text = unicodedata.normalize("NFC", password)
    whose = f"{'an' if role[0] in 'aeiou' else 'a'} {role}'s"
    if len(text) < MIN_STRONG_LENGTH:
        raise PasswordRejected(f"{whose} password must be at least {MIN_STRONG_LENGTH} characters "
                               f"(this one has {len(text)}); a few unrelated words make a good one")
    folded = text.strip().lower()
    if folded in common_passwords() or len(set(folded)) <= 2:
        raise PasswordRejected(f"that password is on the list of common passwords; {whose} password must be one nobody would guess")


def _encode(password: str) -> bytes:
    # surrogatepass: any str hashes, even one holding lone surrogates.
    return unicodedata.normalize("NFC", password).encode("utf-8", "surrogatepass")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _maxmem(n: int, r: int, p: int) -> int:
    # scrypt needs about 128·r·(n + p) bytes; leave headroom for OpenSSL.
    return 128 * r * (n + p) + 2**20


def _derive(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(_encode(password), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_maxmem(n, r, p))


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P, salt: bytes | None = None) -> str:
    """A self-describing scrypt hash; lower ``n`` only in tests."""
    check_acceptable(password)
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = _derive(password, salt, n, r, p, KEY_BYTES)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    if not isinstance(stored, str):
        return None
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return None
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if 128 * r * (n + p) > _MAX_MEMORY:
        return None
    # A shorter key would still verify (scrypt output is a prefix of a longer
    # one), so a truncated hash is refused rather than silently weaker.
    if not (SALT_BYTES <= len(salt) <= 64 and KEY_BYTES <= len(key) <= 64):
        return None
    return n, r, p, salt, key


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches ``stored``; False for anything malformed."""
    if not isinstance(password, str) or password == "" or len(password) > MAX_LENGTH:
        return False
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, key = parsed
    try:
        candidate = _derive(password, salt, n, r, p, len(key))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, key)


def needs_rehash(stored: str, *, n: int = N, r: int = R, p: int = P) -> bool:
    """True when the hash was made with other parameters than today's, so a
    cost raised in a release reaches every account at its next login."""
    parsed = _parse(stored)
    if parsed is None:
        return True
    sn, sr, sp, salt, key = parsed
    return (sn, sr, sp, len(salt), len(key)) != (n, r, p, SALT_BYTES, KEY_BYTES)
