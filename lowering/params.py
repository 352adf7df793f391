"""Bind graph arguments that are weights to IREE parameters.

torch-mlir imports every placeholder as an argument of `@main`. Weights passed
as arguments would be re-read, re-transposed and re-packed on every call, and
weights embedded as constants would be printed into MLIR text on every compile.
Instead each weight argument becomes an immutable `util.global` whose initial
value is `#stream.parameter.named<"mlirforge"::"pN">`: the vmfb holds no
weight bytes, IREE hoists weight-only work (transposes, data-tiling packs) into
module initialisation, and the runtime supplies the bytes from memory
(`lowering.runtime`) or from a `.irpa` archive (artifacts).

The original function is kept, renamed and private, and a new public `@main`
loads the globals and calls it; IREE inlines the call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mlirforge.lowering.ir import ir, new_context
from mlirforge.lowering.runtime import PARAMETER_SCOPE, parameter_key

GRAPH_FUNC = "__mlirforge_graph"


def bind_parameters(mlir_text: str, param_arg_indices: Sequence[int], func_name: str = "main",
                    debug_info: bool = False) -> str:
    """Turn the listed arguments of `@func_name` into named IREE parameters.

    Parameter k (in the order of `param_arg_indices`) gets the key
    `parameter_key(k)`. Returns new MLIR text whose `@func_name` takes only the
    remaining arguments, in their original order (with `debug_info`, source
    locations kept). Raises LoweringError (stage `bind-parameters`, with a
    reproducer) if the function is missing, an index is out of range or the
    result does not verify.
    """
    if not param_arg_indices:
        return mlir_text
    try:
        return _bind(mlir_text, param_arg_indices, func_name, debug_info)
    except (ValueError, ir.MLIRError) as exc:
        from mlirforge.lowering.stages import stage_failure

        detail = "\n".join(str(d) for d in getattr(exc, "error_diagnostics", [])) or str(exc)
        raise stage_failure("bind-parameters", f"binding arguments {list(param_arg_indices)} of @{func_name} as "
                            f"parameters failed: {detail}", {"input.mlir": mlir_text}, None) from exc


def _bind(mlir_text: str, param_arg_indices: Sequence[int], func_name: str, debug_info: bool) -> str:
    context = new_context()
    with context, ir.Location.unknown():
        module = ir.Module.parse(mlir_text)
        func = _find_func(module, func_name)
        ftype = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
        arg_types = [str(t) for t in ftype.inputs]
        result_types = [str(t) for t in ftype.results]
        params = set(param_arg_indices)
        bad = [i for i in params if i < 0 or i >= len(arg_types)]
        if bad:
            raise ValueError(f"parameter argument indices {bad} out of range for @{func_name}")

        func.attributes["sym_name"] = ir.StringAttr.get(GRAPH_FUNC)
        func.attributes["sym_visibility"] = ir.StringAttr.get("private")

        lines: list[str] = []
        for k, i in enumerate(param_arg_indices):
            lines.append(
                f'util.global private @__param_{k} = #stream.parameter.named<"{PARAMETER_SCOPE}"'
                f'::"{parameter_key(k)}"> : {builtin_tensor_type(arg_types[i])}'
            )
        user_args = [i for i in range(len(arg_types)) if i not in params]
        sig = ", ".join(f"%arg{i}: {arg_types[i]}" for i in user_args)
        res = ", ".join(result_types)
        lines.append(f"func.func @{func_name}({sig}) -> ({res}) {{")
        slot = {i: k for k, i in enumerate(param_arg_indices)}
        for i, k in slot.items():
            builtin = builtin_tensor_type(arg_types[i])
            if builtin == arg_types[i]:
                lines.append(f"  %arg{i} = util.global.load @__param_{k} : {builtin}")
            else:  # torch form: globals hold builtin tensors, the graph wants !torch.vtensor
                lines.append(f"  %g{i} = util.global.load @__param_{k} : {builtin}")
                lines.append(f"  %arg{i} = torch_c.from_builtin_tensor %g{i} : {builtin} -> {arg_types[i]}")
        call_args = ", ".join(f"%arg{i}" for i in range(len(arg_types)))
        call_type = f"({', '.join(arg_types)}) -> ({res})"
        if result_types:
            names = ", ".join(f"%r#{j}" for j in range(len(result_types)))
            lines.append(f"  %r:{len(result_types)} = func.call @{GRAPH_FUNC}({call_args}) : {call_type}")
            lines.append(f"  return {names} : {res}")
        else:
            lines.append(f"  func.call @{GRAPH_FUNC}({call_args}) : {call_type}")
            lines.append("  return")
        lines.append("}")
        # The callee is declared so the snippet verifies on its own; only the
        # globals and the new entry point are moved into the real module.
        decl = f"func.func private @{GRAPH_FUNC}({', '.join(arg_types)}) -> ({res})"
        snippet = ir.Module.parse("\n".join([decl, *lines]))
        for op in list(snippet.body.operations)[1:]:
            op.detach_from_parent()
            module.body.append(op)
        if not module.operation.verify():
            raise ValueError("binding parameters produced an invalid module")
        return module.operation.get_asm(enable_debug_info=debug_info)


_VTENSOR = re.compile(r"^!torch\.vtensor<\[(?P<dims>[^\]]*)\],(?P<dtype>\w+)>$")


def builtin_tensor_type(type_text: str) -> str:
    """`!torch.vtensor<[512,256],f32>` -> `tensor<512x256xf32>`; builtin types unchanged.

    IREE globals must hold builtin tensors; torch's signed/unsigned integer
    element types are signless in the builtin world.
    """
    match = _VTENSOR.match(type_text)
    if not match:
        return type_text
    dims = [d.strip() for d in match["dims"].split(",") if d.strip()]
    dims = ["?" if d in ("-1", "?") else d for d in dims]
    dtype = re.sub(r"^[su]i(\d+)$", r"i\1", match["dtype"])
    return "tensor<" + "".join(f"{d}x" for d in dims) + dtype + ">"


def _find_func(module, name: str):
    for op in module.body.operations:
        if op.operation.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == name:
            return op
    raise ValueError(f"no function @{name} in the module")


