"""The metrics endpoint: ``/metrics`` and ``/-/ready`` over HTTP, on a thread of its own.

A scrape never runs on the recorder's event loop: a small threaded WSGI server
(the standard library's, as ``prometheus_client.start_http_server`` uses)
answers it, so computing 10,000 outposts' series does not pause the relay.
``/metrics`` answers in the OpenMetrics text format when the scraper asks for
it (Prometheus does; rendered by :func:`~wsreplay.metrics.exposition.render_openmetrics`)
and in Prometheus' classic text format otherwise (``prometheus_client``'s
encoder), gzip when accepted; ``/-/ready`` answers 200 while the capture can be written and
503 (with the reason) when it cannot.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..exceptions import ConfigurationError
from .exposition import OPENMETRICS_CONTENT_TYPE, render_openmetrics, require_prometheus_client

__all__ = ["MetricsServer", "metrics_app"]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


def metrics_app(registry: Any, ready: Callable[[], tuple[bool, str]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI application: ``/metrics`` from *registry*, ``/-/ready`` from *ready*, 404 elsewhere."""
    pc = require_prometheus_client()
    scrape = pc.make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            if "application/openmetrics-text" not in environ.get("HTTP_ACCEPT", ""):
                result: Iterable[bytes] = scrape(environ, start_response)
                return result
            body = render_openmetrics(registry.collect())
            headers = [("Content-Type", OPENMETRICS_CONTENT_TYPE)]
            if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
                body = gzip.compress(body, compresslevel=6)
                headers.append(("Content-Encoding", "gzip"))
            start_response("200 OK", headers)
            return [body]
        if path == "/-/ready":
            ok, reason = ready()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [f"{'ready' if ok else 'not ready'}: {reason}\n".encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"wsreplay recorder metrics: see /metrics and /-/ready\n"]

    return app


class MetricsServer:
    """Serve *registry* and a readiness check on ``host:port`` from a daemon thread.

    Parameters
    ----------
    registry : prometheus_client.CollectorRegistry
    ready : callable
        Returns ``(ready, reason)``.
    host, port : str, int
        Where to listen (port 0: a free one).
    """

    def __init__(self, registry: Any, ready: Callable[[], tuple[bool, str]], host: str, port: int) -> None:
        app = metrics_app(registry, ready)
        server_class = _Server6 if ":" in host else _Server
        try:
            self._httpd = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
        except OSError as exc:
            raise ConfigurationError(f"--metrics {host}:{port}: cannot listen there ({exc.strerror})") from exc
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="wsreplay-metrics", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` listened on."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """``http://host:port`` of the endpoint (``/metrics`` and ``/-/ready`` below it)."""
        host, port = self.address
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
