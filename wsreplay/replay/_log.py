"""A :class:`~wsreplay.events.ConnectionLog` that decodes each distinct text frame once.

Replays send and receive the same few payloads over and over (an instance's
HELLO, authentik's ACK), so the drivers keep one decode cache per replay and
skip ``json.loads`` for repeats. Rows are identical to the base class's.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ..events import ConnectionLog
from ..protocol import decode
from ..schema import COLUMNS, SCHEMA

__all__ = ["MemoLog", "DecodeCache", "rows_table"]

#: Payloads longer than this are decoded every time (they rarely repeat).
_MAX_KEY = 4096
_MAX_ENTRIES = 50_000

DecodeCache = dict[tuple[str, str], dict[str, Any]]


class MemoLog(ConnectionLog):
    """ConnectionLog sharing a decode cache (``endpoint, payload -> decoded columns``)."""

    def __init__(self, *args: Any, cache: DecodeCache, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache = cache

    def message(self, ts: int, direction: str, data: str | bytes, *, opcode: str | None = None) -> dict[str, Any]:
        if type(data) is not str or opcode not in (None, "text") or len(data) > _MAX_KEY:
            return super().message(ts, direction, data, opcode=opcode)
        try:
            size = len(data.encode("utf-8"))
        except UnicodeEncodeError:
            return super().message(ts, direction, data, opcode=opcode)
        key = (self.endpoint, data)
        decoded = self.cache.get(key)
        if decoded is None:
            decoded = dict(decode(data, endpoint=self.endpoint, opcode="text"))
            if len(self.cache) < _MAX_ENTRIES:
                self.cache[key] = decoded
        fields: dict[str, Any] = {"opcode": "text", "size": size, "payload": data}
        fields.update(decoded)
        found = decoded.get("instance_uuid")
        if found and self.instance_uuid is None:
            self.instance_uuid = found
        fields["instance_uuid"] = self.instance_uuid
        return self._row(ts, "message", direction=direction, **fields)


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Capture rows -> Arrow table with :data:`~wsreplay.schema.SCHEMA`, built column by column.

    Same result as :func:`wsreplay.schema.rows_to_table`, several times faster for
    the many small rows of a replay.
    """
    arrays = [pa.array([row.get(name) for row in rows], type=typ) for name, typ in COLUMNS.items()]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
