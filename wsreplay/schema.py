"""The capture format: one definition of its columns and its version.

A capture is a table with one row per event (``open``, ``message``, ``close``,
``error``) of a WebSocket connection. The store, the simulator and the
importers all build rows through this module.

The columns and their types are written down once, without pyarrow, in
:mod:`wsreplay.columns` (the recorder encodes Arrow from them by hand); this
module is their pyarrow form and the conversions. See
``docs/capture-format.md`` for the prose version of the contract.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from functools import cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa

from .columns import BINARY, COLUMN_TYPES, FORMAT_VERSION, STRING, TIMESTAMP, VERSION_KEY

if TYPE_CHECKING:  # pandas is imported by the functions that build DataFrames: the recorder never loads it
    import pandas as pd

__all__ = [
    "FORMAT_VERSION",
    "SUPPORTED_VERSIONS",
    "VERSION_KEY",
    "SCHEMA",
    "COLUMNS",
    "CATEGORICAL_COLUMNS",
    "ENDPOINTS",
    "EVENTS",
    "DIRECTIONS",
    "OPCODES",
    "INSTRUCTION_NAMES",
    "empty_frames",
    "rows_to_table",
    "column_array",
    "frames_to_table",
    "table_to_frames",
    "conform_table",
]

#: Versions :func:`wsreplay.load` can read (2: the files of a compacted capture, see ``store/layout.py``).
SUPPORTED_VERSIONS: Final = frozenset({1, 2})

ENDPOINTS: Final = ("outpost", "client", "other")
EVENTS: Final = ("open", "message", "close", "error", "dropped")
DIRECTIONS: Final = ("to_server", "to_peer")
OPCODES: Final = ("text", "binary")
INSTRUCTION_NAMES: Final = (
    "ACK",
    "HELLO",
    "TRIGGER_UPDATE",
    "PROVIDER_SPECIFIC",
    "SESSION_END",
    "UNKNOWN",
)

_ARROW_TYPES: Final = {
    TIMESTAMP: pa.timestamp("ns", tz="UTC"),
    STRING: pa.string(),
    BINARY: pa.binary(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
}

#: Column name -> Arrow type, in file order (the types of :data:`wsreplay.columns.COLUMN_TYPES`).
COLUMNS: Final[dict[str, pa.DataType]] = {name: _ARROW_TYPES[typ] for name, typ in COLUMN_TYPES.items()}

#: Low-cardinality string columns: dictionary-encoded on load (pandas Categorical).
CATEGORICAL_COLUMNS: Final = (
    "capture_id",
    "conn_id",
    "endpoint",
    "path",
    "outpost_uuid",
    "instance_uuid",
    "event",
    "direction",
    "opcode",
    "instruction_name",
    "version",
    "build_hash",
    "hostname",
    "message_type",
    "level",
    "tags",
    "close_reason",
    "user_agent",
    "peer",
    "parse_error",
)

SCHEMA: Final = pa.schema(
    [pa.field(name, typ) for name, typ in COLUMNS.items()],
    metadata={VERSION_KEY: str(FORMAT_VERSION).encode()},
)


@cache
def _nullable_ints() -> dict[pa.DataType, Any]:
    import pandas as pd

    return {pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}


#: Arrow type -> ``array`` typecode of its values buffer (fixed-width columns).
_INT_CODES: Final = {pa.int16(): "h", pa.int32(): "i", pa.int64(): "q", pa.timestamp("ns", tz="UTC"): "q"}


def column_array(values: Sequence[Any], typ: pa.DataType) -> pa.Array:
    """One capture column from Python values (``None`` is null), built from its buffers.

    The same array as ``pa.array(values, type=typ)``, without its first call
    importing pandas (pyarrow checks every sequence for pandas objects): the
    recorder builds its tables with this and never loads pandas. Values it
    cannot take as they are (a ``datetime``, a ``str`` that is not UTF-8) go
    to ``pa.array``.

    Examples
    --------
    >>> column_array(["a", None, "é"], pa.string()).to_pylist()
    ['a', None, 'é']
    """
    n = len(values)
    nulls = sum(v is None for v in values)
    if nulls == n:
        return pa.nulls(n, typ)
    validity = None
    if nulls:
        bits = np.packbits(np.fromiter((v is not None for v in values), dtype=bool, count=n), bitorder="little")
        validity = pa.py_buffer(bits.tobytes())
    try:
        code = _INT_CODES.get(typ)
        if code is not None:
            data = array(code, [0 if v is None else v for v in values])
            return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(data)], null_count=nulls)
        if typ == pa.string():
            raw = [b"" if v is None else v.encode() for v in values]
        elif typ == pa.binary():
            raw = [b"" if v is None else v if type(v) is bytes else memoryview(v).tobytes() for v in values]
        else:
            raise TypeError(typ)
        offsets = array("i", accumulate(map(len, raw), initial=0))
        buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(raw))]
        return pa.Array.from_buffers(typ, n, buffers, null_count=nulls)
    except (TypeError, AttributeError, UnicodeEncodeError, OverflowError):
        return pa.array(values, type=typ)


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Build a capture table from event dicts (missing keys are null).

    Parameters
    ----------
    rows : list of dict
        One dict per event, keyed by column name. Unknown keys are ignored.

    Returns
    -------
    pyarrow.Table
        A table with exactly :data:`SCHEMA`.
    """
    arrays = [column_array([row.get(name) for row in rows], typ) for name, typ in COLUMNS.items()]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def conform_table(table: pa.Table) -> pa.Table:
    """Return *table* with exactly the capture columns, in order, with their types.

    Columns the table lacks are added as nulls; dictionary columns are decoded;
    extra columns are dropped.

    Raises
    ------
    wsreplay.exceptions.CaptureFormatError
        If a column cannot be cast to its capture type.
    """
    from .exceptions import CaptureFormatError

    arrays = []
    n = table.num_rows
    for name, typ in COLUMNS.items():
        if name not in table.column_names:
            arrays.append(pa.nulls(n, typ))
            continue
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if col.type != typ:
            try:
                col = col.cast(typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise CaptureFormatError(
                    f"column {name!r} has type {col.type}, which cannot be read as {typ}: "
                    "this file does not follow the wsreplay capture format"
                ) from exc
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _types_mapper(typ: pa.DataType) -> Any:
    import pandas as pd

    ints = _nullable_ints()
    if typ in ints:
        return ints[typ]
    if typ == pa.string() or typ == pa.large_string():
        return pd.StringDtype("pyarrow")
    return None


def table_to_frames(table: pa.Table) -> pd.DataFrame:
    """Convert a capture table to the frames DataFrame that analysis functions take.

    Timestamps become ``datetime64[ns, UTC]``, low-cardinality strings
    ``category``, integers nullable (``Int16``, ``Int32``, ``Int64``), other
    strings pyarrow-backed ``string``.
    """
    import pandas as pd

    cols = []
    for name in table.column_names:
        col = table.column(name)
        if name in CATEGORICAL_COLUMNS and not pa.types.is_dictionary(col.type):
            col = col.dictionary_encode()
        cols.append(col)
    table = pa.Table.from_arrays(cols, names=table.column_names)
    df = table.to_pandas(types_mapper=_types_mapper, split_blocks=True, self_destruct=True)
    if "seq" in df.columns:
        df["seq"] = df["seq"].astype(pd.Int64Dtype())
    return df


def empty_frames() -> pd.DataFrame:
    """An empty frames DataFrame with every capture column and its dtype."""
    return table_to_frames(SCHEMA.empty_table())


def frames_to_table(frames: pd.DataFrame) -> pa.Table:
    """Convert a frames DataFrame (as returned by ``load``) back to a capture table."""
    import pandas as pd

    df = frames.reset_index(drop=True)
    arrays = {}
    for name, typ in COLUMNS.items():
        if name not in df.columns:
            continue
        series = df[name]
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object).where(series.notna(), None)
        arrays[name] = pa.array(series, type=typ, from_pandas=True)
    return conform_table(pa.table(arrays) if arrays else SCHEMA.empty_table())
