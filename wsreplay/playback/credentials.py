"""Where a replay gets its secrets: the environment or a token file, never the capture.

Outpost connections send ``Authorization: Bearer <token>``: the token of the
outpost's pk from a token file (``pk=token`` lines, or a JSON object), else
``AUTHENTIK_TOKEN``. ``/ws/client/`` connections send the
``authentik_session`` cookie from ``AUTHENTIK_SESSION`` when it is set.
Nothing here prints or logs a secret; ``repr`` shows which are set, not their
values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import ConfigurationError

__all__ = ["Credentials", "read_token_file", "TOKEN_ENV", "SESSION_ENV"]

TOKEN_ENV = "AUTHENTIK_TOKEN"
SESSION_ENV = "AUTHENTIK_SESSION"


def read_token_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read ``pk -> token`` from a file.

    The file is either a JSON object ``{"<pk>": "<token>", ...}`` or lines
    ``<pk>=<token>`` (blank lines and ``#`` comments are skipped).

    Raises
    ------
    ConfigurationError
        If the file is missing or a line is not ``pk=token`` (the message
        names the line number, never its content).
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read token file {p}: {exc.strerror or exc}") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigurationError(f"token file {p} starts with '{{' but is not a JSON object") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ConfigurationError(f"token file {p}: expected a JSON object of pk -> token strings")
        return {str(k): v for k, v in data.items()}
    tokens: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pk, sep, token = line.partition("=")
        if not sep or not pk.strip() or not token.strip():
            raise ConfigurationError(f"token file {p}, line {number}: expected <outpost pk>=<token>")
        tokens[pk.strip()] = token.strip()
    return tokens


@dataclass(frozen=True)
class Credentials:
    """Secrets of a replay.

    Parameters
    ----------
    token : str, optional
        Bearer token for every outpost without its own.
    tokens : dict, optional
        Outpost pk -> token (the target's pk, or the recorded one when mapped).
    session : str, optional
        ``authentik_session`` cookie for ``/ws/client/``.
    """

    token: str | None = field(default=None, repr=False)
    tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    session: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls,
        tokens_file: str | os.PathLike[str] | None = None,
        *,
        tokens: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Credentials:
        """Credentials from ``AUTHENTIK_TOKEN`` / ``AUTHENTIK_SESSION`` and an optional token file."""
        env = os.environ if environ is None else environ
        merged = dict(read_token_file(tokens_file)) if tokens_file is not None else {}
        merged.update(tokens or {})
        return cls(token=env.get(TOKEN_ENV) or None, tokens=merged, session=env.get(SESSION_ENV) or None)

    def token_for(self, pk: str | None, recorded_pk: str | None = None) -> str | None:
        """The bearer token for an outpost (its own, else the default)."""
        for key in (pk, recorded_pk):
            if key and key in self.tokens:
                return self.tokens[key]
        return self.token

    def headers(self, endpoint: str, pk: str | None, recorded_pk: str | None = None) -> list[tuple[str, str]]:
        """HTTP headers a connection's handshake carries."""
        if endpoint == "outpost":
            token = self.token_for(pk, recorded_pk)
            return [("Authorization", f"Bearer {token}")] if token else []
        if endpoint == "client" and self.session:
            return [("Cookie", f"authentik_session={self.session}")]
        return []

    def __repr__(self) -> str:
        return (
            f"Credentials(token={'set' if self.token else 'unset'}, tokens={len(self.tokens)} outpost(s), "
            f"session={'set' if self.session else 'unset'})"
        )
