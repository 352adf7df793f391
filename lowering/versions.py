"""Tool versions that decide what a compiled module or a rewrite depends on.

They go into every cache key and every artifact manifest: a vmfb built by one
IREE is not trusted by another.
"""

from __future__ import annotations

import functools
import importlib.metadata


@functools.cache
def tool_versions() -> dict[str, str]:
    """Versions of mlirforge and the tools it lowers with, by package name."""
    names = ["mlirforge", "torch", "torch-mlir", "iree-base-compiler", "iree-base-runtime"]
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not-installed"
    return out
