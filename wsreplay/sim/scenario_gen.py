"""Random but deterministic scenarios from a seed: the fleet, its versions and uuids, its fault script, notices.

:meth:`Scenario.generate <wsreplay.sim.scenario.Scenario.generate>` (whose
docstring lists the parameters) calls :func:`generate_scenario`; the same seed
always gives the same scenario.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..protocol import HELLO_INTERVAL_S
from .scenario import Fault, Notice, OutpostSpec, Scenario, token_for

__all__ = ["VERSIONS", "generate_scenario", "next_version", "random_faults", "random_uuid"]

#: Releases the simulated outposts run, oldest first.
VERSIONS: Final = ("2023.8.3", "2023.10.0", "2023.10.4", "2024.2.1", "2024.4.2")


def next_version(version: str) -> str:
    """The release after *version* in the simulator's list (or a patch bump)."""
    if version in VERSIONS[:-1]:
        return VERSIONS[VERSIONS.index(version) + 1]
    head, _, patch = version.rpartition(".")
    return f"{head}.{int(patch) + 1}" if head and patch.isdigit() else version + ".1"


def random_uuid(rng: np.random.Generator) -> str:
    """A uuid4 string drawn from *rng* (deterministic for a seeded generator)."""
    b = bytearray(rng.bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_scenario(
    scenario_cls: type[Scenario],
    outposts: int = 24,
    duration: float = 120.0,
    interval: float = HELLO_INTERVAL_S,
    seed: int = 0,
    *,
    faults: bool = True,
    browsers: int = 0,
    jitter: float = 0.05,
    ack_latency: float | None = None,
    replica_share: float = 0.2,
    fault_every: float = 600.0,
    start: pd.Timestamp | str | None = None,
    capture_start: float = 0.0,
) -> Scenario:
    """A random, deterministic fleet and fault script, as an instance of *scenario_cls*.

    See :meth:`Scenario.generate <wsreplay.sim.scenario.Scenario.generate>` for the parameters.
    """
    if outposts < 1:
        raise ConfigurationError("scenario: at least one outpost is needed")
    rng = np.random.default_rng([seed, 0x5CE7A])
    specs = []
    for i in range(outposts):
        pk = random_uuid(rng)
        replicas = 2 if rng.random() < replica_share else 1
        version = VERSIONS[int(rng.choice(len(VERSIONS), p=[0.1, 0.3, 0.3, 0.2, 0.1]))]
        specs.append(OutpostSpec(pk, token_for(pk, seed), replicas, version, name=f"outpost-{i:04d}"))
    scripted: list[Fault] = []
    notices: list[Notice] = []
    if faults:
        scripted = random_faults(rng, specs, duration, interval, fault_every)
    if browsers:
        levels = ("info", "success", "warning", "error", "debug")
        t = float(rng.uniform(5, 50)) * interval
        k = 0
        while t < duration - interval:
            notices.append(Notice(round(t, 6), f"simulated notice {k}", levels[k % len(levels)]))
            k += 1
            t += float(rng.uniform(25, 75)) * interval
    latency = ack_latency if ack_latency is not None else max(0.001, 0.003 * interval / HELLO_INTERVAL_S)
    return scenario_cls(
        outposts=specs,
        duration=float(duration),
        interval=float(interval),
        jitter=jitter,
        ack_latency=latency,
        faults=scripted,
        browsers=browsers,
        notices=notices,
        seed=seed,
        start=None if start is None else pd.Timestamp(start),
        capture_start=float(capture_start),
    )


def random_faults(
    rng: np.random.Generator, specs: Sequence[OutpostSpec], duration: float, interval: float, every: float = 600.0
) -> list[Fault]:
    """Per replica, non-overlapping faults about every *every* intervals; server faults once each."""
    if not (math.isfinite(every) and every > 0):
        raise ConfigurationError(f"scenario: fault_every must be a positive number of intervals, not {every!r}")
    out: list[Fault] = []
    n_intervals = duration / interval
    kinds = ("disconnect", "silent", "restart", "upgrade", "slow_network", "crash", "interval_change")
    weights = np.array([0.3, 0.2, 0.15, 0.05, 0.1, 0.12, 0.08])
    lo = 5 * interval  # nothing in the first intervals: let the fleet connect
    mean_gap = every * interval
    for spec in specs:
        for r in range(spec.replicas):
            version = spec.version
            t = lo + float(rng.exponential(mean_gap))
            while t < duration - 5 * interval:
                kind = kinds[int(rng.choice(len(kinds), p=weights))]
                if kind == "disconnect":
                    length = float(rng.uniform(1, 30)) * interval
                    if t + 2 * length + 5 * interval >= duration:
                        # the outpost must be able to reconnect before the run ends
                        length = (duration - t - 5 * interval) / 2
                        if length < interval:
                            break
                elif kind == "silent":
                    length = float(rng.uniform(2, 10)) * interval
                elif kind in ("restart", "upgrade", "crash"):
                    length = float(rng.uniform(0.2, 3)) * interval
                elif kind == "interval_change":
                    length = float(rng.uniform(20, 60)) * interval
                else:
                    length = float(rng.uniform(5, 30)) * interval
                extra: dict[str, Any] = {}
                if kind == "upgrade":
                    version = next_version(version)
                    extra["version"] = version
                if kind == "slow_network":
                    extra["delay"] = round(float(rng.uniform(0.05, 0.3)) * interval, 6)
                if kind == "interval_change":
                    extra["delay"] = round(float(rng.choice([0.5, 2.0, 3.0])) * interval, 6)
                out.append(Fault(kind, spec.pk, round(t, 6), round(length, 6), replica=r, **extra))
                # the next fault waits for this one to be over (a disconnect: and the reconnect
                # backoff after it, about as long again)
                recover = length if kind == "disconnect" else 0.0
                t += length + recover + 3 * interval + float(rng.exponential(mean_gap))
    if n_intervals >= 100:
        at = float(rng.uniform(0.3, 0.7)) * duration
        out.append(Fault("server_restart", None, round(at, 6), round(float(rng.uniform(1, 3)) * interval, 6)))
        at = float(rng.uniform(0.1, 0.9)) * duration
        out.append(Fault("latency_spike", None, round(at, 6), round(10 * interval, 6), delay=round(interval / 5, 6)))
        for kind in ("ack_drop", "ack_dup"):
            at = float(rng.uniform(0.1, 0.8)) * duration
            out.append(Fault(kind, None, round(at, 6), round(20 * interval, 6)))
    return out
