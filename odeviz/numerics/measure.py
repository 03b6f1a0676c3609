"""What a solve costs, measured: the numbers behind the paper's Figure 3 and its memory claim.

- :func:`tolerance_sweep`: evaluations of f (NFE), error against a tight-tolerance reference and wall
  time, as the tolerance of an adaptive solver goes from loose to tight (Figure 3a, 3b);
- :func:`nfe_ratio`: how many evaluations the adjoint's backward solve makes per forward one (3c);
- :func:`adjoint_cost`: what one adjoint gradient costs (evaluations and accepted/rejected steps,
  forward and backward) and how far it is from direct backprop at a tight tolerance;
- :func:`memory_by_steps`: bytes of activations kept for ``.backward()`` by direct backprop through the
  solver and by the adjoint, on fixed-step grids of growing length: O(L̃) against O(1).

Everything runs through :func:`odeviz.solve`; a :class:`~odeviz.numerics.solve.CancelToken` stops any of it
within one evaluation of f.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .config import DEFAULT_MAX_NFE, SolverConfig
from .memory import saved_activation_bytes
from .solve import CancelToken, SolveCancelled, SolverError, StepCount, solve, solver_errors

SWEEP_TOLERANCES = tuple(10.0**-k for k in range(1, 9))  # 1e-1 … 1e-8, as in the paper's sweep
MEMORY_STEPS = (8, 16, 32, 64, 128, 256, 512)
REFERENCE = SolverConfig("dopri8", 1e-12, 1e-12)  # the "exact" solution errors are measured against
# The "exact" gradient: direct backprop through dopri8 at 1e-10 (float64): 8th order takes a few times
# fewer evaluations than dopri5 to that tolerance, so the live check costs less of the training thread.
REFERENCE_GRADIENT = SolverConfig("dopri8", 1e-10, 1e-10, max_nfe=100_000)
WALL_TIME_REPEATS = 5  # each sweep point's wall time is the median of this many solves
LOADED_SPREAD = 0.5  # repeats further apart than this share of their median: the machine is busy


@dataclass(frozen=True)
class ToleranceSweep:
    """One row per tolerance (rtol = atol = tolerance); NaN where the solve could not finish."""

    method: str
    tolerances: np.ndarray
    nfe_forward: np.ndarray
    error: np.ndarray  # max |y(T) - y_reference(T)| over the batch
    wall_time: np.ndarray  # seconds, the median of ``repeats`` solves
    failures: tuple[str, ...]  # why the NaN rows failed, "" for the others
    repeats: int = WALL_TIME_REPEATS
    wall_spread: np.ndarray = field(default_factory=lambda: np.array([]))  # (slowest - fastest) / median of the repeats

    def seconds_per_evaluation(self) -> tuple[float, float]:
        """(seconds per evaluation of f, fixed seconds per solve): least squares of wall time against NFE."""
        met = np.isfinite(self.nfe_forward) & np.isfinite(self.wall_time)
        if met.sum() < 2 or np.ptp(self.nfe_forward[met]) == 0:
            return float("nan"), float("nan")
        slope, intercept = np.polyfit(self.nfe_forward[met], self.wall_time[met], 1)
        return float(slope), float(intercept)

    @property
    def loaded(self) -> bool:
        """The repeats disagree so much that the times say more about the machine than the solver."""
        spread = self.wall_spread[np.isfinite(self.wall_spread)]
        return bool(len(spread)) and float(np.max(spread)) > LOADED_SPREAD


@dataclass(frozen=True)
class MemoryBySteps:
    """Bytes of activations saved for backward, for each number of fixed steps."""

    method: str
    batch: int
    steps: np.ndarray
    direct_bytes: np.ndarray
    adjoint_bytes: np.ndarray


def reference_solution(func, y0: torch.Tensor, t1: float = 1.0, token: CancelToken | None = None,
                       max_nfe: int = 100_000, tolerance: float = REFERENCE.rtol) -> torch.Tensor:
    """y(t1) at the reference tolerance (use float64: float32 cannot resolve 1e-12).

    The solver steps onto t1 (``step_t``): torchdiffeq otherwise steps past it and interpolates, with
    an interpolant far less accurate than dopri8 (3e-7 off at 1e-10 on a problem with a known answer).
    """
    with torch.no_grad():
        ys, _ = solve(func, y0, [0.0, t1], method=REFERENCE.method, rtol=tolerance, atol=tolerance, token=token,
                      max_nfe=max_nfe, options={"step_t": [t1]})
    return ys[-1]


@dataclass(frozen=True)
class SolveMeasurement:
    nfe_forward: int
    error: float  # max |y(t1) - reference| over the batch
    wall_time: float  # seconds, the median of the repeats
    wall_spread: float  # (slowest - fastest) / median


def measure_solve(func, y0: torch.Tensor, reference: torch.Tensor, solver: SolverConfig, t1: float = 1.0,
                  repeats: int = 1, token: CancelToken | None = None) -> SolveMeasurement:
    """NFE, error against ``reference`` and the median wall time of ``repeats`` solves of
    ``solve(func, y0, [0, t1], solver=solver)`` (one untimed solve first warms the caches)."""
    times = []
    with torch.no_grad():
        solve(func, y0, [0.0, t1], solver=solver, token=token)
        for _ in range(repeats):
            ys, stats = solve(func, y0, [0.0, t1], solver=solver, token=token)
            times.append(stats.wall_time)
    median = float(np.median(times))
    spread = (max(times) - min(times)) / median if median > 0 else 0.0
    return SolveMeasurement(stats.nfe_forward, float((ys[-1] - reference).abs().max()), median, spread)


def tolerance_sweep(
    func,
    y0: torch.Tensor,
    tolerances: Sequence[float] = SWEEP_TOLERANCES,
    method: str = "dopri5",
    *,
    t1: float = 1.0,
    repeats: int = WALL_TIME_REPEATS,
    reference: torch.Tensor | None = None,
    token: CancelToken | None = None,
    max_nfe: int = DEFAULT_MAX_NFE,
    on_progress: Callable[[ToleranceSweep], None] | None = None,
) -> ToleranceSweep:
    """Solve dy/dt = func(t, y) on [0, t1] at each tolerance and measure what it cost and how wrong it is.

    ``on_progress`` gets the partial sweep after each tolerance (for a progress bar or a live plot).
    A tolerance the solver cannot meet (evaluation cap, step underflow) gives a NaN row, not an error;
    cancellation raises :class:`~odeviz.numerics.solve.SolveCancelled`.
    """
    if reference is None:
        reference = reference_solution(func, y0, t1, token)
    rows: list[tuple[float, float, float, float]] = []
    failures: list[str] = []

    def partial() -> ToleranceSweep:
        nfe, error, wall, spread = (np.array(column, dtype=float) for column in zip(*rows)) if rows else (np.array([]),) * 4
        return ToleranceSweep(method, np.asarray(tolerances[: len(rows)], dtype=float), nfe, error, wall, tuple(failures),
                              repeats, spread)

    for tolerance in tolerances:
        try:
            solver = SolverConfig(method, tolerance, tolerance, max_nfe=max_nfe)
            measured = measure_solve(func, y0, reference, solver, t1, repeats, token)
            rows.append((measured.nfe_forward, measured.error, measured.wall_time, measured.wall_spread))
            failures.append("")
        except SolveCancelled:
            raise
        except SolverError as error:
            rows.append((np.nan, np.nan, np.nan, np.nan))
            failures.append(str(error))
        if on_progress is not None:
            on_progress(partial())
    return partial()


def nfe_ratio(nfe_forward: np.ndarray, nfe_backward: np.ndarray) -> float:
    """Mean NFE-backward / NFE-forward over the iterations that ran the adjoint (NaN if none did)."""
    forward, backward = np.asarray(nfe_forward, dtype=float), np.asarray(nfe_backward, dtype=float)
    adjoint = (backward > 0) & (forward > 0)
    return float(np.mean(backward[adjoint] / forward[adjoint])) if adjoint.any() else float("nan")


@dataclass(frozen=True)
class AdjointCost:
    """One gradient by the adjoint (``solver``): its evaluations and steps, and its error."""

    solver: SolverConfig
    nfe_forward: int
    nfe_backward: int
    steps_forward: StepCount
    steps_backward: StepCount
    gradient_error: float  # ‖g - g_reference‖ / ‖g_reference‖ over the parameters

    @property
    def ratio(self) -> float:
        return self.nfe_backward / self.nfe_forward


def parameter_gradient(func: torch.nn.Module, y0: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor],
                       solver: SolverConfig, t1: float = 1.0, token: CancelToken | None = None):
    """(the gradient of ``loss(y(t1))`` with respect to ``func``'s parameters as one flat vector, the
    solve's stats) with ``solver`` (the adjoint or direct backprop)."""
    parameters = [p for p in func.parameters() if p.requires_grad]
    ys, stats = solve(func, y0, [0.0, t1], solver=solver, token=token)
    with solver_errors():
        gradients = torch.autograd.grad(loss(ys[-1]), parameters)
    return torch.cat([g.reshape(-1) for g in gradients]), stats


def adjoint_cost(func: torch.nn.Module, y0: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor],
                 solver: SolverConfig, reference: torch.Tensor, t1: float = 1.0,
                 token: CancelToken | None = None) -> AdjointCost:
    """What the gradient by ``solver`` (adjoint on) costs, and its relative L2 distance to
    ``reference`` (from :func:`parameter_gradient` at :data:`REFERENCE_GRADIENT`; use float64)."""
    gradient, stats = parameter_gradient(func, y0, loss, solver, t1, token)
    error = float(torch.linalg.vector_norm(gradient - reference) / torch.linalg.vector_norm(reference))
    return AdjointCost(solver, stats.nfe_forward, stats.nfe_backward, stats.steps_forward, stats.steps_backward, error)


def memory_by_steps(
    func: torch.nn.Module,
    y0: torch.Tensor,
    steps: Sequence[int] = MEMORY_STEPS,
    method: str = "rk4",
    *,
    t1: float = 1.0,
    token: CancelToken | None = None,
    on_progress: Callable[[MemoryBySteps], None] | None = None,
) -> MemoryBySteps:
    """Activations kept for backward by ``solve(..., adjoint=False)`` and ``adjoint=True`` on grids of
    ``steps`` fixed steps of ``method`` (the RK-Net and the ODE-Net of the paper's Table 1).

    Only the forward pass runs: the count is what autograd holds when ``.backward()`` would start.
    """
    parameters = list(func.parameters())
    direct: list[int] = []
    adjoint: list[int] = []

    def partial() -> MemoryBySteps:
        done = len(adjoint)
        return MemoryBySteps(method, y0.shape[0], np.asarray(steps[:done]), np.asarray(direct[:done]), np.asarray(adjoint))

    start = y0.detach().requires_grad_(True)  # as in a network: the block's input needs a gradient too
    for count in steps:
        for backprop, column in ((False, direct), (True, adjoint)):
            solver = SolverConfig(method, steps=count, adjoint=backprop, max_nfe=16 * count)  # room for any tableau
            _, saved = saved_activation_bytes(lambda: solve(func, start, [0.0, t1], solver=solver, token=token), parameters)
            column.append(saved)
        if on_progress is not None:
            on_progress(partial())
    return partial()

