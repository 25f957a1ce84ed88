"""Figures rendered off-screen (Agg) and embedded in HTML as base64 PNG."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["render_png", "img_tag"]


def render_png(draw: Callable[[Axes], Any], *, size: tuple[float, float], dpi: int = 100) -> bytes:
    """PNG bytes of a figure of *size* inches whose single axes *draw* fills.

    The figure is a bare :class:`~matplotlib.figure.Figure` on an Agg canvas:
    no pyplot state, no display, whatever backend pyplot was told to use.
    """
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw(ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def img_tag(png: bytes, *, alt: str) -> str:
    """An ``<img>`` holding *png* inline (``data:`` URL): the page needs no other file."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="figure" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
