"""Fleet inventory: which outpost processes ran, which version, since when; restarts and upgrades.

An *instance* is one outpost process (``instance_uuid``); an outpost is the
``<pk>`` of its path and may run several instances at once (replicas) or one
after another (restarts). A **restart** is a new instance of an outpost that
first appeared after an earlier instance of the same outpost was last seen
(its predecessor: the one last seen most recently before); an **upgrade** is
a restart whose new instance runs another version.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ._cache import rows_of, shared
from ._common import codes, require, utc
from ._engine import accepts_dask
from ._group import code_extent
from ._rows import OutpostRows
from .hello import HELLO_COLUMNS

__all__ = ["fleet", "restarts", "upgrades", "FLEET_COLUMNS"]

#: Columns :func:`fleet`, :func:`restarts` and :func:`upgrades` read.
FLEET_COLUMNS: Final = (*HELLO_COLUMNS, "version", "build_hash", "hostname")


def _last_hello_value(frames: pd.DataFrame, rows: OutpostRows, column: str, hello_inst: np.ndarray) -> np.ndarray:
    """Per instance code: the value of *column* on its last HELLO that had one (object array)."""
    n_inst = len(rows.instance_codes.categories)
    out = np.full(n_inst, None, dtype=object)
    if column not in frames.columns:
        return out
    c = codes(frames[column])
    v = c.codes[rows.positions(rows.hello)]
    ok = (v >= 0) & (hello_inst >= 0)
    last = np.full(n_inst, -1, dtype=np.int64)
    last[hello_inst[ok]] = v[ok]
    return c.values(last)


def _instances(frames: pd.DataFrame, fn: str) -> pd.DataFrame:
    """One row per instance (``fleet``'s table); computed once for ``fleet``, ``restarts`` and ``upgrades`` alike."""
    require(frames, HELLO_COLUMNS, fn)
    return shared(frames, "instances", lambda: _instance_table(frames, fn)).copy()


def _instance_table(frames: pd.DataFrame, fn: str) -> pd.DataFrame:
    rows = rows_of(frames, fn)
    ok = rows.instance >= 0
    inst = rows.instance[ok]
    ts = rows.ts[ok]
    n_inst = len(rows.instance_codes.categories)
    seen = np.bincount(inst, minlength=n_inst) > 0
    first, last = code_extent(inst, ts, n_inst)
    hello_inst = rows.instance[rows.hello]
    hellos = np.bincount(hello_inst[hello_inst >= 0], minlength=n_inst)
    conn_inst = rows.conn_instance[rows.conn_instance >= 0]
    connections = np.bincount(conn_inst, minlength=n_inst)
    inst_outpost = np.full(n_inst, -1, dtype=np.int64)
    inst_outpost[inst] = rows.outpost[ok]
    idx = np.flatnonzero(seen)
    out = pd.DataFrame(
        {
            "outpost_uuid": pd.Series(rows.outpost_codes.values(inst_outpost[idx]), dtype="str"),
            "instance_uuid": pd.Series(rows.instance_codes.values(idx), dtype="str"),
            "version": pd.Series(_last_hello_value(frames, rows, "version", hello_inst)[idx], dtype="str"),
            "build_hash": pd.Series(_last_hello_value(frames, rows, "build_hash", hello_inst)[idx], dtype="str"),
            "hostname": pd.Series(_last_hello_value(frames, rows, "hostname", hello_inst)[idx], dtype="str"),
            "first_seen": utc(first[idx]),
            "last_seen": utc(last[idx]),
            "hellos": hellos[idx].astype(np.int64),
            "connections": connections[idx].astype(np.int64),
        }
    )
    return out.sort_values(["outpost_uuid", "first_seen"], kind="stable", ignore_index=True)


@accepts_dask("restarts")
def restarts(frames: pd.DataFrame, /) -> pd.DataFrame:
    """One row per restart of an outpost: a new instance replacing one last seen before it.

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load`. Not modified.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``ts``, with columns ``outpost_uuid``, ``instance_uuid`` (the
        new instance), ``previous_instance_uuid``, ``ts`` (new instance first
        seen), ``previous_last_seen``, ``gap_s`` (seconds between the two),
        ``version``, ``previous_version`` and ``upgrade`` (bool: the version
        changed). Each old instance has at most one successor.
    """
    inv = _instances(frames, "restarts")
    return _restarts(inv)


def _restarts(inv: pd.DataFrame) -> pd.DataFrame:
    new = inv[["outpost_uuid", "instance_uuid", "first_seen", "version"]].sort_values("first_seen", kind="stable")
    old = inv[["outpost_uuid", "instance_uuid", "last_seen", "version"]].rename(
        columns={"instance_uuid": "previous_instance_uuid", "version": "previous_version"}
    )
    old = old.sort_values("last_seen", kind="stable")
    m = pd.merge_asof(
        new,
        old,
        left_on="first_seen",
        right_on="last_seen",
        by="outpost_uuid",
        direction="backward",
        allow_exact_matches=False,
    )
    m = m[m["previous_instance_uuid"].notna() & (m["previous_instance_uuid"] != m["instance_uuid"])]
    m = m.drop_duplicates("previous_instance_uuid", keep="first")
    out = pd.DataFrame(
        {
            "outpost_uuid": m["outpost_uuid"].astype("str"),
            "instance_uuid": m["instance_uuid"].astype("str"),
            "previous_instance_uuid": m["previous_instance_uuid"].astype("str"),
            "ts": m["first_seen"],
            "previous_last_seen": m["last_seen"],
            "gap_s": (m["first_seen"] - m["last_seen"]).dt.total_seconds(),
            "version": m["version"].astype("str"),
            "previous_version": m["previous_version"].astype("str"),
        }
    )
    out["upgrade"] = (
        out["version"].notna() & out["previous_version"].notna() & (out["version"] != out["previous_version"])
    ).astype(bool)
    return out.sort_values("ts", kind="stable", ignore_index=True)


@accepts_dask("upgrades")
def upgrades(frames: pd.DataFrame, /) -> pd.DataFrame:
    """The restarts (see :func:`restarts`) whose new instance runs another version."""
    r = restarts(frames)
    return r[r["upgrade"]].reset_index(drop=True)


@accepts_dask("fleet")
def fleet(frames: pd.DataFrame, /, *, level: Literal["instance", "outpost"] = "instance") -> pd.DataFrame:
    """The fleet inventory: one row per outpost instance (or per outpost).

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load`. Not modified.
    level : {"instance", "outpost"}

    Returns
    -------
    pandas.DataFrame
        ``level="instance"``, sorted by ``outpost_uuid``, ``first_seen``:
        ``outpost_uuid``, ``instance_uuid``, ``version``, ``build_hash``,
        ``hostname`` (str, from its last HELLO that said), ``first_seen``,
        ``last_seen`` (datetime64[ns, UTC], any row of the instance),
        ``hellos``, ``connections`` (int).

        ``level="outpost"``, sorted by ``outpost_uuid``: ``outpost_uuid``,
        ``instances``, ``versions`` (str, the versions seen, oldest instance
        first, comma separated), ``version`` (of the instance seen last),
        ``first_seen``, ``last_seen``, ``hellos``, ``connections``,
        ``restarts``, ``upgrades`` (int).

    Examples
    --------
    >>> frames = wsreplay.load("sample_captures/incident")  # authentik restarts at 00:15
    >>> frames.pipe(wsreplay.fleet).groupby("version").size()
    version
    2024.2.1    25
    2024.4.2    20
    dtype: int64
    """
    if level not in ("instance", "outpost"):
        raise ConfigurationError(f"level must be 'instance' or 'outpost', not {level!r}")
    inv = _instances(frames, "fleet")
    if level == "instance":
        return inv
    r = _restarts(inv)
    g = inv.groupby("outpost_uuid", sort=True)
    versions = g["version"].agg(lambda v: ",".join(dict.fromkeys(str(x) for x in v.dropna())))
    by_last = inv.sort_values("last_seen", kind="stable").groupby("outpost_uuid")["version"].last()
    out = pd.DataFrame(
        {
            "instances": g.size(),
            "versions": versions,
            "version": by_last,
            "first_seen": g["first_seen"].min(),
            "last_seen": g["last_seen"].max(),
            "hellos": g["hellos"].sum(),
            "connections": g["connections"].sum(),
            "restarts": r.groupby("outpost_uuid").size(),
            "upgrades": r[r["upgrade"]].groupby("outpost_uuid").size(),
        }
    )
    for col in ("instances", "hellos", "connections", "restarts", "upgrades"):
        out[col] = out[col].fillna(0).astype(np.int64)
    out.index.name = "outpost_uuid"
    for col in ("versions", "version"):
        out[col] = out[col].astype("str")
    return out.reset_index()
