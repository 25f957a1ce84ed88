"""The ``wsreplay`` command line.

Each sub-command lives in its own module of this package with two functions:
``register(subparsers)`` adds its parser, ``run(args) -> int`` carries it out.
Add a command by adding its module name to :data:`COMMANDS`. A run imports
only the module of the command it runs (``wsreplay record`` never loads the
plotting or analysis code); ``wsreplay --help`` imports them all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..exceptions import WSReplayError

__all__ = ["main", "COMMANDS"]

#: Sub-command modules, in the order ``wsreplay --help`` lists them.
COMMANDS: list[str] = [
    "info",
    "recover",
    "compact",
    "import_",
    "export",
    "replay",
    "serve",
    "simulate",
    "record",
    "probe",
    "report",
    "demo",
]


def _module_of(command: str) -> str | None:
    """The module of sub-command *command* (``import`` -> ``import_``), or None."""
    for name in COMMANDS:
        if name.rstrip("_") == command:
            return name
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered, or only *command*'s when given."""
    parser = argparse.ArgumentParser(
        prog="wsreplay",
        description="Record, analyse, plot and replay authentik's WebSocket traffic.",
    )
    parser.add_argument("--version", action="version", version=f"wsreplay {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    only = _module_of(command) if command else None
    for name in [only] if only else COMMANDS:
        module = importlib.import_module(f".{name}", __name__)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    User mistakes and refused inputs are one line on stderr and a non-zero
    status, never a traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else None)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except WSReplayError as exc:
        message = " ".join(str(exc).split())  # one line, even when a library's message spans several
        print(f"wsreplay {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wsreplay {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
