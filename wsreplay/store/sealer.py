"""Seal one stream segment into Parquet, in a process of its own (``python -m wsreplay.store.sealer``).

A writer in a process that has not loaded pyarrow (the recorder) runs this at
each rotation: the child imports pyarrow, seals, and exits, so the recorder's
memory never holds pyarrow's libraries. The child inherits the writer's lock
on the segment (the same open file), so ``recover`` leaves it alone while
either lives. Exit status 0 when the Parquet file is in place; otherwise a
one-line error on stderr and status 1 (the stream stays, ``recover`` or
``load`` read it).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Seal ``argv[0]`` (a ``.arrows`` segment) into ``argv[1]``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m wsreplay.store.sealer SEGMENT.arrows TARGET.parquet", file=sys.stderr)
        return 2
    from .segments import seal_stream

    try:
        seal_stream(Path(args[0]), Path(args[1]))
    except OSError as exc:
        print(f"{exc.strerror or exc} ({args[0]})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
