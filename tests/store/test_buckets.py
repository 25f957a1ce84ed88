"""Outpost buckets: stable across processes, one per distinct pk, dictionary arrays hashed like plain ones."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsreplay.store.buckets import NO_BUCKET, bucket_groups, bucket_of

PKS = st.lists(st.one_of(st.none(), st.uuids().map(str)), max_size=40)


@settings(deadline=None)
@given(PKS, st.integers(1, 64))
def test_dictionary_arrays_bucket_like_plain_values(pks: list[str | None], n: int) -> None:
    plain = bucket_of(pks, n)
    encoded = bucket_of(pa.array(pks, type=pa.string()).dictionary_encode(), n)
    chunked = bucket_of(pa.chunked_array([pa.array(pks[:3], pa.string()), pa.array(pks[3:], pa.string())]), n)
    assert plain.tolist() == encoded.tolist() == chunked.tolist()
    assert all((b == NO_BUCKET) == (p is None) for b, p in zip(plain, pks, strict=True))
    assert all(0 <= b < n for b, p in zip(plain, pks, strict=True) if p is not None)


def test_buckets_are_the_same_in_another_process() -> None:
    """Not Python's salted hash: a worker process (or another machine) puts a pk in the same bucket."""
    pks = [str(uuid.UUID(int=i * 7919)) for i in range(50)]
    here = bucket_of(pks, 13).tolist()
    code = f"from wsreplay.store.buckets import bucket_of; print(bucket_of({pks!r}, 13).tolist())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(here)
    assert len(set(here)) > 5  # the pks spread over the buckets


def test_groups_hold_each_distinct_pk_once_in_its_bucket() -> None:
    pks = [str(uuid.UUID(int=i)) for i in range(30)] * 2
    groups = bucket_groups(pks, 4)
    flat = [u for us in groups.values() for u in us]
    assert sorted(flat) == sorted(set(pks))
    for b, us in groups.items():
        assert bucket_of(us, 4).tolist() == [b] * len(us)


def test_bucket_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        bucket_of(["a"], 0)
