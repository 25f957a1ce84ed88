"""The live up rule on literal timelines (nanosecond timestamps, no clock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_support import absolute_imports

import wsreplay.metrics
from wsreplay.exceptions import ConfigurationError
from wsreplay.metrics.health import FleetHealth

S = 1_000_000_000
PACKAGE = Path(wsreplay.metrics.__file__).parent


def up(h: FleetHealth, t: float) -> dict[str, bool | None]:
    return {s.outpost: s.up for s in h.outposts(int(t * S))}


def hello(h: FleetHealth, conn: str, t: float, *, op: str = "op", inst: str | None = "i1") -> None:
    h.refreshed(conn, op, inst, last_ns=int(t * S), hellos_ns=[int(t * S)])


def test_up_for_factor_times_the_default_interval_after_a_refresh() -> None:
    h = FleetHealth()
    h.opened("c1", "outpost", "op", "i1", 0)
    assert up(h, 0.5) == {"op": None}  # connected, not refreshed yet: not observed
    hello(h, "c1", 1.0)
    assert up(h, 15.9) == {"op": True}  # 1 + 1.5 x 10 s
    assert up(h, 16.0) == {"op": False}


def test_the_interval_is_the_median_hello_gap_on_one_connection() -> None:
    h = FleetHealth()
    h.opened("c1", "outpost", "op", "i1", 0)
    for t in (0.0, 2.0, 4.0, 6.1):
        hello(h, "c1", t)
    assert h.interval_ns("i1") == pytest.approx(2.0 * S)
    assert up(h, 6.1 + 2.9) == {"op": True}
    assert up(h, 6.1 + 3.0) == {"op": False}
    # a fixed interval overrides the observed one
    fixed = FleetHealth(interval=4.0, factor=2.0)
    fixed.opened("c1", "outpost", "op", "i1", 0)
    hello(fixed, "c1", 0.0)
    assert up(fixed, 7.9) == {"op": True} and up(fixed, 8.0) == {"op": False}


def test_a_close_ends_the_up_period_at_once_and_the_next_refresh_starts_another() -> None:
    h = FleetHealth()
    h.opened("c1", "outpost", "op", "i1", 0)
    hello(h, "c1", 1.0)
    h.ended("c1", int(2.0 * S))
    assert up(h, 2.0) == {"op": False}
    hello(h, "c1", 2.5)  # a frame recorded after the end of its connection changes nothing
    assert up(h, 3.0) == {"op": False}
    h.opened("c2", "outpost", "op", "i1", int(4.0 * S))
    assert up(h, 4.1) == {"op": False}  # reconnected, no refresh yet: still down
    hello(h, "c2", 4.2)
    assert up(h, 4.2) == {"op": True}


def test_an_outpost_is_up_while_any_instance_is_and_counts_instances_connected() -> None:
    h = FleetHealth(interval=1.0)
    h.opened("a", "outpost", "op", "i1", 0)
    h.opened("b", "outpost", "op", None, 0)  # an old outpost names itself in its first HELLO
    hello(h, "a", 0.1)
    hello(h, "b", 0.2, inst="i2")
    state = next(h.outposts(int(0.3 * S)))
    assert (state.up, state.instances_connected, state.last_hello_ns) == (True, 2, int(0.2 * S))
    h.ended("a", int(0.5 * S))
    assert up(h, 0.6) == {"op": True}
    assert next(h.outposts(int(0.6 * S))).instances_connected == 1
    assert up(h, 1.7) == {"op": False}  # b's last refresh at 0.2 expired at 1.7


def test_a_refresh_without_a_known_instance_does_not_make_the_outpost_up() -> None:
    h = FleetHealth()
    h.opened("a", "outpost", "op", None, 0)
    h.refreshed("a", "op", None, last_ns=S, hellos_ns=[S])
    state = next(h.outposts(2 * S))
    assert state.up is None and state.last_hello_ns == S


def test_a_new_instance_takes_its_outposts_interval_until_it_has_its_own() -> None:
    h = FleetHealth()
    h.opened("old", "outpost", "op", "i1", 0)
    for t in (0.0, 1.0, 2.0, 3.0):
        hello(h, "old", t)
    h.ended("old", int(3.5 * S))  # restart: a new process, a new instance uuid
    h.opened("new", "outpost", "op", "i2", int(4 * S))
    hello(h, "new", 4.0, inst="i2")
    assert h.interval_ns("i2") == pytest.approx(1.0 * S)
    assert up(h, 5.4) == {"op": True} and up(h, 5.5) == {"op": False}
    # another outpost's first instance takes the fleet's
    h.opened("x", "outpost", "op2", "j1", int(4 * S))
    assert h.interval_ns("j1") == pytest.approx(1.0 * S)


def test_outposts_gone_longer_than_the_retention_are_dropped() -> None:
    h = FleetHealth(retention=60.0)
    h.opened("a", "outpost", "gone", "i1", 0)
    hello(h, "a", 1.0, op="gone")
    h.ended("a", 2 * S)
    h.opened("b", "outpost", "idle", "i2", 0)  # open but silent: kept however long
    h.opened("c", "client", None, None, 0)
    assert h.expire(61 * S) == 0
    assert h.expire(62 * S + 1) == 1
    assert [s.outpost for s in h.outposts(100 * S)] == ["idle"]
    assert len(h) == 1
    assert h.connections_open() == {"outpost": 1, "client": 1}
    h.ended("c", 3 * S)
    h.ended("c", 3 * S)  # a second end row of the same connection counts once
    assert h.connections_open() == {"outpost": 1, "client": 0}


def test_bad_options_are_one_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="factor"):
        FleetHealth(factor=0)
    with pytest.raises(ConfigurationError, match="interval"):
        FleetHealth(interval=-1)
    with pytest.raises(ConfigurationError, match="retention"):
        FleetHealth(retention=0)


@pytest.mark.parametrize("module", ["health.py", "latency.py", "rows.py"])
def test_the_metrics_core_does_no_io_and_stays_lean(module: str) -> None:
    """No sockets, loops, clocks (time is passed in), plotting, or pandas at import (the lean recorder)."""
    for name in absolute_imports(PACKAGE / module):
        assert name.split(".")[0] not in {"asyncio", "websockets", "matplotlib", "socket", "time", "pandas"}, name
