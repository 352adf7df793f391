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
import operator
import re
import time
from collections.abc import Callable, Sequence

import torch
import torch.utils._pytree as pytree

from mlirforge.lowering.errors import LoweringError, UnsupportedOpError
from mlirforge.lowering.fx_import import import_fx_graph
from mlirforge.lowering.iree_compile import ModuleCache, compile_mlir
from mlirforge.lowering.options import LoweringOptions
from mlirforge.lowering.params import bind_parameters
from mlirforge.lowering.partition import (
    EAGER_BY_CHOICE,
    fallback_counts,
    fallback_locations,
    node_location,
    node_op_name,
    ops_kept_eager_by_choice,
    partition,
)
from mlirforge.lowering.runtime import IreeModule, load_module

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


@dataclasses.dataclass
class FallbackReport:
    """What stayed in eager PyTorch, and why.

    `ops`: op name -> node count kept eager; `locations`: op name -> the model
    lines (`file:line`) of those nodes; `by_choice`: ops that compile but are
    kept eager because IREE runs them far slower (op -> reason);
    `compile_failures`: one line per IREE failure, and what was done about it
    (compiled another way, or the op and model line sent to eager, the first
    error and the reproducer).
    """

    ops: dict[str, int]
    whole_graph_reason: str | None = None
    locations: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    by_choice: dict[str, str] = dataclasses.field(default_factory=dict)
    compile_failures: list[str] = dataclasses.field(default_factory=list)
    all_eager: bool = False  # nothing of the graph was compiled


def compile_with_fallback(
    gm: torch.fx.GraphModule,
    static_positions: Sequence[int],
    options: LoweringOptions,
) -> tuple[Callable, FallbackReport]:
    """Compile `gm`, keeping in eager PyTorch only what cannot (or should not) be compiled.

    Ops torch-mlir cannot lower and ops in `EAGER_BY_CHOICE` stay eager and
    the connected regions around them are compiled separately. When IREE
    fails on a valid graph, the other input form is tried; failing that, the
    graph is lowered again with source locations, the nodes at the model lines
    IREE's errors name are kept eager and the rest is compiled. Returns a
    callable taking the graph's flat arguments and a report of what fell back;
    if nothing at all can be compiled, the callable is the graph itself
    (eager) and the report says why. Raises nothing for lowering failures;
    other exceptions (bugs) propagate.
    """
    unsupported: set[str] = ops_kept_eager_by_choice(gm)
    by_choice = {op: EAGER_BY_CHOICE[op] for op in unsupported}
    eager_nodes: set[str] = set()
    failures: list[str] = []

    def report(reason: str | None = None) -> FallbackReport:
        return FallbackReport(dict(fallback_counts(gm, unsupported, eager_nodes)), reason,
                              fallback_locations(gm, unsupported, eager_nodes), by_choice, failures)

    if not unsupported:
        try:
            compiled = compile_graph(gm, static_positions, options)
            STATS.graphs_compiled += 1
            return compiled, report()
        except (LoweringError, UnsupportedOpError) as exc:
            if _unsupported_of(exc):
                unsupported.update(_unsupported_of(exc))
            else:
                rescued = _compile_another_way(gm, static_positions, options, exc, failures)
                if rescued is not None:
                    STATS.graphs_compiled += 1
                    return rescued, report()
            if not unsupported and not _isolate_failure(gm, static_positions, options, exc, eager_nodes, failures):
                STATS.eager_graphs += 1
                reason = exc.summary() if isinstance(exc, LoweringError) else str(exc)
                return gm, report(reason)

    static = set(static_positions)
    for _ in range(MAX_PARTITION_ROUNDS):
        parent, names = partition(gm, unsupported, eager_nodes)
        if not names:
            break
        try:
            _compile_parts(parent, names, static, options, failures)
        except _PartFailed as failed:
            exc = failed.error
            new_ops = set(_unsupported_of(exc)) - unsupported
            if new_ops:
                unsupported |= new_ops
                continue
            if _isolate_failure(failed.part, failed.static, options, exc, eager_nodes, failures):
                continue
            break  # a part failed and its failure could not be pinned on nodes: keep everything eager
        STATS.graphs_compiled += 1
        return parent, report()
    STATS.eager_graphs += 1
    # The ops' own report says it all when nothing but them was left to compile.
    rest = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is not operator.getitem
            and node_op_name(n) not in unsupported and n.name not in eager_nodes]
    result = report(None if not rest else "no part of the graph could be compiled")
    result.all_eager = True
    return gm, result


# The CPU backend refuses some valid programs: vectors above a size limit or
# stack allocations above 32 KiB in one dispatch. A masked attention with its
# scale and mask fused into the data-tiled batch matmul tripped both (GPT-style
# block, 8 heads of 24, sequence 128); without data tiling it compiles.
DATA_TILING = "--iree-opt-data-tiling"
LARGE_VECTORS_ALLOWED = "--iree-llvmcpu-fail-on-large-vector=false"


def _alternatives(options: LoweringOptions) -> list[tuple[str, LoweringOptions]]:
    """Ways to compile a graph that IREE failed on, in order of preference (each costs one compile)."""
    flags = options.iree_flags
    ways = []
    if DATA_TILING in flags:
        ways.append(("without data tiling",
                     dataclasses.replace(options, iree_flags=tuple(f for f in flags if f != DATA_TILING))))
    ways.append((f"with {LARGE_VECTORS_ALLOWED}", dataclasses.replace(options, iree_flags=(*flags, LARGE_VECTORS_ALLOWED))))
    other = "torch" if options.form == "linalg" else "linalg"
    ways.append((f"in the {other} form", dataclasses.replace(options, form=other)))
    return ways


def _compile_another_way(gm, static_positions, options: LoweringOptions,
                         exc: Exception, notes: list[str]) -> CompiledGraph | None:
    """The graph compiled another way (`_alternatives`), or None if every way fails too; `notes` says which."""
    for description, alternative in _alternatives(options):
        try:
            compiled = compile_graph(gm, static_positions, alternative)
        except (LoweringError, UnsupportedOpError):
            continue
        first = exc.summary() if isinstance(exc, LoweringError) else str(exc)
        notes.append(f"a graph failed to compile ({first}); it compiled {description}")
        return compiled
    return None


_ERROR_LINE = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):\d+: error: (?P<message>.*)$", re.MULTILINE)


def _isolate_failure(gm, static_positions, options: LoweringOptions, exc: Exception,
                     eager_nodes: set[str], failures: list[str]) -> bool:
    """Pin a compile failure on the graph's nodes; adds them to `eager_nodes`. False if it cannot.

    The graph is lowered again with the model's source locations, so IREE's
    errors name model lines (`model.py:42`); the call nodes created at those
    lines are kept eager. Only failures of the IREE stage are isolated.
    """
    if not isinstance(exc, LoweringError) or exc.stage != "iree-compile":
        return False
    try:
        located = lower_graph(gm, static_positions, options, debug_info=True)
        compile_mlir(located.mlir, options.form, options.iree_flags, None)
        return False  # it compiled with locations: nothing to pin the failure on
    except LoweringError as again:
        diagnostics = again.diagnostics
    except UnsupportedOpError:
        return False
    lines: dict[tuple[str, str], str] = {}
    for m in _ERROR_LINE.finditer(diagnostics):  # the first error at a line is the cause, later ones follow from it
        message = m["message"]
        lines.setdefault((m["file"], m["line"]), message if len(message) <= 200 else message[:200] + " ...")
    hit = [
        n for n in gm.graph.nodes
        if n.op == "call_function" and n.name not in eager_nodes
        and any(node_location(n) == f"{f}:{line}" for f, line in lines)
    ]
    if not hit:
        return False
    eager_nodes.update(n.name for n in hit)
    for (f, line), message in lines.items():
        ops = sorted({node_op_name(n) for n in hit if node_location(n) == f"{f}:{line}"})
        if ops:
            where = f" (reproducer: {exc.reproducer})" if exc.reproducer else ""
            failures.append(f"{', '.join(ops)} at {f}:{line}: iree-compile: {message}{where}")
    return True


def _unsupported_of(exc: Exception) -> list[str]:
    if isinstance(exc, LoweringError):
        return exc.unsupported_ops
    if isinstance(exc, UnsupportedOpError):
        return exc.ops
    return []


class _PartFailed(Exception):
    """A fused part failed to compile: the part, its static positions and the error."""

    def __init__(self, part: torch.fx.GraphModule, static: list[int], error: Exception):
        super().__init__(str(error))
        self.part, self.static, self.error = part, static, error


def _compile_parts(parent: torch.fx.GraphModule, names: list[str], static: set[int], options,
                   failures: list[str]) -> None:
    """Compile each fused part in place; a part IREE fails on is tried the other ways first."""
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
        try:
            compiled = compile_graph(sub, sub_static, options)
        except (LoweringError, UnsupportedOpError) as exc:
            rescued = None if _unsupported_of(exc) else _compile_another_way(sub, sub_static, options, exc, failures)
            if rescued is None:
                raise _PartFailed(sub, sub_static, exc) from exc
            compiled = rescued
        STATS.partitions_compiled += 1
        parent.add_submodule(name, _CompiledPart(compiled))


class _CompiledPart(torch.nn.Module):
    """Holds a compiled part inside the eager parent graph."""

    def __init__(self, compiled: CompiledGraph):
        super().__init__()
        self.compiled = compiled

    def forward(self, *args):
        return self.compiled(*args)
