"""LatencyModel: fixed, distributions (seeded), spikes on the mock's timeline."""

from __future__ import annotations

import statistics

import pytest

from wsreplay.exceptions import ConfigurationError
from wsreplay.sim import LatencyModel, Spike


def test_fixed_and_coerce() -> None:
    assert LatencyModel.fixed(0.25).sample(100.0) == 0.25
    assert LatencyModel.coerce(0.1).sample() == 0.1
    assert LatencyModel.coerce(None).sample() == 0.0
    model = LatencyModel.lognormal(0.003)
    assert LatencyModel.coerce(model) is model


def test_spikes_add_only_inside_their_window() -> None:
    model = LatencyModel.fixed(0.01, spikes=[Spike(10.0, 5.0, 2.0), (12.0, 1.0, 1.0)])
    assert model.sample(9.99) == pytest.approx(0.01)
    assert model.sample(10.0) == pytest.approx(2.01)
    assert model.sample(12.5) == pytest.approx(3.01)  # overlapping spikes add up
    assert model.sample(15.0) == pytest.approx(0.01)


def test_distributions_are_reproducible_for_a_seed() -> None:
    def draws(model: LatencyModel) -> list[float]:
        return [model.sample(float(i)) for i in range(200)]

    for make in (
        lambda: LatencyModel.lognormal(0.003, 0.5, seed=7),
        lambda: LatencyModel.uniform(0.001, 0.01, seed=7),
        lambda: LatencyModel.exponential(0.004, seed=7),
        lambda: LatencyModel.empirical([0.0013, 0.003, 0.0106], seed=7),
    ):
        a, b = draws(make()), draws(make())
        assert a == b
        assert all(x >= 0 for x in a)
        assert len(set(a)) > 1


def test_distribution_parameters_shape_the_draws() -> None:
    lognormal = [LatencyModel.lognormal(0.003, 0.5, seed=1).sample() for _ in range(1)]
    model = LatencyModel.lognormal(0.003, 0.5, seed=1)
    big = [model.sample() for _ in range(4000)]
    assert statistics.median(big) == pytest.approx(0.003, rel=0.1)
    assert lognormal[0] == big[0]
    uniform = LatencyModel.uniform(0.002, 0.004, seed=2)
    assert all(0.002 <= uniform.sample() <= 0.004 for _ in range(500))
    empirical = LatencyModel.empirical([0.1, 0.2], seed=3)
    assert {empirical.sample() for _ in range(100)} == {0.1, 0.2}


@pytest.mark.parametrize(
    "make",
    [
        lambda: LatencyModel.fixed(-1.0),
        lambda: LatencyModel.uniform(0.5, 0.1),
        lambda: LatencyModel.lognormal(0.0),
        lambda: LatencyModel.empirical([]),
        lambda: LatencyModel("gamma", 1.0),  # type: ignore[arg-type]
        lambda: LatencyModel.fixed(0.0, spikes=[(1.0, -1.0, 1.0)]),
        lambda: LatencyModel.coerce("fast"),  # type: ignore[arg-type]
    ],
)
def test_bad_parameters_are_configuration_errors(make: object) -> None:
    with pytest.raises(ConfigurationError):
        make()  # type: ignore[operator]


def test_repr_names_the_model() -> None:
    assert "lognormal" in repr(LatencyModel.lognormal(0.003, seed=1, spikes=[(1, 1, 1)]))
