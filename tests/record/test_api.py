"""``start_recording`` from a plain script and from inside a running event loop (a notebook)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

from record_support import PK, bearer, mock
from websockets.sync.client import connect

from wsreplay import load, start_recording
from wsreplay.protocol import encode_hello, hello_args

HELLO = encode_hello(hello_args(uuid="nb-1", version="2023.10.0"))


def _session(out):
    ak = mock().start_in_thread()
    try:
        rec = start_recording(ak.url, out=out, flush_interval=0.2)
        with connect(f"{rec.ws_url}/ws/outpost/{PK}/?instance_uuid=nb-1", additional_headers=bearer()) as ws:
            ws.send(HELLO)
            ack = ws.recv()
            live = rec.frames()  # while recording: the in-progress segment is read too
            in_progress = sorted(p.suffix for p in out.iterdir())
        final = rec.stop()
    finally:
        ak.stop()
    return ack, live, in_progress, final


def _check(ack, live, in_progress, final):
    assert ack == '{"instruction": 0, "args": {}}'
    assert ".arrows" in in_progress
    assert list(live[live.event == "message"].payload) == [HELLO, ack]
    assert list(final.event) == ["open", "message", "message", "close"]
    assert final.instance_uuid.eq("nb-1").all()


def test_start_recording_in_a_plain_script(tmp_path):
    _check(*_session(tmp_path / "cap"))
    assert not list((tmp_path / "cap").glob("*.arrows"))


def test_start_recording_inside_a_running_event_loop(tmp_path):
    async def notebook_cell():
        assert asyncio.get_running_loop().is_running()  # as in a Jupyter kernel
        return _session(tmp_path / "cap")

    _check(*asyncio.run(notebook_cell()))


def test_handle_reports_where_it_records(tmp_path):
    ak = mock().start_in_thread()
    try:
        with start_recording(ak.url, out=tmp_path / "cap") as rec:
            assert rec.url.startswith("http://127.0.0.1:")
            assert "recording at" in repr(rec)
            assert rec.stats.connections_total == 0
        assert "stopped" in repr(rec)
    finally:
        ak.stop()


def test_recording_loads_neither_pandas_matplotlib_pyarrow_nor_numpy(tmp_path):
    # What `wsreplay record` imports, then a Recorder relaying, writing and sealing, in a fresh process:
    # the batches are encoded by hand and the segment is sealed into Parquet by a child process.
    code = f"""
        import asyncio, sys
        from websockets.asyncio.client import connect
        from websockets.asyncio.server import serve
        from wsreplay.cli import build_parser
        from wsreplay import Recorder

        build_parser("record")

        async def echo(ws):
            async for msg in ws:
                await ws.send(msg)

        async def main():
            async with serve(echo, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                async with Recorder(f"http://127.0.0.1:{{port}}", out={str(tmp_path / "cap")!r}) as rec:
                    async with connect(rec.ws_url + "/ws/outpost/{PK}/") as ws:
                        await ws.send("hello")
                        assert await ws.recv() == "hello"
                    rec.flush()
                    assert rec.stats.frames == 2

        asyncio.run(main())
        print(sorted(m for m in ("pandas", "matplotlib", "pyarrow", "numpy") if m in sys.modules))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert [p.suffix for p in (tmp_path / "cap").iterdir()] == [".parquet"]  # sealed by the child
    assert list(load(tmp_path / "cap").event) == ["open", "message", "message", "close"]


def test_live_metrics_load_numpy_but_not_pyarrow(tmp_path):
    # The live metrics read the recorder's batches as keys and values (RowMetrics.observe_coded).
    code = f"""
        import asyncio, sys, urllib.request
        from websockets.asyncio.client import connect
        from websockets.asyncio.server import serve
        from wsreplay import Recorder
        from wsreplay.protocol import encode_ack, encode_hello, hello_args

        async def ack(ws):
            async for msg in ws:
                await ws.send(encode_ack())

        async def main():
            async with serve(ack, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                out = {str(tmp_path / "cap")!r}
                async with Recorder(f"http://127.0.0.1:{{port}}", out=out, metrics="127.0.0.1:0") as rec:
                    async with connect(rec.ws_url + "/ws/outpost/{PK}/?instance_uuid=i1") as ws:
                        for _ in range(3):
                            await ws.send(encode_hello(hello_args(uuid="i1", version="2025.4.1")))
                            await ws.recv()
                        rec.flush()
                        url = rec.metrics_url + "/metrics"
                        page = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
                    print(page)

        asyncio.run(main())
        print(sorted(m for m in ("pandas", "matplotlib", "pyarrow", "numpy") if m in sys.modules))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *page, loaded = done.stdout.strip().splitlines()
    assert loaded == "['numpy']"
    frames = [line for line in page if line.startswith("wsreplay_frames_total{") and 'instruction="HELLO"' in line]
    assert frames and frames[0].endswith(" 3.0"), page
