"""Load user classes from a SPEC: ``package.module:Class`` or ``path/to/file.py:Class``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from typing import Any, TypeVar, overload

__all__ = ["SpecError", "load_class", "class_spec", "absolute_spec", "module_of"]

#: The ready actors: the repository's ``actors/`` folder, installed as ``membrane_rtc.actors``
#: (no top-level ``actors`` in site-packages to clash with another project's). The short SPEC
#: ``actors.capped:CappedRoom`` names them wherever the server runs.
SHORT_ACTORS = "actors"
INSTALLED_ACTORS = "membrane_rtc.actors"


class SpecError(ValueError):
    """A SPEC that names no loadable class; the message says why, in one line."""


def _split(spec: str) -> tuple[str, str]:
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise SpecError(f"bad class spec {spec!r}: expected 'module:Class' or 'file.py:Class'")
    return where, name


def module_of(where: str) -> str:
    """The module a SPEC's module part names: itself, except ``actors.X`` when there is no
    ``actors.X`` of one's own to import (a source checkout has one): ``membrane_rtc.actors.X``.
    """
    if where != SHORT_ACTORS and not where.startswith(SHORT_ACTORS + "."):
        return where
    try:
        if importlib.util.find_spec(where) is not None:
            return where
    except ImportError:  # find_spec raises when the parent package ('actors') is missing
        pass
    return INSTALLED_ACTORS + where[len(SHORT_ACTORS):]


def absolute_spec(spec: str) -> str:
    """Make a file SPEC absolute, so another process (another cwd) loads the same file."""
    where, name = _split(spec)
    if where.endswith(".py"):
        return f"{os.path.abspath(where)}:{name}"
    return spec


#: Module name -> the modification time of its source when it was loaded. A module whose
#: source changed since is loaded anew (``serve --reload``; and an actor process forked with
#: the old module among its parent's finds the new code too).
_loaded_at: dict[str, int] = {}


def _source_mtime(module: Any) -> int | None:
    path = getattr(module, "__file__", None)
    try:
        return os.stat(path).st_mtime_ns if path else None
    except OSError:
        return None


def _stale(module: Any) -> bool:
    """Its source changed since this process (or the one it was forked from) loaded it."""
    loaded = _loaded_at.get(module.__name__)
    return loaded is not None and _source_mtime(module) not in (None, loaded)


def _loaded(module: Any) -> Any:
    """Note when a module's source was loaded (once: a lookup, not a stat, after that)."""
    if module.__name__ not in _loaded_at:
        _loaded_at[module.__name__] = _source_mtime(module) or 0
    return module


def _load_file(path: str) -> Any:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise SpecError(f"no such file: {path}")
    # One module per file, named after its path, so loading twice gives the same classes
    # (until the file changes).
    module_name = "membrane_rtc_user_" + hashlib.sha1(path.encode()).hexdigest()[:12]
    cached = sys.modules.get(module_name)
    if cached is not None and not _stale(cached):
        return cached
    _loaded_at.pop(module_name, None)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot load {path} as Python source")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise SpecError(f"error while loading {path}: {type(exc).__name__}: {exc}") from exc
    return _loaded(module)


_C = TypeVar("_C")


@overload
def load_class(spec: str | type, base: type[_C]) -> type[_C]: ...
@overload
def load_class(spec: str | type, base: None = None) -> type: ...


def load_class(spec: str | type, base: type | None = None) -> type:
    """Return the class a SPEC names (a class is returned as is), checked against ``base``."""
    if isinstance(spec, type):
        cls = spec
    else:
        where, name = _split(spec)
        if where.endswith(".py"):
            module = _load_file(where)
        else:
            try:
                module = importlib.import_module(module_of(where))
                if _stale(module):
                    module = importlib.reload(module)
                    # Only now: a reload that raised leaves the module stale, so the next
                    # load tries the (fixed) file again instead of keeping what half ran.
                    _loaded_at.pop(module.__name__, None)
                _loaded(module)
            except ImportError as exc:
                raise SpecError(f"cannot import module {where!r}: {exc}") from exc
            except Exception as exc:
                raise SpecError(
                    f"error while importing {where!r}: {type(exc).__name__}: {exc}") from exc
        try:
            cls = getattr(module, name)
        except AttributeError:
            raise SpecError(f"{where!r} has no attribute {name!r}") from None
        if not isinstance(cls, type):
            raise SpecError(f"{spec!r} is not a class")
    if base is not None and not issubclass(cls, base):
        raise SpecError(f"{cls.__module__}.{cls.__qualname__} is not a subclass of "
                        f"{base.__module__}.{base.__qualname__}")
    return cls


def class_spec(cls: str | type) -> str:
    """A SPEC for display: the string itself, or ``module:QualName`` of a class."""
    if isinstance(cls, str):
        return cls
    return f"{cls.__module__}:{cls.__qualname__}"
