"""The four models of the paper's Table 1, scaled to the images at hand.

Following the paper (§3, and torchdiffeq's ``odenet_mnist.py`` that produced its numbers):
- **MLP**: one hidden layer of 300 units.
- **ResNet**: a convolutional stem that downsamples the image (twice for 28×28 MNIST to 7×7, once for
  8×8 digits to 4×4), six residual blocks (GroupNorm, ReLU, 3×3 conv, twice), then a read-out
  (GroupNorm, ReLU, global average pooling, a linear layer to the ten classes).
- **ODE-Net**: the same stem and read-out around ONE block, the vector field f(t, h) — the residual
  block with the time t as an extra input channel of each convolution — integrated from t = 0 to 1
  by an adaptive solver (dopri5) and trained by the adjoint method.
- **RK-Net**: the ODE-Net's architecture integrated by fixed-step RK4, backpropagating through the
  solver's operations.

Their parameter counts follow from the channel count C (see :func:`parameter_count`).
"""
from __future__ import annotations

import torch
from torch import nn

from ..numerics.solve import Solution, SolveStats, solve

MLP_HIDDEN = 300
RESNET_BLOCKS = 6
CLASSES = 10
SMALLEST_FEATURE_SIDE = 7  # downsample by 2 while the feature map is larger (MNIST: 28 → 14 → 7)


def downsamplings(side: int) -> int:
    """How many stride-2 convolutions take a side×side image to a feature map of side ≤ 7."""
    count = 0
    while side > SMALLEST_FEATURE_SIDE:
        side = (side + 1) // 2
        count += 1
    return count


def feature_side(side: int) -> int:
    for _ in range(downsamplings(side)):
        side = (side + 1) // 2
    return side


def norm(channels: int) -> nn.GroupNorm:
    # Two channels per group, as the paper's 64 channels in 32 groups.
    return nn.GroupNorm(max(1, channels // 2), channels)


def stem(channels: int, side: int) -> nn.Sequential:
    """1 → C channels by a 3×3 convolution, then stride-2 4×4 convolutions down to side ≤ 7."""
    layers: list[nn.Module] = [nn.Conv2d(1, channels, 3, 1, 1)]
    for _ in range(downsamplings(side)):
        layers += [norm(channels), nn.ReLU(), nn.Conv2d(channels, channels, 4, 2, 1)]
    return nn.Sequential(*layers)


def readout(channels: int) -> nn.Sequential:
    return nn.Sequential(norm(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, CLASSES))


class MLP(nn.Module):
    """Pixels → 300 ReLU units → 10 logits."""

    def __init__(self, pixels: int, hidden: int = MLP_HIDDEN) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(pixels, hidden), nn.ReLU(), nn.Linear(hidden, CLASSES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class ResidualBlock(nn.Module):
    """h + conv(relu(norm(conv(relu(norm(h)))))), 3×3 convolutions without bias (norm follows)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            norm(channels), nn.ReLU(), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            norm(channels), nn.ReLU(), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.branch(h)


class ConvResNet(nn.Module):
    """Stem, ``blocks`` residual blocks with their own weights, read-out."""

    def __init__(self, channels: int, side: int, blocks: int = RESNET_BLOCKS) -> None:
        super().__init__()
        self.stem = stem(channels, side)
        self.blocks = nn.ModuleList(ResidualBlock(channels) for _ in range(blocks))
        self.readout = readout(channels)

    def hidden_states(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The feature map after the stem and after each block: depth 0 … L."""
        states = [self.stem(images)]
        for block in self.blocks:
            states.append(block(states[-1]))
        return states

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.readout(self.hidden_states(images)[-1])


class TimeConv(nn.Module):
    """A 3×3 convolution that also sees the time t as a constant extra input channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels + 1, channels, 3, 1, 1)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([torch.ones_like(h[:, :1]) * t, h], dim=1))


class ConvField(nn.Module):
    """f(t, h): the residual block's branch as a vector field on feature maps."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = norm(channels), TimeConv(channels)
        self.norm2, self.conv2 = norm(channels), TimeConv(channels)
        self.norm3 = norm(channels)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        h = self.conv1(t, torch.relu(self.norm1(h)))
        h = self.conv2(t, torch.relu(self.norm2(h)))
        return self.norm3(h)


class ODENet(nn.Module):
    """Stem, one continuous block dh/dt = f(t, h) on [0, 1], read-out. How to solve is the caller's:
    dopri5 with the adjoint makes the paper's ODE-Net, fixed-step RK4 without it the RK-Net."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        self.stem = stem(channels, side)
        self.field = ConvField(channels)
        self.readout = readout(channels)

    def solve(self, images: torch.Tensor, times=(0.0, 1.0), **solver) -> Solution:
        """The feature map at each of ``times``; ``solver`` goes to :func:`odeviz.solve`."""
        return solve(self.field, self.stem(images), times, **solver)

    def forward(self, images: torch.Tensor, **solver) -> tuple[torch.Tensor, SolveStats]:
        """Logits and the cost of the solve."""
        ys, stats = self.solve(images, **solver)
        return self.readout(ys[-1]), stats


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
