"""Decompositions of PyTorch's fused inference fast paths, which torch-mlir cannot lower.

`FUSED_OP_DECOMPOSITIONS` maps an ATen overload to a Python function written
in other ATen ops; `fx_import.aten_decompositions` applies it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

FUSED_OP_DECOMPOSITIONS: dict[torch._ops.OperatorBase, Callable] = {}
