"""Shorter start-up: mmcv and mmdet imported without the modules they load eagerly but LCP seldom uses.

Importing mmcv.runner and mmdet.models also imports torchvision (mmcv.runner.checkpoint, only
for `torchvision://` checkpoint names; torchvision's ops import torch._dynamo), scikit-learn
(mmdet's PAA head) and matplotlib.pyplot (mmdet's drawing): about a third of the start-up of
a short `lcp test` or `lcp train` job, paid by each of the demo's 30 jobs and by the tests'
subprocesses.

`import_mmdet()` imports mmcv.runner, mmdet.models and mmdet.datasets while a placeholder
stands in sys.modules for each of those modules. The placeholders leave sys.modules when the
import is done, so any later `import torchvision` is the real one; the mmcv/mmdet modules that
imported them keep a placeholder that loads the real module on the first attribute asked of
it and from then on answers from it. While the import runs, a placeholder answers
AttributeError for private names (`_x`, `__x__`) other than the ones a module really has
before it runs, because mmcv and torch scan every module in sys.modules for such attributes;
their scans then see a module without them, which is what they look for.
A module that is not installed gets no placeholder, so `try: import x except ImportError`
keeps working.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
import types
from contextlib import contextmanager

DEFERRED = ("torchvision", "sklearn.mixture", "matplotlib.pyplot")

_lock = threading.RLock()
_importing = False


class DeferredModule(types.ModuleType):
    """Stands in for a module until an attribute is asked of it; then imports and delegates to it."""

    def __getattr__(self, attr: str):
        if _importing and attr.startswith("_") and attr != "__path__":
            raise AttributeError(attr)
        return getattr(self._lcp_load(), attr)

    def _lcp_load(self) -> types.ModuleType:
        with _lock:
            real = self.__dict__.get("_lcp_real")
            if real is None:
                name = self.__name__
                top = name.partition(".")[0]
                for key in [
                    key
                    for key, module in sys.modules.items()
                    if isinstance(module, DeferredModule) and (key == top or key.startswith(top + "."))
                ]:
                    del sys.modules[key]
                real = importlib.import_module(name)
                self.__dict__["_lcp_real"] = real
            return real

    def __dir__(self):
        return dir(self._lcp_load())

    def __repr__(self) -> str:
        state = "loaded" if "_lcp_real" in self.__dict__ else "deferred"
        return f"<module {self.__name__!r} ({state} by lcp.deferred_imports)>"


def _spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """The module's spec, found without executing it or any of its parent packages."""
    parent, _, _ = name.rpartition(".")
    if not parent:
        return importlib.util.find_spec(name)
    parent_spec = sys.modules[parent].__spec__ if parent in sys.modules else _spec(parent)
    if parent_spec is None or parent_spec.submodule_search_locations is None:
        return None
    return importlib.machinery.PathFinder.find_spec(name, list(parent_spec.submodule_search_locations))


def _placeholder(name: str, spec: importlib.machinery.ModuleSpec) -> DeferredModule:
    module = DeferredModule(name)
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__package__ = spec.parent if spec.submodule_search_locations is None else name
    if spec.has_location:
        module.__file__ = spec.origin  # inspect.getmodule() reads every module's __file__
    return module


def _placeholders(names: tuple[str, ...]) -> dict[str, DeferredModule]:
    """Placeholders for the named modules not imported yet, and for their parents not imported yet."""
    added: dict[str, DeferredModule] = {}
    for name in names:
        parts = name.split(".")
        chain = [".".join(parts[: i + 1]) for i in range(len(parts))]
        missing = [part for part in chain if part not in sys.modules and part not in added]
        specs = {part: _spec(part) for part in missing}
        if not missing or any(spec is None for spec in specs.values()):
            continue  # already imported, or not installed
        for part, spec in specs.items():
            added[part] = _placeholder(part, spec)
    return added


@contextmanager
def deferred(names: tuple[str, ...] = DEFERRED):
    """Within the block, importing a named module gives its placeholder (see the module doc)."""
    global _importing
    with _lock:
        added = _placeholders(names)
        for name, module in added.items():
            sys.modules[name] = module
            parent, _, child = name.rpartition(".")
            if parent in added:
                # `import a.b as c` reads b from a: hand out b's placeholder without loading a
                added[parent].__dict__[child] = module
        _importing = True
        try:
            yield list(added)
        finally:
            _importing = False
            for name, module in added.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]


def import_mmdet() -> None:
    """Import mmcv.runner, mmdet.models and mmdet.datasets with DEFERRED deferred (a no-op once imported)."""
    if "mmdet.datasets" in sys.modules:
        return
    with deferred():
        import mmcv.runner  # noqa: F401
        import mmdet.datasets
        import mmdet.models  # noqa: F401
