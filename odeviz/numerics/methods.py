"""torchdiffeq's solvers by name: the one module that reads torchdiffeq's private ``_impl`` package."""
from __future__ import annotations

from torchdiffeq._impl.odeint import SOLVERS
from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver
from torchdiffeq._impl.solvers import AdaptiveStepsizeODESolver

# scipy_solver leaves torch (no autograd, no evaluation hooks); fixed_adams is an alias of implicit_adams.
METHODS: tuple[str, ...] = tuple(m for m in SOLVERS if m not in ("scipy_solver", "fixed_adams"))
ADAPTIVE_METHODS: tuple[str, ...] = tuple(
    m for m in METHODS if issubclass(SOLVERS[m], (AdaptiveStepsizeODESolver, RKAdaptiveStepsizeODESolver))
)


def evaluations_per_attempt(method: str) -> int | None:
    """Evaluations of f one attempted step of an adaptive Runge–Kutta ``method`` makes, accepted or
    rejected (its stages but the first, which re-uses f at the step's start: 6 for dopri5); None for
    the other methods. A solve adds 2 more before its first step: f(t0, y0) and the probe that picks
    the initial step size."""
    solver = SOLVERS[method]
    return len(solver.tableau.alpha) if issubclass(solver, RKAdaptiveStepsizeODESolver) else None
