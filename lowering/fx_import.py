"""FX graph (ATen level) -> MLIR text, through torch-mlir's importer.

The first stages of `lowering.stages.COMPILE_STAGES`, each leaving a
reproducer when it fails:

  fx-import      FX graph -> torch dialect (torch-mlir's FxImporter)
  torch-backend  torch dialect -> torch backend contract (value semantics, decomposed)
  linalg         torch backend -> linalg on tensors (only for form="linalg")

`form="torch"` stops after `torch-backend` and leaves the torch dialect for
IREE's own torch input conversion (`--iree-input-type=torch`). On this machine
the linalg form compiled to faster code (MLP probe: 206 µs vs 230 µs with data
tiling), so it is the default; see docs/lowering.md.

Every placeholder of the graph becomes an argument of `@main`, in order;
parameters are bound to IREE globals afterwards by `lowering.params`, so that
weights never pass through MLIR text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from mlirforge.lowering.stages import stage_failure, stages_for

FORMS = ("linalg", "torch")


# torch-mlir names the op it could not legalize in one of two ways: a known op
# by its own name, an op it has no definition for as `torch.operator` with the
# ATen name in an attribute.
_ILLEGAL_OP = re.compile(r"failed to legalize operation '(torch\.[\w.]+)'")
_UNKNOWN_OP = re.compile(r"name = \"(torch\.[\w.]+)\"")
_NOT_OPS = {"torch.operator", "torch.constant.int", "torch.constant.float", "torch.constant.bool"}


def op_packet_name(name: str) -> str:
    """`torch.aten.add.Tensor` / `aten::add.Tensor` / `aten.add` -> `aten.add`."""
    name = name.replace("::", ".")
    if name.startswith("torch."):
        name = name[len("torch.") :]
    parts = name.split(".")
    return ".".join(parts[:2])


def unsupported_ops_in(diagnostics: str) -> list[str]:
    """ATen op packets (e.g. `aten.erfinv`) that the diagnostics say failed to lower."""
    found: list[str] = []
    for line in diagnostics.splitlines():
        for pattern in (_ILLEGAL_OP, _UNKNOWN_OP):
            for match in pattern.finditer(line):
                if match.group(1) in _NOT_OPS:
                    continue
                packet = op_packet_name(match.group(1))
                if packet not in found:
                    found.append(packet)
    return found


_FILE_LOC = re.compile(r'loc\("(?P<file>[^"]*)":(?P<line>\d+):(?P<col>\d+)')


def format_location(loc) -> str:
    """`loc("f.py":21:0)` -> `f.py:21:0`; other locations as MLIR prints them."""
    text = str(loc)
    match = _FILE_LOC.search(text)
    return f"{match['file']}:{match['line']}:{match['col']}" if match else text


def _format_diagnostic(diag, severity: str | None = None) -> str:
    sev = severity or str(diag.severity).split(".")[-1].lower()
    lines = [f"{format_location(diag.location)}: {sev}: {diag.message}"]
    for note in diag.notes:
        lines.append(_format_diagnostic(note, "note"))
    return "\n".join(lines)


def import_fx_graph(gm: torch.fx.GraphModule, form: str = "linalg", func_name: str = "main",
                    debug_info: bool = False) -> str:
    """Import an ATen-level FX graph; returns MLIR text in the requested form.

    With `debug_info` every op keeps its source location (`loc("model.py":21:0)`,
    from the FX node's stack trace), so a later compiler error names the model
    line; without it the text is location-free and caches across edits.

    Placeholders need `meta["val"]` (FakeTensors), as produced by make_fx,
    aot_autograd and torch.export. Raises `LoweringError` naming the stage, with
    `unsupported_ops` filled when the failure was an operator torch-mlir cannot
    lower.
    """
    if form not in FORMS:
        raise ValueError(f"unknown lowering form {form!r}; expected one of {FORMS}")
    from torch_mlir import ir as tm_ir
    from torch_mlir.dialects import torch as torch_d
    from torch_mlir.extras.fx_importer import FxImporter
    from torch_mlir.passmanager import PassManager

    context = tm_ir.Context()
    torch_d.register_dialect(context)
    diagnostics: list[str] = []

    def on_diagnostic(diag) -> bool:
        diagnostics.append(_format_diagnostic(diag))
        return True  # handled: keep it off stderr, it goes into the error instead

    context.attach_diagnostic_handler(on_diagnostic)
    importer = FxImporter(context=context)
    try:
        importer.import_stateless_graph(gm.graph, func_name=func_name)
    except Exception as exc:  # the importer raises plain Python errors
        text = "\n".join(diagnostics + [f"{type(exc).__name__}: {exc}"])
        raise stage_failure("fx-import", text, {"graph.py": gm.code}, None) from exc
    module = importer.module

    def run(stage: str, pipeline: str) -> None:
        before = module.operation.get_asm(enable_debug_info=True)
        diagnostics.clear()
        try:
            with context:
                PassManager.parse(pipeline).run(module.operation)
        except Exception as exc:
            located = [_format_diagnostic(d, "error") for d in getattr(exc, "error_diagnostics", [])]
            text = "\n".join(diagnostics + located) or str(exc)
            command = ["torch-mlir-opt", f"--pass-pipeline={pipeline}", "input.mlir"]
            raise stage_failure(
                stage, text, {"input.mlir": before}, command, unsupported_ops_in(text)
            ) from exc

    for step in stages_for(form):
        if step.tool == "torch-mlir-opt":
            run(step.name, step.pipeline)
    return module.operation.get_asm(enable_debug_info=debug_info)


def aten_decompositions() -> dict[torch._ops.OperatorBase, Callable]:
    """The decompositions applied before import: torch-mlir's own table, then ours.

    Ours (`lowering.decompositions`) replace torch-mlir's lowering where it
    departs from eager PyTorch's semantics (NaN propagation, precision of
    statistics) and expand PyTorch's fused inference fast paths
    (`lowering.fused_ops`) that torch-mlir cannot lower.
    """
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table

    from mlirforge.lowering.decompositions import SEMANTIC_DECOMPOSITIONS
    from mlirforge.lowering.fused_ops import FUSED_OP_DECOMPOSITIONS

    table = dict(get_decomposition_table())
    table.update(SEMANTIC_DECOMPOSITIONS)
    table.update(FUSED_OP_DECOMPOSITIONS)
    return table
