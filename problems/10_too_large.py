"""A 131072x131072 fp32 linear layer: 64 GiB of weights.

Expected status: skipped, without allocating anything: the runner builds the
model on the `meta` device to estimate its size.
"""

import torch
from torch import nn

D = 131072


class Model(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.proj = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def get_inputs():
    return [torch.randn(1, D)]


def get_init_inputs():
    return [D]
