"""Square-ish matrix multiplication: C = A @ B with A 256x192, B 192x256."""

import torch
from torch import nn

M, K, N = 256, 192, 256


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A, B)


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []
