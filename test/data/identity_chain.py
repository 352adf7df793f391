"""Test model (KernelBench format): a matmul, then 40 steps of (h + h) * 0.5, exactly the identity.

Room for a verified rewrite: the kernel without the steps is equivalent and much faster.
"""

import torch


class Model(torch.nn.Module):
    """A matmul followed by steps that are exactly the identity: room for a verified rewrite."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(64, 512))

    def forward(self, x):
        h = x @ self.w
        for _ in range(40):
            h = (h + h) * 0.5
        return h


def get_inputs():
    return [torch.randn(128, 64)]


def get_init_inputs():
    return []
