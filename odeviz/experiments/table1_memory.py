"""Table 1's memory column against depth: the bytes of activations one training batch keeps for the
backward pass, for a ResNet of L blocks, an RK-Net of L̃ RK4 steps and the ODE-Net with the adjoint at
the same L̃ steps (the paper's O(L), O(L̃) and O(1)). They depend on the architectures and the batch's
shape only, not on any weights, so each sweep is measured once per process."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..models.table1 import ODENet, ConvResNet
from ..numerics.config import SolverConfig
from ..numerics.memory import saved_activation_bytes

MEMORY_DEPTHS = np.array([1, 2, 4, 6, 8, 12, 16])  # L and L̃ of the memory sweep


@dataclass(frozen=True)
class MemorySweep:
    """Bytes of activations kept for backward on one training batch, against depth L / steps L̃."""

    depths: np.ndarray
    resnet: np.ndarray
    rknet: np.ndarray
    odenet_adjoint: np.ndarray
    batch_size: int



@functools.lru_cache(maxsize=8)
def measure_memory_sweep(channels: int, side: int, shape: tuple, dtype: torch.dtype, device: str) -> MemorySweep:
    images = torch.zeros(shape, dtype=dtype, device=device)  # bytes kept depend on shapes, not values

    def measured(build, forward) -> np.ndarray:
        values = []
        for depth in MEMORY_DEPTHS:
            model = build(int(depth)).to(device)
            values.append(saved_activation_bytes(lambda m=model, d=int(depth): forward(m, d), model.parameters())[1])
        values = np.array(values, dtype=float)
        values.setflags(write=False)  # one sweep is shared by every experiment of this architecture
        return values

    def through_solver(adjoint: bool):
        return lambda model, steps: model(images, solver=SolverConfig("rk4", steps=steps, adjoint=adjoint))

    with torch.random.fork_rng():  # fresh untrained models: they must not move the experiment's random state
        return MemorySweep(
            depths=MEMORY_DEPTHS.copy(),
            resnet=measured(lambda depth: ConvResNet(channels, side, depth), lambda model, _: model(images)),
            rknet=measured(lambda _: ODENet(channels, side), through_solver(False)),
            odenet_adjoint=measured(lambda _: ODENet(channels, side), through_solver(True)),
            batch_size=shape[0],
        )
