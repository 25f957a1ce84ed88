"""wsreplay.dask on a real distributed.LocalCluster (2 worker processes) against one pandas pass.

The fleet is simulated in virtual time with every fault kind (two recording
runs in one directory, small segments, browsers for notices), read whole with
``wsreplay.load`` and as a Dask DataFrame of outpost buckets. Every analysis
function must give the pandas result. Two things a partition cannot know are
normalised on the pandas side, and only where they show: the order of the
categories of id columns (the capture-wide dictionary order; Dask results
list them sorted), and the order of rows whose sort keys tie across outposts
(``ack_latency``: frames of two outposts seen in the same nanosecond; Dask
orders them by outpost). Everything else is compared exactly.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from analysis_support import Capture

import wsreplay
from wsreplay.sim import Fault, Scenario, simulate_virtual
from wsreplay.sim.scenario import FAULT_KINDS
from wsreplay.store.buckets import bucket_of
from wsreplay.store.compaction import compact
from wsreplay.store.layout import bucket_files
from wsreplay.store.span import span_ns

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

import wsreplay.dask as wdask  # noqa: E402
from wsreplay.daskengine.partitions import FileInfo, Source, bucket_count, plan, read_cost  # noqa: E402
from wsreplay.exceptions import CaptureFormatError, CaptureNotFoundError, ConfigurationError  # noqa: E402
from wsreplay.reporting.analyse import analyse_capture  # noqa: E402
from wsreplay.reporting.dask_analyse import analyse_dask  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # Port 8787 (distributed's default HTTP port, used even with dashboard_address=None) is held busy
    # while the cluster starts, as another cluster or test run on the machine would: the warning that
    # distributed then gives failed every test of this module when two runs overlapped. ":0" asks for
    # any free port.
    busy = socket.socket()
    try:
        busy.bind(("127.0.0.1", 8787))
        busy.listen()
    except OSError:
        pass  # already in use: the same situation
    # worker processes import pandas and wsreplay before they answer: slow on a loaded machine
    with (
        busy,
        dask.config.set(
            {"distributed.comm.timeouts.connect": "120s", "distributed.deploy.lost-worker-timeout": "120s"}
        ),
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0", memory_limit="2GiB"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _scenario(seed: int, outposts: int) -> Scenario:
    sc = Scenario.generate(
        outposts=outposts,
        duration=90.0,
        interval=0.2,
        seed=seed,
        faults=True,
        browsers=2,
        fault_every=12.0,
        replica_share=0.3,
    )
    return replace(sc, faults=[*sc.faults, Fault("clock_step", None, 40.0, 0.0, delay=0.7)])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> tuple[Path, list[Scenario]]:
    """Two recording runs of two fleets in one capture directory, in segments of 1,500 rows."""
    path = tmp_path_factory.mktemp("fleet")
    scenarios = [_scenario(11, 9), _scenario(12, 5)]
    for k, sc in enumerate(scenarios):
        part = tmp_path_factory.mktemp(f"run{k}")
        simulate_virtual(sc, out=part, save_truth=False, segment_rows=1500)
        for f in part.glob("*.parquet"):
            f.rename(path / f.name)
    return path, scenarios


@pytest.fixture(scope="module")
def frames(fleet):
    return wsreplay.load(fleet[0])


@pytest.fixture(scope="module")
def lazy(fleet, client):
    """The fleet as a Dask DataFrame of three buckets (plus the rows without an outpost), read on demand."""
    return wdask.load(fleet[0], npartitions=3)


@pytest.fixture(scope="module")
def dframes(lazy):
    """The same, held in the workers' memory, so each comparison does not read the files again."""
    return lazy.persist()


def test_the_fleet_has_every_fault_kind(fleet, frames):
    kinds = {f.kind for sc in fleet[1] for f in sc.faults}
    assert kinds == set(FAULT_KINDS)
    assert frames["outpost_uuid"].nunique() == 14 and (frames["endpoint"] == "client").any()


def _sorted_categories(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype) and c != "cause":
            out[c] = out[c].cat.reorder_categories(sorted(out[c].cat.categories))
    out.attrs = df.attrs
    return out


def _by(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    cols = pd.DataFrame(
        {k: df[k].astype("str") if isinstance(df[k].dtype, pd.CategoricalDtype) else df[k] for k in keys}
    )
    out = df.take(cols.reset_index(drop=True).sort_values(keys, kind="stable").index).reset_index(drop=True)
    out.attrs = df.attrs
    return out


EXACT = [
    ("outages", {}),
    ("outages", {"level": "outpost"}),
    ("outages", {"level": "outpost", "policy": "authentik", "factor": 2.0}),
    ("uptime", {}),
    ("uptime", {"level": "outpost", "interval": 0.2}),
    ("fleet", {}),
    ("fleet", {"level": "outpost"}),
    ("restarts", {}),
    ("upgrades", {}),
    ("trigger_fanout", {}),
    ("latency_percentiles", {"by": None, "freq": "10s"}),
    ("latency_percentiles", {"by": None}),
    ("notice_frequency", {}),
    ("notice_frequency", {"freq": "10s", "by": "message_type"}),
    ("top_messages", {}),
    ("parse_errors", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), EXACT, ids=[f"{n}-{k}" for n, k in EXACT])
def test_same_result_as_pandas(frames, dframes, name, kwargs):
    fn = getattr(wsreplay, name)
    expected = fn(frames, **kwargs)
    got = fn(dframes, **kwargs)
    assert isinstance(got, pd.DataFrame)
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs == expected.attrs


def test_results_are_not_empty(frames):
    # the comparisons above compare something: every fault shows
    assert len(wsreplay.outages(frames)) > 10 and len(wsreplay.restarts(frames)) > 0
    assert len(wsreplay.upgrades(frames)) > 0 and len(wsreplay.notice_frequency(frames)) > 0


def test_hello_intervals_same_rows_categories_sorted(frames, dframes):
    expected = _sorted_categories(wsreplay.hello_intervals(frames))
    pd.testing.assert_frame_equal(wsreplay.hello_intervals(dframes), expected)


@pytest.mark.parametrize("pairing", ["next", "fifo"])
def test_ack_latency_same_rows_ties_by_outpost(frames, dframes, pairing):
    expected = _by(_sorted_categories(wsreplay.ack_latency(frames, pairing=pairing)), ["sent_ts", "outpost_uuid"])
    got = wsreplay.ack_latency(dframes, pairing=pairing)
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs == expected.attrs and got.attrs["unmatched_acks"] > 0  # ack_dup


@pytest.mark.parametrize("kwargs", [{}, {"by": ["outpost_uuid", "instruction_name"], "freq": "30s"}])
def test_latency_percentiles_per_outpost(frames, dframes, kwargs):
    keys = ["outpost_uuid", "instruction_name", "time"] if kwargs else ["outpost_uuid"]
    expected = _by(_sorted_categories(wsreplay.latency_percentiles(frames, **kwargs)), keys)
    pd.testing.assert_frame_equal(wsreplay.latency_percentiles(dframes, **kwargs), expected)


def test_partitions_are_buckets_read_like_load(fleet, lazy):
    path = fleet[0]
    parts = plan(Source.of(path), 3, 1)
    assert [p.bucket for p in parts] == [0, 1, 2, -1]
    assert lazy.npartitions == 4 and lazy._meta.attrs["wsreplay_span"] == span_ns(path)
    for part, delayed in zip(parts, lazy.to_delayed(), strict=True):
        got = delayed.compute()
        if part.bucket < 0:
            whole = wsreplay.load(path)
            expected = whole[whole["outpost_uuid"].isna()].reset_index(drop=True)
        else:
            expected = wsreplay.load(path, outpost=list(part.outposts))
        # a partition reads only the files of its outposts: its categories may lack values of other files
        pd.testing.assert_frame_equal(got, expected, check_categorical=False)
        assert list(got.dtypes) == list(expected.dtypes)


@pytest.fixture(scope="module")
def compacted(fleet, tmp_path_factory):
    """The fleet compacted into 4 buckets, then the second run's segments added (sealed after the compaction)."""
    src = fleet[0]
    first = tmp_path_factory.mktemp("first")
    later = sorted(src.glob("*.parquet"))
    runs = sorted({f.name.rsplit("-", 1)[0] for f in later})
    for f in later:
        if f.name.startswith(runs[0]):
            (first / f.name).write_bytes(f.read_bytes())
    out = tmp_path_factory.mktemp("compacted") / "cap"
    compact(first, out=out, buckets=4)
    for f in later:
        if not f.name.startswith(runs[0]):
            (out / f.name).write_bytes(f.read_bytes())
    return out


def test_a_compacted_capture_has_one_partition_per_bucket(compacted, frames, client):
    n, files = bucket_files(compacted)
    parts = plan(Source.of(compacted), None, 1)
    got = [p.bucket for p in parts]
    assert n == 4 and got == [*sorted(b for b in got if b >= 0), -1] and set(files) <= set(got)
    for p in parts:  # its bucket's own files whole, the segments sealed since filtered to its outposts
        own = {str(f) for f in files.get(p.bucket, [])}
        assert {f for f, keep in p.files if keep is None} <= own | {f for f, _ in p.files if p.bucket < 0}
        assert own <= {f for f, _ in p.files}
    d = wdask.load(compacted, npartitions=99)  # the layout's buckets win
    assert d.npartitions == len(parts)
    for name in ("outages", "uptime", "fleet", "restarts", "notice_frequency"):
        pd.testing.assert_frame_equal(getattr(wsreplay, name)(d), getattr(wsreplay, name)(frames), obj=name)


def test_a_file_url_reads_through_fsspec_the_same(fleet, frames, client):
    remote = wdask.load(fleet[0].as_uri(), npartitions=2)
    assert remote._meta.attrs == wdask.load(fleet[0], npartitions=2)._meta.attrs
    for name in ("outages", "uptime", "fleet"):
        pd.testing.assert_frame_equal(getattr(wsreplay, name)(remote), getattr(wsreplay, name)(frames))


def test_filters_and_columns_at_load(fleet, client):
    path = fleet[0]
    cols = wsreplay.analysis.columns_for("outages")
    t0 = wsreplay.load(path, columns=["ts"])["ts"].min() + pd.Timedelta(seconds=20)
    kw = {"start": t0, "endpoint": "outpost"}
    d = wdask.load(path, columns=cols, npartitions=2, **kw)
    assert list(d.columns) == cols and "wsreplay_span" not in d._meta.attrs  # the window: min/max of the rows
    expected = wsreplay.outages(wsreplay.load(path, columns=cols, **kw), level="outpost")
    pd.testing.assert_frame_equal(wsreplay.outages(d, level="outpost"), expected)


def test_an_outpost_that_died_early_alone_in_its_partition(tmp_path, client):
    # the forensics issue: an outpost that goes silent at 100 s, alone in its partition, is down
    # from then to the capture's end; judged over its partition's own window it would look fine
    cap = Capture()
    for i in range(12):
        c = cap.outpost(f"pk{i:02d}", f"inst{i:02d}").open(0)
        c.hellos(0, 100 if i < 4 else 600)
    path = wsreplay.save(cap.frames(), tmp_path / "cap")
    frames = wsreplay.load(path)
    d = wdask.load(path, npartitions=64)
    parts = plan(Source.of(path), 64, 1)
    alone = [p.outposts for p in parts if len(p.outposts) == 1 and p.outposts[0] < "pk04"]
    assert alone, "no early-dying outpost alone in a bucket: pick another npartitions"
    expected = wsreplay.outages(frames, level="outpost")
    assert len(expected) == 4
    pd.testing.assert_frame_equal(wsreplay.outages(d, level="outpost"), expected)
    pd.testing.assert_frame_equal(wsreplay.uptime(d), wsreplay.uptime(frames))
    # without the capture's window the lone outpost's partition sees no outage
    own = wsreplay.outages(wsreplay.load(path, outpost=list(alone[0])), level="outpost")
    assert own.empty


def test_trigger_fanout_across_partitions(tmp_path, client):
    # the simulator pushes no TRIGGER_UPDATE: a literal capture with replicas, a missed push and a late one
    cap = Capture()
    for i in range(9):
        conns = [cap.outpost(f"pk{i}", f"inst{i}-{r}").open(0.5 * r) for r in range(2)]
        for c in conns:
            c.hellos(1, 60)
        for k, t in enumerate((10.0, 20.0 + i, 40.0)):
            conns[0].trigger(t)
            if (i + k) % 3:
                conns[1].trigger(t + 0.01 * i)
    path = wsreplay.save(cap.frames(), tmp_path / "cap")
    expected = wsreplay.trigger_fanout(wsreplay.load(path))
    assert len(expected) == 54 and expected["ts"].isna().sum() == 9
    pd.testing.assert_frame_equal(wsreplay.trigger_fanout(wdask.load(path, npartitions=4)), expected)


def test_an_explicit_span_wins(frames, dframes):
    span = (frames["ts"].min(), frames["ts"].max() + pd.Timedelta(seconds=30))
    expected = wsreplay.uptime(frames, span=span)
    pd.testing.assert_frame_equal(wsreplay.uptime(dframes, span=span), expected)


def test_import_wsreplay_does_not_import_dask():
    code = (
        "import sys, wsreplay, wsreplay.analysis, wsreplay.analysis._engine\n"
        "wsreplay.outages, wsreplay.uptime\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')], 'dask imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _step(_name):
    return contextlib.nullcontext()


REPORT_OPTS = {"policy": "observed", "factor": 1.5, "interval": None, "start": None, "end": None}


def test_report_parts_on_dask_equal_the_pandas_report(fleet, client):
    path = fleet[0]
    whole = analyse_capture(path, REPORT_OPTS, hello_limit=10**9, chunk_rows=10**9, step=_step)
    got = analyse_dask(path, REPORT_OPTS, step=_step)
    assert got.chunks == wdask.load(path).npartitions and got.summary == whole.summary
    assert got.instance_outages == whole.instance_outages
    for name in ("outages", "uptime", "fleet", "restarts", "overall", "over_time", "notices", "top_notices", "fanout"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(whole, name), obj=name)
    keys = ["outpost_uuid"]
    pd.testing.assert_frame_equal(got.per_outpost, _by(_sorted_categories(whole.per_outpost), keys))


def test_report_with_engine_dask(fleet, client, tmp_path):
    rep = wsreplay.report(fleet[0], engine="dask")
    plain = wsreplay.report(fleet[0])
    assert rep.outages == plain.outages and rep.outposts == plain.outposts == 14
    assert rep.chunks > 1 and "<html" in rep.html.lower()
    assert rep.save(tmp_path / "r.html").stat().st_size > 10_000
    with pytest.raises(ConfigurationError):
        wsreplay.report(wsreplay.load(fleet[0]), engine="dask")


def test_bad_arguments_get_one_clear_error(fleet, tmp_path):
    with pytest.raises(ConfigurationError, match="unknown capture column"):
        wdask.load(fleet[0], columns=["ts", "nope"])
    with pytest.raises(ConfigurationError, match="npartitions"):
        wdask.load(fleet[0], npartitions=0)
    with pytest.raises(CaptureFormatError, match="storage_options"):
        wdask.load(fleet[0], storage_options={"anon": True})
    with pytest.raises(CaptureNotFoundError):
        wdask.load(tmp_path / "missing")


def test_the_default_bucket_count_reads_each_segment_once_when_it_can():
    pks = [f"outpost-{i:04d}" for i in range(1000)]
    split: dict[int, list[str]] = {}
    for pk, b in zip(pks, bucket_of(pks, 128).tolist(), strict=True):
        split.setdefault(b, []).append(pk)
    # segments that each hold one bucket of a 128-way split (compacted, or one recorder per bucket)
    aligned = [FileInfo(f"b{b}", 20_000 * len(v), tuple(v), 0) for b, v in split.items()]
    # segments that each hold every outpost (one recorder, as recorded)
    mixed = [FileInfo(f"f{k}", 1_700_000, tuple(pks), 0) for k in range(10)]
    assert bucket_count(mixed, 4_000_000) == 5  # the fewest partitions under 4 M rows: each scans everything
    assert bucket_count(aligned, 4_000_000) == 8  # not 5: 8 divides 128, so each segment is read once
    assert read_cost(aligned, 8) == sum(i.rows for i in aligned) < read_cost(aligned, 5)
    assert bucket_count(aligned, 100_000) == 256
