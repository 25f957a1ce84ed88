"""The hand-written Arrow IPC stream: pyarrow reads every column back as it would have written it."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsreplay.columns import COLUMN_TYPES, FORMAT_VERSION, VERSION_KEY
from wsreplay.schema import COLUMNS, SCHEMA
from wsreplay.store.ipc import EOS, bytes_column, int_column, record_batch_message, schema_message, validity_bitmap

_BOUNDS = {"int16": 1 << 15, "int32": 1 << 31, "int64": 1 << 63, "timestamp[ns, tz=UTC]": 1 << 63}


def read(*messages: bytes) -> pa.Table:
    table = pa.ipc.open_stream(b"".join(messages) + EOS).read_all()
    table.validate(full=True)
    return table


def test_the_schema_message_is_the_capture_schema_with_its_version():
    head = schema_message(COLUMN_TYPES, {VERSION_KEY: str(FORMAT_VERSION).encode()})
    assert pa.ipc.open_stream(head + EOS).schema.equals(SCHEMA, check_metadata=True)


def test_an_unknown_type_is_refused_with_its_name():
    with pytest.raises(ValueError, match="float64"):
        schema_message({"x": "float64"})


@st.composite
def columns(draw: st.DrawFn) -> tuple[dict[str, str], list[list]]:
    names = draw(st.lists(st.sampled_from([*list(_BOUNDS), "string", "binary"]), min_size=1, max_size=6))
    n = draw(st.integers(0, 40))
    values = []
    for typ in names:
        if typ in _BOUNDS:
            elem = st.integers(-_BOUNDS[typ], _BOUNDS[typ] - 1)
        elif typ == "string":
            elem = st.text(max_size=12)
        else:
            elem = st.binary(max_size=12)
        values.append(draw(st.lists(st.none() | elem, min_size=n, max_size=n)))
    return {f"c{i}": typ for i, typ in enumerate(names)}, values


@settings(max_examples=200, deadline=None)
@given(columns(), st.integers(1, 3))
def test_batches_read_back_as_the_values_written(spec, batches):
    types, values = spec
    encoded = []
    for typ, vals in zip(types.values(), values, strict=True):
        if typ in _BOUNDS:
            encoded.append(int_column(vals, typ))
        else:
            encoded.append(bytes_column([v.encode() if isinstance(v, str) else v for v in vals]))
    n = len(values[0])
    table = read(schema_message(types), *[record_batch_message(n, encoded)] * batches)
    expected = pa.table(
        {
            name: pa.array(vals * batches, type=_arrow(typ))
            for (name, typ), vals in zip(types.items(), values, strict=True)
        }
    )
    assert table.equals(expected)
    assert [table.column(c).null_count for c in types] == [vals.count(None) * batches for vals in values]


def _arrow(typ: str) -> pa.DataType:
    return {"string": pa.string(), "binary": pa.binary()}.get(typ) or next(
        COLUMNS[c] for c, t in COLUMN_TYPES.items() if t == typ
    )


@given(st.binary(max_size=70).map(lambda b: bytes(x & 1 for x in b)))
def test_validity_bits_are_least_significant_first(flags):
    bits = validity_bitmap(flags)
    assert len(bits) == (len(flags) + 7) // 8
    assert [bits[i // 8] >> (i % 8) & 1 for i in range(len(flags))] == list(flags)
