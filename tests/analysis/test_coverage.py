"""The kernel property: every outpost analysis of a partition of outposts, judged over the capture's
window (``span=``), gives exactly its rows of the single pass (wsreplay/analysis/coverage.py, "Partitions").

The partitions are the buckets every engine splits outposts by (``wsreplay.store.buckets``:
compacted captures, the report's groups, Dask), on simulated fleets with every fault kind; the
partitions are analysed between calls on the whole frames, so the shared timelines and rows
(``wsreplay/analysis/_cache.py``) switch between them as a notebook or an engine would make them.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsreplay
from wsreplay.sim import Scenario, simulate_virtual
from wsreplay.store.buckets import bucket_groups
from wsreplay.store.span import capture_span

pytestmark = pytest.mark.usefixtures("implementation")  # the C kernels and their numpy versions


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Categorical id columns as strings (parts have their own categories)."""
    cats = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype) and c != "cause"]
    return df.astype({c: "str" for c in cats})


def _cat(parts: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    out = pd.concat([_plain(p) for p in parts], ignore_index=True)
    return out.sort_values(keys, kind="stable", ignore_index=True)


@pytest.fixture(scope="module")
def fleets(tmp_path_factory):
    made = {}
    for seed in (3, 11):
        sc = Scenario.generate(outposts=7, duration=40.0, interval=0.2, seed=seed, faults=True, fault_every=25.0)
        path = tmp_path_factory.mktemp(f"fleet{seed}")
        simulate_virtual(sc, out=path, save_truth=False)
        made[seed] = path
    return made


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from((3, 11)),
    buckets=st.integers(1, 5),
    level=st.sampled_from(("instance", "outpost")),
    policy=st.sampled_from(("observed", "authentik")),
)
def test_partitions_with_the_capture_s_span_add_up_to_the_single_pass(fleets, seed, buckets, level, policy):
    path = fleets[seed]
    frames = wsreplay.load(path)
    span = capture_span(path)
    # one outpost dies early, silently (no close): its part's own window would end with it
    victim = sorted(frames["outpost_uuid"].dropna().unique())[seed % 3]
    cut = span[0] + (span[1] - span[0]) * 0.6
    frames = frames[~((frames["outpost_uuid"] == victim) & (frames["ts"] > cut))].reset_index(drop=True)
    assert (frames["ts"].min(), frames["ts"].max()) == span
    opts = {"level": level, "policy": policy}
    whole_out = wsreplay.outages(frames, **opts)
    whole_up = wsreplay.uptime(frames, **opts)
    whole_lat = wsreplay.ack_latency(frames)
    whole_hello = wsreplay.hello_intervals(frames)
    outpost_ids = frames["outpost_uuid"].dropna().unique().tolist()
    outs, ups, lats, hellos = [], [], [], []
    for group in bucket_groups(outpost_ids, buckets).values():
        part = frames[frames["outpost_uuid"].isin(group)]
        outs.append(wsreplay.outages(part, span=span, **opts))
        ups.append(wsreplay.uptime(part, span=span, **opts))
        lats.append(wsreplay.ack_latency(part))
        hellos.append(wsreplay.hello_intervals(part))
        # the whole frames again in between: the shared results must follow the frames they are asked about
        assert len(wsreplay.uptime(frames, **opts)) == len(whole_up)
    pd.testing.assert_frame_equal(_cat(outs, ["start", "outpost_uuid"]), _plain(whole_out))
    up_keys = ["outpost_uuid", "instance_uuid"] if level == "instance" else ["outpost_uuid"]
    pd.testing.assert_frame_equal(_cat(ups, up_keys), _plain(whole_up))
    lat_keys = ["sent_ts", "conn_id"]
    pd.testing.assert_frame_equal(_cat(lats, lat_keys), _plain(whole_lat).sort_values(lat_keys, ignore_index=True))
    assert sum(p.attrs["unanswered"] for p in lats) == whole_lat.attrs["unanswered"]
    assert sum(p.attrs["unmatched_acks"] for p in lats) == whole_lat.attrs["unmatched_acks"]
    hello_keys = ["outpost_uuid", "instance_uuid", "ts"]
    pd.testing.assert_frame_equal(_cat(hellos, hello_keys), _plain(whole_hello))
