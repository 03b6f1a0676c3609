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


# ---- 2-D point clouds: classification datasets (two classes) and density targets ----------------
# Each generator takes (rng, n, noise) and returns points (n, 2) and integer labels (n,). They are
# drawn at their natural scale and then standardised (zero mean, unit std over both axes), so every
# cloud fills about [-2.5, 2.5]² and a unit Gaussian base density is a fair start for a flow.


def _moons(rng, n, noise):
    labels = rng.integers(0, 2, n)
    angle = rng.uniform(0.0, np.pi, n)
    x = np.where(labels == 0, np.cos(angle), 1.0 - np.cos(angle))
    y = np.where(labels == 0, np.sin(angle), 0.5 - np.sin(angle))
    return np.stack([x, y], 1) + noise * rng.standard_normal((n, 2)), labels


def _circles(rng, n, noise):
    labels = rng.integers(0, 2, n)
    angle = rng.uniform(0.0, 2 * np.pi, n)
    radius = np.where(labels == 0, 1.0, 0.5)
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    return points + noise * rng.standard_normal((n, 2)), labels


def _spirals(rng, n, noise):
    labels = rng.integers(0, 2, n)
    turn = np.sqrt(rng.uniform(0.0, 1.0, n)) * 3 * np.pi  # uniform density along the arm
    angle = turn + np.pi * labels
    points = np.stack([turn * np.cos(angle), turn * np.sin(angle)], 1) / (3 * np.pi)
    return points + noise * rng.standard_normal((n, 2)), labels


def _checkerboard(rng, n, noise):
    # A 4×4 board; class = colour of the square. With noise 0 the classes touch only at edges.
    points = rng.uniform(-2.0, 2.0, (n, 2))
    labels = (np.floor(points[:, 0]) + np.floor(points[:, 1])).astype(int) % 2
    return points + noise * rng.standard_normal((n, 2)), labels


def _xor(rng, n, noise):
    points = rng.uniform(-1.0, 1.0, (n, 2))
    labels = ((points[:, 0] > 0) != (points[:, 1] > 0)).astype(int)
    return points + noise * rng.standard_normal((n, 2)), labels


def _rings(rng, n, noise):
    labels = rng.integers(0, 4, n)
    angle = rng.uniform(0.0, 2 * np.pi, n)
    radius = (labels + 1) / 4.0
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    return points + noise * rng.standard_normal((n, 2)), labels


def _eight_gaussians(rng, n, noise):
    labels = rng.integers(0, 8, n)
    angle = labels * np.pi / 4
    centres = np.stack([np.cos(angle), np.sin(angle)], 1)
    return centres + max(noise, 1e-3) * rng.standard_normal((n, 2)), labels


def _pinwheel(rng, n, noise):
    # Five curved arms (after Johnson et al., "Composing graphical models with neural networks").
    labels = rng.integers(0, 5, n)
    radial = 1.0 + 0.3 * rng.standard_normal(n)
    tangential = max(noise, 1e-3) * 2 * rng.standard_normal(n)
    angle = labels * 2 * np.pi / 5 + 0.25 * np.exp(radial)
    x, y = radial * np.cos(angle) - tangential * np.sin(angle), radial * np.sin(angle) + tangential * np.cos(angle)
    return np.stack([x, y], 1), labels


def _swissroll(rng, n, noise):
    turn = 1.5 * np.pi * (1 + 2 * rng.uniform(0.0, 1.0, n))
    points = np.stack([turn * np.cos(turn), turn * np.sin(turn)], 1) / 10.0
    labels = (turn > 3 * np.pi).astype(int)
    return points + noise * rng.standard_normal((n, 2)), labels


POINT_CLOUDS = {
    "moons": _moons,
    "circles": _circles,
    "spirals": _spirals,
    "xor": _xor,
    "checkerboard": _checkerboard,
    "rings": _rings,
    "8gaussians": _eight_gaussians,
    "pinwheel": _pinwheel,
    "swissroll": _swissroll,
}
# The two-class ones, for the classifier.
CLASSIFICATION_DATASETS = ("moons", "circles", "spirals", "xor", "checkerboard")


def point_cloud(name: str, n: int, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points of the named 2-D cloud, standardised, and their labels (class or mixture component).

    ``noise`` is the std of Gaussian jitter in the cloud's natural units (before standardising).
    """
    if name not in POINT_CLOUDS:
        raise ValueError(f"dataset {name!r} is unknown; choose one of {', '.join(POINT_CLOUDS)}")
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"the number of points must be an integer of at least 2, got {n!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number ≥ 0, got {noise!r}")
    points, labels = POINT_CLOUDS[name](np.random.default_rng(seed), int(n), float(noise))
    points = points - points.mean(0)
    points = points / points.std()
    return points.astype(np.float64), labels.astype(np.int64)
