"""SolverConfig: the solver as one value. What it refuses, how its steps become torchdiffeq's step
size, and that solve(solver=...) is the keyword form exactly."""
from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import torch

from odeviz import METHODS, SolverConfig, solve
from odeviz.models.fields import VectorField

Y = torch.ones(2, dtype=torch.float64)


def _decay(t, y):
    return -y


def _field() -> VectorField:
    torch.manual_seed(0)
    return VectorField(2, 8).double()


def test_defaults_are_the_keyword_defaults_and_the_value_is_frozen():
    config = SolverConfig()
    assert (config.method, config.rtol, config.atol, config.steps, config.adjoint) == ("dopri5", 1e-3, 1e-4, None, False)
    with pytest.raises(FrozenInstanceError):
        config.rtol = 1e-6
    # Equal settings are one value: a cache key, whatever number type they came in.
    assert SolverConfig(rtol=np.float64(1e-3), max_nfe=np.int64(10_000)) == config
    assert hash(SolverConfig("rk4", steps=4)) == hash(SolverConfig("rk4", steps=4))


def test_unknown_method_lists_the_choices():
    with pytest.raises(ValueError) as info:
        SolverConfig("dopri")
    message = str(info.value)
    assert "'dopri' is not a known ODE solver" in message and all(method in message for method in METHODS)


@pytest.mark.parametrize("name", ["rtol", "atol", "adjoint_rtol", "adjoint_atol"])
@pytest.mark.parametrize("value", [0.0, -1e-3, math.nan, math.inf, "1e-3", True])
def test_tolerances_must_be_positive_finite_numbers(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be a positive finite number"):
        SolverConfig(**{name: value})


@pytest.mark.parametrize("name", ["steps", "max_nfe"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "4"])
def test_counts_must_be_positive_integers(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be a positive integer, got"):
        SolverConfig("rk4", **{name: value})


def test_steps_belong_to_fixed_grid_methods():
    with pytest.raises(ValueError, match="dopri5 is adaptive"):
        SolverConfig("dopri5", steps=8)


def test_flags_must_be_booleans():
    with pytest.raises(ValueError, match="adjoint must be True or False"):
        SolverConfig(adjoint="yes")


@pytest.mark.parametrize("t", [[2.0, 4.0], [4.0, 2.0]], ids=["forward", "backward"])
def test_steps_divide_the_time_span_of_the_solve(t):
    # y' = y on a span of length 2 in 4 Euler steps: h = 0.5 each way, y = (1 ± 0.5)^4.
    ys, stats = solve(lambda t, y: y, Y, t, solver=SolverConfig("euler", steps=4))
    growth = 1.5 if t[1] > t[0] else 0.5
    assert stats.nfe_forward == 4 and stats.solver.steps == 4
    torch.testing.assert_close(ys[-1], Y * growth**4, rtol=0, atol=1e-14)
    assert SolverConfig("rk4", steps=8).options(2.0, 4.0) == {"step_size": 0.25}
    assert SolverConfig("rk4").options(0.0, 1.0) is None  # no steps: the output grid is the grid


@pytest.mark.parametrize("keywords, config", [
    (dict(method="bosh3", rtol=1e-6, atol=1e-8), SolverConfig("bosh3", 1e-6, 1e-8)),
    (dict(method="rk4", options={"step_size": 0.25}), SolverConfig("rk4", steps=4)),
    (dict(method="dopri5", rtol=1e-5, atol=1e-7, adjoint=True, adjoint_options={"norm": "seminorm"}),
     SolverConfig("dopri5", 1e-5, 1e-7, adjoint=True, seminorm=True)),
], ids=["adaptive", "fixed-grid", "adjoint-seminorm"])
def test_keyword_form_and_config_form_agree_bit_for_bit(keywords, config):
    results = []
    for arguments in (keywords, dict(solver=config)):
        field = _field()
        y0 = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        ys, stats = solve(field, y0, [0.0, 0.5, 1.0], **arguments)
        ys[-1].square().sum().backward()
        results.append((ys.detach(), [p.grad for p in field.parameters()], stats.nfe_forward, stats.nfe_backward))
    (ys_a, grads_a, forward_a, backward_a), (ys_b, grads_b, forward_b, backward_b) = results
    assert torch.equal(ys_a, ys_b) and (forward_a, backward_a) == (forward_b, backward_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_the_adjoints_own_tolerances_reach_the_backward_solve():
    counts = {}
    for name, config in {"same": SolverConfig(rtol=1e-8, atol=1e-8, adjoint=True),
                         "loose": SolverConfig(rtol=1e-8, atol=1e-8, adjoint=True, adjoint_rtol=1e-2, adjoint_atol=1e-2)}.items():
        field = _field()
        ys, stats = solve(field, torch.ones(4, 2, dtype=torch.float64), [0.0, 1.0], solver=config)
        ys[-1].sum().backward()
        counts[name] = (stats.nfe_forward, stats.nfe_backward)
    assert counts["same"][0] == counts["loose"][0]  # the forward solve is untouched
    assert counts["loose"][1] < counts["same"][1] / 2


def test_solver_and_keywords_together_are_refused():
    with pytest.raises(ValueError, match="not both.*rtol"):
        solve(_decay, Y, [0.0, 1.0], solver=SolverConfig(), rtol=1e-6)
    with pytest.raises(ValueError, match="not both.*options"):
        solve(_decay, Y, [0.0, 1.0], solver=SolverConfig("rk4"), options={"step_size": 0.1})
    with pytest.raises(ValueError, match="solver must be a SolverConfig"):
        solve(_decay, Y, [0.0, 1.0], solver={"method": "rk4"})
