"""A two-layer MLP with GELU: 32x256 -> 1024 -> 256."""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.up = nn.Linear(d, hidden)
        self.down = nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(nn.functional.gelu(self.up(x)))


def get_inputs():
    return [torch.randn(32, 256)]


def get_init_inputs():
    return [256, 1024]
