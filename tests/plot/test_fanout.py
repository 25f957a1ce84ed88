"""plot_trigger_fanout: delivered pushes as dots, connections that missed one as crosses."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from analysis_support import Capture

import wsreplay
from wsreplay.exceptions import ConfigurationError

PK = "11111111-1111-4111-8111-111111111111"


def _capture():
    cap = Capture()
    a = cap.outpost(PK, "aaaaaaaa-0000-4000-8000-000000000001").open(0).hellos(0.1, 30)
    b = cap.outpost(PK, "bbbbbbbb-0000-4000-8000-000000000002").open(0).hellos(0.2, 30)
    a.trigger(10.0)
    b.trigger(10.05)
    a.trigger(20.0)  # b misses this push
    a.close(30.0)
    b.close(30.0)
    return cap.frames()


def test_delivered_and_missed_connections():
    frames = _capture()
    ax = wsreplay.plot_trigger_fanout(frames)
    fan = wsreplay.trigger_fanout(frames)
    delivered, missed = ax.collections
    assert len(delivered.get_offsets()) == fan["delay_s"].notna().sum() == 3
    assert len(missed.get_offsets()) == fan["delay_s"].isna().sum() == 1
    np.testing.assert_allclose(sorted(delivered.get_offsets()[:, 1]), sorted(fan["delay_s"].dropna().to_numpy() * 1e3))
    assert "2 pushes, 3 deliveries, 1 missed" in ax.get_title(loc="left")


def test_accepts_the_analysis_result_and_handles_none(frames):
    fan = wsreplay.trigger_fanout(_capture())
    assert len(wsreplay.plot_trigger_fanout(fan).collections) == 2
    ax = wsreplay.plot_trigger_fanout(frames, ax=plt.figure().gca())  # the simulated fleet pushes no configuration
    assert "no TRIGGER_UPDATE" in ax.texts[0].get_text()
    with pytest.raises(ConfigurationError):
        wsreplay.plot_trigger_fanout(fan.drop(columns="delay_s"))
