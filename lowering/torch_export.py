"""A whole `nn.Module` -> lowered MLIR through `torch.export`, for artifacts.

Unlike the torch.compile path there is no eager PyTorch to fall back on: an
artifact runs on the IREE runtime alone, so an operator that cannot be lowered
is an error naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch.export.graph_signature import InputKind, OutputKind

from mlirforge.lowering.errors import UserError
from mlirforge.lowering.fx_import import aten_decompositions
from mlirforge.lowering.graph_compiler import LoweredGraph, lower_graph
from mlirforge.lowering.options import LoweringOptions

_STATIC_KINDS = (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)


@dataclasses.dataclass
class ExportedModel:
    lowered: LoweredGraph
    parameters: list[torch.Tensor]  # in parameter-key order (p0, p1, ...)
    parameter_names: list[str]
    user_positions: list[int]  # placeholder position of each user input, in call order


def export_model(
    model: torch.nn.Module, inputs: Sequence, options: LoweringOptions
) -> ExportedModel:
    """Export, decompose and lower `model` called on `inputs`.

    Raises UserError for models torch.export cannot capture or that mutate
    their buffers, LoweringError for ops that cannot be lowered.
    """
    if not all(isinstance(x, torch.Tensor) for x in inputs):
        raise UserError("every model input must be a tensor for the artifact path")
    try:
        with torch.no_grad():
            program = torch.export.export(model, tuple(inputs))
            program = program.run_decompositions(aten_decompositions())
    except Exception as exc:
        raise UserError(f"torch.export could not capture the model: {type(exc).__name__}: {exc}") from exc
    sig = program.graph_signature
    mutating = [s for s in sig.output_specs if s.kind != OutputKind.USER_OUTPUT]
    if mutating:
        raise UserError(
            "the model mutates state in forward ("
            + ", ".join(str(s.target) for s in mutating)
            + "); artifacts hold no mutable state"
        )
    static, tensors, names, users = [], {}, {}, []
    for pos, spec in enumerate(sig.input_specs):
        if spec.kind in _STATIC_KINDS:
            static.append(pos)
            source = program.state_dict if spec.target in program.state_dict else program.constants
            tensors[pos] = source[spec.target]
            names[pos] = spec.target
        elif spec.kind == InputKind.USER_INPUT:
            users.append(pos)
        else:
            raise UserError(f"unsupported model input kind {spec.kind.name} ({spec.arg})")
    # An artifact's manifest holds no view replays: its outputs are separate buffers.
    lowered = lower_graph(program.graph_module, static, options, replay_views=False)
    # The graph returns a flat tuple; the model's own output structure is the call spec's.
    lowered.out_spec = program.call_spec.out_spec
    return ExportedModel(
        lowered=lowered,
        parameters=[tensors[p] for p in lowered.param_positions],
        parameter_names=[names[p] for p in lowered.param_positions],
        user_positions=users,
    )
