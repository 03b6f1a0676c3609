"""A 2-D ODE-Net classifier: the network classifies by deforming the plane with a learned flow.

The input x ∈ R² (padded with ``augment`` zero dimensions, as in Augmented Neural ODEs) is carried by
dh/dt = f(h, t, θ) from t = 0 to 1; a linear read-out of h(1) gives the two class logits. An optional
penalty adds the kinetic energy ∫‖f‖² dt and the Jacobian norm ∫‖∂f/∂h‖²_F dt along the trajectories
("How to train your neural ODE", Finlay et al. 2020): straighter, simpler flows that cost fewer
evaluations of f.

Training runs in float32; everything that measures error against a tight tolerance uses a float64
copy (see :mod:`odeviz.experiments.figure3`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import param
import torch
from torch import nn

from ..data.clouds import CLASSIFICATION_DATASETS, point_cloud
from ..numerics.dynamics import AugmentedDynamics
from ..models.fields import VectorField
from ..numerics.config import SolverConfig
from ..numerics.solve import CancelToken, solve
from .base import Experiment, Real

DISPLAY_TIMES = np.linspace(0.0, 1.0, 41)
FIELD_EVERY = 4  # the field is drawn at every 4th display time: t = 0, 0.1, …, 1
FIELD_GRID = 17  # arrows per side
# Pixels per side of the decision map: coarse while training, where a picture is out of date a tenth
# of a second later and the map's pixels are most of the rows of the display solve; fine when paused.
MAP_RESOLUTION = 40
MAP_RESOLUTION_TRAINING = 24
# Pictures while training take at most this share of the training thread: ~8 per second when one
# costs ~15 ms, fewer on a loaded machine or at a tight tolerance (see Trainer.snapshot_share).
SNAPSHOT_SHARE = 0.15
MAX_PROBES = 24
BOX_STEP = 0.5  # the state-space box grows in these units, so axes do not jitter frame to frame


@dataclass(frozen=True)
class ClassifierSnapshot:
    """Everything the classifier page draws, as numpy arrays. States are (time, point, 2): the first
    two coordinates of h (the augmented ones are not drawn)."""

    iteration: int
    dataset: str
    solver: SolverConfig  # of the display solve
    augment: int
    inputs: np.ndarray  # (n, 2) the training data x = h(0)
    labels: np.ndarray  # (n,) 0 or 1
    probability: np.ndarray  # (n,) P(class 1 | x)
    accuracy: float  # on all n points
    loss: float  # cross-entropy on all n points
    times: np.ndarray  # (T,)
    states: np.ndarray  # (T, n, 2)
    box: tuple[float, float]  # square extent (low, high) of both state axes, covering every trajectory
    input_box: tuple[float, float]  # square extent of the input space (the decision map)
    field_times: np.ndarray  # (K,) times at which the field is drawn, a subset of ``times``
    field_x: np.ndarray  # (G²,) grid points in the state plane
    field_y: np.ndarray
    field_u: np.ndarray  # (K, G²) dh₁/dt and dh₂/dt at the grid points (extra dimensions at 0)
    field_v: np.ndarray
    decision_map: np.ndarray  # (R, R) P(class 1) over ``input_box``, rows along the second input
    probe_inputs: np.ndarray  # (P, 2)
    probe_states: np.ndarray  # (T, P, 2)
    probe_probability: np.ndarray  # (P,)
    nfe_forward: int  # of the display solve at the current tolerance
    solve_seconds: float
    eval_times: np.ndarray  # (E,) where the solver evaluated f

    @property
    def field_index(self) -> np.ndarray:
        """Indices into ``times`` of ``field_times``."""
        return np.arange(0, len(self.times), FIELD_EVERY)


def _square_box(points: np.ndarray, margin: float, step: float = 0.0) -> tuple[float, float]:
    """A square extent (same for both axes) around ``points`` (…, 2), optionally rounded out to ``step``."""
    low, high = float(np.min(points)) - margin, float(np.max(points)) + margin
    if step:
        low, high = step * math.floor(low / step), step * math.ceil(high / step)
    return low, high


class ClassifierExperiment(Experiment):
    """An ODE block on (2 + augment) dimensions and a linear read-out, trained by cross-entropy."""

    dataset = param.Selector(default="moons", objects=list(CLASSIFICATION_DATASETS), doc="the 2-D, two-class data")
    noise = Real(0.1, bounds=(0.0, 0.5), doc="std of the Gaussian jitter added to the data, in the cloud's own units")
    samples = param.Integer(512, bounds=(16, 4096), doc="training points")
    augment = param.Integer(
        0, bounds=(0, 3), doc="zero dimensions appended to the input (Augmented Neural ODEs): room for the flow to move"
    )
    width = param.Integer(32, bounds=(4, 256), doc="hidden units of the vector field f(h, t)")
    batch_size = param.Integer(128, bounds=(8, 4096), doc="points per training iteration (at most all of them)")
    regularization = Real(
        0.0, bounds=(0.0, 1.0),
        doc="weight of the kinetic-energy + Jacobian-norm penalty (RNODE): simpler flows, fewer evaluations",
    )
    seminorm = param.Boolean(
        False, doc="adjoint only: measure the backward error on the state and its adjoint, not on the parameter "
                   "gradients (Kidger et al., 2021): fewer backward evaluations"
    )
    adjoint_rtol = Real(None, allow_None=True, bounds=(1e-12, 1.0),
                        doc="relative tolerance of the adjoint's backward solve (default: the forward rtol)")
    adjoint_atol = Real(None, allow_None=True, bounds=(1e-12, 1.0),
                        doc="absolute tolerance of the adjoint's backward solve (default: the forward atol)")
    # Down to 1e-12, below float32's resolution, to show what the evaluation cap is for.
    rtol = Real(1e-3, bounds=(1e-12, 1.0))
    atol = Real(1e-4)
    # A trained moons classifier needs tens of evaluations; thousands mean the tolerance is below
    # what float32 can resolve, and the user should hear so within a second, not a minute.
    max_nfe = param.Integer(2000)
    restart_on = ("dataset", "noise", "samples", "augment", "width", "seed")
    snapshot_share = SNAPSHOT_SHARE
    loss_params = ("regularization",)
    commands = ("add_probe", "clear_probes")

    def __init__(self, **params) -> None:
        self._probes: list[tuple[float, float]] = []  # only touched on the training thread
        super().__init__(**params)

    def _build(self) -> None:
        self._dataset, self._augment = self.dataset, self.augment
        x, y = point_cloud(self.dataset, self.samples, self.noise, self.seed)
        self.train_x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        self.train_y = torch.as_tensor(y, device=self.device)
        # What every picture of these data shares, whatever the weights: made once, never written to
        # (snapshots hand these very arrays out, so a view can tell the data did not change).
        self._inputs, self._labels = _frozen(x.astype(float)), _frozen(np.array(y))
        self._input_box = _square_box(x, margin=0.3)
        self._map_pixels: dict[int, torch.Tensor] = {}  # resolution → pixel centres
        self._arrow_grid: tuple = ()  # (box, x, y, lifted points, times) of the last field grid
        self.dim = 2 + self._augment
        field = VectorField(self.dim, self.width)
        self.model = nn.ModuleDict({"field": field, "readout": nn.Linear(self.dim, 2)}).to(self.device)
        self.regularized = AugmentedDynamics(field, self.dim, regularize=True)
        self._batches = torch.Generator().manual_seed(self.seed)

    def _extra_state(self) -> dict:
        return {"batches": self._batches.get_state(), "probes": [list(point) for point in self._probes]}

    def _load_extra_state(self, extra: dict) -> None:
        self._batches.set_state(extra["batches"])
        self._probes = [tuple(point) for point in extra["probes"]]

    # ---- probes: points the user drops into the input space -------------------------------
    def add_probe(self, x: float, y: float) -> None:
        """Follow the input (x, y) through the flow in every snapshot (the oldest goes past MAX_PROBES)."""
        point = (float(x), float(y))
        if not all(math.isfinite(value) for value in point):
            raise ValueError(f"a probe needs finite coordinates, got {point}")
        self.trainer.submit(lambda: self._append_probe(point))

    def _append_probe(self, point: tuple[float, float]) -> None:
        self._probes = (self._probes + [point])[-MAX_PROBES:]

    def clear_probes(self) -> None:
        self.trainer.submit(self._probes.clear)

    # ---- training -------------------------------------------------------------------------
    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """h(0): the input with the augmented zero dimensions appended."""
        return torch.cat([x, x.new_zeros(x.shape[0], self._augment)], dim=1)

    model_loss = "cross_entropy"

    def _loss(self, token: CancelToken):
        count = min(self.batch_size, len(self.train_x))
        batch = torch.randperm(len(self.train_x), generator=self._batches)[:count]
        h0, labels = self.lift(self.train_x[batch]), self.train_y[batch]
        weight = self.regularization
        dynamics = self.regularized if weight > 0 else self.model["field"]
        state0 = self.regularized.initial_state(h0) if weight > 0 else h0
        solution = solve(dynamics, state0, [0.0, 1.0], solver=self.solver_config(), token=token)
        end = solution.ys[-1]
        logits = self.model["readout"](end[:, : self.dim])
        cross_entropy = nn.functional.cross_entropy(logits, labels)
        scalars = {
            "cross_entropy": cross_entropy.item(),
            "accuracy": (logits.argmax(1) == labels).double().mean().item(),
            "kinetic": math.nan,
            "jacobian": math.nan,
        }
        loss = cross_entropy
        if weight > 0:
            parts = self.regularized.split(end)
            kinetic, jacobian = parts["kinetic"].mean(), parts["jacobian"].mean()
            scalars.update(kinetic=kinetic.item(), jacobian=jacobian.item())
            loss = loss + weight * (kinetic + jacobian)
        return loss, scalars, solution.stats

    def solver_config(self) -> SolverConfig:
        return replace(super().solver_config(), seminorm=self.seminorm, adjoint_rtol=self.adjoint_rtol,
                       adjoint_atol=self.adjoint_atol)

    def train_step(self, token: CancelToken) -> dict[str, float]:
        scalars = super().train_step(token)
        stats = self.last_solve
        backward = stats.steps_backward or (0, 0)
        scalars.update(accepted_forward=stats.steps_forward.accepted, rejected_forward=stats.steps_forward.rejected,
                       accepted_backward=backward[0], rejected_backward=backward[1])
        return scalars

    # ---- display --------------------------------------------------------------------------
    def snapshot(self, token: CancelToken, iteration: int) -> ClassifierSnapshot:
        """The current picture; a coarser decision map while training (see MAP_RESOLUTION_TRAINING)."""
        resolution = MAP_RESOLUTION_TRAINING if self.trainer.running else MAP_RESOLUTION
        return self.picture(token, iteration, resolution)

    @torch.no_grad()
    def picture(self, token: CancelToken, iteration: int, map_resolution: int = MAP_RESOLUTION) -> ClassifierSnapshot:
        """Everything the page draws, from ONE solve of the data, the probes and the map's pixels
        stacked as rows (one set of adaptive steps for all, every display time on its grid) and one
        batched evaluation of f on the arrow grid at every field time."""
        self.model.eval()
        field, readout = self.model["field"], self.model["readout"]
        n = len(self.train_x)
        probes = torch.as_tensor(np.array(self._probes, dtype=np.float32).reshape(-1, 2), device=self.device)
        p = len(probes)
        everything = torch.cat([self.train_x, probes, self._map_points(map_resolution)])
        ys, stats = solve(field, self.lift(everything), DISPLAY_TIMES, solver=self.display_solver(), token=token)
        logits = readout(ys[-1])
        probability = torch.softmax(logits, dim=1)[:, 1].cpu().numpy()
        states = ys[..., :2].cpu().numpy()
        data_states, probe_states = states[:, :n], states[:, n : n + p]
        # The state plane covers every trajectory and the whole input plane.
        corners = np.array(self._input_box)[:, None].repeat(2, 1)
        box = _square_box(np.concatenate([data_states.reshape(-1, 2), corners]), margin=0.2, step=BOX_STEP)
        field_x, field_y, field_u, field_v = self._field_grid(field, box)
        return ClassifierSnapshot(
            iteration=iteration,
            dataset=self._dataset,
            solver=stats.solver,
            augment=self._augment,
            inputs=self._inputs,
            labels=self._labels,
            probability=probability[:n],
            accuracy=float((logits[:n].argmax(1) == self.train_y).double().mean()),
            loss=float(nn.functional.cross_entropy(logits[:n], self.train_y)),
            times=DISPLAY_TIMES,
            states=data_states,
            box=box,
            input_box=self._input_box,
            field_times=DISPLAY_TIMES[::FIELD_EVERY],
            field_x=field_x,
            field_y=field_y,
            field_u=field_u,
            field_v=field_v,
            decision_map=probability[n + p :].reshape(map_resolution, map_resolution),
            probe_inputs=probes.cpu().numpy().astype(float),
            probe_states=probe_states,
            probe_probability=probability[n : n + p],
            nfe_forward=stats.nfe_forward,
            solve_seconds=stats.wall_time,
            eval_times=stats.eval_times,
        )

    def _map_points(self, resolution: int) -> torch.Tensor:
        """The centres of the decision map's pixels over the input box, (R², 2), made once per data."""
        if resolution not in self._map_pixels:
            grid = np.linspace(*self._input_box, resolution)
            map_x, map_y = np.meshgrid(grid, grid)
            points = np.stack([map_x.ravel(), map_y.ravel()], 1)
            self._map_pixels[resolution] = torch.as_tensor(points, dtype=torch.float32, device=self.device)
        return self._map_pixels[resolution]

    def _field_grid(self, field: nn.Module, box: tuple[float, float]):
        """f(h, t) on a G×G grid of the (h₁, h₂) plane at every field time, in one batched call
        (the grid is made again only when the box grows)."""
        if not self._arrow_grid or self._arrow_grid[0] != box:
            side = np.linspace(*box, FIELD_GRID + 2)[1:-1]  # keep arrows off the frame's edge
            x, y = (_frozen(a.ravel()) for a in np.meshgrid(side, side))
            times = DISPLAY_TIMES[::FIELD_EVERY]
            points = torch.as_tensor(np.stack([x, y], 1), dtype=torch.float32, device=self.device)
            h = self.lift(points).repeat(len(times), 1)
            t = torch.as_tensor(np.repeat(times, len(x))[:, None], dtype=torch.float32, device=self.device)
            self._arrow_grid = (box, x, y, h, t)
        _, x, y, h, t = self._arrow_grid
        velocity = field(t, h)[:, :2].reshape(-1, len(x), 2).cpu().numpy()
        return x, y, velocity[..., 0], velocity[..., 1]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
