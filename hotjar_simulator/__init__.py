"""Hotjar API simulator for tests, the demo and benchmarks.

``HotjarSimulator`` runs a real HTTP/1.1 server on 127.0.0.1 that follows the Hotjar
API reference (OAuth client credentials, surveys, responses, user lookup), serves
deterministic data built from a seed, and exposes ground truth, counters and fault
switches.  ``python -m hotjar_simulator --help`` starts one by hand.
"""

from .data import QUESTION_TYPES, format_instant
from .mutation import MISSING, Mutation, mutate_value
from .server import CURSOR_PREFIX, DEFAULT_LIMIT, MAX_LIMIT, DropConnection, HotjarSimulator, Reply, SimRequest

__all__ = [
    "CURSOR_PREFIX",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MISSING",
    "QUESTION_TYPES",
    "DropConnection",
    "HotjarSimulator",
    "Mutation",
    "Reply",
    "SimRequest",
    "format_instant",
    "mutate_value",
]
