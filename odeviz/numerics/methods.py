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
