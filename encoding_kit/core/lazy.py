"""Lazy public names of a subpackage: each stage's ``__init__`` lists its API and imports a module on first use."""

from __future__ import annotations

import importlib


def lazy_attribute(package, public):
    """A module-level ``__getattr__`` that imports a public name's module of ``package`` when it is first used.

    Importing one module of a stage then does not import all of them (a kernel that loads only
    ``grading.audit`` does not pay for pandas).

    Parameters
    ----------
    package : str
        The subpackage's ``__name__``.
    public : dict {name: module}
        Each public name and the module (relative to ``package``) that defines it.

    Returns
    -------
    callable
        ``__getattr__(name)``; an unknown name raises ``AttributeError``.
    """

    def __getattr__(name):
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{public[name]}", package), name)

    return __getattr__
