"""A HAR saved from headless Chromium, driven against the mock authentik's ``/ws/client/``, imports right.

The test drives Chromium over the DevTools protocol, collects the
``Network.webSocket*`` events and builds the HAR entry the way DevTools' own
HAR writer does (``front_end/models/har/Log.ts``: ``startedDateTime`` from the
handshake's wall time, each frame's ``time`` as "pseudo wall time" =
handshake wall time + monotonic delta, ``data`` = ``payloadData``). A copy
made this way is kept in ``fixtures/chromium-client.har`` so the import is also
checked where no browser can be had.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from interop_support import FIXTURES

import wsreplay

FIXTURE = FIXTURES / "chromium-client.har"
LEVELS = ["info", "success", "warning", "error", "debug"]

OPEN_JS = """
new Promise((resolve, reject) => {
  window.__got = [];
  const ws = new WebSocket(%s);
  window.__ws = ws;
  ws.onmessage = (event) => window.__got.push(event.data);
  ws.onopen = () => resolve(ws.readyState);
  ws.onerror = () => reject(new Error("websocket error"));
})
"""
WAIT_JS = """
new Promise((resolve) => {
  const check = () => (window.__got.length >= %d ? resolve(window.__got.length) : setTimeout(check, 10));
  check();
})
"""


def _iso(seconds: float) -> str:
    """JavaScript's ``Date.prototype.toJSON``: milliseconds, ``Z``."""
    ms = int(seconds * 1000)
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def har_from_devtools_events(events: list[dict[str, Any]], browser_version: str) -> dict[str, Any]:
    """Build HAR entries for the WebSockets seen in ``Network.webSocket*`` events, as DevTools does."""
    sockets: dict[str, dict[str, Any]] = {}
    for event in events:
        method, params = event["method"], event.get("params", {})
        if not method.startswith("Network.webSocket"):
            continue
        sock = sockets.setdefault(params["requestId"], {"frames": []})
        if method == "Network.webSocketCreated":
            sock["url"] = params["url"]
            sock["initiator"] = params.get("initiator")
        elif method == "Network.webSocketWillSendHandshakeRequest":
            sock["issue"], sock["wall"] = params["timestamp"], params["wallTime"]
            sock["request_headers"] = params["request"]["headers"]
        elif method == "Network.webSocketHandshakeResponseReceived":
            sock["response"] = params["response"]
            sock["response_time"] = params["timestamp"]
        elif method in ("Network.webSocketFrameSent", "Network.webSocketFrameReceived"):
            kind = "send" if method.endswith("Sent") else "receive"
            frame = params["response"]
            sock["frames"].append((kind, params["timestamp"], frame["opcode"], frame["payloadData"]))
        elif method == "Network.webSocketFrameError":
            sock["frames"].append(("error", params["timestamp"], -1, params["errorMessage"]))
        elif method == "Network.webSocketClosed":
            sock["closed"] = params["timestamp"]
    entries = []
    for sock in sockets.values():
        wall, issue = sock["wall"], sock["issue"]

        def pseudo_wall(t: float, wall: float = wall, issue: float = issue) -> float:
            return wall + (t - issue)

        response = sock.get("response", {})
        end = sock.get("closed") or (sock["frames"][-1][1] if sock["frames"] else issue)
        headers_text = response.get("headersText")
        entries.append(
            {
                "_fromCache": None,
                "_initiator": {"type": (sock.get("initiator") or {}).get("type", "other")},
                "_priority": None,
                "_resourceType": "websocket",
                "cache": {},
                "request": {
                    "method": "GET",
                    "url": sock["url"],
                    "httpVersion": "HTTP/1.1",
                    "headers": [{"name": k, "value": v} for k, v in sock["request_headers"].items()],
                    "queryString": [],
                    "cookies": [],
                    "headersSize": -1,
                    "bodySize": 0,
                },
                "response": {
                    "status": response.get("status", 0),
                    "statusText": response.get("statusText", ""),
                    "httpVersion": "HTTP/1.1",
                    "headers": [{"name": k, "value": v} for k, v in response.get("headers", {}).items()],
                    "cookies": [],
                    "content": {"size": 0, "mimeType": "x-unknown"},
                    "redirectURL": "",
                    "headersSize": len(headers_text) if headers_text else -1,
                    "bodySize": -1,
                    "_transferSize": 0,
                    "_error": None,
                },
                "serverIPAddress": "127.0.0.1",
                "startedDateTime": _iso(wall),
                "time": (end - issue) * 1000,
                "timings": {
                    "blocked": -1,
                    "dns": -1,
                    "ssl": -1,
                    "connect": -1,
                    "send": 0,
                    "wait": (sock.get("response_time", issue) - issue) * 1000,
                    "receive": 0,
                    "_blocked_queueing": -1,
                },
                "_webSocketMessages": [
                    {"type": kind, "time": pseudo_wall(t), "opcode": opcode, "data": data}
                    for kind, t, opcode, data in sock["frames"]
                ],
            }
        )
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": browser_version},
            "pages": [],
            "entries": entries,
        }
    }


async def record_har(binary: str, notices: int) -> tuple[dict[str, Any], list[str]]:
    """Open ``/ws/client/`` in headless Chromium, push *notices* from the mock, return the HAR and what JS got."""
    from browser import CDP, Chromium

    from wsreplay.sim import MockAuthentik

    async with MockAuthentik(host="127.0.0.1", port=0, outposts={}) as ak:
        with Chromium(binary) as browser:
            async with CDP.connect(browser.ws_url) as cdp:
                version = (await cdp.send("Browser.getVersion"))["product"]
                target = await cdp.send("Target.createTarget", {"url": "about:blank"})
                attached = await cdp.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
                session = attached["sessionId"]
                await cdp.send("Network.enable", session=session)
                url = json.dumps(f"{ak.ws_url}/ws/client/")
                await cdp.send("Runtime.evaluate", {"expression": OPEN_JS % url, "awaitPromise": True}, session=session)
                for k in range(notices):
                    reached = await ak.push_notice(f"notice {k}", level=LEVELS[k % len(LEVELS)])
                    assert reached == 1
                await cdp.send(
                    "Runtime.evaluate", {"expression": WAIT_JS % notices, "awaitPromise": True}, session=session
                )
                got = await cdp.send(
                    "Runtime.evaluate", {"expression": "window.__got", "returnByValue": True}, session=session
                )
                await cdp.send("Runtime.evaluate", {"expression": "window.__ws.close(1000, 'done')"}, session=session)
                await cdp.wait_for(lambda evs: any(e["method"] == "Network.webSocketClosed" for e in evs))
                return har_from_devtools_events(cdp.events, version.split("/")[-1]), got["result"]["value"]


def _check_import(path: Path, notices: int, tmp_path: Path) -> None:
    frames = wsreplay.import_har(path, out=tmp_path / "capture")
    assert frames.attrs["import"]["connections"] == 1
    assert list(frames["event"]) == ["open"] + ["message"] * notices
    opened = frames.iloc[0]
    assert (opened["endpoint"], opened["path"], opened["status"]) == ("client", "/ws/client/", 101)
    assert "Chrome" in opened["user_agent"]
    messages = frames[frames["event"] == "message"]
    assert set(messages["direction"]) == {"to_peer"}
    assert list(messages["message"]) == [f"notice {k}" for k in range(notices)]
    assert list(messages["level"]) == [LEVELS[k % len(LEVELS)] for k in range(notices)]
    assert messages["parse_error"].isna().all()
    assert frames["ts"].is_monotonic_increasing
    assert len(wsreplay.load(tmp_path / "capture")) == notices + 1


def test_har_from_headless_chromium_against_the_mock(chromium_binary: str, tmp_path: Path):
    notices = 5
    har, got = asyncio.run(record_har(chromium_binary, notices))
    assert len(got) == notices  # what the page's JavaScript received
    path = tmp_path / "chromium.har"
    path.write_text(json.dumps(har, indent=2), encoding="utf-8")
    _check_import(path, notices, tmp_path)
    # the browser's payloads are byte for byte what the mock sent
    entry = har["log"]["entries"][0]
    assert [m["data"] for m in entry["_webSocketMessages"]] == got
    if os.environ.get("WSREPLAY_REGENERATE_FIXTURES"):
        FIXTURE.write_text(json.dumps(har, indent=2) + "\n", encoding="utf-8")


def test_committed_chromium_har_fixture_imports(tmp_path: Path):
    if not FIXTURE.exists():
        pytest.skip("fixtures/chromium-client.har not generated (WSREPLAY_REGENERATE_FIXTURES=1)")
    _check_import(FIXTURE, 5, tmp_path)


DEVTOOLS_IMPORT_JS = """
(async (text) => {
  const HAR = await import('./models/har/har.js');
  const root = new HAR.HARFormat.HARRoot(JSON.parse(text));
  const requests = HAR.Importer.Importer.requestsFromHARLog(root.log);
  return requests.map(r => ({url: r.url(), type: r.resourceType().name(), status: r.statusCode,
    frames: r.frames().map(f => [f.type, f.opCode, f.time, f.text])}));
})
"""


async def devtools_import(binary: str, har_text: str) -> list[dict[str, Any]]:
    """Run Chromium's own DevTools HAR importer (``models/har``, bundled with the browser) on *har_text*."""
    from browser import CDP, Chromium

    with Chromium(binary) as browser:
        async with CDP.connect(browser.ws_url) as cdp:
            target = await cdp.send("Target.createTarget", {"url": "devtools://devtools/bundled/devtools_app.html"})
            attached = await cdp.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
            expression = f"({DEVTOOLS_IMPORT_JS})({json.dumps(har_text)})"
            reply = await cdp.send(
                "Runtime.evaluate",
                {"expression": expression, "awaitPromise": True, "returnByValue": True},
                session=attached["sessionId"],
            )
    if "exceptionDetails" in reply:
        detail = reply["exceptionDetails"].get("exception", {}).get("description", reply["exceptionDetails"])
        if "Failed to fetch dynamically imported module" in str(detail):
            pytest.skip("this Chromium build does not bundle the DevTools front end")
        raise AssertionError(f"DevTools refused the HAR: {detail}")
    return reply["result"]["value"]


def test_chrome_devtools_own_importer_opens_an_exported_har(chromium_binary: str, sample_capture: Path, tmp_path: Path):
    path = wsreplay.export_har(sample_capture, tmp_path / "export.har", base_url="wss://auth.example.com")
    requests = asyncio.run(devtools_import(chromium_binary, path.read_text(encoding="utf-8")))
    frames = wsreplay.load(sample_capture)
    assert len(requests) == frames["conn_id"].nunique() == 4
    assert {r["type"] for r in requests} == {"websocket"}
    assert sorted(r["status"] for r in requests) == [101, 101, 101, 403]
    devtools_frames = [f for r in requests for f in r["frames"]]
    messages = frames[frames["event"] == "message"]
    assert len(devtools_frames) == len(messages) == 13
    kinds = {(kind, op) for kind, op, _, _ in devtools_frames}
    assert kinds == {("send", 1), ("receive", 1), ("send", 2)}
    outpost = next(r for r in requests if r["url"].endswith("?instance_uuid=inst-1&attempt=0"))
    assert outpost["frames"][0][3] == messages["payload"].iloc[0]
    assert abs(outpost["frames"][0][2] - messages["ts"].iloc[0].value / 1e9) < 1e-3
