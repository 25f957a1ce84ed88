"""Simulated authentik and outpost fleet, with ground truth.

Each section is owned by one module group; add names to its section and to ``__all__``.
"""

from __future__ import annotations

# --- simulated fleet, virtual time and ground truth (scenario, timeline, fleet, virtual, truth)
from .fleet import run_fleet, run_fleet_sync
from .scenario import Fault, Notice, OutpostSpec, Scenario
from .truth import Truth
from .virtual import simulate_virtual, virtual_table

__all__ = [
    # fleet
    "Scenario",
    "OutpostSpec",
    "Fault",
    "Notice",
    "Truth",
    "run_fleet",
    "run_fleet_sync",
    "simulate_virtual",
    "virtual_table",
]
