"""The paper's Figure 3, measured live on a 2-D ODE-Net classifier as it trains.

A :class:`Figure3Experiment` is a :class:`ClassifierExperiment` that also measures, on its own
training thread (between iterations, so the weights never change under a measurement):

- a tolerance sweep 1e-1 … 1e-8 of a float64 copy of the learned field: NFE-forward against the
  error of h(1) relative to a dopri8 solution at 1e-12 (panel a) and against wall time (panel b);
- the same three numbers at the current rtol/atol/method on that copy (the marker on a and b),
  re-measured as soon as a slider moves;
- the adjoint's cost and accuracy (panel c): the gradient of the loss by the adjoint at the current
  forward and backward tolerances against direct backprop at 1e-10, with the evaluations and the
  accepted/rejected steps of both solves, at most once a second on the current weights; and with each
  sweep the same at backward tolerances 1, 10, 100 and 1000 times looser than the forward;
- the bytes of activations kept for backward by direct backprop and by the adjoint on fixed grids
  of 8 … 512 RK4 steps (the O(L̃) against O(1) claim), once per architecture.

NFE-forward against NFE-backward (panel c) and against iteration (panel d) are the trainer's history.
Sweeps run while paused (once per new weights) and every ``sweep_every`` iterations while training;
each publishes its partial results to :attr:`measurements` as it goes, and ``cancel_measurements``,
reset and close stop it within one evaluation of f.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import numpy as np
import param
import torch

from ..numerics.measure import MEMORY_STEPS, SWEEP_TOLERANCES, MemoryBySteps, ToleranceSweep, memory_by_steps
from ..numerics.measure import REFERENCE_GRADIENT, AdjointCost, adjoint_cost, measure_solve, nfe_ratio
from ..numerics.measure import parameter_gradient, reference_solution, tolerance_sweep
from ..numerics.config import SolverConfig
from ..numerics.solve import CancelToken, SolveCancelled, SolverError
from .classifier import ClassifierExperiment, ClassifierSnapshot
from .stream import Mailbox

MEMORY_BATCH = 64
ADJOINT_FACTORS = (1, 10, 100, 1000)  # backward tolerances this many times the forward ones (panel c)
GRADIENT_CHECK_SECONDS = 1.0  # while training, the adjoint's gradient error is measured at most this often,
GRADIENT_CHECK_SHARE = 0.2  # and in at most this share of the training thread's time


@dataclass(frozen=True)
class SolverSetting:
    """NFE, error and wall time of one solve of the measured batch at the current slider values."""

    solver: SolverConfig
    nfe_forward: float
    error: float
    wall_time: float  # median of the repeats
    failure: str = ""


@dataclass(frozen=True)
class Figure3Measurements:
    """What the Figure 3 page draws besides the training history. ``None`` until first measured."""

    iteration: int = 0  # training iteration of the weights the sweep measured
    sweep: ToleranceSweep | None = None
    current: SolverSetting | None = None
    memory: MemoryBySteps | None = None
    adjoint: AdjointCost | None = None  # at the current forward and backward tolerances
    adjoint_iteration: int = 0  # training iteration of the weights ``adjoint`` measured
    tradeoff: tuple[AdjointCost, ...] = ()  # the swept weights at ADJOINT_FACTORS
    activity: str = ""  # what is being measured right now, "" when idle
    progress: float = 1.0  # of the activity, 0 … 1


class Figure3Experiment(ClassifierExperiment):
    """A classifier whose solver cost is measured as it trains (the paper's Figure 3)."""

    runs_remotely = False  # its page reads more than snapshots and history (measurements, a data folder)

    sweep_every = param.Integer(
        100, bounds=(0, 100_000), doc="while training, sweep the tolerances again every this many iterations (0: only when paused)"
    )
    sweep_points = param.Integer(256, bounds=(8, 4096), doc="training points solved in each tolerance measurement")

    def __init__(self, **params) -> None:
        self.measurements = Mailbox()
        self._measured = Figure3Measurements()
        self._measure_token = CancelToken()
        self._measure_pending = False
        self._sweep_wanted = True
        self._memory_key = None
        self._swept_version = None
        self._swept: tuple[torch.nn.Module, torch.Tensor, torch.Tensor] | None = None  # field, h0, reference
        self._checked = (None, None, -float("inf"), 0.0)  # weights version, solver, clock, cost of the last gradient check
        super().__init__(**params)

    # ---- control, from any thread -----------------------------------------------------------
    def measure(self) -> None:
        """Sweep the tolerances again now (on the training thread, between iterations)."""
        self._sweep_wanted = True
        self.trainer.refresh()

    def cancel_measurements(self) -> None:
        self._measure_token.cancel()

    def reset(self) -> None:
        self.cancel_measurements()
        super().reset()

    def close(self) -> None:
        self.cancel_measurements()
        super().close()

    def nfe_ratio(self) -> float:
        """Mean NFE-backward / NFE-forward over the iterations trained with the adjoint."""
        _, columns = self.trainer.history.since(0)
        return nfe_ratio(columns.get("nfe_forward", []), columns.get("nfe_backward", []))

    # ---- on the training thread -------------------------------------------------------------
    def _build(self) -> None:
        super()._build()
        self._swept, self._swept_version, self._sweep_wanted = None, None, True
        self._checked = (None, None, -float("inf"), 0.0)
        self._publish_measured(sweep=None, current=None, iteration=0, adjoint=None, tradeoff=())

    def snapshot(self, token: CancelToken, iteration: int) -> ClassifierSnapshot:
        picture = super().snapshot(token, iteration)
        if not self._measure_pending and any(self._due(iteration).values()):
            self._measure_pending = True
            self.trainer.submit(lambda: self._measure(iteration))  # after this picture is published
        return picture

    def _due(self, iteration: int) -> dict[str, bool]:
        new_weights = self._swept_version != self.weights_version
        every = self.sweep_every
        sweep = self._sweep_wanted or new_weights and (
            # not while queued steps are still coming either: one sweep when they are done, not one per step
            not self.trainer.training or (every > 0 and iteration - self._measured.iteration >= every)
        )
        current = self._measured.current
        version, solver, clock, cost = self._checked
        wait = max(GRADIENT_CHECK_SECONDS, cost / GRADIENT_CHECK_SHARE - cost)
        return {
            "sweep": sweep,
            "current": self._swept is not None and (current is None or current.solver != self._measured_solver()),
            "memory": self._memory_key != (self.dim, self.width),
            "adjoint": self.adjoint and (solver != self._adjoint_solver() or version != self.weights_version
                                         and time.perf_counter() - clock >= wait),
        }

    def _measure(self, iteration: int) -> None:
        self._measure_pending = False
        due = self._due(iteration)
        self._measure_token = token = CancelToken()
        try:
            if due["sweep"]:
                self._sweep(token, iteration)
            if due["sweep"] or due["current"]:
                self._measure_current(token)
            if due["sweep"] or due["adjoint"]:
                self._measure_adjoint(token, iteration, tradeoff=due["sweep"])
            if due["memory"]:
                self._measure_memory(token)
        except SolveCancelled:
            self._publish_measured(activity="")

    def _sweep_method(self) -> str:
        return self.method if self.display_solver().adaptive else "dopri5"

    def _measured_solver(self) -> SolverConfig:
        """The current rtol/atol on the swept method (the marker on panels a and b)."""
        return SolverConfig(self._sweep_method(), self.rtol, self.atol, max_nfe=self.max_nfe)

    def _adjoint_solver(self) -> SolverConfig:
        """Training's adjoint solver on the swept method (float64 needs no cap below training's)."""
        return replace(self.solver_config(), method=self._sweep_method(), steps=None, adjoint=True, seminorm=self.seminorm)

    def _measure_adjoint(self, token: CancelToken, iteration: int, tradeoff: bool) -> None:
        """The adjoint's gradient error and cost on the current weights (and, with ``tradeoff``, as the
        backward tolerance loosens)."""
        solver, start = self._adjoint_solver(), time.perf_counter()
        field = copy.deepcopy(self.model["field"]).double()
        readout = copy.deepcopy(self.model["readout"]).double()
        count = self.sweep_points
        h0, labels = self.lift(self.train_x[:count]).double(), self.train_y[:count]
        loss = lambda end: torch.nn.functional.cross_entropy(readout(end), labels)
        try:
            reference, _ = parameter_gradient(field, h0, loss, replace(REFERENCE_GRADIENT, seminorm=False), token=token)
            changes = dict(adjoint=adjoint_cost(field, h0, loss, solver, reference, token=token),
                           adjoint_iteration=iteration)
            if tradeoff:
                loosened = [replace(solver, adjoint_rtol=min(1.0, f * solver.rtol), adjoint_atol=min(1.0, f * solver.atol))
                            for f in ADJOINT_FACTORS]
                changes["tradeoff"] = tuple(adjoint_cost(field, h0, loss, s, reference, token=token) for s in loosened)
        except SolveCancelled:
            raise
        except SolverError:  # too stiff at this setting: nothing to show rather than a stale number
            changes = dict(adjoint=None)
        self._checked = (self.weights_version, solver, time.perf_counter(), time.perf_counter() - start)
        self._publish_measured(**changes)

    def _sweep(self, token: CancelToken, iteration: int) -> None:
        self._sweep_wanted = False
        self._swept_version = self.weights_version
        field = copy.deepcopy(self.model["field"]).double().eval()
        h0 = self.lift(self.train_x[: self.sweep_points]).double()
        self._publish_measured(activity="reference solve (dopri8 at 1e-12)", progress=0.0, current=None)
        reference = reference_solution(field, h0, token=token)
        self._swept = (field, h0, reference)
        total = len(SWEEP_TOLERANCES)

        def progress(partial: ToleranceSweep) -> None:
            done = len(partial.tolerances)
            self._publish_measured(sweep=partial, iteration=iteration, progress=done / total,
                                   activity=f"tolerance sweep {done}/{total}" if done < total else "")

        tolerance_sweep(field, h0, SWEEP_TOLERANCES, self._sweep_method(), reference=reference, token=token,
                        max_nfe=self.max_nfe, on_progress=progress)

    def _measure_current(self, token: CancelToken) -> None:
        field, h0, reference = self._swept
        solver = self._measured_solver()
        try:
            measured = measure_solve(field, h0, reference, solver, repeats=3, token=token)
            current = SolverSetting(solver, measured.nfe_forward, measured.error, measured.wall_time)
        except SolveCancelled:
            raise
        except SolverError as error:
            current = SolverSetting(solver, np.nan, np.nan, np.nan, failure=str(error))
        self._publish_measured(current=current)

    def _measure_memory(self, token: CancelToken) -> None:
        key = (self.dim, self.width)
        field = copy.deepcopy(self.model["field"]).train()
        h0 = self.lift(self.train_x[:MEMORY_BATCH])
        total = len(MEMORY_STEPS)
        self._publish_measured(memory=None, activity=f"memory 0/{total}", progress=0.0)

        def progress(partial: MemoryBySteps) -> None:
            done = len(partial.steps)
            self._publish_measured(memory=partial, progress=done / total,
                                   activity=f"memory {done}/{total}" if done < total else "")

        memory_by_steps(field, h0, MEMORY_STEPS, token=token, on_progress=progress)
        self._memory_key = key

    def _publish_measured(self, **changes) -> None:
        self._measured = replace(self._measured, **changes)
        self.measurements.put(self._measured)
