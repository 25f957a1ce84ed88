"""The browser helper of the tests: found, or a clear skip reason, or a failure under CI=true."""

from __future__ import annotations

import browser
import pytest
from browser import ensure_chromium


@pytest.fixture
def no_browser(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no chromium on PATH
    monkeypatch.delenv("CHROMIUM", raising=False)


def test_without_a_browser_the_reason_says_what_to_do(no_browser, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert ensure_chromium() is None
    assert "make peers" in browser.LAST_REASON and "$CHROMIUM" in browser.LAST_REASON


def test_without_a_browser_ci_fails_instead_of_skipping(no_browser, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and no Chromium found"):
        ensure_chromium()


def test_chromium_env_names_the_binary(monkeypatch, tmp_path):
    binary = tmp_path / "my-chromium"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("CHROMIUM", str(binary))
    assert ensure_chromium() == str(binary)
