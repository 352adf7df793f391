"""Adds fresh uniform noise (torch.rand) inside forward.

Every call draws new random numbers, so the compiled output cannot equal the
eager reference. Expected status: mismatch (not error): the runner must
report the difference, with its max abs error.
"""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand(x.shape, dtype=x.dtype)


def get_inputs():
    return [torch.randn(32, 64)]


def get_init_inputs():
    return []
