"""The agent resolver: channel and interface names to agent ids, and what its
cache of verdicts costs over a day of channels."""
from __future__ import annotations

import gc
import tracemalloc

from telephony.agents import AGENT_CACHE_SIZE, AgentResolver


def test_default_patterns_name_agents_and_only_agents():
    agents = AgentResolver()
    assert agents.agent_of("Local/1001@agents/n") == "1001"
    assert agents.agent_of("Local/1001@agents-00000002;1") == "1001"
    assert agents.agent_of("PJSIP/1004-0000002a") == "1004"
    assert agents.agent_of("SIP/1002") == "1002"
    for not_an_agent in ("PJSIP/trunk-0000001a", "Local/600@from-internal-00000003;2", "", None, "PJSIP/1-00000001"):
        assert agents.agent_of(not_an_agent) is None


def test_a_day_of_channels_leaves_only_the_recent_ones_cached():
    """Asterisk names every channel anew (PJSIP/1001-0000002a): a cache of
    65,536 names held one entry per channel long hung up, 15 MiB in the soak.
    Now a day's worth of channels costs the last few thousand names only,
    and the verdicts stay right for names cached, evicted and seen again."""
    agents = AgentResolver()
    names = [f"PJSIP/{1000 + n % 2000}-{n:08x}" for n in range(60_000)]
    gc.collect()
    tracemalloc.start()
    try:
        for name in names:
            agents.agent_of(name)
            agents.agent_of(name)  # the same channel's next event: a hit
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert agents.agent_of.cache_info().currsize == AGENT_CACHE_SIZE
    assert agents.agent_of.cache_info().hits >= len(names)
    assert held < 1.5 * 2**20, f"{held / 2**20:.1f} MiB held for {len(names):,} channels"
    assert agents.agent_of(names[0]) == "1000" and agents.agent_of(names[-1]) == str(1000 + 59_999 % 2000)
