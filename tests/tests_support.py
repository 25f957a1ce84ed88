"""Helpers shared by tests (import as ``from tests_support import ...``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
#: 150 frames observed from a real authentik 2023.10.0 (copied from shared/real-traffic).
REAL_TRAFFIC = FIXTURES / "real-traffic" / "authentik-2023.10.0-frames.jsonl"


def real_frames() -> list[dict[str, Any]]:
    """The real-traffic records, one dict per line."""
    return [json.loads(line) for line in REAL_TRAFFIC.read_text().splitlines() if line.strip()]
