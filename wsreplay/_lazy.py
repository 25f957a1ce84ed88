"""Public names imported when first used (PEP 562), so that importing a package stays cheap.

``import wsreplay`` must not pull in pandas and matplotlib for a process that
only records (``wsreplay record``, :class:`~wsreplay.Recorder`): a package
``__init__`` lists where each public name lives and calls :func:`attach`,
which gives it a module ``__getattr__`` (import the module on first access,
then keep the value in the package's namespace) and a ``__dir__``.

Some public functions share their name with a sub-module of the same package
(``wsreplay.replay``, ``wsreplay.report``, ``wsreplay.record.probe``). When
such a sub-module is imported, the import system sets the package attribute
to the module; :func:`attach` keeps the public function in that place, as an
eager ``from .x import x`` in the ``__init__`` did.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["attach"]


class _LazyPackage(types.ModuleType):
    """A package whose public names that shadow sub-modules are not replaced by those modules."""

    _lazy_shadowed: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._lazy_shadowed and isinstance(value, types.ModuleType):
            return  # the import system binding a sub-module: the public function keeps the name
        super().__setattr__(name, value)


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
    if not isinstance(module, _LazyPackage):
        module.__class__ = _LazyPackage
    # a public name bound to a module by the import system is a sub-module shadowing it
    module._lazy_shadowed = module._lazy_shadowed | frozenset(names)  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        if name in submodules:
            value = importlib.import_module(f".{name}", package)
        elif name in names:
            value = getattr(importlib.import_module(names[name], package), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f".{name}", package)  # ``wsreplay.store.load`` after ``import wsreplay``
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        types.ModuleType.__setattr__(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(names) | submodules)

    return __getattr__, __dir__
