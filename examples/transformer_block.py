"""A pre-norm transformer block with multi-head self-attention (fp32), KernelBench convention."""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self, d_model: int = 128, n_heads: int = 4, d_ff: int = 512):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, s, h, d // h).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / (d // h) ** 0.5
        attn = torch.softmax(scores, dim=-1) @ v
        x = x + self.proj(attn.transpose(1, 2).reshape(b, s, d))
        return x + self.ff2(torch.nn.functional.gelu(self.ff1(self.norm2(x))))


def get_inputs():
    return [torch.randn(4, 64, 128)]


def get_init_inputs():
    return []
