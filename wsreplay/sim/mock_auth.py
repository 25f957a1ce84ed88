"""Who the mock authentik admits: the handshake's credentials and the frames its consumer accepts (no I/O).

* ``/ws/outpost/<pk>/`` needs ``Authorization: Bearer <token>`` with the outpost's
  token (or an admin token); ``/ws/client/`` needs the ``authentik_session`` cookie
  only when the mock has a set of sessions; any other ``/ws/`` path is refused.
* An outpost frame that is not a JSON object with an integer ``instruction`` and an
  object ``args`` is one authentik's consumer fails on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from http.cookies import CookieError, SimpleCookie

from ..protocol import Decoded, classify_path

__all__ = ["SESSION_COOKIE", "bearer_token", "cookie_value", "malformed", "refusal"]

#: Cookie authentik's web sessions use.
SESSION_COOKIE = "authentik_session"


def bearer_token(value: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive), else ``None``.

    Examples
    --------
    >>> bearer_token("bearer abc"), bearer_token("Basic abc"), bearer_token(None)
    ('abc', None, None)
    """
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def cookie_value(value: str | None, name: str) -> str | None:
    """The value of cookie *name* in a ``Cookie`` header, else ``None`` (also for an unparsable header).

    Examples
    --------
    >>> cookie_value("a=1; authentik_session=xyz", SESSION_COOKIE)
    'xyz'
    """
    if not value:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(value)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def malformed(decoded: Decoded) -> str | None:
    """Why authentik's consumer would fail on this outpost frame, or ``None``.

    authentik parses each frame into ``WebsocketMessage(instruction: int, args: dict)``;
    a frame that is not a JSON object with an integer ``instruction`` and an
    object ``args`` raises in the consumer and the connection is dropped.
    Unknown instruction numbers are answered like any other frame.
    """
    error = decoded.get("parse_error")
    if decoded.get("instruction") is None and decoded.get("instruction_name") is None:
        return error or "no instruction"
    if error and "args is" in error:
        return error
    return None


def refusal(
    path: str,
    authorization: str | None,
    cookie: str | None,
    *,
    outposts: Mapping[str, str],
    admin_tokens: Collection[str],
    sessions: Collection[str] | None,
) -> tuple[str, str | None, str | None]:
    """Classify a WebSocket handshake: ``(endpoint, outpost pk, why it is refused or None)``.

    Examples
    --------
    >>> refusal("/ws/outpost/pk/", "Bearer t", None, outposts={"pk": "t"}, admin_tokens=(), sessions=None)
    ('outpost', 'pk', None)
    >>> refusal("/ws/outpost/pk/", "Bearer x", None, outposts={"pk": "t"}, admin_tokens=(), sessions=None)[2]
    'bad token'
    """
    endpoint, pk = classify_path(path)
    reason: str | None = None
    if endpoint == "outpost":
        token = bearer_token(authorization)
        if pk is None or pk not in outposts:
            reason = "unknown outpost"
        elif token is None:
            reason = "missing or non-Bearer Authorization"
        elif token != outposts[pk] and token not in admin_tokens:
            reason = "bad token"
    elif endpoint == "client":
        if sessions is not None and cookie_value(cookie, SESSION_COOKIE) not in sessions:
            reason = "no valid authentik_session cookie"
    else:
        reason = "unknown WebSocket path"
    return endpoint, pk, reason
