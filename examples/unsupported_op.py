"""An MLP with an operator torch-mlir cannot lower (erfinv) in the middle.

Through `torch.compile(backend="mlirforge")` the two linear stages are compiled
and erfinv runs in eager PyTorch between them (one warning names it). The
driver, whose artifacts run without PyTorch, refuses it with an error naming
`aten.erfinv`.
"""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, d: int = 128):
        super().__init__()
        self.encode = nn.Linear(d, d)
        self.decode = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.tanh(self.encode(x)) * 0.99  # in (-1, 1), the domain of erfinv
        return self.decode(torch.erfinv(u))  # a Gaussianising transform


def get_inputs():
    return [torch.randn(32, 128)]


def get_init_inputs():
    return []
