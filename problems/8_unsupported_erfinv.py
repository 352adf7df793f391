"""Linear -> tanh -> erfinv -> Linear; mlirforge cannot lower aten.erfinv.

Expected status: fell-back (the linear parts run in IREE, erfinv in eager
PyTorch, and the runner names aten.erfinv).
"""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.encode = nn.Linear(d, d)
        self.decode = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.tanh(self.encode(x)) * 0.99  # in (-1, 1), erfinv's domain
        return self.decode(torch.erfinv(u))


def get_inputs():
    return [torch.randn(16, 64)]


def get_init_inputs():
    return [64]
