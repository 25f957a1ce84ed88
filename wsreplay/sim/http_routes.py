"""The mock authentik's plain HTTP routes under ``/api/v3/`` (values in, values out; no I/O).

Enough of authentik's REST API for a recording proxy's HTTP pass-through to be
tested: JSON GETs, a POST that echoes what it got (never credentials), a
chunked streaming response, and the outpost health list as authentik shows it
(instances whose state has not expired, i.e. seen in the last 15 s).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

__all__ = [
    "SECRET_HEADERS",
    "MAX_STREAM_CHUNKS",
    "HTTPRequest",
    "HTTPResponse",
    "InstanceState",
    "route",
    "version_outdated",
]

#: Request headers never echoed back (nor logged).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-authentik-token", "x-csrftoken"})
#: Upper bound of ``/api/v3/stream/?chunks=N``.
MAX_STREAM_CHUNKS = 100_000


@dataclass
class HTTPRequest:
    """A parsed plain HTTP request.

    Parameters
    ----------
    method : str
    path : str
        Path without the query string.
    query : str
        Query string (without ``?``).
    headers : list of (name, value)
    body : bytes
    """

    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """First header called *name* (case-insensitive), or ``None``."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass
class HTTPResponse:
    """A response: a whole ``body``, or ``chunks`` sent with chunked transfer encoding."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0


@dataclass
class InstanceState:
    """What authentik caches about one outpost instance (``OutpostState``)."""

    uid: str
    last_seen: float  # epoch seconds
    version: str | None = None
    build_hash: str = ""
    hostname: str = ""


def _json(status: int, value: Any) -> HTTPResponse:
    # Django REST framework renders compact JSON
    return HTTPResponse(status, json.dumps(value, separators=(",", ":")).encode())


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _version_key(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("+", 1)[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def version_outdated(version: str | None, should: str) -> bool:
    """authentik's ``version_outdated``: the instance runs an older version than the server.

    Examples
    --------
    >>> version_outdated("2023.8.0", "2023.10.0"), version_outdated("2023.10.0", "2023.10.0")
    (True, False)
    """
    if not version:
        return False
    return _version_key(version) < _version_key(should)


def _config() -> dict[str, Any]:
    return {
        "error_reporting": {
            "enabled": False,
            "sentry_dsn": "",
            "environment": "",
            "send_pii": False,
            "traces_sample_rate": 0.0,
        },
        "capabilities": ["can_save_media", "can_geo_ip", "can_impersonate", "can_debug"],
        "cache_timeout": 300,
        "cache_timeout_flows": 300,
        "cache_timeout_policies": 300,
        "cache_timeout_reputation": 300,
    }


def _echo(request: HTTPRequest) -> HTTPResponse:
    headers: dict[str, str] = {}
    for k, v in request.headers:
        if k.lower() not in SECRET_HEADERS:
            headers[k] = v
    out: dict[str, Any] = {"method": request.method, "path": request.path, "query": request.query, "headers": headers}
    try:
        out["body"] = request.body.decode("utf-8")
    except UnicodeDecodeError:
        out["body"] = None
        out["body_base64"] = base64.b64encode(request.body).decode("ascii")
    return _json(200, out)


def _stream(request: HTTPRequest) -> HTTPResponse:
    params = parse_qs(request.query)
    try:
        n = int(params.get("chunks", ["3"])[0])
        delay = float(params.get("delay", ["0"])[0])
    except ValueError:
        return _json(400, {"detail": "chunks must be an integer and delay a number"})
    if not 0 <= n <= MAX_STREAM_CHUNKS or not 0 <= delay <= 10:
        return _json(400, {"detail": f"chunks must be in 0..{MAX_STREAM_CHUNKS}, delay in 0..10 s"})
    chunks = [json.dumps({"chunk": i, "of": n}, separators=(",", ":")).encode() + b"\n" for i in range(n)]
    return HTTPResponse(200, content_type="application/x-ndjson", chunks=chunks, chunk_delay=delay)


def _outposts(outposts: Sequence[str]) -> HTTPResponse:
    results: list[dict[str, Any]] = [
        {
            "pk": pk,
            "name": f"outpost-{pk[:8]}",
            "type": "proxy",
            "providers": [],
            "service_connection": None,
            "token_identifier": f"ak-outpost-{pk}-api",
            "config": {},
            "managed": None,
        }
        for pk in outposts
    ]
    n = len(results)
    pagination = {
        "next": 0,
        "previous": 0,
        "count": n,
        "current": 1,
        "total_pages": 1,
        "start_index": 1 if n else 0,
        "end_index": n,
    }
    return _json(200, {"pagination": pagination, "results": results})


def route(
    request: HTTPRequest,
    *,
    outposts: Sequence[str],
    health: Callable[[str], Sequence[InstanceState]],
    version: str,
    build_hash: str = "",
) -> HTTPResponse:
    """Answer one plain HTTP request.

    Parameters
    ----------
    request : HTTPRequest
    outposts : sequence of str
        The outpost pks the server knows.
    health : callable
        ``health(pk)`` -> the instances of that outpost whose state has not expired.
    version, build_hash : str
        The server's own version (``version_should``) and build hash.

    Returns
    -------
    HTTPResponse
        JSON for ``GET /api/v3/root/config/``, ``GET /api/v3/outposts/instances/``,
        ``GET /api/v3/outposts/instances/<pk>/health/``, ``/api/v3/echo/`` (any
        method), a chunked ``GET /api/v3/stream/?chunks=N[&delay=S]``, and a
        404 ``{"detail": "Not found."}`` otherwise.
    """
    path, method = request.path, request.method.upper()
    if path == "/api/v3/echo/":
        return _echo(request)
    if method not in ("GET", "HEAD"):
        if path in ("/api/v3/root/config/", "/api/v3/outposts/instances/", "/api/v3/stream/"):
            return _json(405, {"detail": f'Method "{request.method}" not allowed.'})
    elif path == "/api/v3/root/config/":
        return _json(200, _config())
    elif path == "/api/v3/outposts/instances/":
        return _outposts(list(outposts))
    elif path == "/api/v3/stream/":
        return _stream(request)
    else:
        parts = path.strip("/").split("/")
        if len(parts) == 6 and parts[:4] == ["api", "v3", "outposts", "instances"] and parts[5] == "health":
            pk = parts[4]
            if pk not in outposts:
                return _json(404, {"detail": "Not found."})
            return _json(200, [_health_row(s, version, build_hash) for s in health(pk)])
    return _json(404, {"detail": "Not found."})


def _health_row(state: InstanceState, version: str, build_hash: str) -> Mapping[str, Any]:
    return {
        "uid": state.uid,
        "last_seen": _iso(state.last_seen),
        "version": state.version,
        "version_should": version,
        "version_outdated": version_outdated(state.version, version),
        "build_hash": state.build_hash,
        "build_hash_should": build_hash,
        "hostname": state.hostname,
    }
