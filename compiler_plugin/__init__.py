"""mlirforge: a compiler for PyTorch models on MLIR and IREE.

Doors:
  torch.compile(model, backend="mlirforge")   (registered by entry point)
  mlirforge.compile_model(model, inputs, "out/") / mlirforge.load("out/")
  mlirforge.optimize(model, inputs, "out/")  (the search; `optimize_model` in mlirforge.api)
  the `mlirforge` driver (mlirforge.cli)

Imports are lazy so that `import mlirforge` (done by dynamo when it resolves
the backend) stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["compile_model", "compile_model_file", "compile_mlir_file", "optimize", "load", "stats", "backend"]


def __getattr__(name: str):
    if name in ("compile_model", "compile_model_file", "compile_mlir_file"):
        from mlirforge import api

        return getattr(api, name)
    if name == "optimize":
        from mlirforge import api

        return api.optimize_model
    if name == "load":
        from mlirforge.artifact import load

        return load
    if name == "stats":
        from mlirforge.backend import stats

        return stats
    if name == "backend":
        from mlirforge.backend import mlirforge_backend

        return mlirforge_backend
    raise AttributeError(f"module 'mlirforge' has no attribute {name!r}")
