"""Run the simulated fleet in real time: :func:`run_fleet_async` and its blocking twin :func:`run_fleet`.

A run starts the tasks of :class:`~wsreplay.sim.fleet_driver.FleetDriver`
(one per outpost replica and per browser, plus the server faults' script) and
returns its :class:`~wsreplay.sim.Truth`. To get a capture, point the fleet
at a :class:`wsreplay.Recorder` in front of the mock (what ``wsreplay
simulate`` does); with ``capture=`` the fleet also writes the rows of what it
saw on its own sockets, on its own clock.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from .._background import run_in_thread
from ..exceptions import ConfigurationError
from ..store import CaptureWriter
from .fleet_driver import FleetDriver
from .plan import make_plan
from .scenario import Scenario
from .timeline import browser_program, replica_program
from .truth_data import Truth

__all__ = ["run_fleet", "run_fleet_async", "ws_base_url"]


def ws_base_url(url: str) -> str:
    """``ws(s)://host:port`` from an ``http(s)://`` or ``ws(s)://`` base URL.

    >>> ws_base_url("http://127.0.0.1:9000/")
    'ws://127.0.0.1:9000'
    """
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigurationError(f"{url!r} is not an http(s):// or ws(s):// base URL of authentik")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


async def run_fleet_async(
    scenario: Scenario,
    url: str,
    *,
    mock: Any = None,
    capture: CaptureWriter | None = None,
    session: str | None = None,
    open_timeout: float = 5.0,
) -> Truth:
    """Run *scenario* in real time against the authentik at *url*; return what really happened.

    Parameters
    ----------
    scenario : Scenario
        The fleet and its faults. Its tokens are sent as ``Authorization: Bearer``.
    url : str
        Base URL of authentik (or of a recorder in front of it): ``http(s)://`` or ``ws(s)://``.
    mock : MockAuthentik, optional
        Needed when the scenario has server faults or notices: the run calls its
        ``restart(downtime=)`` and ``push_notice()``, and sets its ``ack_latency``
        during latency spikes.
    capture : CaptureWriter, optional
        Receives the capture rows of what the fleet saw on its sockets.
    session : str, optional
        ``authentik_session`` cookie the browsers send.
    open_timeout : float
        Seconds a handshake may take before the attempt counts as failed.

    Returns
    -------
    Truth
        On the wall clock of this run (``truth.start`` is when it began).
    """
    base = ws_base_url(url)
    server_kinds = ("server_restart", "latency_spike", "ack_drop", "ack_dup")
    needs_mock = any(f.kind in server_kinds for f in scenario.faults) or bool(scenario.notices)
    if needs_mock and mock is None:
        raise ConfigurationError(
            "this scenario has server faults or notices: pass the MockAuthentik serving it as mock="
        )
    plan = make_plan(scenario)
    fleet = FleetDriver(plan, base, mock=mock, capture=capture, session=session, open_timeout=open_timeout)
    coros = [fleet.run_program(replica_program(plan, rp), rp) for rp in plan.replicas]
    coros += [fleet.run_program(browser_program(plan, bp), None) for bp in plan.browsers]
    if needs_mock:
        coros.append(fleet.server_script())
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:  # one failed (or we were cancelled): stop the whole fleet
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return fleet.truth.build(clock="real", scenario=scenario.to_dict(), capture_id=fleet.capture_id)


def run_fleet(
    scenario: Scenario,
    url: str,
    *,
    mock: Any = None,
    capture: CaptureWriter | None = None,
    session: str | None = None,
    open_timeout: float = 5.0,
) -> Truth:
    """Blocking twin of :func:`run_fleet_async` (the same parameters; works inside Jupyter's running loop too).

    The run happens on a loop of its own in a background thread
    (:func:`wsreplay._background.run_in_thread`), so a *mock* given here must
    be usable from another loop: pass the handle of
    ``MockAuthentik(...).start_in_thread()``.
    """
    return run_in_thread(
        run_fleet_async(scenario, url, mock=mock, capture=capture, session=session, open_timeout=open_timeout),
        name="wsreplay-fleet",
    )
