"""The one place where odeviz solves an ODE.

Every solve goes through :func:`solve`, a thin layer over torchdiffeq's ``odeint`` /
``odeint_adjoint`` that validates its inputs, counts evaluations of f in the forward and the
backward (adjoint) pass, records the times at which the solver evaluated f (the circles of the
paper's Figure 1) and the steps it accepted and rejected, measures wall time, and checks a cancellation token and an evaluation cap at
every evaluation so that pause, reset and session close stop a solve mid-flight.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from .config import SolverConfig, check_positive_finite


class SolverError(RuntimeError):
    """A solve that could not finish; the message says why in words a user can act on."""


class SolveCancelled(SolverError):
    """The cancellation token was set (pause, reset or a closed session)."""


class EvaluationLimitExceeded(SolverError):
    """The solver needed more evaluations of f than the cap allows."""

    advice = ""  # its message says what to do already


class StepSizeUnderflow(SolverError):
    """The adaptive solver shrank its step to nothing: the dynamics are too stiff or blew up."""


class NonFiniteState(SolverError):
    """The state became NaN or infinite during the solve."""


class CancelToken:
    """A flag one thread sets and the solver checks at every evaluation of f; also the place where
    other work may be slipped in between two evaluations (:meth:`between`)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._between: Callable[[], None] | None = None

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def between(self, work: Callable[[], None]) -> None:
        """Run ``work`` once, on the solving thread, before the next evaluation of f (a redraw that
        must not wait for the running solve to end). A later call replaces work not yet run."""
        self._between = work

    def checkpoint(self) -> None:
        """Called at every evaluation: raise if cancelled, else run any work slipped in."""
        if self._event.is_set():
            raise SolveCancelled("solve cancelled")
        work, self._between = self._between, None
        if work is not None:
            work()


class StepCount(NamedTuple):
    """Steps a solver attempted in one pass: ``accepted`` moved time on, ``rejected`` were tried again
    smaller from the same start (fixed-grid methods reject none)."""

    accepted: int
    rejected: int


@dataclass
class SolveStats:
    """What one solve cost. ``nfe_backward`` grows while ``.backward()`` runs an adjoint solve."""

    solver: SolverConfig
    nfe_forward: int
    eval_times: np.ndarray
    wall_time: float
    _field: "_CountedField" = field(repr=False)

    @property
    def nfe_backward(self) -> int | None:
        """Evaluations of f in the adjoint backward solve; None for direct backprop."""
        return self._field.nfe_backward if self.solver.adjoint else None

    @property
    def steps_forward(self) -> StepCount:
        return self._field.step_count(backward=False)

    @property
    def steps_backward(self) -> StepCount | None:
        """Steps of the adjoint backward solve so far; None for direct backprop."""
        return self._field.step_count(backward=True) if self.solver.adjoint else None


class Solution(NamedTuple):
    ys: torch.Tensor  # (len(t), *y0.shape)
    stats: SolveStats


class _CountedField(nn.Module):
    """Wraps f to count its evaluations, note their times, and stop on cancel or at the cap."""

    def __init__(self, func: Callable, token: CancelToken | None, max_nfe: int) -> None:
        super().__init__()
        self.func = func
        self.token = token
        self.max_nfe = max_nfe
        self.forward_done = False
        self.nfe_forward = 0
        self.nfe_backward = 0
        self.eval_times: list[float] = []
        self.attempts = [0, 0]  # steps tried, forward and backward: torchdiffeq calls back at every one
        self.rejections = [0, 0]

    def step_count(self, backward: bool) -> StepCount:
        return StepCount(self.attempts[backward] - self.rejections[backward], self.rejections[backward])

    # torchdiffeq's step callbacks (the adjoint's are the ``_adjoint`` ones): public, and exact.
    def callback_step(self, t0, y0, dt) -> None:
        self.attempts[0] += 1

    def callback_step_adjoint(self, t0, y0, dt) -> None:
        self.attempts[1] += 1

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.token is not None:
            self.token.checkpoint()
        if self.forward_done:
            self.nfe_backward += 1
            count, phase = self.nfe_backward, "backward (adjoint)"
        else:
            self.nfe_forward += 1
            self.eval_times.append(float(t.detach()))
            count, phase = self.nfe_forward, "forward"
        if count > self.max_nfe:
            raise EvaluationLimitExceeded(
                f"the {phase} solve needed more than {self.max_nfe} evaluations of f; "
                "the dynamics are too stiff for this tolerance (loosen rtol/atol or lower the learning rate)"
            )
        return self.func(t, y)


class _AdaptiveCountedField(_CountedField):
    """Also counts rejected steps (fixed-grid solvers have no such callback and warn if it exists)."""

    def callback_reject_step(self, t0, y0, dt) -> None:
        self.rejections[0] += 1

    def callback_reject_step_adjoint(self, t0, y0, dt) -> None:
        self.rejections[1] += 1


@contextlib.contextmanager
def solver_errors():
    """Turn torchdiffeq's assertion failures into :class:`SolverError` with a readable message.

    Wrap ``loss.backward()`` in it as well: the adjoint runs a solve there.
    """
    try:
        yield
    except AssertionError as error:
        text = str(error)
        if "underflow in dt" in text:
            raise StepSizeUnderflow(
                "step size underflow: the adaptive solver shrank its step to zero, the dynamics blew up"
            ) from error
        if "non-finite values" in text:
            raise NonFiniteState("the state became NaN or infinite during the solve") from error
        raise


def _as_time_grid(t, like: torch.Tensor) -> torch.Tensor:
    try:
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"t must be a sequence of times (numbers), got {t!r}") from None
    if t.ndim != 1 or t.numel() < 2:
        raise ValueError(f"t must be a 1-D sequence of at least two times, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("t contains NaN or infinite values")
    steps = t[1:] - t[:-1]
    if not ((steps > 0).all() or (steps < 0).all()):
        raise ValueError("t must be strictly increasing or strictly decreasing")
    return t


class _Default:
    """Marks a keyword of :func:`solve` left out, so ``solver=`` and the keywords cannot both be given."""

    def __repr__(self) -> str:
        return "<SolverConfig's default>"


_DEFAULT = _Default()


def solve(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    t,
    method: str = _DEFAULT,
    rtol: float = _DEFAULT,
    atol: float = _DEFAULT,
    adjoint: bool = _DEFAULT,
    *,
    solver: SolverConfig | None = None,
    options: dict | None = None,
    adjoint_options: dict | None = None,
    adjoint_params=None,
    token: CancelToken | None = None,
    max_nfe: int = _DEFAULT,
) -> Solution:
    """Solve dy/dt = func(t, y), y(t[0]) = y0, returning y at every time in ``t`` and the cost.

    How to solve is ``solver``, a :class:`SolverConfig`; or, as a shorthand that builds one, the keywords
    ``method``, ``rtol``, ``atol``, ``adjoint`` and ``max_nfe`` (defaults: SolverConfig's), with
    torchdiffeq's own ``options`` (e.g. ``{"step_size": 0.1}`` for fixed-grid methods) and
    ``adjoint_options`` passed through as they are.
    ``adjoint=True`` backpropagates by the adjoint method (the paper's Algorithm 1): memory O(1) in
    the number of steps, with the backward evaluations counted in ``stats.nfe_backward``.
    Raises ValueError for bad arguments and :class:`SolverError` when the solve cannot finish.
    """
    keywords = {name: value for name, value in
                dict(method=method, rtol=rtol, atol=atol, adjoint=adjoint, max_nfe=max_nfe).items()
                if value is not _DEFAULT}
    if solver is None:
        solver = SolverConfig(**keywords)
    elif keywords or options is not None or adjoint_options is not None:
        given = ", ".join([*keywords, *(["options"] if options is not None else []),
                           *(["adjoint_options"] if adjoint_options is not None else [])])
        raise ValueError(f"give the solver either as solver=SolverConfig(...) or as keywords, not both (also got {given})")
    elif not isinstance(solver, SolverConfig):
        raise ValueError(f"solver must be a SolverConfig, got {solver!r}")
    if not isinstance(y0, torch.Tensor) or not y0.is_floating_point():
        raise ValueError("y0 must be a floating-point torch tensor")
    if y0.numel() == 0:
        raise ValueError(f"y0 is empty (shape {tuple(y0.shape)}): there is no state to solve for")
    if not torch.isfinite(y0).all():
        raise ValueError("y0 contains NaN or infinite values")
    t = _as_time_grid(t, y0)
    if options and "step_size" in options:  # fixed-grid methods: 0 never ends, a negative step goes the wrong way
        check_positive_finite("step_size", options["step_size"])
    if solver.adjoint and adjoint_params is None and not isinstance(func, nn.Module):
        raise ValueError("func must be a torch.nn.Module (or adjoint_params given) to use the adjoint")

    counted = (_AdaptiveCountedField if solver.adaptive else _CountedField)(func, token, solver.max_nfe)
    if options is None:
        options = solver.options(float(t[0]), float(t[-1]))
    kwargs = dict(rtol=solver.rtol, atol=solver.atol, method=solver.method, options=options)
    if solver.adjoint:
        kwargs.update(solver.adjoint_options(), adjoint_params=adjoint_params)
        if adjoint_options is not None:
            kwargs["adjoint_options"] = adjoint_options
    start = time.perf_counter()
    with solver_errors():
        ys = (odeint_adjoint if solver.adjoint else odeint)(counted, y0, t, **kwargs)
    wall_time = time.perf_counter() - start
    counted.forward_done = True
    stats = SolveStats(
        solver=solver,
        nfe_forward=counted.nfe_forward,
        eval_times=np.asarray(counted.eval_times),
        wall_time=wall_time,
        _field=counted,
    )
    return Solution(ys, stats)
