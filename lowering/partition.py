"""Split an ATen FX graph into parts IREE compiles and ops that stay eager.

What stays eager: operators named unsupported (ATen packets such as
`aten.erfinv`, learnt from torch-mlir's diagnostics), operators kept eager by
choice (`EAGER_BY_CHOICE`: they compile, but far slower than PyTorch runs
them), and single nodes that IREE failed to compile (by node name). Maximal
connected runs of the remaining ops are fused into `fused_N` submodules, each
of which the caller compiles on its own.
"""

from __future__ import annotations

import operator
import re
from collections import Counter

import torch
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupportBase

from mlirforge.lowering.fx_import import op_packet_name

# Ops that lower and compile correctly but that IREE's CPU backend runs orders
# of magnitude slower than PyTorch: its `iree_linalg_ext.sort` is a quadratic
# sort per row, and torch-mlir lowers topk through a full sort. Measured with
# `bench/bench_ops.py` (interleaved, same process; docs/ops-bench.md): topk of
# 64x1000 (k=5) 84 µs eager vs 59 ms compiled, sort of 64x1000 1.2 ms vs 61 ms.
EAGER_BY_CHOICE: dict[str, str] = {
    "aten.sort": "IREE's CPU sort is ~50x slower than PyTorch's",
    "aten.topk": "IREE lowers topk through a full sort, ~700x slower than PyTorch's",
}
_STACK_FRAME = re.compile(r'File "([^"]+)", line (\d+)')

def node_op_name(node: torch.fx.Node) -> str:
    """`aten.erfinv` for an OpOverload target, the qualified name otherwise."""
    target = node.target
    if isinstance(target, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
        return op_packet_name(target.name())
    return getattr(target, "__name__", str(target))


def node_location(node: torch.fx.Node) -> str | None:
    """`model.py:21`: the innermost frame of the user's code that created the node, if recorded."""
    frames = _STACK_FRAME.findall(node.meta.get("stack_trace") or "")
    return f"{frames[-1][0]}:{frames[-1][1]}" if frames else None


def ops_kept_eager_by_choice(gm: torch.fx.GraphModule) -> set[str]:
    return {node_op_name(n) for n in gm.graph.nodes if n.op == "call_function"} & set(EAGER_BY_CHOICE)


class _Supported(OperatorSupportBase):
    def __init__(self, unsupported: set[str], eager_nodes: set[str]):
        self.unsupported = unsupported
        self.eager_nodes = eager_nodes

    def is_node_supported(self, submodules, node: torch.fx.Node) -> bool:
        if node.op != "call_function":
            return False
        if node.target is operator.getitem:
            # A tuple element goes with its producer, wherever that runs.
            producer = node.args[0]
            return isinstance(producer, torch.fx.Node) and self.is_node_supported(submodules, producer)
        return node_op_name(node) not in self.unsupported and node.name not in self.eager_nodes


def fallback_counts(gm: torch.fx.GraphModule, unsupported: set[str], eager_nodes: set[str] = frozenset()) -> Counter:
    """How many nodes of each op the graph keeps eager (unsupported ops and eager nodes)."""
    return Counter(
        node_op_name(n) for n in gm.graph.nodes
        if n.op == "call_function" and (node_op_name(n) in unsupported or n.name in eager_nodes)
        and n.target is not operator.getitem
    )


def fallback_locations(gm: torch.fx.GraphModule, unsupported: set[str],
                       eager_nodes: set[str] = frozenset()) -> dict[str, list[str]]:
    """Per op kept eager, the model lines (`file:line`) its nodes come from, in graph order."""
    where: dict[str, list[str]] = {}
    for n in gm.graph.nodes:
        if n.op != "call_function" or n.target is operator.getitem:
            continue
        if node_op_name(n) in unsupported or n.name in eager_nodes:
            loc = node_location(n)
            lines = where.setdefault(node_op_name(n), [])
            if loc and loc not in lines:
                lines.append(loc)
    return where


def partition(gm: torch.fx.GraphModule, unsupported: set[str],
              eager_nodes: set[str] = frozenset()) -> tuple[torch.fx.GraphModule, list[str]]:
    """Fuse the supported regions of `gm` into submodules (`eager_nodes` are node names kept eager too).

    Returns the new parent graph module and the names of its fused submodules.
    The input module is left untouched.
    """
    # Built from the copied graph, so the attributes its get_attr nodes name
    # (tensor constants) are copied too; an empty graph would copy none.
    copy = torch.fx.GraphModule(gm, _copy_graph(gm.graph))
    partitioner = CapabilityBasedPartitioner(
        copy, _Supported(unsupported, set(eager_nodes)), allows_single_node_partition=True
    )
    fused = partitioner.fuse_partitions(partitioner.propose_partitions())
    names = [n.target for n in fused.graph.nodes if n.op == "call_module" and n.target.startswith("fused_")]
    return fused, names


def _copy_graph(graph: torch.fx.Graph) -> torch.fx.Graph:
    new = torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {}
    out = new.graph_copy(graph, env)
    new.output(out)
    return new
