"""Outpost buckets: the stable split of a fleet's outposts into *n* groups that partitioned reads share.

Every analysis of a capture depends only on each outpost's own frames, so a
capture can be read and analysed bucket by bucket. The bucket of an outpost
is ``crc32(outpost_uuid) % n``: the same in every process and on every
machine (unlike Python's ``hash``), so a compacted capture's ``bucket=``
directories, the report's outpost groups and the partitions of
:func:`wsreplay.dask.load` agree on which outposts go together. Rows without
an outpost (``/ws/client/`` and other endpoints) have no bucket (``-1``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

__all__ = ["NO_BUCKET", "bucket_of", "bucket_groups"]

#: The bucket of rows without an ``outpost_uuid``.
NO_BUCKET = -1


def _one(uuid: str | None, n: int) -> int:
    return NO_BUCKET if uuid is None else zlib.crc32(uuid.encode()) % n


def bucket_of(uuids: pa.Array | pa.ChunkedArray | Sequence[str | None], n: int) -> np.ndarray:
    """The bucket (``0 <= b < n``, or :data:`NO_BUCKET` for null) of each outpost pk in *uuids*.

    Dictionary-encoded Arrow arrays are hashed once per distinct value.

    Examples
    --------
    >>> bucket_of(["4fd1a0d0-6ad4-4c3b-9a4e-6f2c1e0a9b11", None], 16).tolist()
    [8, -1]
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if isinstance(uuids, pa.ChunkedArray):
        parts = [bucket_of(c, n) for c in uuids.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if isinstance(uuids, pa.Array) and pa.types.is_dictionary(uuids.type):
        per_value = np.array([_one(v, n) for v in uuids.dictionary.to_pylist()], dtype=np.int64)
        idx = uuids.indices.to_numpy(zero_copy_only=False)
        valid = ~np.asarray(uuids.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        out = np.full(len(uuids), NO_BUCKET, dtype=np.int64)
        out[valid] = per_value[idx[valid].astype(np.int64)]
        return out
    values = uuids.to_pylist() if isinstance(uuids, pa.Array) else list(uuids)
    return np.array([_one(v, n) for v in values], dtype=np.int64)


def bucket_groups(uuids: Iterable[str], n: int) -> dict[int, list[str]]:
    """The distinct outpost pks of *uuids* grouped by bucket (buckets and pks sorted).

    Examples
    --------
    >>> bucket_groups(["b", "a", "c", "d"], 3)
    {0: ['a', 'c', 'd'], 2: ['b']}
    """
    groups: dict[int, list[str]] = {}
    for u in sorted(set(uuids)):
        groups.setdefault(_one(u, n), []).append(u)
    return dict(sorted(groups.items()))
