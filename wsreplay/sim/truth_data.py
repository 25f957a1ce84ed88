"""The ground truth of a simulated run as tables, and its files (``truth.json`` plus Parquet).

What the columns mean, and when an instance or an outpost is really down, is
defined in :mod:`wsreplay.sim.truth`, which computes the truth; this module
holds the result, :class:`Truth`, and reads and writes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..exceptions import CaptureNotFoundError, ConfigurationError

__all__ = ["Truth", "TRUTH_DIR", "TRUTH_FORMAT", "TRUTH_COLUMNS"]

#: Sub-directory of a simulated capture that holds its truth.
TRUTH_DIR: Final = "truth"
#: Version of the truth files.
TRUTH_FORMAT: Final = 1

_TABLES: Final = ("outages", "hellos", "acks", "instances", "connections", "notices")
_JSON_TABLES: Final = ("outages", "instances")
_TS_COLUMNS: Final = ("start", "end", "ts", "arrived", "sent_ts", "ack_ts", "opened", "closed")


@dataclass
class Truth:
    """What really happened in a simulated run.

    Attributes
    ----------
    outages : DataFrame
        ``level`` (``instance`` | ``outpost``), ``outpost_uuid``, ``instance_uuid``
        (null for outposts), ``start``, ``end``, ``duration_s``, ``cause``.
    hellos : DataFrame
        Every HELLO sent: ``outpost_uuid``, ``instance_uuid``, ``ts`` (sent),
        ``arrived`` (reached the server; NaT if it never did). Grouped by
        connection, in time order within each (sort by ``ts`` for a global order).
    acks : DataFrame
        Every ACK an outpost received: ``outpost_uuid``, ``instance_uuid``,
        ``sent_ts`` (its HELLO), ``ack_ts``, ``latency_s``; ordered like ``hellos``.
    instances : DataFrame
        One row per process: ``outpost_uuid``, ``instance_uuid``, ``replica``,
        ``version``, ``hostname``, ``start``, ``end``, ``end_cause``.
    connections : DataFrame
        Every connection attempt: ``endpoint``, ``outpost_uuid``, ``instance_uuid``,
        ``attempt``, ``ts``, ``ok``, ``status``, ``opened``, ``closed``,
        ``close_code``, ``closed_by`` (``peer`` | ``server`` | null).
    notices : DataFrame
        Every notice a browser received: ``browser``, ``ts``, ``level``, ``message``.
    start, end : Timestamp
        The run's time span.
    clock : str
        ``real`` or ``virtual``.
    scenario : dict
        :meth:`Scenario.to_dict` of the run (no tokens).
    capture_id : str or None
        The capture written alongside, if any.
    """

    outages: pd.DataFrame
    hellos: pd.DataFrame
    acks: pd.DataFrame
    instances: pd.DataFrame
    connections: pd.DataFrame
    notices: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    clock: str = "virtual"
    scenario: dict[str, Any] = field(default_factory=dict)
    capture_id: str | None = None

    def seconds(self, ts: pd.Series | pd.Timestamp) -> Any:
        """Seconds since the start of the run (for comparing runs on different clocks)."""
        return (ts - self.start) / pd.Timedelta(seconds=1)

    def hello_counts(self, *, arrived: bool = True) -> pd.Series:
        """HELLOs per instance uuid (only those that reached the server by default)."""
        h = self.hellos
        if arrived:
            h = h[h["arrived"].notna()]
        return h.groupby("instance_uuid", observed=True).size()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``truth.json`` (summary, scenario, instances, outages) and Parquet tables into *path*.

        Returns the directory written.
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {
            "format": TRUTH_FORMAT,
            "clock": self.clock,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "capture_id": self.capture_id,
            "scenario": self.scenario,
            "counts": {name: len(getattr(self, name)) for name in _TABLES},
        }
        for name in _JSON_TABLES:
            doc[name] = _records(getattr(self, name))
        (out / "truth.json").write_text(json.dumps(doc))
        for name in _TABLES:
            if name not in _JSON_TABLES:
                table = pa.Table.from_pandas(getattr(self, name), preserve_index=False)
                delta = {c: "DELTA_BINARY_PACKED" for c in table.column_names if c in _TS_COLUMNS}
                pq.write_table(
                    table,
                    out / f"{name}.parquet",
                    compression="lz4",
                    use_dictionary=[c for c in table.column_names if c not in _TS_COLUMNS],
                    column_encoding=delta or None,
                )
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Truth:
        """Read a truth written by :meth:`save` (a truth directory, or a capture holding ``truth/``)."""
        p = Path(path)
        if (p / TRUTH_DIR / "truth.json").exists():
            p = p / TRUTH_DIR
        if p.is_file():
            p = p.parent
        doc_path = p / "truth.json"
        if not doc_path.exists():
            raise CaptureNotFoundError(f"no truth.json in {p}: simulate a run with `wsreplay simulate`")
        doc = json.loads(doc_path.read_text())
        if doc.get("format") != TRUTH_FORMAT:
            raise ConfigurationError(f"{doc_path} has truth format {doc.get('format')!r}; this wsreplay reads 1")
        tables: dict[str, pd.DataFrame] = {}
        for name in _TABLES:
            if name in _JSON_TABLES:
                tables[name] = _from_records(doc[name], TRUTH_COLUMNS[name])
            else:
                tables[name] = pd.read_parquet(p / f"{name}.parquet")
        return cls(
            **tables,
            start=pd.Timestamp(doc["start"]),
            end=pd.Timestamp(doc["end"]),
            clock=doc["clock"],
            scenario=doc["scenario"],
            capture_id=doc.get("capture_id"),
        )


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = df.copy()
    for col in out.columns:
        if col in _TS_COLUMNS:
            out[col] = out[col].map(lambda v: None if pd.isna(v) else v.isoformat())
        elif isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object)
    return [{str(k): (None if _isna(v) else v) for k, v in row.items()} for row in out.to_dict("records")]


def _isna(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _from_records(records: list[dict[str, Any]], empty: pd.DataFrame) -> pd.DataFrame:
    if not records:
        return empty.copy()
    df = pd.DataFrame.from_records(records, columns=list(empty.columns))
    for col in df.columns:
        if col in _TS_COLUMNS:
            df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
    return df.astype({c: empty[c].dtype for c in df.columns if c not in _TS_COLUMNS})


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


_TS = "datetime64[ns, UTC]"
#: Empty tables with the columns and dtypes of :attr:`Truth.outages` and :attr:`Truth.instances`.
TRUTH_COLUMNS: Final[dict[str, pd.DataFrame]] = {
    "outages": _empty(
        {
            "level": "object",
            "outpost_uuid": "object",
            "instance_uuid": "object",
            "start": _TS,
            "end": _TS,
            "duration_s": "float64",
            "cause": "object",
        }
    ),
    "instances": _empty(
        {
            "outpost_uuid": "object",
            "instance_uuid": "object",
            "replica": "int64",
            "version": "object",
            "hostname": "object",
            "start": _TS,
            "end": _TS,
            "end_cause": "object",
        }
    ),
}
