"""Sum over dimension 1 (keepdim) of a 64x4096 tensor: a deep reduction."""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=self.dim, keepdim=True)


def get_inputs():
    return [torch.randn(64, 4096)]


def get_init_inputs():
    return [1]
