"""Public names imported when first used (PEP 562), so that importing a package stays cheap.

``import wsreplay`` must not pull in pandas and matplotlib for a process that
only records (``wsreplay record``, :class:`~wsreplay.Recorder`): a package
``__init__`` lists where each public name lives and calls :func:`attach`,
which gives it a module ``__getattr__`` (import the module on first access,
then keep the value in the package's namespace) and a ``__dir__``.

No public name is also the name of a sub-module of its package (the naming
rule in the README, checked by ``tests/test_exports.py``), so importing a
sub-module never replaces a public name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(
    package: str, names: Mapping[str, str], modules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Make the public names of *package* load on first access.

    Parameters
    ----------
    package : str
        ``__name__`` of the package's ``__init__``.
    names : mapping
        Public name -> the module that defines it, relative to *package* (``".store"``).
    modules : iterable of str
        Public names that are sub-modules of *package* themselves (``"analysis"``). Other sub-modules are
        imported on first access too, as an eager ``__init__`` made them attributes.

    Returns
    -------
    (__getattr__, __dir__)
        To assign in the package's namespace.

    Examples
    --------
    >>> getattr_, dir_ = attach("wsreplay", {"load": ".store"})
    >>> getattr_("load").__name__
    'load'
    """
    module = sys.modules[package]
    submodules = frozenset(modules)

    def __getattr__(name: str) -> Any:
        if name in submodules:
            value = importlib.import_module(f".{name}", package)
        elif name in names:
            value = getattr(importlib.import_module(names[name], package), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f".{name}", package)  # ``wsreplay.store.load`` after ``import wsreplay``
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(names) | submodules)

    return __getattr__, __dir__
