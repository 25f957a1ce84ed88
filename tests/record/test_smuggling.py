"""Request smuggling: the upstream never sees a request the recorder did not.

Each case is sent on its own connection to a recorder in front of a raw-socket upstream that
logs every byte it receives. The log is then read the way two kinds of lenient back ends read
it (Content-Length first, Transfer-Encoding first): neither may find the smuggled request, and
both must find the same requests. Ambiguous requests are refused with 400 and a close, nothing
of them reaches the upstream, and the capture gets an ``error`` row saying why.
"""

from __future__ import annotations

import asyncio

from passthrough_support import RawUpstream, lenient_targets

from wsreplay.record import Recorder

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"


def _chunked_hiding_smuggled() -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)


def _post(headers: bytes, body: bytes) -> bytes:
    return b"POST /outer HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n" + body


def _cl(n: int) -> bytes:
    return b"Content-Length: %d\r\n" % n


_ZERO_THEN_SMUGGLED = b"0\r\n\r\n" + SMUGGLED
_HIDDEN = _chunked_hiding_smuggled()

#: name -> raw bytes; every one of them must be refused
REFUSED: dict[str, bytes] = {
    # CL.TE: a front end that reads Content-Length, a back end that reads chunked
    "CL.TE": _post(_cl(len(_ZERO_THEN_SMUGGLED)) + b"Transfer-Encoding: chunked\r\n", _ZERO_THEN_SMUGGLED),
    # TE.CL: a front end that reads chunked, a back end that reads Content-Length
    "TE.CL": _post(_cl(4) + b"Transfer-Encoding: chunked\r\n", _HIDDEN),
    # TE.TE: Transfer-Encoding obfuscated so that one side ignores it
    "TE.TE xchunked": _post(_cl(4) + b"Transfer-Encoding: xchunked\r\n", _HIDDEN),
    "TE.TE space before colon": _post(_cl(4) + b"Transfer-Encoding : chunked\r\n", _HIDDEN),
    "TE.TE second TE header": _post(_cl(4) + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", _HIDDEN),
    "TE.TE tab": _post(_cl(4) + b"Transfer-Encoding:\tchunked\r\n", _HIDDEN),
    "TE.TE vertical tab": _post(_cl(4) + b"Transfer-Encoding:\x0bchunked\r\n", _HIDDEN),
    "TE.TE bare LF before": _post(_cl(4) + b"X: y\nTransfer-Encoding: chunked\r\n", _HIDDEN),
    "TE.TE obs-fold": _post(_cl(4) + b"X: y\r\n Transfer-Encoding: chunked\r\n", _HIDDEN),
    "TE.TE folded value": _post(_cl(4) + b"Transfer-Encoding:\r\n chunked\r\n", _HIDDEN),
    "TE.TE chunked, identity": _post(_cl(4) + b"Transfer-Encoding: chunked, identity\r\n", _HIDDEN),
    "TE.TE upper case": _post(_cl(4) + b"Transfer-Encoding: CHUNKED\r\n", _HIDDEN),
    "TE.TE NUL": _post(_cl(4) + b"Transfer-Encoding: chunked\x00\r\n", _HIDDEN),
    "TE chunked, gzip (no CL)": _post(b"Transfer-Encoding: chunked, gzip\r\n", _HIDDEN),
    "TE gzip (no CL)": _post(b"Transfer-Encoding: gzip\r\n", _HIDDEN),
    "TE identity (no CL)": _post(b"Transfer-Encoding: identity\r\n", _HIDDEN),
    # Content-Length ambiguity
    "CL.CL different": _post(_cl(0) + _cl(len(SMUGGLED)), SMUGGLED),
    "CL.CL same": _post(_cl(len(SMUGGLED)) + _cl(len(SMUGGLED)), SMUGGLED),
    "CL list": _post(b"Content-Length: 0, %d\r\n" % len(SMUGGLED), SMUGGLED),
    "CL plus sign": _post(b"Content-Length: +%d\r\n" % len(SMUGGLED), SMUGGLED),
    "CL space before colon": _post(b"Content-Length : %d\r\n" % len(SMUGGLED), SMUGGLED),
    # chunk sizes a back end may read differently
    "chunk size -3": _post(b"Transfer-Encoding: chunked\r\n", b"-3\r\n" + SMUGGLED + b"0\r\n\r\n"),
    "chunk size 0x": _post(b"Transfer-Encoding: chunked\r\n", b"0x%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)),
    "chunk size bare LF": _post(b"Transfer-Encoding: chunked\r\n", b"%x\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)),
    # line ends and header values
    "bare LF head": b"POST /outer HTTP/1.1\nHost: a\nContent-Length: 4\n\nabcd" + SMUGGLED,
    "CR in value": _post(b"X: a\rContent-Length: 0\r\n" + _cl(len(SMUGGLED)), SMUGGLED),
}

#: unambiguous requests: forwarded, and the upstream reads exactly what the recorder read
ACCEPTED: dict[str, tuple[bytes, list[str]]] = {
    "pipelined after chunked": (
        _post(b"Transfer-Encoding: chunked\r\n", b"3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n")
        + b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n",
        ["/outer", "/second"],
    ),
    "pipelined after length": (
        _post(_cl(5), b"hello") + b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n",
        ["/outer", "/second"],
    ),
    "smuggled-looking body is a body": (_post(_cl(len(SMUGGLED)), SMUGGLED), ["/outer"]),
}


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    writer.write_eof()
    out = b""
    try:
        async with asyncio.timeout(5):
            while data := await reader.read(65536):
                out += data
    except TimeoutError:
        pass
    writer.close()
    return out


def _run(cases: dict[str, bytes], tmp_path):
    async def main():
        async with RawUpstream() as upstream:
            async with Recorder(f"http://127.0.0.1:{upstream.port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                results = {}
                for name, raw in cases.items():
                    before = len(upstream.logs)
                    answer = await _exchange(rec.address[1], raw)
                    await asyncio.sleep(0.05)  # let the upstream log what reached it
                    received = b"".join(bytes(log) for log in upstream.logs[before:])
                    results[name] = (answer, received, sum(upstream.completed[before:]))
                return results, rec.frames()

    return asyncio.run(main())


def test_ambiguous_requests_are_refused_and_never_reach_the_upstream(tmp_path):
    results, frames = _run(REFUSED, tmp_path)
    wrong = []
    for name, (answer, received, completed) in results.items():
        cl, te = lenient_targets(received, prefer="cl"), lenient_targets(received, prefer="te")
        if "/smuggled" in cl or "/smuggled" in te or cl != te:
            wrong.append(f"{name}: upstream read {cl} (CL first) / {te} (TE first)")
        elif not answer.startswith(b"HTTP/1.1 400 ") or completed:
            wrong.append(f"{name}: answered {answer[:40]!r}, upstream got {completed} whole requests")
        elif received and not name.startswith("chunk size"):
            # a bad chunk is found after the head went upstream (bodies stream): the upstream connection
            # is then dropped before the request is whole; anything wrong in a head is caught before that
            wrong.append(f"{name}: upstream got {len(received)} bytes of a head the recorder refused")
    assert not wrong, "\n".join(wrong)
    errors = frames[frames.event == "error"]
    assert len(errors) == len(REFUSED)
    assert set(errors.status) == {400} and set(errors.direction) == {"to_server"}
    assert errors.close_reason.str.startswith("refused ambiguous HTTP request").all()
    assert errors.payload_bytes.map(len).gt(0).all()  # the raw head is kept


def test_unambiguous_requests_reach_the_upstream_as_the_recorder_read_them(tmp_path):
    results, frames = _run({name: raw for name, (raw, _) in ACCEPTED.items()}, tmp_path)
    for name, (answer, received, completed) in results.items():
        expected = ACCEPTED[name][1]
        assert completed == len(expected), name
        assert lenient_targets(received, prefer="cl") == expected, name
        assert lenient_targets(received, prefer="te") == expected, name
        assert answer.count(b"HTTP/1.1 200 ") == len(expected), name
    assert not (frames.event == "error").any()
