"""Peer faults: vanishing peers, partial frames, slow consumers, floods, huge frames, many connections."""

from __future__ import annotations

import asyncio
import contextlib
import time

from faults_support import frame, hello, raise_nofile, raw_handshake, raw_upstream, start_recorder
from record_support import PK, bearer, mock, mock_and_recorder, outpost_url, wait_for
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wsreplay import load
from wsreplay.protocol import encode_ack

SCENARIO = "peer faults"
MIB = 1024 * 1024
#: bytes one side tries to push at a side that never reads
PUSH = 256 * MIB
#: the recorder's RSS may grow at most this much meanwhile (its buffers are bounded)
RSS_BOUND_KIB = 64 * 1024


def test_vanishing_and_partial_peers_are_recorded_and_the_recorder_keeps_serving(tmp_path, figures, no_secrets):
    n = 20

    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (_ak, rec):
            # peers that vanish without a close frame (some in the middle of a frame)
            for i in range(n):
                reader, writer, head = await raw_handshake(rec.address[1], token=bearer()["Authorization"][7:])
                assert b" 101 " in head
                data = frame(hello(f"v{i}", f"v{i}").encode(), mask=True)
                writer.write(data if i % 2 == 0 else data[: len(data) // 2])
                await writer.drain()
                if i % 2 == 0:
                    await reader.readexactly(len(frame(encode_ack().encode())))
                writer.transport.abort()
            await wait_for(lambda: rec.stats.connections_open == 0)
            # a frame trickling in one byte at a time is still one message
            reader, writer, _ = await raw_handshake(rec.address[1], token=bearer()["Authorization"][7:])
            for b in frame(hello("slow", "slow").encode(), mask=True):
                writer.write(bytes([b]))
                await writer.drain()
            ack = await reader.readexactly(len(frame(encode_ack().encode())))
            writer.close()
            # and the recorder still serves a normal peer
            async with connect(outpost_url(rec), additional_headers=bearer()) as ws:
                await ws.send(hello("ok", "ok"))
                await ws.recv()
            # a peer's FIN is relayed as a half-close: the connection ends when the upstream ends its side
            # (websockets waits up to its close timeout for that), not before
            await wait_for(lambda: rec.stats.connections_open == 0, timeout=10)
            return ack, rec.frames(), rec.stats.connections_open

    ack, frames, still_open = asyncio.run(main())
    closes = frames[(frames.event == "close") & (frames.close_code == 1006)]
    figures.add(SCENARIO, f"peers vanished without a close frame ({n // 2} mid-frame)", n)
    # the byte-by-byte peer also leaves without a close frame: n + 1
    figures.add(SCENARIO, "their 1006 closes in the capture", len(closes) - 1, str(n))
    assert len(closes) == n + 1
    assert ack == frame(encode_ack().encode())
    hellos = frames[(frames.event == "message") & (frames.direction == "to_server")]
    assert "slow" in set(hellos.hostname) and "ok" in set(hellos.hostname)
    assert still_open == 0  # nothing left half-open
    no_secrets(SCENARIO, tmp_path / "cap")


def test_a_flood_of_frames_is_relayed_and_recorded_completely(tmp_path, figures):
    n = 5000

    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (_ak, rec):
            async with connect(outpost_url(rec, query="instance_uuid=flood"), additional_headers=bearer()) as ws:

                async def send():
                    for i in range(n):
                        await ws.send(hello("flood", f"f{i}"))

                sender = asyncio.create_task(send())
                acks = [await ws.recv() for _ in range(n)]
                await sender
            await wait_for(lambda: rec.stats.connections_open == 0)
            return acks, rec.frames()

    acks, frames = asyncio.run(main())
    msgs = frames[frames.event == "message"]
    up, down = (msgs.direction == "to_server").sum(), (msgs.direction == "to_peer").sum()
    lost = (n - up) + (n - down)
    figures.add(SCENARIO, f"flood of {n} HELLOs: frames lost (relayed or recorded)", int(lost + n - len(acks)), "0")
    assert len(acks) == n and up == n and down == n
    assert list(msgs[msgs.direction == "to_server"].sort_values("seq").hostname) == [f"f{i}" for i in range(n)]


def test_huge_frames_are_refused_as_configured_and_recorded(tmp_path, figures):
    async def main():
        # 16 MiB frames against the default limit: what authentik itself answers comes back to the peer
        async with mock() as ak:
            outcomes = {}
            for label, url in (("direct", ak.ws_url),):
                async with connect(f"{url}/ws/outpost/{PK}/", additional_headers=bearer(), max_size=None) as ws:
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send("x" * (16 * MIB))
                        await ws.recv()
                    outcomes[label] = ws.close_code
            from wsreplay.record import Recorder

            async with Recorder(ak.url, out=tmp_path / "default", flush_interval=0.2) as rec:
                async with connect(outpost_url(rec), additional_headers=bearer(), max_size=None) as ws:
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send("x" * (16 * MIB))
                        await ws.recv()
                    outcomes["through"] = ws.close_code
                default = rec.frames()
            # a configured limit: the recorder refuses on its own and records the refusal
            async with Recorder(ak.url, out=tmp_path / "small", flush_interval=0.2, max_size=64 * 1024) as rec:
                async with connect(outpost_url(rec), additional_headers=bearer(), max_size=None) as ws:
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send("x" * (16 * MIB))
                        await ws.recv()
                    outcomes["limit 64 KiB"] = ws.close_code
                small = rec.frames()
            return outcomes, default, small

    outcomes, default, small = asyncio.run(main())
    figures.add(SCENARIO, "16 MiB frame: close code direct / through / with --max-size 64KiB",
                f"{outcomes['direct']} / {outcomes['through']} / {outcomes['limit 64 KiB']}")  # fmt: skip
    assert outcomes["direct"] == outcomes["through"]
    assert outcomes["limit 64 KiB"] == 1009
    refusal = small[small.event == "error"]
    figures.add(SCENARIO, "over-size refusals recorded", len(refusal), "1")
    assert len(refusal) == 1 and int(refusal["size"].iloc[0]) == 16 * MIB
    assert "limit 65536 bytes" in refusal.close_reason.iloc[0]
    assert (default.event == "close").any()


def test_many_connections_are_all_relayed(tmp_path, figures):
    n = 1000
    raise_nofile(8 * n + 1000)

    async def main():
        async with mock_and_recorder(tmp_path / "cap") as (_ak, rec):
            sem = asyncio.Semaphore(200)

            async def one(i):
                async with sem:
                    ws = await connect(outpost_url(rec, query=f"instance_uuid=m{i}"), additional_headers=bearer(),
                                       open_timeout=60)  # fmt: skip
                await ws.send(hello(f"m{i}", f"m{i}"))
                await ws.recv()
                return ws

            conns = await asyncio.gather(*(one(i) for i in range(n)))
            peak = rec.stats.connections_open
            await asyncio.gather(*(ws.close() for ws in conns))
            await wait_for(lambda: rec.stats.connections_open == 0, timeout=60)
            return peak, rec.frames()

    peak, frames = asyncio.run(main())
    figures.add(SCENARIO, f"{n} connections open at once through the recorder", peak, str(n))
    assert peak == n
    assert frames.conn_id.nunique() == n and (frames.event == "close").sum() == n


# ------------------------------------------------------------------ memory with one side never reading


async def _push_until_blocked(send, budget: int, chunk: bytes) -> int:
    """Send *chunk* until *budget* bytes or until a send stays blocked for a second; return bytes sent."""
    sent = 0
    while sent < budget:
        try:
            await asyncio.wait_for(send(chunk), 1.0)
        except TimeoutError:
            break
        sent += len(chunk)
    return sent


def _measure(rec, pushed_box: list[int]) -> tuple[int, int]:
    base = rec.rss_kib()
    peak = base
    deadline = time.monotonic() + 30
    while not pushed_box and time.monotonic() < deadline:
        peak = max(peak, rec.rss_kib())
        time.sleep(0.05)
    return base, max(peak, rec.rss_kib())


def test_memory_stays_bounded_when_either_side_never_reads(tmp_path, figures):
    chunk = b"y" * (64 * 1024)
    results = {}

    async def upstream_never_reads(reader, writer):
        await asyncio.sleep(60)

    async def upstream_floods(reader, writer):
        data = frame(chunk, opcode=2)
        box = upstream_floods.pushed  # type: ignore[attr-defined]

        async def send(d):
            writer.write(d)
            await writer.drain()

        box.append(await _push_until_blocked(send, PUSH, data))
        await asyncio.sleep(60)

    upstream_floods.pushed = []  # type: ignore[attr-defined]

    async def peer_floods(url: str) -> list[int]:
        box: list[int] = []
        async with connect(f"{url.replace('http', 'ws', 1)}/ws/outpost/{PK}/", additional_headers=bearer()) as ws:
            box.append(await _push_until_blocked(ws.send, PUSH, chunk))
            ws.transport.abort()
        return box

    async def peer_never_reads(url: str) -> list[int]:
        async with connect(f"{url.replace('http', 'ws', 1)}/ws/outpost/{PK}/", additional_headers=bearer(),
                           max_queue=1, max_size=None) as ws:  # fmt: skip
            deadline = time.monotonic() + 30
            while not upstream_floods.pushed and time.monotonic() < deadline:  # type: ignore[attr-defined]
                await asyncio.sleep(0.05)
            ws.transport.abort()
        return upstream_floods.pushed  # type: ignore[attr-defined]

    for label, behaviour, peer in (
        ("upstream never reads, peer floods", upstream_never_reads, peer_floods),
        ("peer never reads, upstream floods", upstream_floods, peer_never_reads),
    ):

        async def main(behaviour=behaviour, peer=peer, label=label):
            async with raw_upstream(behaviour) as up:
                rec = await asyncio.to_thread(start_recorder, up, tmp_path / label.split(",")[0].replace(" ", "-"),
                                              "--status-interval", "0")  # fmt: skip
                try:
                    box: list[int] = []
                    measuring = asyncio.create_task(asyncio.to_thread(_measure, rec, box))
                    await asyncio.sleep(0.2)
                    box.extend(await peer(rec.url))
                    base, peak = await measuring
                    return box[0], base, peak
                finally:
                    await asyncio.to_thread(rec.kill)

        pushed, base, peak = asyncio.run(main())
        results[label] = (pushed, peak - base)
        figures.add(SCENARIO, f"{label}: MiB pushed before the sender blocked", round(pushed / MIB, 1),
                    f"< {PUSH // MIB}")  # fmt: skip
        figures.add(SCENARIO, f"{label}: recorder RSS growth (MiB)", round((peak - base) / 1024, 1),
                    f"< {RSS_BOUND_KIB // 1024} (memory bound held)")  # fmt: skip
    for label, (pushed, growth) in results.items():
        assert pushed < PUSH, label  # flow control reached the sender
        assert growth < RSS_BOUND_KIB, label
    assert load  # the capture module is importable alongside (nothing recorded to check: binary flood)
