"""Engine dispatch: the public analysis functions also accept a Dask DataFrame.

Each public analysis function carries ``@accepts_dask("name")``. Called with a
pandas DataFrame it runs as written; called with a Dask DataFrame (from
:func:`wsreplay.dask.load`) it hands over to :mod:`wsreplay.daskengine`, which
runs the same pandas function on every partition (a bucket of outposts) on
the current Dask scheduler, judged over the whole capture's window, and
combines the partial results into exactly the pandas result.

Dask is imported only when a Dask object is passed: ``import wsreplay`` and
the recorder never import it, and this module imports nothing beyond the
standard library.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["accepts_dask", "is_dask_frame"]

F = TypeVar("F", bound=Callable[..., Any])


def is_dask_frame(obj: object) -> bool:
    """True if *obj* is a Dask DataFrame (checked without importing Dask).

    Examples
    --------
    >>> import pandas as pd
    >>> is_dask_frame(pd.DataFrame())
    False
    """
    if "dask" not in sys.modules:  # no Dask object can exist before Dask was imported
        return False
    module = type(obj).__module__ or ""
    return module.split(".", 1)[0] in ("dask", "dask_expr") and hasattr(obj, "to_delayed")


def accepts_dask(name: str) -> Callable[[F], F]:
    """Let the analysis function *name* take a Dask DataFrame as its first argument.

    Parameters
    ----------
    name : str
        The public name of the function (a key of
        :data:`wsreplay.daskengine.dispatch.STRATEGIES`), which says how the
        partial results of the partitions are combined.

    Returns
    -------
    callable
        A decorator; the decorated function is unchanged for pandas input.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(data: Any, /, *args: Any, **kwargs: Any) -> Any:
            if is_dask_frame(data):
                from ..daskengine.dispatch import run

                return run(name, wrapper, data, *args, **kwargs)
            return fn(data, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
