"""The paper's generative half as an experiment: a CNF learns a 2-D density, planar flows beside it.

The CNF is trained by maximum likelihood (``odeviz.models.flows.CNF``); next to it a bank of planar flows
with K = 2, 8 and 32 layers learns the same target from the same batches (the paper's Figure 4 in
spirit), so the loss of each can be set against its capacity: K layers against M hidden units.
Snapshots carry what the page draws: the target, the model's log density, its samples, the density
transform at fractions 0 … 100 % of the generative flow (the paper's Figure 5), particle paths and the
field. Everything runs on the trainer's thread, so pictures cost training time: while training runs,
each kind of picture is redrawn no more often than keeps its measured cost under ``DISPLAY_SHARE`` of
the time (density grids, the heavy kind, also at most every ``HEAVY_PERIOD`` seconds and on a coarser
grid than when paused, on their own schedule; particles and the field at most every ``SNAPSHOT_PERIOD``
seconds, spaced by the trainer's ``snapshot_share``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import param
import torch
from torch import nn

from ..data.densities import DENSITY_TARGETS, PointSource, check_points, read_points
from ..models.flows import CNF, PlanarFlow
from ..models.saving import TrainedFlow
from ..numerics.config import SolverConfig
from ..numerics.solve import CancelToken
from .base import Experiment, Real, cosine_decay

PLANAR_BANK = (2, 8, 32)  # planar flows trained side by side: the capacity axis of Figure 4
FRACTIONS = np.linspace(0.0, 1.0, 11)  # of the generative flow, base (0) → data (1): density frames
PATH_FRACTIONS = np.linspace(0.0, 1.0, 41)  # particle paths (every 4th is a frame)
GRID_TRAINING, GRID_IDLE = 32, 48  # density grid cells per side while training / when paused
GRID_FIRST = 16  # a new model's first grids (a ninth of the paused ones' cost); the full ones follow at once
HEAVY_PERIOD = 3.0  # least seconds between density grids while training runs
SNAPSHOT_PERIOD = 0.3  # least seconds between the lighter pictures (particles, field) while training runs
DISPLAY_SHARE = 0.1  # of the training thread's time, at most, for each kind of picture while training runs
PARTICLES, TRAJECTORIES, FIELD_GRID = 1000, 48, 15
HELD_OUT_DISPLAY = 1000  # held-out points whose NLL the page shows
LR_FLOOR = 0.05  # of the learning rate, where its cosine decay ends
CAPACITY_SMOOTHING = 0.05  # weight of the newest iteration in the capacity chart's running NLL


@dataclass(frozen=True)
class CNFSnapshot:
    """Everything the CNF page draws, as numpy arrays in the data's units."""

    iteration: int
    target: str
    solver: SolverConfig  # of the display solves
    trace: str
    width: int
    planar_layers: int
    extent: tuple[float, float, float, float]  # x0, x1, y0, y1 of the square every 2-D plot shows
    target_points: np.ndarray  # (n, 2)
    fractions: np.ndarray  # (F,) of the generative flow at the density frames
    log_density: np.ndarray  # (F, G, G) CNF log p at each fraction, rows along y; [-1] is the model
    particles: np.ndarray  # (P, n, 2) base samples carried to each of path_fractions; [-1] are samples
    path_fractions: np.ndarray  # (P,)
    field_points: np.ndarray  # (Q, 2)
    field_velocity: np.ndarray  # (F, Q, 2) velocity of the generative flow, d x / d fraction
    planar_samples: np.ndarray  # (n, 2)
    planar_log_density: np.ndarray  # (G, G)
    held_out_nll: float  # CNF, on held-out points, at the display tolerance
    planar_held_out_nll: float
    nfe_density: int  # evaluations of the batched density solve
    density_solver: SolverConfig  # of the density grids and held-out NLL (a knob's change reaches them a moment later)
    density_version: int  # changes when the density grids (and planar pictures, held-out NLLs) are redrawn
    capacity: dict  # {"planar": (K values, NLL), "cnf": (M values, NLL)}

    @property
    def frame_of_path(self) -> np.ndarray:
        """Index into ``particles`` of each density frame."""
        return np.searchsorted(self.path_fractions, self.fractions - 1e-9)


class CNFExperiment(Experiment):
    """A continuous normalizing flow and planar flows learning one 2-D density."""

    target = param.Selector(default="moons", objects=[*DENSITY_TARGETS, "file", "drawn"],
                            doc="the density to learn: a named cloud, a loaded file, or points drawn on the page")
    points = param.Array(default=None, allow_None=True, doc="the points of a 'file' or 'drawn' target, (N, 2)")
    source_name = param.String(default="", doc="where the points came from (a file name), for labels")
    width = param.Integer(64, bounds=(1, 1024), doc="hidden units M per layer of the CNF's vector field")
    depth = param.Integer(2, bounds=(1, 6), doc="hidden layers of the CNF's vector field")
    trace = param.Selector(default="exact", objects=["exact", "hutchinson"],
                           doc="tr(∂f/∂z) exactly, or Hutchinson's one-sample estimate εᵀ(∂f/∂z)ε")
    batch_size = param.Integer(512, bounds=(16, 16384), doc="points per training batch")
    regularization = Real(0.01, bounds=(0.0, 10.0),
                          doc="weight of the kinetic energy ∫‖f‖² and Jacobian norm ∫‖∂f/∂z‖²_F (RNODE; 0 = off): "
                              "straighter, simpler flows that need fewer evaluations of f")
    compare_planar = param.Boolean(False, doc="train planar flows of K = 2, 8, 32 layers beside the CNF (slower; the page "
                                              "turns them on to compare)")
    planar_layers = param.Selector(default=8, objects=list(PLANAR_BANK), doc="K, the planar flow shown beside the CNF")
    learning_rate = Real(5e-2, doc="Adam's step size at the start (changes apply mid-training)")
    decay_iterations = param.Integer(
        1000, bounds=(0, 10_000_000),
        doc=f"iterations over which the learning rate falls along a cosine to {LR_FLOOR:.0%} of its value, then stays (0: constant)")
    # The fast default (benchmarks/bench_cnf.py): RNODE keeps the flow straight enough that four RK4
    # steps train it; pictures and measurements solve adaptively (see display_solver).
    method = param.Selector(default="rk4")
    fixed_steps = param.Integer(4)
    adjoint = param.Boolean(False)
    atol = Real(1e-5)
    restart_on = ("target", "points", "width", "depth", "trace", "regularization", "seed")
    snapshot_interval = SNAPSHOT_PERIOD
    snapshot_share = DISPLAY_SHARE  # of the light pictures; the density grids space themselves
    loss_params = ("compare_planar",)
    param_methods = ("use_points",)
    model_loss = "nll"

    def __init__(self, **params) -> None:
        # Seconds over which the learning rate decays (None: over decay_iterations only); a time-bounded
        # run (the CLI's --max-seconds) sets it, so its schedule ends when its time does.
        self.decay_seconds: float | None = None
        self._trained_seconds = 0.0
        self._capacity: dict = {}
        self._capacity_key = None
        self._density_version = 0  # never reset: a rebuilt model's first grids must differ from the last shown
        super().__init__(**params)

    # ---- data ---------------------------------------------------------------------------------
    def load_file(self, path) -> None:
        """Learn the points of a .npy or .csv file (ValueError with the reason if it cannot be used)."""
        points = read_points(path)
        self.param.update(points=points, source_name=Path(path).name, target="file")

    def use_points(self, points, what: str = "the drawing", target: str = "drawn", name: str = "") -> None:
        """Learn points given directly: drawn on the page (``target="drawn"``) or from a file's bytes."""
        points = check_points(points, what)
        self.param.update(points=points, source_name=name, target=target)

    # ---- the Experiment protocol ---------------------------------------------------------------
    def _build(self) -> None:
        # What the built models were made for; params may change before the next rebuild runs.
        self._target, self._trace, self._width = self.target, self.trace, self.width
        self.source = PointSource(self.target, self.points, self.seed)
        cnf = CNF(width=self.width, depth=self.depth, divergence=self.trace, regularize=self.regularization > 0)
        planar = nn.ModuleList(PlanarFlow(layers=k) for k in PLANAR_BANK)
        if self.target == "file":  # named clouds are standardised already, drawings are in the model's units
            pool = torch.as_tensor(self.source.pool, dtype=torch.float32)
            for flow in (cnf, *planar):
                flow.standardise.fit(pool)
        self.model = nn.ModuleDict({"cnf": cnf, "planar": planar}).to(self.device)
        key = (self.target, self.source_name, None if self.points is None else self.points.tobytes())
        if key != self._capacity_key:  # a new density: forget the capacity chart
            self._capacity_key, self._capacity = key, {"planar": {}, "cnf": {}}
        self._display_noise = torch.randn(PARTICLES, 2, generator=torch.Generator().manual_seed(self.seed))
        rng = np.random.default_rng(self.seed)
        pool = self.source.pool
        self._target_points = pool[rng.choice(len(pool), size=min(len(pool), 1500), replace=False)]
        # Named clouds are centred and drawings are made in the model's own ±3 square: keep the origin
        # in the middle (so the drawing canvas does not move); a file is framed where its points are.
        file = self.target == "file"
        self._extent = self._square_around(pool, np.median(pool, axis=0) if file else np.zeros(2), 0.0 if file else 3.0)
        self._heavy = None
        self._grids_owed = False  # the grids shown are for other display settings; a snapshot redraws them
        self._trained_seconds = 0.0

    def _loss(self, token: CancelToken):
        x = torch.as_tensor(self.source.batch(self.batch_size), dtype=torch.float32, device=self.device)
        cnf = self.model["cnf"]
        _, log_prob, parts, stats = cnf.normalise(x, solver=self.solver_config(), token=token)
        nll = -log_prob.mean()
        loss = nll
        scalars = {"nll": nll.item()}
        if cnf.dynamics.regularize:
            kinetic, jacobian = parts["kinetic"].mean(), parts["jacobian"].mean()
            loss = loss + self.regularization * (kinetic + jacobian)
            scalars.update(kinetic=kinetic.item(), jacobian=jacobian.item())
        if self.compare_planar:
            for k, flow in zip(PLANAR_BANK, self.model["planar"]):
                planar_nll = -flow.log_prob(x).mean()
                loss = loss + planar_nll
                scalars[f"nll_planar_{k}"] = planar_nll.item()
        return loss, scalars, stats

    def train_step(self, token: CancelToken) -> dict[str, float]:
        start = time.perf_counter()
        scalars = super().train_step(token)
        self._trained_seconds += time.perf_counter() - start
        self._record_capacity(scalars)  # only losses that were kept: a blow-up is rolled back, not charted
        return scalars

    def _extra_state(self) -> dict:
        return {"batches": self.source.sampler_state(), "capacity": self._capacity}

    def _load_extra_state(self, extra: dict) -> None:
        self.source.set_sampler_state(extra["batches"])
        self._capacity = extra["capacity"]

    def _learning_rate(self) -> float:
        """A large step first (it carries the flow past the plateau where it has learnt only part of the
        density), then a cosine decay to LR_FLOOR of it, which settles the NLL: over decay_iterations, or
        over decay_seconds of training if that ends first."""
        shares = []
        if self.decay_iterations:
            shares.append(self.trainer.iteration / self.decay_iterations)
        if self.decay_seconds:
            shares.append(self._trained_seconds / self.decay_seconds)
        return cosine_decay(self.learning_rate, max(shares, default=None), LR_FLOOR)

    def _record_capacity(self, scalars: dict) -> None:
        def smooth(table: dict, key: int, value: float) -> None:
            table[key] = value if key not in table else (1 - CAPACITY_SMOOTHING) * table[key] + CAPACITY_SMOOTHING * value

        smooth(self._capacity["cnf"], self._width, scalars["nll"])
        for k in PLANAR_BANK:
            if f"nll_planar_{k}" in scalars:
                smooth(self._capacity["planar"], k, scalars[f"nll_planar_{k}"])

    # ---- structural changes -------------------------------------------------------------------
    def _restart(self, *events) -> None:
        # A target that cannot be used (nothing drawn or loaded yet) is refused here, and the old one kept.
        try:
            PointSource(self.target, self.points, self.seed)
        except ValueError:
            with param.parameterized.discard_events(self):
                self.target = self._target
            raise
        super()._restart(*events)

    @param.depends("planar_layers", watch=True)
    def _redraw(self) -> None:
        self.trainer.refresh()

    def display_solver(self) -> SolverConfig:
        """Pictures and measurements solve adaptively at rtol/atol even when training takes fixed steps:
        a few RK4 steps are enough to train a regularised flow, not to show its density faithfully."""
        solver = super().display_solver()
        return solver if solver.steps is None else replace(solver, method="dopri5", steps=None)

    # ---- evaluation (saving is every experiment's: Experiment.save, read by odeviz.load too) ----
    def trained_flow(self) -> TrainedFlow:
        """The CNF as it is now, for evaluation from Python (float64, exact trace, tight tolerance)."""
        return TrainedFlow(self.model["cnf"], {"target": self._target, "source": self.source_name})

    def held_out_nll(self, **solver) -> dict[str, float]:
        """Mean negative log-likelihood (nats) of the held-out points under the CNF (float64, tight
        tolerance unless ``solver`` says otherwise) and under each planar flow."""
        points = self.source.held_out()
        result = {"cnf": float(-self.trained_flow().log_prob(points, **solver).mean())}
        with torch.no_grad():
            x = torch.as_tensor(points, dtype=torch.float32, device=self.device)
            for k, flow in zip(PLANAR_BANK, self.model["planar"]):
                result[f"planar_{k}"] = float(-flow.log_prob(x).mean())
        return result

    # ---- display ------------------------------------------------------------------------------
    @staticmethod
    def _square_around(points: np.ndarray, centre: np.ndarray, least: float) -> tuple[float, float, float, float]:
        """A square about ``centre`` (half-side at least ``least``) holding the data and most of the base
        density's mass, with a margin."""
        reach = np.quantile(np.abs(points - centre), 0.995, axis=0).max()
        half = max(1.2 * reach, 3.0 * points.std(), least)
        return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)

    def _grid(self, cells: int) -> torch.Tensor:
        """Cell centres of a cells × cells grid over the extent, row by row along y."""
        x0, x1, y0, y1 = self._extent
        xs = x0 + (np.arange(cells) + 0.5) * (x1 - x0) / cells
        ys = y0 + (np.arange(cells) + 0.5) * (y1 - y0) / cells
        gx, gy = np.meshgrid(xs, ys)
        return torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32, device=self.device)

    def _density_frames(self, token: CancelToken) -> dict:
        """The heavy pictures: log-density grids at every frame fraction, the planar density, held-out NLLs.
        Recomputed when the weights or solver changed; while training, only once the last computation is
        HEAVY_PERIOD s old and its cost, scaled to the number of cells, is at most DISPLAY_SHARE of the
        time since. The first grids after Train come HEAVY_PERIOD s in, whatever the paused grids cost:
        whoever pressed Train is watching for the density to move (spaced by cost, 20 s and more here)."""
        training = self.trainer.training
        cached = self._heavy
        # A new page (or a reset) shows its first picture at once, coarse (~0.2 s here, the paused
        # grids 2-3 s), and asks for the next at once: there the grids are of their full size.
        first = cached is None
        cells = GRID_FIRST if first else GRID_TRAINING if training else GRID_IDLE
        solver = self.display_solver()
        settings = (solver, self.planar_layers)
        if cached is not None and cached["settings"] != settings and not self._grids_owed \
                and (training or cached["version"] == self.weights_version):
            # A knob: the light pictures, re-solved, go out at once (tens of ms); the grids (seconds of
            # CPU paused, ~0.4 s while training) follow in the next snapshot, asked for at once.
            self._grids_owed = True
            self.trainer.refresh()
            return cached
        self._grids_owed = False
        if cached is not None and cached["settings"] == settings:
            if training and not cached["while_training"]:
                cached.update(when=time.monotonic(), while_training=True, cost=0.0)
            fresh = cached["version"] == self.weights_version and (training or cached["cells"] == cells)
            # The cost per cell: the grids while training have fewer cells than the paused ones before them.
            expected = cached["cost"] * (cells / cached["cells"]) ** 2
            if fresh or training and time.monotonic() - cached["when"] < max(HEAVY_PERIOD, expected / DISPLAY_SHARE):
                return cached
        start = time.monotonic()
        cnf, planar = self.model["cnf"], self.model["planar"][PLANAR_BANK.index(self.planar_layers)]
        grid = self._grid(cells)
        log_density, stats = cnf.densities_over_time(grid, FRACTIONS, solver=solver, token=token)
        held = torch.as_tensor(self.source.held_out()[:HELD_OUT_DISPLAY], dtype=torch.float32, device=self.device)
        self._heavy = {
            "settings": settings, "cells": cells, "while_training": training, "version": self.weights_version,
            "solver": solver,
            "log_density": log_density.reshape(len(FRACTIONS), cells, cells).cpu().numpy(),
            "nfe": stats.nfe_forward,
            "held_out_nll": float(-cnf.log_prob(held, solver=solver, token=token).mean()),
            "planar_log_density": planar.log_prob(grid).reshape(cells, cells).cpu().numpy(),
            "planar_samples": planar.sample(PARTICLES, generator=torch.Generator().manual_seed(self.seed)).cpu().numpy(),
            "planar_held_out_nll": float(-planar.log_prob(held).mean()),
        }
        finished = time.monotonic()
        self._heavy.update(when=finished, cost=finished - start)
        self._density_version += 1
        if first:
            self.trainer.refresh()
        return self._heavy

    def _field(self) -> tuple[np.ndarray, np.ndarray]:
        """Velocity of the generative flow, dx/d(fraction) = −T·scale·f(y, T(1 − fraction)), on a grid."""
        cnf = self.model["cnf"]
        x0, x1, y0, y1 = self._extent
        gx, gy = np.meshgrid(np.linspace(x0, x1, FIELD_GRID + 2)[1:-1], np.linspace(y0, y1, FIELD_GRID + 2)[1:-1])
        points = np.stack([gx.ravel(), gy.ravel()], 1)
        x = torch.as_tensor(points, dtype=torch.float32, device=self.device)
        y, _ = cnf.standardise(x)
        times = torch.as_tensor(np.repeat(cnf.horizon * (1.0 - FRACTIONS), len(points)), dtype=torch.float32)[:, None]
        velocity = -cnf.horizon * cnf.standardise.scale * cnf.field(times, y.repeat(len(FRACTIONS), 1))
        return points, velocity.reshape(len(FRACTIONS), len(points), 2).cpu().numpy()

    @torch.no_grad()
    def snapshot(self, token: CancelToken, iteration: int) -> CNFSnapshot:
        self.model.eval()
        cnf = self.model["cnf"]
        with self.trainer.spaced_separately():
            heavy = self._density_frames(token)
        solver = self.display_solver()
        particles, _ = cnf.generate(self._display_noise.to(self.device), PATH_FRACTIONS, solver=solver, token=token)
        field_points, field_velocity = self._field()
        return CNFSnapshot(
            iteration=iteration,
            target=self.source_name or self._target,
            solver=solver,
            trace=self._trace,
            width=self._width,
            planar_layers=self.planar_layers,
            extent=self._extent,
            target_points=self._target_points,
            fractions=FRACTIONS,
            log_density=heavy["log_density"],
            particles=particles.cpu().numpy(),
            path_fractions=PATH_FRACTIONS,
            field_points=field_points,
            field_velocity=field_velocity,
            planar_samples=heavy["planar_samples"],
            planar_log_density=heavy["planar_log_density"],
            held_out_nll=heavy["held_out_nll"],
            planar_held_out_nll=heavy["planar_held_out_nll"],
            nfe_density=heavy["nfe"],
            density_solver=heavy["solver"],
            density_version=self._density_version,
            capacity={name: (np.array(sorted(table)), np.array([table[k] for k in sorted(table)]))
                      for name, table in self._capacity.items()},
        )
