"""Helpers for the recorder's tests (import as ``from record_support import ...``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd

from wsreplay.record import Recorder

PK = "3b7c1e6a-1111-4c3a-9d7e-0e1f2a3b4c5d"
PK2 = "9f8e7d6c-2222-4b5a-8c9d-1a2b3c4d5e6f"
TOKEN = "tok-SECRET-5f0e3c0a9b1d"
TOKEN2 = "tok-SECRET-77aa11bb22cc"
COOKIE = "sess-SECRET-c0ffee0ddba11"
SECRETS = (TOKEN, TOKEN2, COOKIE)


def mock(**kwargs: Any) -> Any:
    from wsreplay.sim import MockAuthentik

    kwargs.setdefault("outposts", {PK: TOKEN, PK2: TOKEN2})
    return MockAuthentik(host="127.0.0.1", port=0, **kwargs)


@contextlib.asynccontextmanager
async def mock_and_recorder(
    out: Path, *, mock_kwargs: dict[str, Any] | None = None, **rec_kwargs: Any
) -> AsyncIterator[tuple[Any, Recorder]]:
    async with mock(**(mock_kwargs or {})) as ak:
        async with Recorder(ak.url, out=out, flush_interval=0.2, **rec_kwargs) as rec:
            yield ak, rec


def outpost_url(rec: Recorder, pk: str = PK, query: str = "") -> str:
    return f"{rec.ws_url}/ws/outpost/{pk}/" + (f"?{query}" if query else "")


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_no_secret_bytes(directory: Path, secrets: tuple[str, ...] = SECRETS) -> None:
    """No secret appears in any file of *directory*, whatever the encoding of the segments."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} found in {path}"
    # Parquet pages are compressed: check the decoded table too.
    from wsreplay import load

    text = load(directory).astype(str).to_csv()
    for secret in secrets:
        assert secret not in text


def messages(frames: pd.DataFrame, conn_id: str) -> list[tuple[str, str]]:
    """(direction, payload) of a connection's message rows, in seq order."""
    rows = frames[(frames.conn_id == conn_id) & (frames.event == "message")].sort_values("seq")
    return list(zip(rows.direction, rows.payload))


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll *predicate* until it is true (event-driven tests, no timing assertions)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
