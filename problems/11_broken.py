"""get_init_inputs() raises. Expected status: error, with a one-line reason."""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def get_inputs():
    return [torch.randn(4, 8)]


def get_init_inputs():
    raise RuntimeError("this problem is broken on purpose")
