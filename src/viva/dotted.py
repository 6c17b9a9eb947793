"""Import an object from a ``pkg.module:Attr`` path (nested attributes allowed: ``pkg.mod:Outer.Inner``).

The one loader behind every plug-in point that takes a dotted path (reward registry, pair-synthesis components);
each caller turns the two failures below into its own error that names its config field.
"""

from __future__ import annotations

import importlib
from typing import Any


class MissingAttribute(LookupError):
    """The module imported but has no such attribute."""


def import_dotted(target: str) -> Any:
    """The object at ``target`` = ``pkg.module:Attr``.

    Raises ``ValueError`` for a malformed path, ``ImportError`` when the module cannot be imported and
    `MissingAttribute` when an attribute on the way is missing.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'pkg.module:Attr', got {target!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise MissingAttribute(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj
