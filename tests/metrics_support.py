"""Scraping a recorder's metrics endpoint over HTTP (used by the metrics tests)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def get(url: str, *, accept: str = OPENMETRICS) -> tuple[int, str, str]:
    """``(status, content type, body)`` of a GET."""
    req = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def scrape(base: str) -> dict[str, Any]:
    """The families of ``base/metrics`` (OpenMetrics, parsed by prometheus_client's own parser), by name."""
    status, ctype, body = get(base + "/metrics")
    assert status == 200 and ctype.startswith("application/openmetrics-text"), (status, ctype)
    return {f.name: f for f in text_string_to_metric_families(body)}


def value(families: dict[str, Any], family: str, sample: str | None = None, **labels: str) -> float | None:
    """The value of the sample *sample* (default: the family's name) with exactly *labels*, else None."""
    for s in families[family].samples:
        if s.name == (sample or family) and s.labels == labels:
            return float(s.value)
    return None


def by_label(families: dict[str, Any], family: str, label: str) -> dict[str, float]:
    return {s.labels[label]: float(s.value) for s in families[family].samples}
