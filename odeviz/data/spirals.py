"""Irregularly sampled time series for the latent ODE (the paper's Section 5): spirals, or a file.

Spirals follow torchdiffeq's ``examples/latent_ode.py``: two Archimedean spirals on a dense grid of
``DENSE_POINTS`` times over [0, 6π] (one clockwise, r = 50 b / (6π + 1 - θ); one counter-clockwise,
r = b θ; b = 0.3), each series the one or the other (half and half) seen through a window of
``WINDOW`` grid points that starts at a random offset. Unlike the example, which keeps every grid
point, a series is observed at ``n`` random distinct grid times of its window (irregular sampling),
with Gaussian noise of std 0.3; the ``WINDOW`` grid points after the window are its held-out
continuation, where predictions are scored at ``n`` further random times against the noise-free
curve. Every series' clock starts at its window's start: t = 0 is where z₀ lives.

A file holds the user's own series in long form, one row per observation: ``series,t,x1,x2,…``
(CSV, a header row allowed) or an ``.npz`` with arrays ``series`` (N,), ``t`` (N,) and ``x`` (N, D).
Each series' first half of points is observed, the rest held out. Refusals are ValueErrors naming
the file and what is wrong with it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .files import check_size, read_user_file

DENSE_POINTS, STOP = 1000, 6 * np.pi  # the example's grid: 1000 times over [0, 6π]
WINDOW = 100  # grid points in an observed window (and in its held-out continuation)
SPIRAL_B, NOISE_STD = 0.3, 0.3
SPIRALS, TEST_SHARE = 1000, 0.2
OBSERVATION_PRESETS = (30, 50, 100)  # the paper's Table 2 columns
MIN_OBSERVATIONS, MAX_OBSERVATIONS = 10, WINDOW
MIN_SERIES_POINTS = 4  # two observed, two held out


@dataclass(frozen=True)
class SeriesSet:
    """Series padded to rectangles: row s holds ``*_count[s]`` valid entries from the left (the rest
    repeat the last valid one). Times are relative to each series' start; observations end at
    ``observed_until[s]``, the held-out continuation comes after."""

    obs_t: np.ndarray  # (S, L) observation times, strictly increasing
    obs_x: np.ndarray  # (S, L, D) noisy observations
    obs_count: np.ndarray  # (S,)
    future_t: np.ndarray  # (S, M) times where predictions are scored
    future_x: np.ndarray  # (S, M, D) noise-free values there
    future_count: np.ndarray  # (S,)
    curve_t: np.ndarray  # (S, K) the true curve, for display
    curve_x: np.ndarray  # (S, K, D)
    curve_count: np.ndarray  # (S,)
    observed_until: np.ndarray  # (S,) end of each observed window
    name: str = "spirals"

    def __len__(self) -> int:
        return len(self.obs_t)

    @property
    def dim(self) -> int:
        return self.obs_x.shape[2]

    @property
    def window(self) -> float:
        """The longest observed window: the length the extrapolation horizon is measured in."""
        return float(self.observed_until.max())

    def subset(self, indices) -> "SeriesSet":
        indices = np.asarray(indices)
        rows = {name: getattr(self, name)[indices] for name in ROW_FIELDS}
        return replace(self, **rows)

    def observations(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Series ``index``'s observation times (L,) and values (L, D), without padding."""
        count = self.obs_count[index]
        return self.obs_t[index, :count], self.obs_x[index, :count]

    def split(self, test_share: float = TEST_SHARE, seed: int = 0) -> tuple["SeriesSet", "SeriesSet"]:
        """(train, test): a random ``test_share`` of the series (at least one) held out."""
        order = np.random.default_rng(seed).permutation(len(self))
        test = max(1, int(round(test_share * len(self))))
        return self.subset(np.sort(order[test:])), self.subset(np.sort(order[:test]))


ROW_FIELDS = ("obs_t", "obs_x", "obs_count", "future_t", "future_x", "future_count", "curve_t", "curve_x",
              "curve_count", "observed_until")


def spiral_templates() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dense grid (T,) and the clockwise and counter-clockwise spirals on it, (T, 2) each."""
    times = np.linspace(0.0, STOP, DENSE_POINTS)
    theta_cw = STOP + 1.0 - times
    radius_cw = SPIRAL_B * 50.0 / theta_cw
    clockwise = np.stack([radius_cw * np.cos(theta_cw) - 5.0, radius_cw * np.sin(theta_cw)], 1)
    radius_cc = SPIRAL_B * times
    counter = np.stack([radius_cc * np.cos(times) + 5.0, radius_cc * np.sin(times)], 1)
    return times, clockwise, counter


def spirals(observations: int = 30, count: int = SPIRALS, seed: int = 0, noise_std: float = NOISE_STD) -> SeriesSet:
    """``count`` spirals, each observed at ``observations`` irregular times of its window."""
    if not MIN_OBSERVATIONS <= observations <= MAX_OBSERVATIONS:
        raise ValueError(f"observations per series must be from {MIN_OBSERVATIONS} to {MAX_OBSERVATIONS}, not {observations}")
    rng = np.random.default_rng(seed)
    times, clockwise, counter = spiral_templates()
    local = times[: 2 * WINDOW]  # a window and its continuation, on each series' own clock
    # As in the example: windows do not start in the first WINDOW grid points; here they also leave
    # room for the continuation.
    starts = rng.integers(WINDOW, DENSE_POINTS - 2 * WINDOW, size=count)
    turns = rng.random(count) > 0.5  # counter-clockwise or clockwise, half and half
    obs_t, obs_x, future_t, future_x, curves = [], [], [], [], []
    for start, counter_clockwise in zip(starts, turns):
        curve = (counter if counter_clockwise else clockwise)[start : start + 2 * WINDOW]
        seen = np.sort(rng.choice(WINDOW, size=observations, replace=False))
        later = WINDOW + np.sort(rng.choice(WINDOW, size=observations, replace=False))
        obs_t.append(local[seen])
        obs_x.append(curve[seen] + noise_std * rng.standard_normal((observations, 2)))
        future_t.append(local[later])
        future_x.append(curve[later])
        curves.append(curve)
    full = lambda size: np.full(count, size)  # noqa: E731
    return SeriesSet(
        obs_t=np.array(obs_t), obs_x=np.array(obs_x), obs_count=full(observations),
        future_t=np.array(future_t), future_x=np.array(future_x), future_count=full(observations),
        curve_t=np.tile(local, (count, 1)), curve_x=np.array(curves), curve_count=full(2 * WINDOW),
        observed_until=full(local[WINDOW - 1]).astype(float), name=f"spirals ({observations} observations)",
    )


# ---- the user's own series --------------------------------------------------------------------
def _padded(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of different lengths as one rectangle, each padded with its last entry, and their counts."""
    width = max(len(row) for row in rows)
    counts = np.array([len(row) for row in rows])
    padded = np.stack([np.concatenate([row, np.repeat(row[-1:], width - len(row), axis=0)]) for row in rows])
    return padded, counts


def series_from_table(labels, t, x, what: str) -> SeriesSet:
    """A SeriesSet from long-form rows (series label, time, values), each series' first half observed."""
    labels, t, x = np.asarray(labels), np.asarray(t, dtype=float), np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[1] == 0:
        raise ValueError(f"{what} has no value columns: the columns must be series,t,x1[,x2,…]")
    if not (len(labels) == len(t) == len(x)):
        raise ValueError(f"{what}: series, t and x have different lengths ({len(labels)}, {len(t)}, {len(x)})")
    bad = ~(np.isfinite(t) & np.isfinite(x).all(1))
    if bad.any():
        raise ValueError(f"{what} contains NaN or infinite values in {bad.sum()} of {len(t)} rows (first: row {np.argmax(bad) + 1})")
    parts = {name: [] for name in ("obs_t", "obs_x", "future_t", "future_x", "curve_t", "curve_x")}
    names = list(dict.fromkeys(labels.tolist()))  # in order of first appearance
    if len(names) < 2:
        raise ValueError(f"{what} has {len(names)} series; at least 2 are needed (one to train on, one to test)")
    for name in names:
        rows = labels == name
        times, values = t[rows], x[rows]
        steps = np.diff(times)
        if (steps == 0).any():
            raise ValueError(f"{what}: series {name!r} has the time {times[1:][steps == 0][0]:g} twice")
        if (steps < 0).any():
            raise ValueError(f"{what}: the times of series {name!r} are not sorted (row order must follow time)")
        if len(times) < MIN_SERIES_POINTS:
            raise ValueError(f"{what}: series {name!r} has {len(times)} points; each series needs at least {MIN_SERIES_POINTS}")
        times = times - times[0]
        seen = (len(times) + 1) // 2
        parts["obs_t"].append(times[:seen])
        parts["obs_x"].append(values[:seen])
        parts["future_t"].append(times[seen:])
        parts["future_x"].append(values[seen:])
        parts["curve_t"].append(times)
        parts["curve_x"].append(values)
    obs_t, obs_count = _padded(parts["obs_t"])
    future_t, future_count = _padded(parts["future_t"])
    curve_t, curve_count = _padded(parts["curve_t"])
    return SeriesSet(
        obs_t=obs_t, obs_x=_padded(parts["obs_x"])[0], obs_count=obs_count,
        future_t=future_t, future_x=_padded(parts["future_x"])[0], future_count=future_count,
        curve_t=curve_t, curve_x=_padded(parts["curve_x"])[0], curve_count=curve_count,
        observed_until=obs_t[np.arange(len(obs_t)), obs_count - 1], name=what,
    )


def parse_series(content: bytes, filename: str) -> SeriesSet:
    """Series from the bytes of a ``.csv`` or ``.npz`` file (see the module docstring)."""
    what = f"file {Path(filename).name!r}"
    check_size(len(content), what)
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        rows = [line.split(",") for line in content.decode("utf-8", errors="replace").splitlines() if line.strip()]
        if rows and not _numeric(rows[0][1:]):
            rows = rows[1:]  # a header
        if not rows:
            raise ValueError(f"{what} is empty: expected rows of series,t,x1[,x2,…]")
        widths = {len(row) for row in rows}
        if len(widths) > 1:
            raise ValueError(f"{what}: rows have different numbers of columns ({', '.join(map(str, sorted(widths)))})")
        if widths.pop() < 3:
            raise ValueError(f"{what} has {len(rows[0])} column{'s' if len(rows[0]) > 1 else ''}; "
                             "the columns must be series,t,x1[,x2,…]")
        try:
            numbers = np.array([[float(value) for value in row[1:]] for row in rows])
        except ValueError as error:
            raise ValueError(f"{what} has a non-numeric time or value: {error}") from None
        labels = np.array([row[0].strip() for row in rows])
        return series_from_table(labels, numbers[:, 0], numbers[:, 1:], what)
    if suffix == ".npz":
        try:
            with np.load(io.BytesIO(content), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, EOFError, ValueError, AttributeError, TypeError) as error:  # not a zip archive
            raise ValueError(f"{what} is not a readable .npz archive of numbers ({error})") from None
        missing = {"series", "t", "x"} - set(arrays)
        if missing:
            raise ValueError(f"{what} lacks the array{'s' if len(missing) > 1 else ''} {', '.join(sorted(missing))} "
                             "(it needs series, t and x)")
        labels, t, x = arrays["series"], arrays["t"], arrays["x"]
        if x.ndim not in (1, 2) or not np.issubdtype(x.dtype, np.number) or not np.issubdtype(t.dtype, np.number):
            raise ValueError(f"{what}: t must be numbers (N,) and x numbers (N,) or (N, D)")
        return series_from_table(labels, t, x, what)
    raise ValueError(f"{what} must be a .csv or .npz file of series,t,x1,…, not {suffix or 'a file without extension'}")


def _numeric(values: list[str]) -> bool:
    try:
        [float(value) for value in values]
    except ValueError:
        return False
    return True


def read_series(path) -> SeriesSet:
    """Series from a ``.csv`` or ``.npz`` file on disk (its size is checked before it is read)."""
    return read_user_file(path, parse_series)
