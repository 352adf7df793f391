"""A three-layer MLP (fp32, batch 64), in the KernelBench model-file convention."""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, d_in: int = 256, d_hidden: int = 512, d_out: int = 128):
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_hidden)
        self.fc3 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.nn.functional.gelu(self.fc2(x))
        return self.fc3(x)


def get_inputs():
    return [torch.randn(64, 256)]


def get_init_inputs():
    return []
