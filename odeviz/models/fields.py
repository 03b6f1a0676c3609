"""Small networks: the ODE-Net's vector field f(t, h) and a ResNet of L residual blocks (FieldResNet).

The ResNet's block k computes h_{k+1} = h_k + Δ f(h_k, θ_k) with Δ = 1/L, so depth k maps onto
time t = k/L in [0, 1]: with shared weights and f evaluated at t_k this is exactly Euler's method,
which :func:`residual_rollout` makes literal.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


class VectorField(nn.Module):
    """f(t, h): an MLP of the state and the time, the dynamics of an ODE-Net."""

    def __init__(self, dim: int, width: int = 32, layers: int = 2) -> None:
        super().__init__()
        sizes = [dim + 1] + [width] * layers
        blocks: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            blocks += [nn.Linear(fan_in, fan_out), nn.Tanh()]
        blocks.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*blocks)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        # t is a scalar (a solve) or one time per row, shape (batch, 1) (a grid of the field).
        time_column = torch.ones_like(h[:, :1]) * t
        return self.net(torch.cat([h, time_column], dim=1))


def residual_rollout(block: Callable[[int, torch.Tensor], torch.Tensor], h0: torch.Tensor, steps: int) -> torch.Tensor:
    """States h_0 … h_L of h_{k+1} = h_k + Δ·block(k, h_k), Δ = 1/L, stacked as (L+1, *h0.shape).

    Δ is taken from the same time grid torchdiffeq's Euler uses, so a shared-weight block evaluated
    at t_k reproduces ``solve(..., method="euler")`` bit for bit.
    """
    grid = torch.linspace(0.0, 1.0, steps + 1, dtype=h0.dtype, device=h0.device)
    states = [h0]
    for k in range(steps):
        states.append(states[-1] + (grid[k + 1] - grid[k]) * block(k, states[-1]))
    return torch.stack(states)


class FieldResNet(nn.Module):
    """L residual blocks with their own weights θ_k, each a one-hidden-layer MLP of the state."""

    def __init__(self, dim: int, depth: int, width: int = 32) -> None:
        super().__init__()
        self.depth = depth
        self.w_in = nn.Parameter(torch.empty(depth, dim, width))
        self.b_in = nn.Parameter(torch.empty(depth, width))
        self.w_out = nn.Parameter(torch.empty(depth, width, dim))
        self.b_out = nn.Parameter(torch.empty(depth, dim))
        for weight, bias, fan_in in ((self.w_in, self.b_in, dim), (self.w_out, self.b_out, width)):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation, block by block
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def block(self, k: int, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(h @ self.w_in[k] + self.b_in[k]) @ self.w_out[k] + self.b_out[k]

    def forward(self, h0: torch.Tensor) -> torch.Tensor:
        """All L+1 hidden states, shape (L+1, batch, dim)."""
        return residual_rollout(self.block, h0, self.depth)
