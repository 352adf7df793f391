"""The workloads of the benchmark suite (`bench/bench_suite.py`).

Whole models come from `examples/` (KernelBench model files: `Model`,
`get_inputs()`, `get_init_inputs()`); the attention block and the single ops
are defined here in the same style: a small `torch.nn.Module` per workload
plus an input factory. Every workload is built from a fixed seed, so each
system and each run sees the same weights and inputs.

`Workload.flops` is the multiply-add count x 2 of one call where it is
well defined (matmuls, convolutions); the suite turns it into GFLOP/s and,
for matmuls, a fraction of the CPU's fp32 peak.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from mlirforge.kernelbench import load_model_file
from torch import nn

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
SEED = 0


# --------------------------------------------------------------------------- models


class Attention(nn.Module):
    """Multi-head self-attention alone: QKV projection, softmax(QK^T/sqrt(d))V, output projection.

    The attention half of `examples/transformer_block.py` (no norms, no MLP,
    no residual), written out with matmuls and softmax as KernelBench does.
    """

    def __init__(self, d_model: int = 128, n_heads: int = 4):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, s, h, d // h).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / (d // h) ** 0.5
        attn = torch.softmax(scores, dim=-1) @ v
        return self.proj(attn.transpose(1, 2).reshape(b, s, d))


class Matmul(nn.Module):
    """C = A @ B with both operands as inputs (KernelBench level 1)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


class Conv2d(nn.Module):
    """A 3x3 convolution with bias, padding 1 (NCHW)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Softmax(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=-1)


class LayerNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class SumLastDim(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=-1)


class AddOne(nn.Module):
    """`x + 1`: a call that does almost nothing, so its time is the call path's overhead."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


class MaxLastDim(nn.Module):
    """Max over the last dimension, values only (KernelBench writes `torch.max(x, dim)[0]`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.max(x, dim=-1)[0]


# --------------------------------------------------------------------------- workloads


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    group: str  # "model" or "op"
    description: str
    factory: Callable[[], tuple[nn.Module, list[torch.Tensor]]]
    flops: float | None = None  # per call, 2 x multiply-adds
    is_matmul: bool = False

    def build(self) -> tuple[nn.Module, list[torch.Tensor]]:
        """The model (eval mode) and its inputs, from the fixed seed."""
        torch.manual_seed(SEED)
        model, inputs = self.factory()
        return model.eval(), inputs


def _example(name: str) -> Callable[[], tuple[nn.Module, list[torch.Tensor]]]:
    def factory():
        problem = load_model_file(EXAMPLES_DIR / f"{name}.py", seed=SEED)
        return problem.model, list(problem.inputs)

    return factory


def _linear_flops(*layers: tuple[int, int], rows: int) -> float:
    return float(sum(2 * rows * k * n for k, n in layers))


def matmul_workload(m: int, k: int, n: int) -> Workload:
    return Workload(
        f"matmul_{m}x{k}x{n}",
        "op",
        f"A[{m},{k}] @ B[{k},{n}], fp32, both operands inputs",
        lambda: (Matmul(), [torch.randn(m, k), torch.randn(k, n)]),
        flops=2.0 * m * n * k,
        is_matmul=True,
    )


def _conv_flops(n: int, c_in: int, c_out: int, h: int, w: int, kh: int = 3, kw: int = 3) -> float:
    return 2.0 * n * c_out * h * w * c_in * kh * kw


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "mlp",
        "model",
        "examples/mlp.py: 3 linear layers 256-512-512-128, ReLU/GELU, batch 64",
        _example("mlp"),
        flops=_linear_flops((256, 512), (512, 512), (512, 128), rows=64),
    ),
    Workload(
        "cnn",
        "model",
        "examples/cnn.py: 2 conv (3x3) + BN + ReLU + maxpool, linear head; 8x3x32x32",
        _example("cnn"),
    ),
    Workload(
        "attention",
        "model",
        "bench/workloads.py Attention: 4 heads, d_model 128; 4x64x128",
        lambda: (Attention(), [torch.randn(4, 64, 128)]),
    ),
    Workload(
        "transformer",
        "model",
        "examples/transformer_block.py: pre-norm layer, 4 heads, d 128, ff 512; 4x64x128",
        _example("transformer_block"),
    ),
    matmul_workload(64, 256, 512),
    matmul_workload(256, 1024, 1024),
    matmul_workload(128, 4096, 1024),
    matmul_workload(1024, 1024, 1024),
    Workload(
        "conv2d",
        "op",
        "3x3 conv, 32->64 channels, padding 1, bias; 8x32x32x32 (NCHW)",
        lambda: (Conv2d(32, 64), [torch.randn(8, 32, 32, 32)]),
        flops=_conv_flops(8, 32, 64, 32, 32),
    ),
    Workload(
        "softmax",
        "op",
        "softmax over the last dim; 64x4096",
        lambda: (Softmax(), [torch.randn(64, 4096)]),
    ),
    Workload(
        "layernorm",
        "op",
        "LayerNorm(1024) with affine; 128x1024",
        lambda: (LayerNorm(1024), [torch.randn(128, 1024)]),
    ),
    Workload(
        "sum",
        "op",
        "sum over the last dim; 256x4096",
        lambda: (SumLastDim(), [torch.randn(256, 4096)]),
    ),
    Workload(
        "max",
        "op",
        "max over the last dim (values); 256x4096",
        lambda: (MaxLastDim(), [torch.randn(256, 4096)]),
    ),
)

BY_NAME = {w.name: w for w in WORKLOADS}
QUICK = ("mlp", "matmul_64x256x512")


def get(name: str) -> Workload:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown workload '{name}'; known: {', '.join(BY_NAME)}") from None
