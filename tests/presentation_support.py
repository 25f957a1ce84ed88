"""A small simulated fleet with known faults, shared by the plot, report and demo tests.

Import as ``from presentation_support import fleet_scenario, simulated_frames``.
"""

from __future__ import annotations

import pandas as pd

from wsreplay.schema import table_to_frames
from wsreplay.sim import Fault, Notice, OutpostSpec, Scenario, Truth, virtual_table

__all__ = ["PKS", "fleet_scenario", "simulated_frames"]

PKS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(3)]


def fleet_scenario(outposts: int = 3, seed: int = 5) -> Scenario:
    """*outposts* outposts at a 1 s interval for 120 s: outpost 0 disconnects, 1 restarts, 2 is upgraded."""
    pks = PKS if outposts == 3 else [f"00000000-0000-4000-8000-{i:012d}" for i in range(outposts)]
    specs = [OutpostSpec(pk, f"token-{i}-secret", version="2024.2.1") for i, pk in enumerate(pks)]
    faults = [
        Fault("disconnect", pks[0], at=30.0, duration=10.0),
        Fault("restart", pks[1], at=60.0, duration=2.0),
        Fault("upgrade", pks[2], at=80.0, duration=2.0, version="2024.4.2"),
        Fault("latency_spike", None, at=95.0, duration=5.0, delay=0.2),
    ]
    notices = [Notice(20.0, "disk almost full", "warning"), Notice(50.0, "hello", "info"), Notice(51.0, "x", "error")]
    return Scenario(outposts=specs, duration=120.0, interval=1.0, faults=faults, browsers=1, notices=notices, seed=seed)


def simulated_frames(outposts: int = 3, seed: int = 5) -> tuple[pd.DataFrame, Truth]:
    """Frames and truth of :func:`fleet_scenario`, simulated in virtual time."""
    table, truth = virtual_table(fleet_scenario(outposts, seed))
    return table_to_frames(table), truth
