"""How long the simulated authentik takes to answer a frame: fixed, drawn from a distribution, with spikes.

Pure values and arithmetic: no clock is read here. The mock asks
:meth:`LatencyModel.sample` for a delay, passing the seconds since it started,
so spikes are placed on the mock's own timeline.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..exceptions import ConfigurationError

__all__ = ["LatencyModel", "Spike"]

Distribution = Literal["fixed", "lognormal", "uniform", "exponential", "empirical"]


@dataclass(frozen=True)
class Spike:
    """Extra latency during a window of the mock's timeline.

    Parameters
    ----------
    at : float
        Start of the window, seconds after the mock started.
    duration : float
        Length of the window, seconds.
    extra : float
        Seconds added to every latency drawn inside the window.
    """

    at: float
    duration: float
    extra: float

    def __post_init__(self) -> None:
        if self.duration < 0 or self.extra < 0:
            raise ConfigurationError(f"spike duration and extra must be >= 0, got {self.duration}, {self.extra}")

    def covers(self, t: float) -> bool:
        """Whether time *t* (seconds since start) falls inside this spike."""
        return self.at <= t < self.at + self.duration


class LatencyModel:
    """The delay between a frame reaching the mock and its ACK.

    Build one with a class method (:meth:`fixed`, :meth:`lognormal`,
    :meth:`uniform`, :meth:`exponential`, :meth:`empirical`); every kind takes
    ``spikes`` (windows of extra delay). Draws are reproducible for a given
    ``seed``.

    Parameters
    ----------
    distribution : {"fixed", "lognormal", "uniform", "exponential", "empirical"}
        Kind of draw.
    a, b : float
        Parameters of the draw: fixed ``a``; lognormal median ``a`` and sigma
        ``b``; uniform ``[a, b]``; exponential mean ``a``.
    samples : sequence of float, optional
        Observed delays to resample from (``empirical``).
    seed : int, optional
        Seed of the model's own random generator.
    spikes : iterable of Spike or (at, duration, extra), optional
        Windows where ``extra`` seconds are added.

    Examples
    --------
    >>> LatencyModel.fixed(0.01).sample(5.0)
    0.01
    >>> m = LatencyModel.fixed(0.0, spikes=[(10.0, 5.0, 2.0)])
    >>> m.sample(9.0), m.sample(12.0)
    (0.0, 2.0)
    >>> 0 < LatencyModel.lognormal(0.003, seed=1).sample(0.0) < 1
    True
    """

    def __init__(
        self,
        distribution: Distribution = "fixed",
        a: float = 0.0,
        b: float = 0.0,
        *,
        samples: Sequence[float] | None = None,
        seed: int | None = None,
        spikes: Iterable[Spike | tuple[float, float, float]] = (),
    ) -> None:
        if distribution not in ("fixed", "lognormal", "uniform", "exponential", "empirical"):
            raise ConfigurationError(f"unknown latency distribution {distribution!r}")
        if not (math.isfinite(a) and math.isfinite(b)) or a < 0 or b < 0:
            raise ConfigurationError(f"latency parameters must be finite and >= 0, got {a}, {b}")
        if distribution == "uniform" and b < a:
            raise ConfigurationError(f"uniform latency needs low <= high, got {a}, {b}")
        if distribution == "lognormal" and a <= 0:
            raise ConfigurationError("lognormal latency needs a median > 0")
        self.samples: tuple[float, ...] = tuple(float(s) for s in samples or ())
        if distribution == "empirical" and not self.samples:
            raise ConfigurationError("empirical latency needs at least one sample")
        if any(s < 0 or not math.isfinite(s) for s in self.samples):
            raise ConfigurationError("latency samples must be finite and >= 0")
        self.distribution: Distribution = distribution
        self.a = float(a)
        self.b = float(b)
        self.seed = seed
        self.spikes: tuple[Spike, ...] = tuple(s if isinstance(s, Spike) else Spike(*s) for s in spikes)
        self._rng = random.Random(seed)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def fixed(cls, seconds: float, *, spikes: Iterable[Spike | tuple[float, float, float]] = ()) -> LatencyModel:
        """Always *seconds* (plus spikes)."""
        return cls("fixed", seconds, spikes=spikes)

    @classmethod
    def lognormal(
        cls,
        median: float,
        sigma: float = 0.5,
        *,
        seed: int | None = None,
        spikes: Iterable[Spike | tuple[float, float, float]] = (),
    ) -> LatencyModel:
        """Log-normal delays with the given *median* (seconds) and shape *sigma*."""
        return cls("lognormal", median, sigma, seed=seed, spikes=spikes)

    @classmethod
    def uniform(
        cls,
        low: float,
        high: float,
        *,
        seed: int | None = None,
        spikes: Iterable[Spike | tuple[float, float, float]] = (),
    ) -> LatencyModel:
        """Delays uniform in ``[low, high]`` seconds."""
        return cls("uniform", low, high, seed=seed, spikes=spikes)

    @classmethod
    def exponential(
        cls,
        mean: float,
        *,
        seed: int | None = None,
        spikes: Iterable[Spike | tuple[float, float, float]] = (),
    ) -> LatencyModel:
        """Exponential delays with the given *mean* (seconds)."""
        return cls("exponential", mean, seed=seed, spikes=spikes)

    @classmethod
    def empirical(
        cls,
        samples: Sequence[float],
        *,
        seed: int | None = None,
        spikes: Iterable[Spike | tuple[float, float, float]] = (),
    ) -> LatencyModel:
        """Delays drawn (with replacement) from observed *samples* (seconds)."""
        return cls("empirical", samples=samples, seed=seed, spikes=spikes)

    @classmethod
    def coerce(cls, value: float | LatencyModel | None) -> LatencyModel:
        """A model from a number of seconds (``None`` is 0), or the model itself."""
        if isinstance(value, LatencyModel):
            return value
        if value is None:
            return cls.fixed(0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError(f"ack_latency must be seconds or a LatencyModel, got {type(value).__name__}")
        return cls.fixed(float(value))

    # ------------------------------------------------------------------ drawing

    def base(self) -> float:
        """One draw of the distribution, without spikes."""
        d = self.distribution
        if d == "fixed":
            return self.a
        if d == "lognormal":
            return self._rng.lognormvariate(math.log(self.a), self.b)
        if d == "uniform":
            return self._rng.uniform(self.a, self.b)
        if d == "exponential":
            return self._rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        return self._rng.choice(self.samples)

    def extra(self, t: float) -> float:
        """Seconds the spikes add at time *t* (seconds since the mock started)."""
        return sum(s.extra for s in self.spikes if s.covers(t))

    def sample(self, t: float = 0.0) -> float:
        """The delay of a frame that arrived *t* seconds after the mock started."""
        return self.base() + self.extra(t)

    def __repr__(self) -> str:
        parts = [repr(self.distribution)]
        if self.distribution == "empirical":
            parts.append(f"samples={len(self.samples)}")
        else:
            parts.append(f"a={self.a:g}, b={self.b:g}")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        if self.spikes:
            parts.append(f"spikes={len(self.spikes)}")
        return f"LatencyModel({', '.join(parts)})"
