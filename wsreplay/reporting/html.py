"""HTML building blocks of the report: page, sections, tables (all text escaped)."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

__all__ = ["Raw", "page", "section", "table", "key_values", "fmt_ts", "fmt_s", "fmt_pct", "esc"]

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1200px; margin: 0 auto; padding: 1.5em 2em 4em; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.25em; margin: 2em 0 .5em; padding-bottom: .2em; border-bottom: 1px solid #ddd; }
p.sub, p.note { color: #666; margin: .2em 0 1em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 13px; }
th, td { white-space: nowrap; padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f6f6f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, td.id { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; }
img.figure { max-width: 100%; height: auto; display: block; margin: .5em 0 1em; }
.cards { display: flex; flex-wrap: wrap; gap: .8em; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .5em 1em; min-width: 9em; }
.card .v { font-size: 1.5em; font-weight: 600; }
.card .k { color: #666; font-size: 12px; }
.cause { display: inline-block; width: .8em; height: .8em; border-radius: 2px; margin-right: .3em; }
.scroll { max-height: 32em; overflow: auto; border: 1px solid #eee; }
footer { margin-top: 3em; color: #888; font-size: 12px; }
"""


class Raw(str):
    """Text that is already HTML (a formatter may return it to skip escaping)."""

    __slots__ = ()


def esc(value: Any) -> str:
    """*value* as escaped HTML text (``-`` for missing values)."""
    if value is None or (not isinstance(value, (str, bytes)) and pd.isna(value)):
        return "-"
    return html.escape(str(value))


def fmt_ts(value: Any) -> str:
    """A timestamp to the millisecond, in UTC."""
    if value is None or pd.isna(value):
        return "-"
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def fmt_s(value: Any) -> str:
    """Seconds, rounded for reading (``1.25 s``, ``3 min 20 s``, ``2 h 05 min``)."""
    if value is None or pd.isna(value):
        return "-"
    s = float(value)
    if s < 60:
        return f"{s:.3g} s" if s < 10 else f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_pct(value: Any) -> str:
    """A share in [0, 1] as a percentage with two decimals."""
    if value is None or pd.isna(value):
        return "-"
    return f"{float(value) * 100:.2f}%"


Formatter = Callable[[Any], str]


def table(
    df: pd.DataFrame,
    columns: Mapping[str, tuple[str, Formatter | None]],
    *,
    max_rows: int | None = None,
    numeric: Iterable[str] = (),
    ids: Iterable[str] = (),
    what: str = "rows",
) -> str:
    """An HTML table of *df*: ``columns`` maps column -> (header, formatter or None for ``str``)."""
    num, idc = set(numeric), set(ids)
    shown = df if max_rows is None else df.head(max_rows)
    head = "".join(f"<th>{esc(h)}</th>" for h, _ in columns.values())
    body = []
    for rec in shown.to_dict("records"):
        cells = []
        for col, (_, fmt) in columns.items():
            v = rec.get(col)
            text = esc(v) if fmt is None else fmt(v)
            if fmt is not None and not isinstance(text, Raw):
                text = esc(text)
            cls = " class='num'" if col in num else (" class='id'" if col in idc else "")
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(df) > max_rows:
        more = f"<p class='note'>First {max_rows:,} of {len(df):,} {what}.</p>"
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def key_values(pairs: Iterable[tuple[str, str]]) -> str:
    """Cards of headline numbers (label, value)."""
    cards = "".join(
        f"<div class='card'><div class='v'>{esc(v)}</div><div class='k'>{esc(k)}</div></div>" for k, v in pairs
    )
    return f"<div class='cards'>{cards}</div>"


def section(anchor: str, title: str, body: str) -> str:
    """A titled section with an anchor for the page's navigation."""
    return f"<section id='{esc(anchor)}'><h2>{esc(title)}</h2>{body}</section>"


def page(title: str, subtitle: str, nav: Iterable[tuple[str, str]], sections: Iterable[str], footer: str) -> str:
    """The whole self-contained page (inline CSS, no script, no external resource)."""
    links = " ".join(f"<a href='#{esc(a)}'>{esc(t)}</a>" for a, t in nav)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p class='sub'>{esc(subtitle)}</p><nav>{links}</nav></header>"
        + "".join(sections)
        + f"<footer>{esc(footer)}</footer></body></html>\n"
    )
