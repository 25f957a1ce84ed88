"""Upstream URLs, TLS settings and --listen parsing."""

from __future__ import annotations

import ssl

import pytest

from wsreplay.exceptions import ConfigurationError
from wsreplay.record.upstream import Upstream


def test_schemes_ports_prefix_and_authority():
    up = Upstream("wss://auth.example/authentik/")
    assert (up.tls, up.host, up.port, up.prefix, up.authority) == (
        True,
        "auth.example",
        443,
        "/authentik",
        "auth.example",
    )
    up = Upstream("http://127.0.0.1:9000")
    assert (up.tls, up.port, up.prefix, up.authority) == (False, 9000, "", "127.0.0.1:9000")
    assert up.ssl_context() is None


def test_tls_verification_is_on_unless_insecure():
    ctx = Upstream("https://auth.example").ssl_context()
    assert ctx is not None and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    ctx = Upstream("https://auth.example", insecure=True).ssl_context()
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("url", ["ftp://x", "auth.example", "http://", "http://h/?q=1", "http://h:99999"])
def test_bad_upstreams_are_one_line_errors(url):
    with pytest.raises(ConfigurationError):
        Upstream(url)


def test_missing_ca_file_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="CA file"):
        Upstream("https://auth.example", ca_file=str(tmp_path / "nope.pem"))
