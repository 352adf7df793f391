"""Tall-skinny matrix multiplication: C = A @ B with A 4096x64, B 64x32."""

import torch
from torch import nn

M, K, N = 4096, 64, 32


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A, B)


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []
