"""``HOST:PORT`` parsing for every address a user types (``record --listen``/``--metrics``, ``serve --listen``)."""

from __future__ import annotations

from .exceptions import ConfigurationError

__all__ = ["parse_listen"]

LOOPBACK = "127.0.0.1"


def parse_listen(
    value: str | tuple[str, int] | None, default_port: int = 0, *, option: str = "--listen"
) -> tuple[str, int]:
    """Parse ``HOST:PORT``, ``:PORT``, ``PORT``, ``HOST``, ``[IPv6]:PORT`` or a ``(host, port)`` tuple.

    The host defaults to 127.0.0.1 (never every interface unless asked), the
    port to *default_port*; ``None`` is both defaults. Errors name *option*.

    Examples
    --------
    >>> parse_listen("127.0.0.1:9000"), parse_listen(":0"), parse_listen("[::1]:80")
    (('127.0.0.1', 9000), ('127.0.0.1', 0), ('::1', 80))
    >>> parse_listen("9000"), parse_listen("localhost", 8080), parse_listen(None)
    (('127.0.0.1', 9000), ('localhost', 8080), ('127.0.0.1', 0))
    """
    if value is None:
        return LOOPBACK, default_port
    if isinstance(value, tuple):
        host, port = value[0], _port(str(value[1]), value, option)
        return host or LOOPBACK, port
    text = str(value).strip()
    if text.isdigit():
        host, port_s = "", text
    elif text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_s = rest.removeprefix(":")
    else:
        host, sep, port_s = text.rpartition(":")
        if not sep:
            host, port_s = text, ""
    port = _port(port_s, value, option) if port_s else default_port
    return host or LOOPBACK, port


def _port(text: str, value: object, option: str) -> int:
    if not text.isdigit():
        raise ConfigurationError(f"{option} {value!r}: the port must be a number (HOST:PORT, e.g. 127.0.0.1:9000)")
    port = int(text)
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"{option} {value!r}: port {port} is out of range (0 to 65535)")
    return port
