"""The paper's Figure 1 as an experiment: a ResNet and an ODE-Net learn the same 1-D map.

The ResNet has L blocks with their own weights, h_{k+1} = h_k + (1/L) f(h_k, θ_k); the ODE-Net has one
vector field, dh/dt = f(h, t, θ) on t ∈ [0, 1], solved adaptively. Both read out h(1) (its first
coordinate when the state is augmented with a zero dimension).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import param
import torch
from torch import nn

from ..data.clouds import CONTINUITY_TARGETS, continuity_data
from ..models.fields import FieldResNet, VectorField
from ..numerics.config import SolverConfig
from ..numerics.measure import reference_solution
from ..numerics.solve import CancelToken, solve
from .base import Experiment

DISPLAY_TIMES = np.linspace(0.0, 1.0, 101)
REFERENCE_TOLERANCE = 1e-10  # "exact" solution the tolerance sliders are measured against (float64)
REFERENCE_PERIOD = 1.0  # seconds between reference solves while training runs


@dataclass(frozen=True)
class ContinuitySnapshot:
    """Everything the continuity page draws, as numpy arrays. Trajectory arrays are (time, input)."""

    iteration: int
    target: str
    solver: SolverConfig  # of the display solve
    depth: int
    augmented: bool  # the state is (h, h₂): trajectories show h, the field is drawn at h₂ = 0
    h_range: tuple[float, float]
    inputs: np.ndarray  # (n,) the display inputs x = h(0)
    train_x: np.ndarray
    train_y: np.ndarray
    resnet_depth: np.ndarray  # (L+1,) k/L: depth drawn on the time axis
    resnet_states: np.ndarray  # (L+1, n)
    ode_times: np.ndarray  # (T,)
    ode_states: np.ndarray  # (T, n)
    eval_times: np.ndarray  # (E,) where the solver evaluated f, in order
    eval_states: np.ndarray  # (E, n) the trajectories at those times
    nfe_forward: int
    solve_seconds: float
    reference_error: float  # max |h(1) - h_reference(1)| at the current tolerance (≤ 1 s old while training)
    euler_times: np.ndarray  # (L+1,)
    euler_states: np.ndarray  # (L+1, n) the ODE-Net's f integrated by Euler in L steps
    euler_deviation: float  # max |h_Euler(1) - h(1)| against the adaptive solution
    field_t: np.ndarray  # (G,) grid of the vector field f(t, h) in the (t, h) plane
    field_h: np.ndarray
    field_dh: np.ndarray  # (G,) dh/dt at the grid points

    @property
    def resnet_outputs(self) -> np.ndarray:
        return self.resnet_states[-1]

    @property
    def ode_outputs(self) -> np.ndarray:
        return self.ode_states[-1]

    @property
    def targets(self) -> np.ndarray:
        return CONTINUITY_TARGETS[self.target](self.inputs)


class ContinuityExperiment(Experiment):
    """ResNet vs ODE-Net on one scalar map, trained side by side on the same data."""

    target = param.Selector(default="cubic", objects=list(CONTINUITY_TARGETS), doc="the map h(0) → h(1) to learn")
    augment = param.Boolean(
        False, doc="carry one extra zero dimension, so trajectories can pass each other (needed for the reflection)"
    )
    depth = param.Integer(8, bounds=(1, 64), doc="number L of ResNet blocks (and of Euler steps in the comparison)")
    width = param.Integer(32, bounds=(2, 256), doc="hidden units of the vector field and of each ResNet block")
    samples = param.Integer(64, bounds=(4, 4096), doc="training inputs drawn from [-1, 1]")
    trajectories = param.Integer(17, bounds=(2, 101), doc="evenly spaced inputs whose trajectories are drawn")
    restart_on = ("target", "augment", "width", "samples", "seed")
    # Pictures while training take at most this share of the training thread, counting what a served
    # page spends showing each (it holds the same GIL): ~7 a second served, up to 10 headless.
    snapshot_share = 0.15

    def _build(self) -> None:
        # What the built models were made for; params may change before the next rebuild runs.
        self._target, self._augmented = self.target, self.augment
        x, y = continuity_data(self.target, self.samples, self.seed)
        self.train_x = torch.as_tensor(x, dtype=torch.float64, device=self.device)[:, None]
        self.train_y = torch.as_tensor(y, dtype=torch.float64, device=self.device)
        dim = 2 if self._augmented else 1
        self.model = nn.ModuleDict(
            {"ode": VectorField(dim, self.width), "resnet": FieldResNet(dim, self.depth, self.width)}
        ).to(self.device, torch.float64)
        self._reference_cache: tuple[int, torch.Tensor] | None = None
        self._reference_measured = (float("-inf"), float("nan"))  # (when, error)

    def _lift(self, x: torch.Tensor) -> torch.Tensor:
        """h(0): the input, with a zero column appended when the state is augmented."""
        return torch.cat([x, torch.zeros_like(x)], dim=1) if self._augmented else x

    model_loss = "loss_ode"

    def _loss(self, token: CancelToken):
        h0 = self._lift(self.train_x)
        solution = solve(self.model["ode"], h0, [0.0, 1.0], solver=self.solver_config(), token=token)
        loss_ode = torch.mean((solution.ys[-1][:, 0] - self.train_y) ** 2)
        loss_resnet = torch.mean((self.model["resnet"](h0)[-1][:, 0] - self.train_y) ** 2)
        scalars = {"loss_ode": loss_ode.item(), "loss_resnet": loss_resnet.item()}
        return loss_ode + loss_resnet, scalars, solution.stats

    # ---- structural changes ---------------------------------------------------------------
    @param.depends("depth", watch=True)
    def _change_depth(self) -> None:
        # Only the ResNet depends on L: rebuild it and keep the trained ODE-Net (and its Adam state).
        self.trainer.submit(self._rebuild_resnet)

    def _rebuild_resnet(self) -> None:
        dim = 2 if self._augmented else 1
        self.model["resnet"] = FieldResNet(dim, self.depth, self.width).to(self.device, torch.float64)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate)
        for p in self.model["ode"].parameters():
            if p in self.optimizer.state:
                optimizer.state[p] = self.optimizer.state[p]
        self.optimizer = optimizer
        self.forget_checkpoints()
        self.weights_version += 1

    @param.depends("trajectories", watch=True)
    def _redraw(self) -> None:
        self.trainer.refresh()

    # ---- display --------------------------------------------------------------------------
    def h_range(self) -> tuple[float, float]:
        """The h-axis extent shown: the inputs and the target's images, with a margin."""
        g = CONTINUITY_TARGETS[self._target]
        low = min(-1.0, g(-1.0), g(1.0))
        high = max(1.0, g(-1.0), g(1.0))
        margin = 0.2 * (high - low)
        return (low - margin, high + margin)

    def _reference_error(self, h0: torch.Tensor, end: torch.Tensor) -> float:
        """max |h(1) - h_reference(1)|. The tight reference solve costs twice the rest of a frame, so
        while training runs it is measured at most once per REFERENCE_PERIOD and reused in between."""
        now = time.monotonic()
        if not self.trainer.running or now - self._reference_measured[0] >= REFERENCE_PERIOD:
            self._reference_measured = (now, float((end - self._reference_end(h0)).abs().max()))
        return self._reference_measured[1]

    def _reference_end(self, h0: torch.Tensor) -> torch.Tensor:
        """h(1) at a tight tolerance, cached until the weights change."""
        key = (self.weights_version, h0.shape[0])
        if self._reference_cache is None or self._reference_cache[0] != key:
            end = reference_solution(self.model["ode"], h0, 1.0, max_nfe=self.max_nfe, tolerance=REFERENCE_TOLERANCE)
            self._reference_cache = (key, end)
        return self._reference_cache[1]

    @torch.no_grad()
    def snapshot(self, token: CancelToken, iteration: int) -> ContinuitySnapshot:
        self.model.eval()
        f = self.model["ode"]
        x = torch.linspace(-1.0, 1.0, self.trajectories, dtype=torch.float64, device=self.device)[:, None]
        h0 = self._lift(x)
        ys, stats = solve(f, h0, DISPLAY_TIMES, solver=self.display_solver(), token=token)
        ode_states = ys[..., 0].cpu().numpy()
        reference_error = self._reference_error(h0, ys[-1])
        depth = self.model["resnet"].depth  # not self.depth: a new L may not have been built yet
        euler_times = np.linspace(0.0, 1.0, depth + 1)
        euler, _ = solve(f, h0, euler_times, solver=SolverConfig("euler", max_nfe=self.max_nfe), token=token)
        resnet_states = self.model["resnet"](h0)[..., 0].cpu().numpy()
        eval_times = stats.eval_times
        eval_states = np.stack([np.interp(eval_times, DISPLAY_TIMES, ode_states[:, i]) for i in range(len(x))], 1)
        field_t, field_h, field_dh = self._field_grid(f)
        return ContinuitySnapshot(
            iteration=iteration,
            target=self._target,
            solver=stats.solver,
            depth=depth,
            augmented=self._augmented,
            h_range=self.h_range(),
            inputs=x[:, 0].cpu().numpy(),
            train_x=self.train_x[:, 0].cpu().numpy(),
            train_y=self.train_y.cpu().numpy(),
            resnet_depth=euler_times,
            resnet_states=resnet_states,
            ode_times=DISPLAY_TIMES,
            ode_states=ode_states,
            eval_times=eval_times,
            eval_states=eval_states,
            nfe_forward=stats.nfe_forward,
            solve_seconds=stats.wall_time,
            reference_error=reference_error,
            euler_times=euler_times,
            euler_states=euler[..., 0].cpu().numpy(),
            euler_deviation=float((euler[-1] - ys[-1]).abs().max()),
            field_t=field_t,
            field_h=field_h,
            field_dh=field_dh,
        )

    def _field_grid(self, f: nn.Module, nt: int = 21, nh: int = 15):
        """dh/dt = f(t, h) on a grid of the (t, h) plane (augmented states sliced at h₂ = 0)."""
        low, high = self.h_range()
        t, h = np.meshgrid(np.linspace(0.0, 1.0, nt), np.linspace(low, high, nh))
        states = torch.as_tensor(h.reshape(-1, 1), dtype=torch.float64, device=self.device)
        times = torch.as_tensor(t.reshape(-1, 1), dtype=torch.float64, device=self.device)
        dh = f(times, self._lift(states))[:, 0].cpu().numpy()  # one time per row
        return t.ravel(), h.ravel(), dh
