"""What the Figure 3 and Table 1 numbers rest on: step counts that add up to the NFE, the adjoint's
gradient error, sweep times as medians of their repeats, and Table 1's seeds in its JSON."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from odeviz import solve
from odeviz.numerics.config import SolverConfig
from odeviz.numerics.measure import REFERENCE_GRADIENT, adjoint_cost, parameter_gradient, tolerance_sweep
from odeviz.numerics.methods import evaluations_per_attempt

ROOT = Path(__file__).resolve().parents[1]


class Field(nn.Module):
    def __init__(self, dtype=torch.float32) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2)).to(dtype)

    def forward(self, t, y):
        return 3 * self.net(y)


@pytest.mark.parametrize("method,tolerance", [("dopri5", 1e-3), ("dopri5", 1e-7), ("bosh3", 1e-7), ("dopri8", 1e-7)])
def test_accepted_and_rejected_steps_add_up_to_the_evaluations(method, tolerance):
    field, y0 = Field(), torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    ys, stats = solve(field, y0, [0.0, 1.0], solver=SolverConfig(method, tolerance, tolerance, adjoint=True))
    ys[-1].pow(2).sum().backward()
    per_attempt = evaluations_per_attempt(method)
    for nfe, steps in ((stats.nfe_forward, stats.steps_forward), (stats.nfe_backward, stats.steps_backward)):
        # f(t0, y0) and the initial-step probe, then every attempt, accepted or rejected, costs the same.
        assert steps.accepted >= 1 and nfe == 2 + per_attempt * (steps.accepted + steps.rejected)
    if (method, tolerance) == ("bosh3", 1e-7):
        assert stats.steps_backward.rejected >= 1  # the backward solve rejects steps the forward did not
    assert stats.steps_forward.rejected == 0


def test_fixed_grid_steps_are_all_accepted():
    _, stats = solve(Field(), torch.randn(8, 2), [0.0, 1.0], solver=SolverConfig("rk4", steps=10))
    assert tuple(stats.steps_forward) == (10, 0) and stats.nfe_forward == 40 and evaluations_per_attempt("rk4") is None


def test_gradient_error_is_zero_for_backprop_and_grows_as_the_adjoint_loosens():
    field, y0 = Field(torch.float64), torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.ones(2, dtype=torch.float64)
    loss = lambda end: (end - target).pow(2).mean()
    reference, _ = parameter_gradient(field, y0, loss, REFERENCE_GRADIENT)
    direct, _ = parameter_gradient(field, y0, loss, SolverConfig("dopri5", 1e-9, 1e-9))
    assert float((direct - reference).norm() / reference.norm()) < 1e-6
    costs = [adjoint_cost(field, y0, loss, SolverConfig("dopri5", 1e-7, 1e-8, adjoint=True, adjoint_rtol=f * 1e-7,
                                                        adjoint_atol=f * 1e-8), reference) for f in (1, 100, 10_000)]
    errors = [c.gradient_error for c in costs]
    assert errors[0] < 1e-5 and errors[0] < errors[1] < errors[2] and errors[2] > 10 * errors[0]
    assert costs[2].nfe_backward < costs[0].nfe_backward  # what the loosening buys


class Slow(nn.Module):
    """Sleeps at every evaluation for its solve's own delay: the next one starts at each t = 0."""

    def __init__(self, delays) -> None:
        super().__init__()
        self.delays, self.delay, self.linear = iter(delays), 0.0, nn.Linear(2, 2)

    def forward(self, t, y):
        if float(t) == 0.0:  # RK4 on [0, 1] evaluates at t = 0 once per solve, first
            self.delay = next(self.delays)
        time.sleep(self.delay)
        return self.linear(y)


def test_sweep_times_are_the_median_of_the_stated_repeats():
    from odeviz.numerics.measure import measure_solve

    # An untimed warm-up, then five repeats; 20 evaluations each: 100, 200, 400, 800 and 4000 ms of sleep.
    field = Slow([0.0, 0.005, 0.200, 0.010, 0.040, 0.020])
    measured = measure_solve(field, torch.randn(4, 2), torch.zeros(4, 2), SolverConfig("rk4", steps=5), repeats=5)
    assert measured.nfe_forward == 20
    assert 0.4 <= measured.wall_time < 0.8  # the median (400 ms), not the fastest (100) nor the mean (1100)
    assert measured.wall_spread > 4  # (4000 - 100) / 400: a loaded machine is told apart


class Sleepy(Field):
    """2 ms an evaluation, asleep: a cost per evaluation a loaded machine does not blur."""

    def forward(self, t, y):
        time.sleep(0.002)
        return super().forward(t, y)


def test_a_sweep_states_its_repeats_and_fits_the_cost_per_evaluation():
    sweep = tolerance_sweep(Sleepy(torch.float64), torch.randn(32, 2, dtype=torch.float64), (1e-2, 1e-4, 1e-6), repeats=3)
    assert sweep.repeats == 3 and len(sweep.wall_spread) == 3 and (sweep.wall_spread >= 0).all()
    per_evaluation, fixed = sweep.seconds_per_evaluation()
    # About the 2 ms slept: a loaded machine lengthens the few-evaluation solves' sleeps most, relative to
    # their count, which tilts a three-point fit (1.3 ms once in CI at load 3.4), never to a tenth of it.
    assert 0.001 <= per_evaluation < 0.02 and np.isfinite(fixed)


def test_table1_json_carries_each_seed_and_their_aggregate():
    result = subprocess.run([sys.executable, "-m", "odeviz", "train", "supervised", "--model", "mlp", "--seeds", "3",
                             "--epochs", "1", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    errors = [seed["test_error_percent"] for seed in row["seeds"]]
    assert [seed["seed"] for seed in row["seeds"]] == [0, 1, 2] and len(set(errors)) > 1  # other weights, other errors
    assert row["test_error_mean"] == pytest.approx(np.mean(errors)) == pytest.approx(row["test_error_percent"])
    assert row["test_error_std"] == pytest.approx(np.std(errors, ddof=1))
    assert (row["test_error_min"], row["test_error_max"]) == (min(errors), max(errors))
    assert row["paper"]["test_error_percent"] == 1.60
