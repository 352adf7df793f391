"""mlirforge's MLIR passes, on the MLIR Python bindings that ship with IREE.

`get_all_passes()` maps each pass name to a factory that imports its module
only when called, so listing passes stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

# name -> (module, class); one pass per file, file named after the pass.
_PASSES: dict[str, tuple[str, str]] = {
    "mlirforge-outline-kernels": ("outline_kernels", "OutlineKernelsPass"),
    "mlirforge-inline-kernels": ("inline_kernels", "InlineKernelsPass"),
    "mlirforge-substitute-kernels": ("substitute_kernels", "SubstituteKernelsPass"),
    "mlirforge-annotate-tiling": ("annotate_tiling", "AnnotateTilingPass"),
    "mlirforge-fold-transpose-into-matmul": ("fold_transpose_into_matmul", "FoldTransposeIntoMatmulPass"),
    "mlirforge-conv-to-channels-last": ("conv_to_channels_last", "ConvToChannelsLastPass"),
    "mlirforge-generalize-named-ops": ("generalize_named_ops", "GeneralizeNamedOpsPass"),
    "mlirforge-tile-reductions": ("tile_reductions", "TileReductionsPass"),
}


def _factory(module: str, cls: str) -> Callable[[], type]:
    def load() -> type:
        return getattr(importlib.import_module(f"mlirforge.passes.{module}"), cls)

    return load


def get_all_passes() -> dict[str, Callable[[], type]]:
    """Pass name -> a zero-argument callable returning the pass class."""
    return {name: _factory(module, cls) for name, (module, cls) in _PASSES.items()}


def describe_passes(names: list[str] | None = None) -> str:
    """Each pass with its summary and options (name=default (type)): for --list-passes and prompts."""
    import dataclasses

    lines = []
    for name, factory in sorted(get_all_passes().items()):
        if names is not None and name not in names:
            continue
        cls = factory()
        lines.append(f"{name}  {cls.summary}")
        for f in dataclasses.fields(cls.Options):
            lines.append(f"    {f.name.replace('_', '-')}={f.default!r}  ({f.type})")
    return "\n".join(lines)


# The public face of the package: the framework (base class, pipeline parsing
# and running) and what other packages need to know about kernels. Other
# packages import these names from `mlirforge.passes`, never from the private
# modules; each is imported on first use, so listing passes stays cheap.
_PUBLIC = {
    "ForgePass": "_base", "PassFailure": "_base",
    "parse_pipeline": "_pipeline", "run_pipeline": "_pipeline", "PipelineError": "_pipeline",
    "split_pipeline": "_pipeline",
    # kernels: attributes, the content hash and the IR helpers that read them
    "KERNEL_HASH": "_kernels", "KERNEL_ROOT": "_kernels", "kernels": "_kernels",
    "kernel_hash_of": "_kernels", "is_root": "_kernels", "function_type": "_kernels",
    "op_name": "_kernels", "walk_nested": "_kernels", "string_attr": "_kernels",
    "func_ops": "_kernels", "sym_name": "_kernels", "owner_op": "_kernels", "entry_block": "_kernels",
    "is_fusible_elementwise": "_kernels", "is_clonable_constant": "_kernels", "is_kernel": "_kernels",
    "tag_kernel_locations": "_kernels", "KERNEL_TAG_PREFIX": "_kernels",
    # substitution of a verified kernel into a model
    "substitute": "substitute_kernels",
}
__all__ = ["get_all_passes", "describe_passes", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"mlirforge.passes.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'mlirforge.passes' has no attribute {name!r}")
