"""Moved to :mod:`tests.stack` (the whole node in front of the PBX simulator,
shared by the e2e, hardening, fault, supervision and browser tests); the
names stay importable from here for the tests that import them so."""
from tests.stack import AMI_SECRET, BILLING_TOKEN, Stack, ThreadedStack, seed_databases  # noqa: F401
