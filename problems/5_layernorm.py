"""LayerNorm over the last dimension (256, with affine weights) of a 16x128x256 tensor."""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, normalized_shape: int):
        super().__init__()
        self.norm = nn.LayerNorm(normalized_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def get_inputs():
    return [torch.randn(16, 128, 256)]


def get_init_inputs():
    return [256]
