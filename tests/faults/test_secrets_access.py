"""Secrets and access: nothing secret is written anywhere, nothing refused gets through, TLS is verified."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import urllib.request

import pytest
from faults_support import free_port, start_recorder
from record_support import COOKIE, PK, SECRETS, TOKEN, TOKEN2, bearer, mock
from replay_support import HELLO, literal_capture
from replay_support import PK as SERVED_PK
from replay_support import TOKEN as SERVED_TOKEN
from tests_support import self_signed_cert
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus

import wsreplay
from wsreplay.cli import build_parser
from wsreplay.cli import main as cli_main
from wsreplay.protocol import encode_ack
from wsreplay.record import Recorder

SCENARIO = "secrets and access"


async def _status(url: str, path: str, headers: dict[str, str]) -> str:
    try:
        async with connect(f"{url.replace('http', 'ws', 1)}{path}", additional_headers=headers, open_timeout=5) as ws:
            await ws.send(HELLO if "outpost" in path else '{"type": "x"}')
            return "open"
    except InvalidStatus as exc:
        return str(exc.response.status_code)


_ATTEMPTS = {
    "no credentials": (f"/ws/outpost/{PK}/", {}),
    "wrong token": (f"/ws/outpost/{PK}/", bearer("tok-wrong")),
    "another outpost's token": (f"/ws/outpost/{PK}/", bearer(TOKEN2)),
    "token as a query parameter": (f"/ws/outpost/{PK}/?token={TOKEN}", {}),
    "client without a session": ("/ws/client/", {}),
    "client with a forged session": ("/ws/client/", {"Cookie": "authentik_session=forged"}),
    "right token (control)": (f"/ws/outpost/{PK}/", bearer(TOKEN)),
    "right session (control)": ("/ws/client/", {"Cookie": f"authentik_session={COOKIE}"}),
}


def test_what_authentik_refuses_stays_refused_and_nothing_secret_is_written(tmp_path, figures, no_secrets):
    out = tmp_path / "cap"

    async def main():
        async with mock(sessions={COOKIE}) as ak:
            direct = {k: await _status(ak.url, p, h) for k, (p, h) in _ATTEMPTS.items()}
            rec = await asyncio.to_thread(start_recorder, ak.url, out, "--status-interval", "0.2")
            try:
                through = {k: await _status(rec.url, p, h) for k, (p, h) in _ATTEMPTS.items()}
                # HTTP pass-through with credentials
                req = urllib.request.Request(
                    f"{rec.url}/api/v3/echo/", data=b"{}", method="POST",
                    headers={"Authorization": f"Bearer {TOKEN}", "Cookie": f"authentik_session={COOKIE}"},
                )  # fmt: skip
                echoed = await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=10).read())
            finally:
                await asyncio.to_thread(rec.stop)
            return direct, through, echoed, rec.log

    direct, through, echoed, log = asyncio.run(main())
    let_in = sum(1 for k in direct if direct[k] != "open" and through[k] == "open")
    figures.add(SCENARIO, f"handshakes authentik refuses that the recorder let through (of {len(direct) - 2})", let_in,
                "0")  # fmt: skip
    assert direct == through
    assert let_in == 0 and through["right token (control)"] == "open"
    assert TOKEN.encode() not in echoed
    # a report and a HAR export of the capture, and the recorder's log: no secret in their bytes
    assert cli_main(["report", str(out), "-o", str(tmp_path / "report.html")]) == 0
    assert cli_main(["export", str(out), "--har", str(tmp_path / "cap.har")]) == 0
    no_secrets(SCENARIO, out, log, tmp_path / "report.html", tmp_path / "cap.har")


def test_listening_defaults_to_loopback(tmp_path, figures):
    parser = build_parser()
    rec_default = parser.parse_args(["record", "--upstream", "http://127.0.0.1:1", "--out", "x"]).listen
    serve_default = parser.parse_args(["serve", "x"]).listen

    async def main():
        async with mock() as ak, Recorder(ak.url, out=tmp_path / "cap") as rec:
            return rec.address[0]

    api_host = asyncio.run(main())
    figures.add(SCENARIO, "default listen address (record CLI / Recorder / serve)", f"{rec_default} / {api_host} / "
                f"{serve_default}", "loopback")  # fmt: skip
    assert rec_default.startswith("127.0.0.1:") and serve_default.startswith("127.0.0.1:") and api_host == "127.0.0.1"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def test_the_record_command_verifies_the_upstream_certificate(tmp_path, cert, figures):
    key, crt = cert
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)

    async def ack(ws):
        async for _ in ws:
            await ws.send(encode_ack())

    async def main():
        outcomes = {}
        async with serve(ack, "127.0.0.1", 0, ssl=ctx) as server:
            upstream = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            variants = (("default", ()), ("--ca-file", ("--ca-file", str(crt))), ("--insecure", ("--insecure",)))
            for label, extra in variants:
                rec = await asyncio.to_thread(start_recorder, upstream, tmp_path / label.strip("-"), *extra)
                try:
                    outcomes[label] = await _status(rec.url, f"/ws/outpost/{PK}/", bearer())
                finally:
                    await asyncio.to_thread(rec.stop)
                outcomes[label + " log"] = rec.stderr()
        return outcomes

    outcomes = asyncio.run(main())
    seen = f"{outcomes['default']} / {outcomes['--ca-file']} / {outcomes['--insecure']}"
    figures.add(SCENARIO, "self-signed upstream (default / --ca-file / --insecure)", seen, "502 / open / open")
    assert outcomes["default"] == "502" and "certificate" in outcomes["default log"]
    assert outcomes["--ca-file"] == "open" and outcomes["--insecure"] == "open"
    refused = wsreplay.load(tmp_path / "default")
    assert "--ca-file" in refused[refused.event == "error"].close_reason.iloc[0]


def test_serve_with_a_token_check_refuses_peers_without_it(tmp_path, t0, figures, no_secrets):
    capture = wsreplay.save(literal_capture(t0), tmp_path / "capture")
    port = free_port()
    env = {**os.environ, "AUTHENTIK_TOKEN": SERVED_TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsreplay", "serve", str(capture), "--listen", f"127.0.0.1:{port}", "--check-token",
         "--out", str(tmp_path / "served")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert "serving" in (proc.stdout.readline() if proc.stdout else "")

        async def main():
            url = f"http://127.0.0.1:{port}"
            return {
                "none": await _status(url, f"/ws/outpost/{SERVED_PK}/", {}),
                "wrong": await _status(url, f"/ws/outpost/{SERVED_PK}/", bearer("tok-wrong")),
                "another outpost's token": await _status(url, f"/ws/outpost/{SERVED_PK}/", bearer(TOKEN2)),
                "right": await _status(url, f"/ws/outpost/{SERVED_PK}/", bearer(SERVED_TOKEN)),
            }

        seen = asyncio.run(main())
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    figures.add(SCENARIO, "serve --check-token: peers without the token let in", sum(
        v == "open" for k, v in seen.items() if k != "right"), "0")  # fmt: skip
    assert seen == {"none": "403", "wrong": "403", "another outpost's token": "403", "right": "open"}
    for s in (*SECRETS, SERVED_TOKEN):
        assert s not in out + err
    no_secrets(SCENARIO, tmp_path / "served")
