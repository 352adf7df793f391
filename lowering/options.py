"""Options of the lowering path (form, IREE flags, runtime driver, cache).

Kept in `lowering/` so this subpackage stays independent of the CLI and the
backend; `mlirforge.config` embeds it in the user-facing configuration.
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.fx_import import FORMS
from mlirforge.lowering.runtime import DRIVER_CHOICES

# Measured on the reference machine (docs/lowering.md): data tiling packs
# weights once at module initialisation and cut the MLP probe from 240 to 206 µs.
# Reassociating fp reductions lets IREE vectorise them (PyTorch's own CPU
# reductions reassociate too, and the equivalence tolerances allow it):
# softmax, layer_norm and sum 1.7-1.9x faster, the MLP, CNN and transformer
# examples 6-14% (docs/lowering-choices.md, from `bench/bench_lowering.py`).
DEFAULT_IREE_FLAGS: tuple[str, ...] = ("--iree-opt-data-tiling", "--iree-llvmcpu-reassociate-fp-reductions")


@dataclasses.dataclass(frozen=True)
class LoweringOptions:
    form: str = "linalg"
    """`linalg` (torch-mlir lowers to linalg) or `torch` (IREE's torch input conversion)."""
    driver: str = "auto"
    """IREE HAL driver: `local-sync` (caller's thread), `local-task` (thread pool, all cores), or
    `auto` (each compiled graph times both on its first calls and keeps the faster)."""
    iree_flags: tuple[str, ...] = DEFAULT_IREE_FLAGS
    """Extra iree-compile flags, after the host-CPU target flags."""
    use_cache: bool = True
    """Read and write the on-disk compiled-module cache."""

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ValueError(f"form: expected one of {FORMS}, got {self.form!r}")
        if self.driver not in DRIVER_CHOICES:
            raise ValueError(f"driver: expected one of {DRIVER_CHOICES}, got {self.driver!r}")
        bad = [f for f in self.iree_flags if not f.startswith("--")]
        if bad:
            raise ValueError(f"iree_flags: each flag must start with '--', got {bad}")
