"""Compile an ATen FX graph into a callable that runs on IREE.

`compile_graph` is the whole path for one graph: import (torch-mlir), bind
weights to parameters, iree-compile (cached), load. `compile_with_fallback`
adds partitioning: when torch-mlir names operators it cannot lower, those stay
in eager PyTorch and the rest is compiled in pieces.

Graph outputs that are inputs passed through, or not tensors at all (aot
autograd's training graphs return both), are spliced in Python; only computed
tensors cross IREE.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import torch
import torch.utils._pytree as pytree

from mlirforge.lowering.errors import LoweringError, UnsupportedOpError
from mlirforge.lowering.fx_import import import_fx_graph
from mlirforge.lowering.iree_compile import ModuleCache, compile_mlir
from mlirforge.lowering.options import LoweringOptions
from mlirforge.lowering.params import bind_parameters
from mlirforge.lowering.partition import fallback_counts, partition
from mlirforge.lowering.runtime import IreeModule

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
    out_plan: list[tuple[str, object]]  # ("computed", j) | ("input", i) | ("const", v)
    out_spec: pytree.TreeSpec


def _val(node: torch.fx.Node):
    return node.meta.get("val", node.meta.get("example_value"))


def lower_graph(
    gm: torch.fx.GraphModule, static_positions: Sequence[int], options: LoweringOptions
) -> LoweredGraph:
    """Lower a graph to MLIR text with weights bound to parameters.

    `static_positions` are the placeholder positions holding weights/buffers.
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
    for leaf in leaves:
        if isinstance(leaf, torch.fx.Node) and leaf.op == "placeholder":
            plan.append(("input", index_of[leaf]))
        elif isinstance(leaf, torch.fx.Node) and isinstance(_val(leaf), torch.Tensor):
            if leaf not in computed:
                computed.append(leaf)
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

    mlir = import_fx_graph(lowered_gm, form=options.form)
    static = set(static_positions)
    param_positions = [p for p in kept if p in static]
    input_positions = [p for p in kept if p not in static]
    arg_index = {pos: i for i, pos in enumerate(kept)}
    mlir = bind_parameters(mlir, [arg_index[p] for p in param_positions])
    return LoweredGraph(mlir, param_positions, input_positions, plan, spec)


class CompiledGraph:
    """Calls an IREE module with the same flat arguments as the original graph."""

    def __init__(self, lowered: LoweredGraph, module: IreeModule, key: str):
        self.lowered = lowered
        self.module = module
        self.key = key

    def __call__(self, *args):
        low = self.lowered
        self.module.refresh_parameters([args[i] for i in low.param_positions])
        outs = self.module(*[args[i] for i in low.input_positions])
        STATS.iree_calls += 1
        leaves = []
        for kind, value in low.out_plan:
            if kind == "computed":
                leaves.append(outs[value])
            elif kind == "input":
                leaves.append(args[value])
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
    module = IreeModule(result.vmfb, driver=options.driver, parameters=None)
    STATS.compile_seconds += time.perf_counter() - start
    return CompiledGraph(lowered, module, result.key)


@dataclasses.dataclass
class FallbackReport:
    """What stayed in eager PyTorch: op name -> node count."""

    ops: dict[str, int]
    whole_graph_reason: str | None = None


def compile_with_fallback(
    gm: torch.fx.GraphModule,
    static_positions: Sequence[int],
    options: LoweringOptions,
) -> tuple[Callable, FallbackReport]:
    """Compile `gm`, keeping ops torch-mlir cannot lower in eager PyTorch.

    Returns a callable taking the graph's flat arguments and a report of what
    fell back. If nothing at all can be compiled, the callable is the graph
    itself (eager) and the report says why. Raises nothing for lowering
    failures; other exceptions (bugs) propagate.
    """
    unsupported: set[str] = set()
    try:
        compiled = compile_graph(gm, static_positions, options)
        STATS.graphs_compiled += 1
        return compiled, FallbackReport({})
    except (LoweringError, UnsupportedOpError) as exc:
        if not _unsupported_of(exc):
            STATS.eager_graphs += 1
            reason = exc.summary() if isinstance(exc, LoweringError) else str(exc)
            return gm, FallbackReport({}, whole_graph_reason=reason)
        unsupported.update(_unsupported_of(exc))

    static = set(static_positions)
    for _ in range(MAX_PARTITION_ROUNDS):
        parent, names = partition(gm, unsupported)
        if not names:
            break
        try:
            _compile_parts(parent, names, static, options)
        except (LoweringError, UnsupportedOpError) as exc:
            new_ops = set(_unsupported_of(exc)) - unsupported
            if not new_ops:
                break  # a part failed for another reason: keep everything eager
            unsupported |= new_ops
            continue
        STATS.graphs_compiled += 1
        return parent, FallbackReport(dict(fallback_counts(gm, unsupported)))
    STATS.eager_graphs += 1
    report = FallbackReport(dict(fallback_counts(gm, unsupported)))
    report.whole_graph_reason = "no part of the graph could be compiled"
    return gm, report


def _unsupported_of(exc: Exception) -> list[str]:
    if isinstance(exc, LoweringError):
        return exc.unsupported_ops
    if isinstance(exc, UnsupportedOpError):
        return exc.ops
    return []


def _compile_parts(parent: torch.fx.GraphModule, names: list[str], static: set[int], options) -> None:
    placeholders = {n: i for i, n in enumerate(n for n in parent.graph.nodes if n.op == "placeholder")}
    calls = {n.target: n for n in parent.graph.nodes if n.op == "call_module"}
    for name in names:
        sub = getattr(parent, name)
        call = calls[name]
        sub_static = [
            j
            for j, arg in enumerate(call.args)
            if isinstance(arg, torch.fx.Node) and placeholders.get(arg, -1) in static
        ]
        compiled = compile_graph(sub, sub_static, options)
        STATS.partitions_compiled += 1
        parent.add_submodule(name, _CompiledPart(compiled))


class _CompiledPart(torch.nn.Module):
    """Holds a compiled part inside the eager parent graph."""

    def __init__(self, compiled: CompiledGraph):
        super().__init__()
        self.compiled = compiled

    def forward(self, *args):
        return self.compiled(*args)
