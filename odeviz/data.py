"""Datasets generated in code (nothing is downloaded)."""
from __future__ import annotations

import numpy as np

# Scalar maps g: [-1, 1] -> R for the continuity task.
CONTINUITY_TARGETS = {
    # A smooth monotone map (x³ scaled, plus a linear term so that it stays a diffeomorphism).
    "cubic": lambda x: 0.5 * x + x**3,
    # A 1-D ODE flow cannot represent it: trajectories in one dimension cannot cross.
    "reflection": lambda x: -x,
}


def continuity_data(target: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n inputs drawn uniformly from [-1, 1] and their images under the named target map."""
    if target not in CONTINUITY_TARGETS:
        raise ValueError(f"target {target!r} is unknown; choose one of {', '.join(CONTINUITY_TARGETS)}")
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, n)
    return x, CONTINUITY_TARGETS[target](x)
