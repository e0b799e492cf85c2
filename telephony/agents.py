"""Which agent a channel or queue-member interface belongs to.

Asterisk names the same agent many ways (``Local/1001@agents/n`` as a queue
member, ``Local/1001@agents-00000002;1`` when dialed, ``PJSIP/1001-0000002a``
for the phone).  Everything past the tracker speaks in agent ids only; this
is the one place that turns names into ids, by the configured patterns.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

DEFAULT_AGENT_PATTERNS = (
    # Queue members and dialed agent legs: Local/1001@agents/n, Local/1001@agents-00000002;1
    r"^Local/(?P<agent>\d+)@agents\b",
    # Phones: PJSIP/1001-0000002a, SIP/1001, IAX2/1001-1234
    r"^(?:PJSIP|SIP|IAX2)/(?P<agent>\d{2,8})(?:-[0-9a-fA-F]+)?$",
)

AGENT_CACHE_SIZE = 4096  # names; ~30 s of new channels at 50 calls/s


class AgentResolver:
    def __init__(self, patterns: Iterable[str] = DEFAULT_AGENT_PATTERNS):
        self._patterns = [re.compile(p) for p in patterns]
        # Channel names repeat for every event of a call: cache the verdicts,
        # for the channels of the last few seconds only.  Asterisk gives each
        # channel a new name (PJSIP/1001-0000002a), so a cache as large as
        # 65,536 kept one entry per channel long gone: 15 MiB at 50 calls/s,
        # filling for the soak's first ten minutes, for no hits.
        self.agent_of = lru_cache(maxsize=AGENT_CACHE_SIZE)(self._agent_of)

    def _agent_of(self, name: str | None) -> str | None:
        """The agent id in a channel or interface name, or None."""
        if not name:
            return None
        for pattern in self._patterns:
            match = pattern.search(name)
            if match and match.group("agent"):
                return match.group("agent")
        return None
