"""Helpers shared by tests (import as ``from tests_support import ...``)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
#: 150 frames observed from a real authentik 2023.10.0 (copied from shared/real-traffic).
REAL_TRAFFIC = FIXTURES / "real-traffic" / "authentik-2023.10.0-frames.jsonl"


def real_frames() -> list[dict[str, Any]]:
    """The real-traffic records, one dict per line."""
    return [json.loads(line) for line in REAL_TRAFFIC.read_text().splitlines() if line.strip()]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway key and self-signed certificate for localhost / 127.0.0.1 (openssl CLI)."""
    import subprocess

    key, crt = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, crt


def absolute_imports(path: Path) -> list[str]:
    """The absolute modules a source file imports (``import x.y``, ``from x.y import z``), for layering checks."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names
