"""Import WebSocket traffic from tshark's ``-T json`` or ``-T ek`` output.

Make the input from a packet capture with the HTTP and WebSocket dissectors
(``-d tcp.port==9000,http`` if authentik listens on a port tshark does not
take for HTTP)::

    tshark -r outposts.pcapng -d tcp.port==9000,http -Y 'http || websocket' -T json > outposts.json
    tshark -r outposts.pcapng -d tcp.port==9000,http -Y 'http || websocket || tcp.flags.fin==1' -T ek > outposts.ndjson

Each TCP stream (``tcp.stream``) is one connection. Its HTTP upgrade request
gives the path, the query string (credential-like parameters dropped) and the
User-Agent, and tells which side is the server; the ``101`` answer opens the
connection, any other status is a refused handshake (an ``error`` row).
Frames come from the ``websocket`` layer: ``websocket.opcode``, text from
``websocket.payload.text`` (tshark decompresses permessage-deflate), binary
from the ``data.data`` hex that follows, close codes from
``websocket.payload.close.status_code``; times are ``frame.time_epoch``.
Without a captured handshake (``-Y websocket`` leaves the HTTP upgrade
out), the direction comes from the server port (*server_port*) or, failing
that, from masking: clients mask their frames; and the endpoint from the
frames themselves (:func:`endpoint_from_frames`: outpost instructions or
browser notices), unless *path* names it. An outpost told this way has
``outpost_uuid`` :data:`UNKNOWN_OUTPOST` (the pk is only in the path); a
stream whose frames tell nothing keeps the path :data:`UNKNOWN_PATH`
(endpoint ``other``).
A FIN or RST without a close frame closes the connection with 1006.

The work is in two steps: :mod:`~wsreplay.interop.tshark_packets` parses
either output format into packets, :mod:`~wsreplay.interop.tshark_streams`
groups them by stream and turns each stream into rows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..exceptions import ImportFormatError
from ._common import OnError, PathLike, finish, new_capture_id, read_bytes, refuse_deep_nesting
from .tshark_packets import Packet, frame_number, iter_layers, parse_packet, sniff_output
from .tshark_streams import tshark_rows

__all__ = ["import_tshark"]


def import_tshark(
    source: PathLike | bytes,
    out: PathLike | None = None,
    *,
    capture_id: str | None = None,
    server_port: int | None = None,
    path: str | None = None,
    on_error: OnError = "raise",
) -> pd.DataFrame:
    """Import WebSocket connections from tshark ``-T json`` or ``-T ek`` output.

    Parameters
    ----------
    source : path or bytes
        The JSON (array) or EK (newline-delimited) file, or its content.
    out : path, optional
        Capture directory to write; without it nothing is written.
    capture_id : str, optional
        Id of the imported capture; a new one by default.
    server_port : int, optional
        authentik's TCP port, to tell directions in streams whose handshake
        was not captured (masking is used otherwise).
    path : str, optional
        Request path for streams whose handshake was not captured (e.g.
        ``/ws/outpost/<pk>/``); :data:`UNKNOWN_PATH` by default.
    on_error : {"raise", "skip"}
        Raise :class:`~wsreplay.exceptions.ImportFormatError` for a packet that
        cannot be read (default), or skip it and list it in
        ``frames.attrs["import"]["errors"]``.

    Returns
    -------
    pandas.DataFrame
        The frames, as :func:`wsreplay.load` returns them; ``attrs["import"]``
        holds the counts (``packets``, ``connections``, ``messages``, ...).

    Examples
    --------
    >>> frames = wsreplay.import_tshark("outposts.json", out="capture/")
    >>> frames.groupby("event", observed=True).size()
    event
    open        4
    message    16
    close       4
    error       1
    dtype: int64
    """
    data, name = read_bytes(source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{name}: not tshark output: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise ImportFormatError(f"{name}: the file is empty")
    try:
        sniff_output(text)
    except ImportFormatError as exc:
        raise ImportFormatError(f"{name}: {exc}") from None
    cid = new_capture_id(capture_id)
    stats: dict[str, Any] = {}
    packets: list[Packet] = []
    errors: list[str] = []
    with refuse_deep_nesting(name):
        for index, (kind, layers) in iter_layers(text, name):
            try:
                packets.append(parse_packet(kind, layers))
            except ImportFormatError as exc:
                problem = ImportFormatError(f"{name}: packet {index} (frame {frame_number(layers)}): {exc}")
                if on_error == "raise":
                    raise problem from None
                errors.append(str(problem))
        rows = tshark_rows(packets, capture_id=cid, server_port=server_port, path=path, stats=stats)
    stats["errors"] = errors
    return finish(rows, out=out, capture_id=cid, source=name, fmt="tshark", stats=stats)
