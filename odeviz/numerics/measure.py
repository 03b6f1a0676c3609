"""What a solve costs, measured: the numbers behind the paper's Figure 3 and its memory claim.

- :func:`tolerance_sweep`: evaluations of f (NFE), error against a tight-tolerance reference and wall
  time, as the tolerance of an adaptive solver goes from loose to tight (Figure 3a, 3b);
- :func:`nfe_ratio`: how many evaluations the adjoint's backward solve makes per forward one (3c);
- :func:`memory_by_steps`: bytes of activations kept for ``.backward()`` by direct backprop through the
  solver and by the adjoint, on fixed-step grids of growing length: O(L̃) against O(1).

Everything runs through :func:`odeviz.solve`; a :class:`~odeviz.numerics.solve.CancelToken` stops any of it
within one evaluation of f.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import torch

from .config import DEFAULT_MAX_NFE, SolverConfig
from .memory import saved_activation_bytes
from .solve import CancelToken, SolveCancelled, SolverError, solve

SWEEP_TOLERANCES = tuple(10.0**-k for k in range(1, 9))  # 1e-1 … 1e-8, as in the paper's sweep
MEMORY_STEPS = (8, 16, 32, 64, 128, 256, 512)
REFERENCE = SolverConfig("dopri8", 1e-12, 1e-12)  # the "exact" solution errors are measured against


@dataclass(frozen=True)
class ToleranceSweep:
    """One row per tolerance (rtol = atol = tolerance); NaN where the solve could not finish."""

    method: str
    tolerances: np.ndarray
    nfe_forward: np.ndarray
    error: np.ndarray  # max |y(T) - y_reference(T)| over the batch
    wall_time: np.ndarray  # seconds, the fastest of ``repeats`` solves
    failures: tuple[str, ...]  # why the NaN rows failed, "" for the others


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


def measure_solve(func, y0: torch.Tensor, reference: torch.Tensor, solver: SolverConfig, t1: float = 1.0,
                  repeats: int = 1, token: CancelToken | None = None) -> tuple[int, float, float]:
    """(NFE forward, max error against ``reference``, fastest wall time of ``repeats`` solves) of
    ``solve(func, y0, [0, t1], solver=solver)``."""
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            ys, stats = solve(func, y0, [0.0, t1], solver=solver, token=token)
            times.append(stats.wall_time)
    return stats.nfe_forward, float((ys[-1] - reference).abs().max()), min(times)


def tolerance_sweep(
    func,
    y0: torch.Tensor,
    tolerances: Sequence[float] = SWEEP_TOLERANCES,
    method: str = "dopri5",
    *,
    t1: float = 1.0,
    repeats: int = 3,
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
    rows: list[tuple[float, float, float]] = []
    failures: list[str] = []

    def partial() -> ToleranceSweep:
        nfe, error, wall = (np.array(column, dtype=float) for column in zip(*rows)) if rows else (np.array([]),) * 3
        return ToleranceSweep(method, np.asarray(tolerances[: len(rows)], dtype=float), nfe, error, wall, tuple(failures))

    for tolerance in tolerances:
        try:
            solver = SolverConfig(method, tolerance, tolerance, max_nfe=max_nfe)
            rows.append(measure_solve(func, y0, reference, solver, t1, repeats, token))
            failures.append("")
        except SolveCancelled:
            raise
        except SolverError as error:
            rows.append((np.nan, np.nan, np.nan))
            failures.append(str(error))
        if on_progress is not None:
            on_progress(partial())
    return partial()


def nfe_ratio(nfe_forward: np.ndarray, nfe_backward: np.ndarray) -> float:
    """Mean NFE-backward / NFE-forward over the iterations that ran the adjoint (NaN if none did)."""
    forward, backward = np.asarray(nfe_forward, dtype=float), np.asarray(nfe_backward, dtype=float)
    adjoint = (backward > 0) & (forward > 0)
    return float(np.mean(backward[adjoint] / forward[adjoint])) if adjoint.any() else float("nan")


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

