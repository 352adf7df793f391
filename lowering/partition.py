"""Split an ATen FX graph into parts IREE compiles and ops that stay eager.

Operators named unsupported (ATen packets such as `aten.erfinv`, learnt from
torch-mlir's diagnostics) are left in the parent graph; maximal connected runs
of the remaining ops are fused into `fused_N` submodules, each of which the
caller compiles on its own.
"""

from __future__ import annotations

import operator
from collections import Counter

import torch
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupportBase

from mlirforge.lowering.fx_import import op_packet_name


def node_op_name(node: torch.fx.Node) -> str:
    """`aten.erfinv` for an OpOverload target, the qualified name otherwise."""
    target = node.target
    if isinstance(target, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
        return op_packet_name(target.name())
    return getattr(target, "__name__", str(target))


class _Supported(OperatorSupportBase):
    def __init__(self, unsupported: set[str]):
        self.unsupported = unsupported

    def is_node_supported(self, submodules, node: torch.fx.Node) -> bool:
        if node.op != "call_function":
            return False
        if node.target is operator.getitem:
            # A tuple element goes with its producer, wherever that runs.
            producer = node.args[0]
            return isinstance(producer, torch.fx.Node) and self.is_node_supported(submodules, producer)
        return node_op_name(node) not in self.unsupported


def fallback_counts(gm: torch.fx.GraphModule, unsupported: set[str]) -> Counter:
    """How many nodes of each unsupported op the graph holds."""
    return Counter(
        node_op_name(n) for n in gm.graph.nodes if n.op == "call_function" and node_op_name(n) in unsupported
    )


def partition(gm: torch.fx.GraphModule, unsupported: set[str]) -> tuple[torch.fx.GraphModule, list[str]]:
    """Fuse the supported regions of `gm` into submodules.

    Returns the new parent graph module and the names of its fused submodules.
    The input module is left untouched.
    """
    copy = torch.fx.GraphModule(gm, torch.fx.Graph())
    copy.graph = _copy_graph(gm.graph)
    copy.recompile()
    partitioner = CapabilityBasedPartitioner(
        copy, _Supported(unsupported), allows_single_node_partition=True
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
