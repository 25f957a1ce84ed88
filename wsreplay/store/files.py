"""Segment file names and their locks (no pyarrow: the recorder's process uses this).

A live writer holds an exclusive ``flock`` on each file it writes, from its
creation until it is done; :func:`try_lock` is how readers and ``recover``
tell a live writer's file from one a crash left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["STREAM_SUFFIX", "PARQUET_SUFFIX", "create_locked", "try_lock"]

STREAM_SUFFIX = ".arrows"
PARQUET_SUFFIX = ".parquet"


def create_locked(path: Path) -> BinaryIO:
    """Create *path* for writing with an exclusive ``flock`` already held on it.

    The file is made under a hidden staging name, locked, then renamed into
    place (a rename keeps the open file and its lock), so no reader ever sees
    it unlocked while its writer lives: :func:`try_lock` cannot win the race
    against a writer that has just created its file.
    """
    staging = path.with_name(f".{path.name}.{os.getpid()}.new")
    sink = open(staging, "wb")
    try:
        fcntl.flock(sink.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(staging, path)
    except BaseException:
        sink.close()
        staging.unlink(missing_ok=True)
        raise
    return sink


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Hold *path*'s exclusive ``flock`` for the block, if no live writer holds it.

    Yields ``True`` with the lock held, or ``False`` if another open file (a
    writer in this or another process) holds it. A file that vanished counts
    as held: someone is working on it.
    """
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        yield False
        return
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        # a writer that finished meanwhile unlinked (or replaced) the file, then let go of it
        yield same
