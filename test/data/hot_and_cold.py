"""Test model (KernelBench format): a hot kernel with room for a verified rewrite, then a cold one without.

`x @ w1` followed by 40 steps of (h + h) * 0.5 (exactly the identity) is one
kernel that a rewrite dropping the steps makes several times faster; the
final `@ w2` is a plain matmul that no rewrite touches. The end-to-end gain
is therefore bounded by the hot kernel's share of the model's time.
"""

import torch


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.randn(64, 512))
        self.w2 = torch.nn.Parameter(torch.randn(512, 64) / 512**0.5)

    def forward(self, x):
        h = x @ self.w1
        for _ in range(40):
            h = (h + h) * 0.5
        return torch.relu(h) @ self.w2


def get_inputs():
    return [torch.randn(128, 64)]


def get_init_inputs():
    return []
