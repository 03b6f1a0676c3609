"""Where the points a density model learns from come from: a named cloud, a file, or a drawing.

A :class:`PointSource` hands out training batches and held-out points:
- a named cloud (``odeviz.data.clouds.point_cloud``) is drawn once as 100 000 points, standardised together,
  of which ``HELD_OUT_POINTS`` are held out: batches come from a pool far larger than any training run
  sees, and every point shares one standardisation;
- a file of N×2 points (``.npy`` or ``.csv``) is split once, 90 % to draw batches from, 10 % held out;
- points drawn in the browser describe a density by themselves only as a kernel estimate: each batch
  picks drawn points and jitters them with a Gaussian of std ``DRAWN_BANDWIDTH``.

Files and drawings are checked before use; every refusal is a ValueError whose message says what
was wrong in words a user can act on.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from .clouds import point_cloud
from .files import check_size, read_user_file

# The named 2-D densities (all generated in code), in the order a menu shows them.
DENSITY_TARGETS = ("moons", "circles", "rings", "8gaussians", "pinwheel", "spirals", "checkerboard", "swissroll")
TARGET_NOISE = {"moons": 0.05, "circles": 0.05, "rings": 0.04, "8gaussians": 0.1, "pinwheel": 0.3,
                "spirals": 0.05, "checkerboard": 0.0, "swissroll": 0.3}
MIN_POINTS = 10
DRAWN_BANDWIDTH = 0.15  # std of the jitter around drawn points, in the drawing's units
HELD_OUT_FRACTION = 0.1
CLOUD_POINTS, HELD_OUT_POINTS = 100_000, 5_000


def check_points(points, what: str = "the data") -> np.ndarray:
    """``points`` as a float64 (N, 2) array, or a ValueError saying what is wrong with them."""
    array = np.asarray(points)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{what} must be numbers; found values of type {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{what} is empty: a density needs at least {MIN_POINTS} points")
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(
            f"{what} must be an N×2 array of points (x, y); got a {array.ndim}-D array of shape {array.shape}"
        )
    array = array.astype(np.float64)
    bad = ~np.isfinite(array).all(1)
    if bad.any():
        raise ValueError(f"{what} contains NaN or infinite values in {bad.sum()} of {len(array)} rows (first: row {np.argmax(bad)})")
    if len(array) < MIN_POINTS:
        raise ValueError(f"{what} has {len(array)} point{'s' if len(array) != 1 else ''}; a density needs at least {MIN_POINTS}")
    if np.ptp(array, axis=0).max() == 0:
        raise ValueError(f"{what}: all {len(array)} points are the same; a density needs some spread")
    return array


def parse_points(content: bytes, filename: str) -> np.ndarray:
    """Points from the bytes of a ``.npy`` or ``.csv`` file (a header line in a CSV is skipped)."""
    what = f"file {Path(filename).name!r}"
    check_size(len(content), what)
    if not content.strip():
        raise ValueError(f"{what} is empty: a density needs at least {MIN_POINTS} points")
    suffix = Path(filename).suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(io.BytesIO(content), allow_pickle=False)
        except ValueError as error:  # also raised for pickled (object) arrays, which are never loaded
            raise ValueError(f"{what} is not a numeric .npy array ({error})") from None
    elif suffix == ".csv":
        text = content.decode("utf-8", errors="replace")
        array = None
        for header_rows in (0, 1):
            try:
                array = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=header_rows, ndmin=2)
                break
            except ValueError as error:
                problem = str(error)
        if array is None:
            raise ValueError(f"{what} has non-numeric values: {problem}")
        if array.shape[1] == 1:  # one value per row: a 1-D column of numbers
            array = array[:, 0]
    else:
        raise ValueError(f"{what} must be a .npy or .csv file of N×2 points, not {suffix or 'a file without extension'}")
    return check_points(array, what)


def read_points(path) -> np.ndarray:
    """Points from a ``.npy`` or ``.csv`` file on disk (its size is checked before it is read)."""
    return read_user_file(path, parse_points)


class PointSource:
    """Training batches and held-out points of one target (see the module docstring)."""

    def __init__(self, target: str, points: np.ndarray | None = None, seed: int = 0) -> None:
        self.target = target
        self._rng = np.random.default_rng(seed)
        if target in DENSITY_TARGETS:
            cloud = point_cloud(target, CLOUD_POINTS, TARGET_NOISE[target], seed=seed)[0]
            self._pool, self._held_out = cloud[HELD_OUT_POINTS:], cloud[:HELD_OUT_POINTS]
        elif target == "file":
            if points is None:
                raise ValueError("no file loaded: choose a .npy or .csv file of N×2 points first")
            points = check_points(points, "the loaded file")
            order = self._rng.permutation(len(points))
            held = max(1, int(HELD_OUT_FRACTION * len(points)))
            self._held_out, self._pool = points[order[:held]], points[order[held:]]
        elif target == "drawn":
            if points is None:
                raise ValueError(f"nothing drawn yet: draw at least {MIN_POINTS} points on the target plot")
            self._pool = check_points(points, "the drawing")
            self._held_out = self._jitter(self._pool[np.random.default_rng(seed + 1).integers(len(self._pool), size=HELD_OUT_POINTS)],
                                          np.random.default_rng(seed + 2))
        else:
            raise ValueError(f"target {target!r} is unknown; choose one of {', '.join((*DENSITY_TARGETS, 'file', 'drawn'))}")

    def _jitter(self, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return points + DRAWN_BANDWIDTH * rng.standard_normal(points.shape) if self.target == "drawn" else points

    def sampler_state(self) -> str:
        """Where the batches have got to (JSON: the generator's 128-bit numbers, as text)."""
        return json.dumps(self._rng.bit_generator.state)

    def set_sampler_state(self, state: str) -> None:
        self._rng.bit_generator.state = json.loads(state)

    def batch(self, n: int) -> np.ndarray:
        return self._jitter(self._pool[self._rng.integers(len(self._pool), size=n)], self._rng)

    def held_out(self) -> np.ndarray:
        """Points never trained on: held out of the cloud or the file, or fresh jitter around a drawing."""
        return self._held_out

    @property
    def pool(self) -> np.ndarray:
        return self._pool
