"""Compile a graph with fallback: what cannot be lowered or compiled stays in eager PyTorch.

`compile_with_fallback` partitions when torch-mlir names operators it cannot
lower (those stay eager, the rest is compiled in pieces), retries an IREE
failure another way (no data tiling, large vectors allowed, the other form),
and otherwise isolates the failing model lines (relowered with source
locations) and keeps them eager. `FallbackReport` says what stayed eager and
why, per op and per model line.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import re
from collections.abc import Callable, Sequence

import torch

from mlirforge.lowering.errors import LoweringError, UnsupportedOpError
from mlirforge.lowering.graph_compiler import MAX_PARTITION_ROUNDS, STATS, CompiledGraph, compile_graph, lower_graph
from mlirforge.lowering.iree_compile import compile_mlir
from mlirforge.lowering.options import LoweringOptions
from mlirforge.lowering.partition import (
    EAGER_BY_CHOICE,
    fallback_counts,
    fallback_locations,
    node_location,
    node_op_name,
    ops_kept_eager_by_choice,
    partition,
)

log = logging.getLogger("mlirforge.lowering")


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
