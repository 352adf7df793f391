"""ATen decompositions that keep eager PyTorch's semantics where torch-mlir's lowering departs from them.

`SEMANTIC_DECOMPOSITIONS` maps an ATen overload to a Python function written
in other ATen ops; `fx_import.aten_decompositions` applies it after
torch-mlir's own table, so an entry here wins.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

SEMANTIC_DECOMPOSITIONS: dict[torch._ops.OperatorBase, Callable] = {}
