"""What the docstring examples of wsreplay run with (``make test``: ``pytest --doctest-modules wsreplay``).

The examples name files as a user would (``wsreplay.import_har("devtools.har")``,
``wsreplay.load("sample_captures/fleet_day")``). Each example runs in a temporary
directory where those names are links to real files: the interop fixtures the
tools wrote (tests/interop/fixtures/README.md says how) and the sample
captures; whatever an example writes (``out="capture/"``) stays there.
Examples that need a server (authentik, a recorder, a replay target) keep
``# doctest: +SKIP``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).parent
_INTEROP = ROOT / "tests" / "interop" / "fixtures"

#: File names used in the examples -> the real file each one stands for.
EXAMPLE_FILES = {
    "devtools.har": _INTEROP / "chromium-client.har",
    "incident.har": _INTEROP / "mitmproxy-hardump.har",
    "outposts.json": _INTEROP / "tshark-outposts.json",
    "outposts.mitm": _INTEROP / "mitmdump-outposts.mitm",
    "sample_captures": ROOT / "sample_captures",
}


@pytest.fixture(autouse=True)
def _doctest_files(request: pytest.FixtureRequest) -> None:
    """For a docstring example only: ``wsreplay`` in its namespace, and a directory with its files."""
    if not isinstance(request.node, pytest.DoctestItem):
        return
    import wsreplay

    request.getfixturevalue("doctest_namespace")["wsreplay"] = wsreplay
    folder: Path = request.getfixturevalue("tmp_path")
    for name, target in EXAMPLE_FILES.items():
        (folder / name).symlink_to(target, target_is_directory=target.is_dir())
    request.getfixturevalue("monkeypatch").chdir(folder)
