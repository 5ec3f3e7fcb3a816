"""neonas: hardware-aware neural architecture search over the NeoCell design space.

`import neonas` registers the NeoNeXt family with timm, so that
`timm.create_model("neonext_tiny")` works after it, whichever of the two is imported first.
It does so without importing torch or timm itself: if timm is already loaded the family is
registered at once, otherwise as soon as timm is imported. That keeps `neonas --help` (and
every module that only parses or reads files) free of torch's start-up, which is seconds
(benchmarks/startup.py); `import neonas.models` registers too, directly.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

__version__ = "0.1.0"


def __getattr__(name: str) -> ModuleType:
    """`neonas.models`, `neonas.ops`, ... after a bare `import neonas`, imported on first use."""
    if not name.startswith("_") and importlib.util.find_spec(f"neonas.{name}") is not None:
        return importlib.import_module(f"neonas.{name}")
    raise AttributeError(f"module 'neonas' has no attribute {name!r}")


# A finder and a loader by protocol (importlib.abc would cost 20 ms of start-up).
class _RegisterWhenTimmLoads:
    """A sys.meta_path finder that finds nothing itself: it wraps timm's own loader."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)  # once; the lookup below must not find this finder again
        spec = importlib.util.find_spec("timm")
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister:
    """timm's loader, followed by the registration of the NeoNeXt family."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        importlib.import_module("neonas.models")  # @register_model runs on import

    def __getattr__(self, name: str) -> Any:  # resource readers etc. of timm's own loader
        if name == "_loader":
            raise AttributeError(name)
        return getattr(self._loader, name)


if "timm" in sys.modules:
    importlib.import_module("neonas.models")
elif not any(isinstance(finder, _RegisterWhenTimmLoads) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenTimmLoads())
