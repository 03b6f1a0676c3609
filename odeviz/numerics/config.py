"""How to solve, as one value: :class:`SolverConfig` (method, tolerances, fixed steps, adjoint, cap).

A frozen, hashable dataclass checked when it is made, so a bad setting is refused where it is written,
and so it can key a cache or ride along in a snapshot. :func:`odeviz.solve` turns it into torchdiffeq's
arguments (:meth:`SolverConfig.options` is the one place a number of steps becomes a step size).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from .methods import ADAPTIVE_METHODS, METHODS

DEFAULT_MAX_NFE = 10_000


def check_positive_finite(name: str, value) -> float:
    """Return ``value`` as a float, or raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, torch.Tensor, np.ndarray)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {number!r}")
    return number


def _check_positive_integer(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SolverConfig:
    """One ODE solver setting, as diffrax passes its solver and step-size controller.

    - ``method``: a torchdiffeq solver name (:data:`METHODS`); ``rtol``/``atol`` steer the adaptive ones.
    - ``steps``: fixed-grid methods take this many equal steps over the solve's time span; None: they
      step on the output times ``t`` themselves. Adaptive methods choose their own steps (so no ``steps``).
    - ``adjoint``: backpropagate by the adjoint method (O(1) memory); ``seminorm`` (adjoint only) measures
      the backward error on the state and its adjoint, not the parameter gradients (Kidger et al. 2021);
      ``adjoint_rtol``/``adjoint_atol`` are the backward solve's tolerances (None: ``rtol``/``atol``).
    - ``max_nfe``: evaluations of f one solve (and its backward solve) may use before it is stopped.
    """

    method: str = "dopri5"
    rtol: float = 1e-3
    atol: float = 1e-4
    steps: int | None = None
    adjoint: bool = False
    seminorm: bool = False
    adjoint_rtol: float | None = None
    adjoint_atol: float | None = None
    max_nfe: int = DEFAULT_MAX_NFE

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method not in METHODS:
            raise ValueError(f"method {self.method!r} is not a known ODE solver; choose one of {', '.join(METHODS)}")
        checked = dict(rtol=check_positive_finite("rtol", self.rtol), atol=check_positive_finite("atol", self.atol),
                       max_nfe=_check_positive_integer("max_nfe", self.max_nfe),
                       adjoint=self._check_flag("adjoint"), seminorm=self._check_flag("seminorm"))
        for name in ("adjoint_rtol", "adjoint_atol"):
            if getattr(self, name) is not None:
                checked[name] = check_positive_finite(name, getattr(self, name))
        if self.steps is not None:
            checked["steps"] = _check_positive_integer("steps", self.steps)
            if self.adaptive:
                raise ValueError(f"steps sets the grid of fixed-step methods; {self.method} is adaptive and chooses "
                                 "its own steps (set rtol and atol instead)")
        for name, value in checked.items():  # plain Python values: equal settings compare and hash equal
            object.__setattr__(self, name, value)

    def _check_flag(self, name: str) -> bool:
        value = getattr(self, name)
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return bool(value)

    @property
    def adaptive(self) -> bool:
        return self.method in ADAPTIVE_METHODS

    def options(self, t0: float, t1: float) -> dict | None:
        """torchdiffeq's solver options for a solve from ``t0`` to ``t1``: the step size of ``steps``."""
        if self.steps is None:
            return None
        return {"step_size": abs(t1 - t0) / self.steps}

    def adjoint_options(self) -> dict:
        """torchdiffeq's extra ``odeint_adjoint`` arguments (empty when the adjoint is off)."""
        if not self.adjoint:
            return {}
        extra: dict = {"adjoint_options": {"norm": "seminorm"} if self.seminorm else None}
        if self.adjoint_rtol is not None:
            extra["adjoint_rtol"] = self.adjoint_rtol
        if self.adjoint_atol is not None:
            extra["adjoint_atol"] = self.adjoint_atol
        return extra
