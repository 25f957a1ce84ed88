"""Literal captures for the analysis tests (tests/analysis), built through ConnectionLog and the schema.

Import as ``from analysis_support import Capture, at``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["T0", "NS", "at", "Conn", "Capture"]

import pandas as pd

from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_ack, encode_hello, encode_notice, encode_trigger_update, hello_args
from wsreplay.schema import rows_to_table, table_to_frames

T0 = 1_795_838_763_000_000_000  # 2026-11-28T04:06:03Z
NS = 1_000_000_000


def at(seconds: float) -> pd.Timestamp:
    """The timestamp *seconds* after T0."""
    return pd.Timestamp(T0 + round(seconds * NS), unit="ns", tz="UTC")


class Conn:
    """One connection of a literal capture; times are seconds after T0."""

    def __init__(self, cap: Capture, path: str, instance: str | None, conn_id: str | None):
        query = f"instance_uuid={instance}&attempt=0" if instance else ""
        self.cap = cap
        self.log = ConnectionLog("cap", path, query, conn_id=conn_id)
        self.instance = instance

    def _add(self, row: dict[str, Any]) -> Conn:
        self.cap.rows.append(row)
        return self

    @staticmethod
    def _ns(t: float) -> int:
        return T0 + round(t * NS)

    def open(self, t: float, *, status: int = 101) -> Conn:
        return self._add(self.log.open(self._ns(t), status=status))

    def hello(self, t: float, *, version: str = "2024.2.1", uuid: str | None = None, ack: float | None = 0.003) -> Conn:
        args = hello_args(uuid=uuid or self.instance or "", version=version, hostname="host-1")
        self._add(self.log.message(self._ns(t), "to_server", encode_hello(args)))
        if ack is not None:
            self.ack(t + ack)
        return self

    def hellos(self, start: float, stop: float, every: float = 10.0, **kw: Any) -> Conn:
        t = start
        while t < stop - 1e-9:
            self.hello(t, **kw)
            t += every
        return self

    def ack(self, t: float) -> Conn:
        return self._add(self.log.message(self._ns(t), "to_peer", encode_ack()))

    def send(self, t: float, direction: str, data: str | bytes) -> Conn:
        return self._add(self.log.message(self._ns(t), direction, data))

    def trigger(self, t: float) -> Conn:
        return self.send(t, "to_peer", encode_trigger_update())

    def notice(self, t: float, text: str, level: str = "info") -> Conn:
        return self.send(t, "to_peer", encode_notice(text, level=level))

    def close(self, t: float, direction: str = "to_server", code: int | None = 1000) -> Conn:
        return self._add(self.log.close(self._ns(t), direction, code=code))

    def error(self, t: float, reason: str = "connection reset", status: int | None = None) -> Conn:
        return self._add(self.log.error(self._ns(t), reason, status=status))


class Capture:
    """Rows of several connections; :meth:`frames` gives the frames DataFrame, sorted by ts."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._n = 0

    def outpost(self, pk: str, instance: str | None, *, conn_id: str | None = None) -> Conn:
        self._n += 1
        return Conn(self, f"/ws/outpost/{pk}/", instance, conn_id or f"c{self._n}")

    def client(self, *, conn_id: str | None = None) -> Conn:
        self._n += 1
        return Conn(self, "/ws/client/", None, conn_id or f"b{self._n}")

    def frames(self) -> pd.DataFrame:
        rows = sorted(self.rows, key=lambda r: (r["ts"], r["conn_id"], r["seq"]))
        return table_to_frames(rows_to_table(rows)).reset_index(drop=True)
