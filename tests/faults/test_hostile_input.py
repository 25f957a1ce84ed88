"""Hostile input: fuzzed frames and capture files get a clear answer, paths never lead a write outside."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faults_support import files_under
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from record_support import bearer, mock_and_recorder, outpost_url
from websockets.asyncio.client import connect

from wsreplay import CaptureWriter, load, save
from wsreplay.cli import main as cli_main
from wsreplay.events import ConnectionLog
from wsreplay.exceptions import CaptureError, WSReplayError
from wsreplay.protocol import decode, encode_hello, hello_args
from wsreplay.schema import SCHEMA, VERSION_KEY, rows_to_table, table_to_frames

SCENARIO = "hostile input"
HAR = Path(__file__).resolve().parents[1] / "interop" / "fixtures" / "chromium-client.har"

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_outpost_like = st.fixed_dictionaries(
    {"instruction": st.integers(-(2**70), 2**70) | st.text(max_size=5) | st.none(), "args": _json}
).map(json.dumps)
_hostile = st.sampled_from(
    [
        "[" * 100_000 + "]" * 100_000,  # deep nesting
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"instruction": ' + "9" * 50_000 + ', "args": {}}',  # beyond int's string limit
        '{"instruction": 1e999999, "args": {"hostname": -1e999999}}',
        '{"instruction": 1, "args": {"uuid": ["not", "a", "string"], "version": {"x": 1}}}',
        '{"instruction": 1, "args": "not an object"}',
        "\ud800 lone surrogate",
        "",
        "null",
    ]
)
_bytes = st.binary(max_size=300) | st.just(b'{"instruction": 1, "args": {"hostname": "\xff\xfe"}}')


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=_outpost_like | _hostile | st.text(max_size=200) | _bytes,
    endpoint=st.sampled_from(["outpost", "client", "other"]),
    opcode=st.sampled_from(["text", "binary"]),
)
def test_the_decoder_never_raises_and_says_what_was_wrong(payload, endpoint, opcode):
    out = decode(payload, endpoint=endpoint, opcode=opcode)
    assert "parse_error" in out
    if isinstance(payload, bytes) and not (endpoint == "other" and opcode == "binary"):  # other+binary: opaque
        try:
            json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            assert out["parse_error"]  # what could not be read is said, never raised


def test_decoder_fuzz_figure(figures):
    # the hypothesis test above ran 300 examples plus the fixed hostile payloads; this records it once
    crashed = 0
    for payload in ["[" * 100_000, '{"instruction": ' + "9" * 50_000 + "}", b"\xff\xfe\xfd", "\ud800"]:
        try:
            decode(payload, endpoint="outpost")
        except Exception:
            crashed += 1
    figures.add(SCENARIO, "decoder: exceptions on hostile frames (+300 hypothesis examples)", crashed, "0")
    assert crashed == 0


def _good_capture(directory: Path, t0: int) -> Path:
    log = ConnectionLog("fuzz", "/ws/client/")
    directory.mkdir(parents=True)
    save(table_to_frames(rows_to_table([log.open(t0), log.close(t0 + 1, "to_peer", code=1000)])), directory)
    return directory


@pytest.fixture(scope="module")
def parquet_bytes(tmp_path_factory) -> bytes:
    d = _good_capture(tmp_path_factory.mktemp("good") / "cap", 1_795_838_763_000_000_000)
    return next(d.glob("*.parquet")).read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_crafted_capture_files_are_a_clear_error(tmp_path_factory, parquet_bytes, data):
    d = tmp_path_factory.mktemp("crafted")
    kind = data.draw(st.sampled_from(["random", "truncated", "flipped", "arrows"]))
    if kind == "random":
        blob = data.draw(st.binary(max_size=2000))
    elif kind == "truncated":
        blob = parquet_bytes[: data.draw(st.integers(0, len(parquet_bytes) - 1))]
    elif kind == "flipped":
        i = data.draw(st.integers(0, len(parquet_bytes) - 1))
        blob = parquet_bytes[:i] + bytes([parquet_bytes[i] ^ 0xFF]) + parquet_bytes[i + 1 :]
    else:
        blob = data.draw(st.binary(max_size=500))
    name = "x-00000.arrows" if kind == "arrows" else "x-00000.parquet"
    (d / name).write_bytes(blob)
    try:
        frames = load(d)
    except WSReplayError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
    else:
        # a flipped byte may land in a value, not the structure: then it reads, and stays a capture
        # (the schema's columns first) of at most the two rows the good capture holds
        assert list(frames.columns)[: len(SCHEMA.names)] == SCHEMA.names
        assert len(frames) <= 2


def test_wrong_schema_and_wrong_version_are_refused_by_name(tmp_path, figures):
    bad = 0
    cases = {
        "no metadata": pa.table({"ts": [1, 2]}),
        "wrong type": pa.table({"seq": ["a", "b"]}).replace_schema_metadata({VERSION_KEY: b"1"}),
        "future version": SCHEMA.empty_table().replace_schema_metadata({VERSION_KEY: b"999"}),
        "garbage version": SCHEMA.empty_table().replace_schema_metadata({VERSION_KEY: b"v\xff"}),
    }
    for label, table in cases.items():
        d = tmp_path / label.replace(" ", "-")
        d.mkdir()
        pq.write_table(table, d / "c-00000.parquet")
        try:
            load(d)
            bad += 1
        except WSReplayError as exc:
            assert len(str(exc).splitlines()) == 1, label
        # the command line gives one line and status 2, no traceback
        assert cli_main(["info", str(d)]) == 2
    figures.add(SCENARIO, "crafted capture files (wrong schema/version) loaded without a clear error", bad, "0")
    assert bad == 0


# ------------------------------------------------------------------ paths


def test_no_option_writes_outside_the_directory_the_user_named(tmp_path, figures, t0):
    """Segment names, symlinks planted in a capture directory and ``..`` in ids never lead a write elsewhere."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    work = tmp_path / "work"
    cap = _good_capture(work / "cap", t0)
    # a crashed segment next to symlinks that point outside
    os.symlink(outside / "precious.txt", cap / "x-00007.parquet.tmp")
    os.symlink(outside / "new.parquet", cap / "y-00000.parquet")  # dangling
    os.symlink(outside / "precious.txt", cap / "z-00000.arrows")
    before = files_under(outside)
    escapes = 0
    results = {
        "import --capture-id ../escaped": cli_main(
            ["import", str(HAR), "--out", str(work / "imp"), "--capture-id", "../escaped"]
        ),
        "import --capture-id /abs": cli_main(
            ["import", str(HAR), "--out", str(work / "imp2"), "--capture-id", str(outside / "abs")]
        ),
        "recover with planted symlinks": cli_main(["recover", str(cap)]),
        "export --har": cli_main(["export", str(work / "imp3-src"), "--har", str(work / "o.har")]),
        "report -o": cli_main(["report", str(work / "cap"), "-o", str(work / "r.html")]),
    }
    with pytest.raises(CaptureError, match="plain name"):
        CaptureWriter(work / "w", capture_id="../../w")
    after = files_under(outside)
    escapes += sum(1 for k in after if k not in before) + sum(1 for k in before if after.get(k) != before[k])
    escapes += len(list(work.parent.glob("escaped*"))) + len(list(work.glob("escaped*")))
    figures.add(SCENARIO, "writes outside the named output (paths with .., absolute ids, symlinks)", escapes, "0")
    assert escapes == 0, (before, after)
    assert (outside / "precious.txt").read_text() == "keep me"
    assert results["import --capture-id ../escaped"] == 2 and results["import --capture-id /abs"] == 2
    assert results["export --har"] != 0  # a missing capture is a one-line error


def test_garbage_on_the_recorder_port_never_stops_it(tmp_path, figures, no_secrets):
    blobs = [os.urandom(n) for n in (1, 17, 4096, 70_000)] + [
        b"GET /ws/outpost/x/ HTTP/1.1\r\nUpgrade: websocket\r\n" + b"X: " + b"a" * 300_000 + b"\r\n\r\n",
        b"\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /ws/client/ HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ]

    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (_ak, rec):
            answered = 0
            for blob in blobs:
                reader, writer = await asyncio.open_connection(*rec.address)
                writer.write(blob)
                try:
                    await writer.drain()
                    writer.write_eof()  # all it will ever send: an answer or a close, not a wait
                    data = await asyncio.wait_for(reader.read(200), 5)
                    answered += data.startswith(b"HTTP/1.1 4") or data == b""
                except (ConnectionError, TimeoutError):
                    answered += 1
                writer.close()
            async with connect(outpost_url(rec), additional_headers=bearer()) as ws:
                await ws.send(encode_hello(hello_args(uuid="after", version="2023.10.0", hostname="after")))
                reply = await ws.recv()
            return answered, reply

    answered, reply = asyncio.run(main())
    figures.add(SCENARIO, f"recorder crashes after {len(blobs)} garbage requests", 0 if reply else 1, "0")
    assert answered == len(blobs) and reply
    no_secrets(SCENARIO, tmp_path / "cap")
