"""The tnetstring reader: the format's examples, every type, nesting, and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from interop_support import tnet_dumps as dumps

from wsreplay.exceptions import ImportFormatError
from wsreplay.interop.tnetstring import iter_values, loads


def test_the_formats_own_examples():
    assert loads(b"11:hello world,") == b"hello world"
    assert loads(b"5:12345#") == 12345
    assert loads(b"19:5:12345#4:true!1:0#]") == [12345, True, 0]
    assert loads(b"0:~") is None
    assert loads(b"5:false!") is False
    assert loads(b"3:1.5^") == 1.5
    assert loads("5:ünï;".encode()) == "ünï"  # the length counts UTF-8 bytes


def test_dict_keys_become_text_whether_bytes_or_text():
    assert loads(dumps({b"old": 1, "new": [b"\x00\xff"]})) == {"old": 1, "new": [b"\x00\xff"]}


def test_back_to_back_values_with_offsets():
    data = dumps({"a": 1}) + b"\n" + dumps([1, 2]) + dumps(b"x")
    values = list(iter_values(data))
    assert [v for _, v, _ in values] == [{"a": 1}, [1, 2], b"x"]
    assert values[0][0] == 0 and values[1][0] == values[0][2] + 1  # the newline is skipped
    assert values[-1][2] == len(data)


scalars = st.none() | st.booleans() | st.integers() | st.binary(max_size=20) | st.text(max_size=20)
scalars = scalars | st.floats(allow_nan=False, allow_infinity=False)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(deadline=None)  # no timing thresholds: the machine is shared
@given(values)
def test_reads_back_whatever_the_format_can_say(value):
    assert loads(dumps(value)) == value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"5:hel", "ends at byte 5, inside a value of 5 bytes"),
        (b"12", "ends at byte 2, inside a length prefix"),
        (b"x:", "invalid length prefix"),
        (b"3:abc?", "unknown type tag '?'"),
        (b"3:abc#", "invalid integer"),
        (b"4:maybe!", "unknown type tag 'e'"),
        (b"5:9:ab,]", "runs past the end of its container"),
        (b"5:maybe!", "invalid boolean"),
        (b"1:x~", "null with a payload"),
        (b"4:1:a,}", "dict key without a value"),
        (b"", "empty data"),
        (b"1:a,1:b,", "trailing data"),
    ],
)
def test_malformed_data_is_refused_with_a_reason(data: bytes, message: str):
    with pytest.raises(ImportFormatError, match=message):
        loads(data)


def _nested(depth: int) -> bytes:
    """``depth`` lists, each inside the next, around a null (built in linear time)."""
    lengths, n = [], 3  # len(b"0:~")
    for _ in range(depth):
        lengths.append(n)
        n += len(str(n)) + 2  # the prefix, its colon and the tag
    return b"".join(b"%d:" % length for length in reversed(lengths)) + b"0:~" + b"]" * depth


def test_deep_nesting_is_a_clear_error_not_a_recursion_error():
    deep = _nested(100_000)
    with pytest.raises(ImportFormatError, match=r"nested more than \d+ levels deep \(byte \d+\)"):
        loads(deep)
    ok = _nested(50)  # far deeper than any flow mitmproxy writes, still read
    value = loads(ok)
    for _ in range(50):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value is None


def test_a_crafted_deep_flow_file_is_one_line_from_the_cli(tmp_path, capsys):
    from wsreplay.cli import main

    crafted = tmp_path / "deep.mitm"
    crafted.write_bytes(_nested(200_000))
    assert main(["import", str(crafted), "--out", str(tmp_path / "cap")]) != 0
    err = capsys.readouterr().err
    assert "nested more than" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
