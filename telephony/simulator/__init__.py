"""The built-in PBX simulator: a local AMI server that behaves like the Asterisk of the captures.

``PbxSimulator`` serves real AMI over TCP and plays calls built by the pure
:func:`build_call`; see the modules for each part.
"""
from telephony.simulator.model import Agent, IdAllocator, Queue, call_center, default_agents, default_queues
from telephony.simulator.scenarios import SCENARIOS, CallPlan, build_call, is_noise, plan_call
from telephony.simulator.simulator import PbxSimulator
from telephony.simulator.traffic import DEFAULT_MIX, TrafficGenerator

__all__ = [
    "Agent", "CallPlan", "DEFAULT_MIX", "IdAllocator", "PbxSimulator", "Queue", "SCENARIOS", "TrafficGenerator",
    "build_call", "call_center", "default_agents", "default_queues", "is_noise", "plan_call",
]
