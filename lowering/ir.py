"""The one place IREE's MLIR Python bindings are imported.

Everything else in mlirforge imports `ir`, `passmanager` and friends from here,
so that a change of binding package touches one file. torch-mlir ships its own
copy of the bindings; that copy is used only inside `lowering.fx_import`, and
modules cross between the two copies as text.
"""

from iree.compiler import ir, passmanager  # noqa: F401  (re-exported)
from iree.compiler.dialects import arith, func, linalg, tensor  # noqa: F401  (re-exported: op builders)

__all__ = ["ir", "passmanager", "arith", "func", "linalg", "tensor", "new_context", "parse_module"]


def new_context() -> "ir.Context":
    """A context with every IREE dialect registered (util, stream, linalg, ...)."""
    return ir.Context()


def parse_module(text: str, context: "ir.Context | None" = None, source_name: str = "<input>"):
    """Parse MLIR text; raises `ir.MLIRError` with located diagnostics on failure."""
    ctx = context or new_context()
    with ctx:
        return ir.Module.parse(text)
