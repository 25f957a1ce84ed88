"""``python -m bench [NAME ...]``: list the benchmarks, or run the named ones.

Each writes its own section of BENCHMARKS.md. At full scale some take many
minutes (a simulated day or week of 1,000 outposts), so none runs by default.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = sorted(
        m.name[len("bench_") :]
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    if not argv:
        print("benchmarks (run one with `python -m bench NAME`, or `python -m bench.bench_NAME --help`):")
        for name in names:
            doc = (importlib.import_module(f"bench.bench_{name}").__doc__ or "").strip().splitlines()
            print(f"  {name:10s} {doc[0] if doc else ''}")
        return 0
    unknown = [n for n in argv if n not in names]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {names}", file=sys.stderr)
        return 2
    for name in argv:
        module = importlib.import_module(f"bench.bench_{name}")
        sys.argv = [f"bench.bench_{name}"]
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
