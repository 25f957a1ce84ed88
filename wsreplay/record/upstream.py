"""Where the recorder relays to: the upstream authentik's address and TLS settings."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError

__all__ = ["Upstream"]

_SCHEMES = {"http": False, "ws": False, "https": True, "wss": True}


@dataclass(frozen=True)
class Upstream:
    """An upstream base URL (``http(s)://`` or ``ws(s)://``) and how to reach it.

    Parameters
    ----------
    url : str
        Base URL of authentik; a path prefix (``https://host/authentik``) is kept.
    insecure : bool
        Skip certificate verification of an ``https``/``wss`` upstream.
    ca_file : str, optional
        CA bundle (PEM) to verify the upstream's certificate with.
    connect_timeout : float
        Seconds to wait for the TCP and TLS handshakes.
    """

    url: str
    insecure: bool = False
    ca_file: str | None = None
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ConfigurationError(
                f"upstream {self.url!r} is not an http(s):// or ws(s):// URL of authentik (e.g. https://authentik.example)"
            )
        if parts.query or parts.fragment:
            raise ConfigurationError(f"upstream {self.url!r}: give a base URL without query string or fragment")
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise ConfigurationError(f"CA file {self.ca_file} does not exist")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise ConfigurationError(f"upstream {self.url!r} has a bad port") from exc

    @cached_property
    def tls(self) -> bool:
        """Whether the upstream speaks TLS."""
        return _SCHEMES[urlsplit(self.url).scheme]

    @cached_property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @cached_property
    def port(self) -> int:
        return urlsplit(self.url).port or (443 if self.tls else 80)

    @cached_property
    def authority(self) -> str:
        """``host[:port]`` as a Host header writes it."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"

    @cached_property
    def prefix(self) -> str:
        """Path prefix to put before every relayed path (no trailing slash)."""
        return urlsplit(self.url).path.rstrip("/")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for an ``https``/``wss`` upstream (verification on unless *insecure*)."""
        if not self.tls:
            return None
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot read CA file {self.ca_file}: {exc}") from exc
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def connect(self, ctx: ssl.SSLContext | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open a connection (raises ``OSError``/``ssl.SSLError``/``TimeoutError``)."""
        return await asyncio.wait_for(
            asyncio.open_connection(
                self.host, self.port, ssl=ctx, server_hostname=self.host if ctx else None, limit=256 * 1024
            ),
            self.connect_timeout,
        )
