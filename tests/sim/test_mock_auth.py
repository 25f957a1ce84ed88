"""The mock authentik's handshake checks, without sockets (the socket-level tests are in test_mock.py)."""

from __future__ import annotations

import pytest

from wsreplay.sim.mock_auth import SESSION_COOKIE, bearer_token, cookie_value, refusal

OUTPOSTS = {"pk": "token"}


@pytest.mark.parametrize(
    ("path", "authorization", "cookie", "sessions", "reason"),
    [
        ("/ws/outpost/pk/", "Bearer token", None, None, None),
        ("/ws/outpost/pk/", "bearer admin", None, None, None),
        ("/ws/outpost/pk/", "Bearer wrong", None, None, "bad token"),
        ("/ws/outpost/pk/", "Basic token", None, None, "missing or non-Bearer Authorization"),
        ("/ws/outpost/pk/", None, None, None, "missing or non-Bearer Authorization"),
        ("/ws/outpost/other/", "Bearer token", None, None, "unknown outpost"),
        ("/ws/client/", None, None, None, None),
        ("/ws/client/", None, f"{SESSION_COOKIE}=s1", {"s1"}, None),
        ("/ws/client/", None, f"{SESSION_COOKIE}=s2", {"s1"}, "no valid authentik_session cookie"),
        ("/ws/client/", None, None, {"s1"}, "no valid authentik_session cookie"),
        ("/ws/elsewhere/", "Bearer token", None, None, "unknown WebSocket path"),
    ],
)
def test_refusal_names_why_a_handshake_is_refused(path, authorization, cookie, sessions, reason):
    got = refusal(path, authorization, cookie, outposts=OUTPOSTS, admin_tokens={"admin"}, sessions=sessions)
    assert got[2] == reason


def test_an_unparsable_cookie_header_carries_no_session():
    assert cookie_value('a="unterminated; b', SESSION_COOKIE) is None
    assert bearer_token("Bearer   ") is None
