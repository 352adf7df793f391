"""Compile an ATen FX graph into a callable that runs on IREE.

`compile_graph` is the whole path for one graph: import (torch-mlir), bind
weights to parameters, iree-compile (cached), load. `lowering.fallback`
adds partitioning on top (what cannot be lowered stays in eager PyTorch).

Graph outputs that are inputs passed through, or not tensors at all (aot
autograd's training graphs return both), are spliced in Python; only computed
tensors cross IREE.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

import torch
import torch.utils._pytree as pytree

from mlirforge.lowering.errors import UnsupportedOpError
from mlirforge.lowering.fx_import import import_fx_graph
from mlirforge.lowering.iree_compile import ModuleCache, compile_mlir
from mlirforge.lowering.options import LoweringOptions
from mlirforge.lowering.params import bind_parameters
from mlirforge.lowering.runtime import IreeModule, load_module
from mlirforge.passes.conv_to_channels_last import convs_to_channels_last
from mlirforge.passes.tile_reductions import tile_reductions

log = logging.getLogger("mlirforge.lowering")

MAX_PARTITION_ROUNDS = 8


@dataclasses.dataclass
class CompileStats:
    """Process-wide counters; tests use them to prove the compiled path ran."""

    graphs_compiled: int = 0
    partitions_compiled: int = 0
    module_cache_hits: int = 0
    iree_calls: int = 0
    eager_graphs: int = 0
    compile_seconds: float = 0.0
    thin_path_graphs: int = 0  # graphs compiled for inference without aot_autograd (backend)
    eager_if_faster_graphs: int = 0  # compiled graphs that measured slower than eager and run eagerly (backend)

    def reset(self) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, field.default)


STATS = CompileStats()


@dataclasses.dataclass
class LoweredGraph:
    """A graph lowered to IREE-ready MLIR, and how to call it."""

    mlir: str
    param_positions: list[int]  # placeholder positions bound to parameters p0, p1, ...
    input_positions: list[int]  # placeholder positions passed at each call
    out_plan: list[tuple[str, object]]  # ("computed", j) | ("input", i) | ("const", v) | ("view", (j, chain))
    out_spec: pytree.TreeSpec
    result_dtypes: list[torch.dtype] = dataclasses.field(default_factory=list)  # of the module's results


def _val(node: torch.fx.Node):
    return node.meta.get("val", node.meta.get("example_value"))


def lower_graph(
    gm: torch.fx.GraphModule, static_positions: Sequence[int], options: LoweringOptions,
    debug_info: bool = False,
    replay_views: bool = True,
) -> LoweredGraph:
    """Lower a graph to MLIR text with weights bound to parameters.

    `static_positions` are the placeholder positions holding weights/buffers;
    `debug_info` keeps the model's source locations in the text. With
    `replay_views`, an output that is a view of another output (`return y,
    y.t()`) is not computed by IREE but replayed on that output at call time,
    so the two share memory as in eager.
    Raises `LoweringError` (with `unsupported_ops` when torch-mlir named them)
    or `UnsupportedOpError` for graphs whose inputs are not all tensors.
    """
    graph = torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {}
    old_out = graph.graph_copy(gm.graph, env)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]

    kept: list[int] = []
    for pos, node in enumerate(placeholders):
        if isinstance(_val(node), torch.Tensor):
            kept.append(pos)
        elif node.users:
            raise UnsupportedOpError(
                f"graph input {node.name} is a {type(_val(node)).__name__}, not a tensor", []
            )
    for pos, node in enumerate(placeholders):
        if pos not in kept:
            graph.erase_node(node)

    leaves, spec = pytree.tree_flatten(old_out)
    index_of = {node: pos for pos, node in enumerate(placeholders)}
    computed: list[torch.fx.Node] = []
    plan: list[tuple[str, object]] = []
    views = _views_of_outputs(leaves) if replay_views else {}
    # The module's results first, so a replayed view can name its base's index.
    for leaf in leaves:
        if (isinstance(leaf, torch.fx.Node) and leaf.op != "placeholder" and leaf not in views
                and isinstance(_val(leaf), torch.Tensor) and leaf not in computed):
            computed.append(leaf)
    for leaf in leaves:
        if leaf in views:
            base, chain = views[leaf]
            plan.append(("view", (computed.index(base), chain)))
        elif isinstance(leaf, torch.fx.Node) and leaf.op == "placeholder":
            plan.append(("input", index_of[leaf]))
        elif isinstance(leaf, torch.fx.Node) and isinstance(_val(leaf), torch.Tensor):
            plan.append(("computed", computed.index(leaf)))
        elif isinstance(leaf, torch.fx.Node):
            raise UnsupportedOpError(f"graph output {leaf.name} is not a tensor", [])
        else:
            plan.append(("const", leaf))
    if not computed:
        raise UnsupportedOpError("the graph computes no tensor", [])
    graph.output(tuple(computed))
    graph.eliminate_dead_code()
    lowered_gm = torch.fx.GraphModule(gm, graph)

    mlir = import_fx_graph(lowered_gm, form=options.form, debug_info=debug_info)
    if options.form == "linalg":
        mlir = convs_to_channels_last(mlir, debug_info=debug_info)
        mlir = tile_reductions(mlir, debug_info=debug_info)
    static = set(static_positions)
    param_positions = [p for p in kept if p in static]
    input_positions = [p for p in kept if p not in static]
    arg_index = {pos: i for i, pos in enumerate(kept)}
    mlir = bind_parameters(mlir, [arg_index[p] for p in param_positions], debug_info=debug_info)
    return LoweredGraph(mlir, param_positions, input_positions, plan, spec, [_val(n).dtype for n in computed])


def _views_of_outputs(leaves: list) -> dict[torch.fx.Node, tuple[torch.fx.Node, list]]:
    """Output nodes that are a chain of view ops over another computed output: node -> (base, chain)."""
    outputs = {leaf for leaf in leaves if isinstance(leaf, torch.fx.Node) and leaf.op != "placeholder"}
    found = {}
    for leaf in outputs:
        chain, node = [], leaf
        while (node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload)
               and node.target.is_view and node.args and isinstance(node.args[0], torch.fx.Node)
               and not any(isinstance(a, torch.fx.Node) for a in pytree.tree_leaves((node.args[1:], node.kwargs)))):
            chain.append((node.target, node.args[1:], dict(node.kwargs)))
            node = node.args[0]
            if node in outputs:
                found[leaf] = (node, chain[::-1])
                break
    # A view of an output that is itself a view is replayed from the computed base.
    for leaf, (base, chain) in list(found.items()):
        while base in found and base is not leaf:
            base, chain = found[base][0], found[base][1] + chain
        found[leaf] = (base, chain)
    return {leaf: v for leaf, v in found.items() if v[0] not in found}


_UNSIGNED = (torch.uint8, torch.uint16, torch.uint32, torch.uint64)


class CompiledGraph:
    """Calls an IREE module with the same flat arguments as the original graph."""

    def __init__(self, lowered: LoweredGraph, module: IreeModule, key: str):
        self.lowered = lowered
        self.module = module
        self.key = key
        if not lowered.param_positions:
            module.refresh_parameters([])  # no weights: the context can be made now, not on each call
        # The call plan, computed once: most graphs return exactly the module's
        # results, in order, as a tuple (dynamo's and aot_autograd's convention).
        plan = lowered.out_plan
        tuple_spec = pytree.tree_structure(tuple(range(len(plan))))
        self._results_are_outputs = (
            lowered.out_spec == tuple_spec and plan == [("computed", j) for j in range(len(plan))]
        )
        # IREE's integers carry no sign and its runtime hands unsigned results back as
        # signed tensors (uint8 -> int8): those are viewed back, bits unchanged.
        self._unsigned = [(j, dt) for j, dt in enumerate(lowered.result_dtypes) if dt in _UNSIGNED]

    def demote_if_slower(self, observed_s: float) -> bool:
        """Let an auto-driver module leave local-task when calls measured elsewhere were slow (see
        `lowering.runtime.AutoDriverModule.demote_if_slower`); False for a module on a fixed driver."""
        demote = getattr(self.module, "demote_if_slower", None)
        return bool(demote and demote(observed_s))

    def __call__(self, *args):
        low = self.lowered
        module = self.module
        if low.param_positions:
            module.refresh_parameters([args[i] for i in low.param_positions])
        outs = module(*[args[i] for i in low.input_positions])
        STATS.iree_calls += 1
        for j, dtype in self._unsigned:
            if outs[j].dtype != dtype:
                outs[j] = outs[j].view(dtype)
        if self._results_are_outputs:
            return tuple(outs)
        leaves = []
        for kind, value in low.out_plan:
            if kind == "computed":
                leaves.append(outs[value])
            elif kind == "input":
                leaves.append(args[value])
            elif kind == "view":
                base, chain = value
                t = outs[base]
                for op, op_args, op_kwargs in chain:
                    t = op(t, *op_args, **op_kwargs)
                leaves.append(t)
            else:
                leaves.append(value)
        return pytree.tree_unflatten(leaves, low.out_spec)


def compile_graph(
    gm: torch.fx.GraphModule, static_positions: Sequence[int], options: LoweringOptions
) -> CompiledGraph:
    """Lower, compile (or fetch from the module cache) and load one graph."""
    start = time.perf_counter()
    lowered = lower_graph(gm, static_positions, options)
    cache = ModuleCache() if options.use_cache else None
    result = compile_mlir(lowered.mlir, options.form, options.iree_flags, cache)
    STATS.module_cache_hits += int(result.cached)
    module = load_module(result.vmfb, driver=options.driver, parameters=None, copy_inputs=result.copy_inputs())
    STATS.compile_seconds += time.perf_counter() - start
    return CompiledGraph(lowered, module, result.key)
