"""``wsreplay simulate --out DIR``: a simulated fleet's capture and its ground truth.

With ``--virtual`` the capture is generated in virtual time (fast: a day of a
thousand outposts takes well under a minute). Without it, a mock authentik and
a recorder in front of it are started on 127.0.0.1 and the fleet runs through
the recorder in real time for ``--duration`` seconds (use a short
``--interval`` such as 0.2). Either way ``DIR`` becomes a capture (``wsreplay info DIR``,
``wsreplay.load(DIR)``) and ``DIR/truth/`` holds what really happened
(``truth.json`` plus Parquet tables, ``wsreplay.sim.Truth.load(DIR)``).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ..exceptions import CaptureError, ConfigurationError
from ..sim import Scenario, Truth, run_fleet_async, simulate_virtual
from ..sim.truth_data import TRUTH_DIR
from ..store.segments import PARQUET_SUFFIX, STREAM_SUFFIX

__all__ = ["register", "run"]


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value

    return parse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "simulate",
        help="simulate an outpost fleet: a capture plus its ground truth",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--out", required=True, help="capture directory to create (truth goes to DIR/truth/)")
    p.add_argument("--outposts", type=_positive(int), default=10, help="number of outposts (default 10)")
    p.add_argument("--duration", type=_positive(float), default=60.0, help="seconds to simulate (default 60)")
    p.add_argument(
        "--interval", type=_positive(float), default=10.0, help="HELLO interval in seconds (default 10, authentik's)"
    )
    p.add_argument("--seed", type=int, default=0, help="same seed, same fleet and faults (default 0)")
    p.add_argument("--virtual", action="store_true", help="generate the capture in virtual time (fast)")
    p.add_argument("--browsers", type=int, default=0, help="browsers holding /ws/client/ (default 0)")
    p.add_argument("--no-faults", action="store_true", help="a healthy fleet: no scripted faults")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(p.suffix in (PARQUET_SUFFIX, STREAM_SUFFIX) for p in out.iterdir())):
        raise CaptureError(f"{out} already holds a capture (or is a file); choose a new --out directory")
    if args.browsers < 0:
        raise ConfigurationError("--browsers must be >= 0")
    scenario = Scenario.generate(
        outposts=args.outposts,
        duration=args.duration,
        interval=args.interval,
        seed=args.seed,
        faults=not args.no_faults,
        browsers=args.browsers,
    )
    if args.virtual:
        truth = simulate_virtual(scenario, out)
    else:
        truth = asyncio.run(_real_time(scenario, out))
        truth.save(out / TRUTH_DIR)
    outages = truth.outages
    print(
        f"simulated {len(scenario.outposts)} outposts ({len(truth.instances)} processes) for {scenario.duration:g} s "
        f"in {'virtual' if args.virtual else 'real'} time: {len(truth.hellos)} HELLOs, "
        f"{int((outages.level == 'instance').sum())} instance and {int((outages.level == 'outpost').sum())} "
        f"outpost outages -> {out} (truth in {out / TRUTH_DIR})"
    )
    return 0


async def _real_time(scenario: Scenario, out: Path) -> Truth:
    # mock authentik <- the real recording proxy (writes the capture) <- the simulated fleet
    from ..record import Recorder
    from ..sim import MockAuthentik

    async with MockAuthentik(outposts=scenario.tokens, ack_latency=scenario.ack_latency) as ak:
        async with Recorder(upstream=ak.url, out=out) as recorder:
            return await run_fleet_async(scenario, recorder.url, mock=ak)
