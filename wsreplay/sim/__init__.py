"""Simulated authentik and outpost fleet, with ground truth.

Each section is owned by one module group; add names to its section and to ``__all__``.
"""

from __future__ import annotations

# --- simulated fleet, virtual time and ground truth (scenario, timeline, fleet, virtual, truth, truth_data)
from .fleet import run_fleet, run_fleet_async

# --- mock authentik (mock, mock_thread, latency, http_routes, listener): owned by the mock engineer
from .latency import LatencyModel, Spike
from .mock import MockAuthentik
from .mock_thread import MockHandle

# --- (fleet, continued)
from .scenario import Fault, Notice, OutpostSpec, Scenario
from .truth_data import Truth
from .virtual import simulate_virtual, virtual_table

__all__ = [
    # mock
    "MockAuthentik",
    "MockHandle",
    "LatencyModel",
    "Spike",
    # fleet
    "Scenario",
    "OutpostSpec",
    "Fault",
    "Notice",
    "Truth",
    "run_fleet",
    "run_fleet_async",
    "simulate_virtual",
    "virtual_table",
]
