"""Rows to record batch messages without pyarrow: the same tables ``rows_to_table`` builds, odd values included."""

from __future__ import annotations

import datetime as dt
from array import array

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsreplay.columns import COLUMN_TYPES
from wsreplay.schema import SCHEMA, rows_to_table
from wsreplay.store.batches import (
    BAD,
    Keyed,
    batch_to_table,
    encode_value,
    gather_column,
    rows_to_batch,
    table_to_batches,
)
from wsreplay.store.ipc import bytes_column, int_column, record_batch_message

_INT = {"int16": 1 << 15, "int32": 1 << 31, "int64": 1 << 63, "timestamp[ns, tz=UTC]": 1 << 63}
_ODD = st.sampled_from(
    [
        dt.datetime(2026, 11, 30, tzinfo=dt.UTC),  # pyarrow takes it for a time; the hand encoder does not
        bytearray(b"\x00\xff"),
        memoryview(b"mv"),
        "caf\u00e9",
        "",
    ]
)


def _value(typ: str) -> st.SearchStrategy:
    if typ in _INT:
        return st.none() | st.integers(-_INT[typ], _INT[typ] - 1)
    if typ == "binary":
        return st.none() | st.binary(max_size=8) | _ODD.filter(lambda v: isinstance(v, bytearray | memoryview))
    return st.none() | st.text(max_size=8)


rows_strategy = st.lists(
    st.fixed_dictionaries({}, optional={name: _value(typ) for name, typ in COLUMN_TYPES.items()}), max_size=20
)


@settings(max_examples=150, deadline=None)
@given(rows_strategy)
def test_rows_make_the_table_rows_to_table_makes(rows):
    table = batch_to_table(rows_to_batch(rows))
    table.validate(full=True)
    assert table.schema.equals(SCHEMA)
    assert table.equals(rows_to_table(rows))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("ts", dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)),  # pyarrow's conversion, as before
        ("payload", "\ud800"),  # a lone surrogate: not UTF-8, pyarrow raises what it raised before
        ("size", 1 << 70),  # out of int64's range
        ("instruction", "1"),  # a str for an int column
    ],
)
def test_a_value_the_hand_encoder_refuses_goes_to_pyarrow(column, value):
    rows = [{"ts": 1, "event": "message"}, {"ts": 2, column: value}]
    assert encode_value(value, COLUMN_TYPES[column]) is BAD
    try:
        expected = rows_to_table(rows)
    except Exception as exc:
        with pytest.raises(type(exc)):
            rows_to_batch(rows)
    else:
        assert batch_to_table(rows_to_batch(rows)).equals(expected)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["payload", "payload_bytes", "size", "instruction", "close_code"]),
    st.data(),
)
def test_gathering_by_key_is_encoding_row_by_row(name, data):
    typ = COLUMN_TYPES[name]
    per = data.draw(st.lists(_value(typ), min_size=1, max_size=5))
    per = [encode_value(v, typ) for v in per]
    idx = array("i", data.draw(st.lists(st.integers(0, len(per) - 1), max_size=30)))
    rows = [per[i] for i in idx]
    expected = int_column(rows, typ) if typ in _INT else bytes_column(rows)
    keyed = Keyed(typ, per)
    for used in (None, set(idx)):
        got = gather_column(name, keyed, idx, lambda: rows, used)
        assert _read(name, got, len(idx)) == _read(name, expected, len(idx))
    # keys appended for one batch and taken back leave the column as it was
    state = keyed.mark()
    keyed.append(None)
    keyed.append(per[0])
    keyed.truncate(state)
    assert keyed.values == per and keyed.mark() == Keyed(typ, per).mark()


def _read(name: str, column, n: int) -> list:
    field = SCHEMA.field(name)
    from wsreplay.store.ipc import EOS, schema_message

    stream = schema_message({name: COLUMN_TYPES[name]}) + record_batch_message(n, [column]) + EOS
    table = pa.ipc.open_stream(stream).read_all()
    table.validate(full=True)
    assert table.schema.field(0).type == field.type
    return table.column(0).to_pylist()


def test_tables_are_serialised_by_pyarrow_compressed():
    table = rows_to_table([{"ts": i, "event": "message", "payload": "x" * 500} for i in range(100)])
    message = table_to_batches(table)
    assert len(message) < 10_000  # zstd: 50,000 bytes of payload (and the metadata of 30 columns)
    assert batch_to_table(message).equals(table)
