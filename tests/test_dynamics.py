"""odeviz.numerics.dynamics: the change of variables and the RNODE integrals against known answers."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from odeviz import solve
from odeviz.numerics.dynamics import AugmentedDynamics
from odeviz.models.fields import VectorField


class Linear(nn.Module):
    def __init__(self, matrix):
        super().__init__()
        self.matrix = nn.Parameter(torch.as_tensor(matrix, dtype=torch.float64))

    def forward(self, t, z):
        return z @ self.matrix.T


A = [[0.3, -1.0], [0.7, -0.5]]


@pytest.mark.parametrize("adjoint", [False, True])
def test_exact_divergence_of_a_linear_field_is_trace_times_time(adjoint):
    dynamics = AugmentedDynamics(Linear(A), 2, divergence="exact")
    z0 = torch.randn(16, 2, dtype=torch.float64)
    ys, _ = solve(dynamics, dynamics.initial_state(z0), [0.0, 2.0], rtol=1e-9, atol=1e-10, adjoint=adjoint)
    parts = dynamics.split(ys[-1])
    assert torch.allclose(parts["delta_logp"], torch.full((16,), -(0.3 - 0.5) * 2.0, dtype=torch.float64), atol=1e-8)
    expected = z0 @ torch.linalg.matrix_exp(2.0 * torch.tensor(A, dtype=torch.float64)).T
    assert torch.allclose(parts["z"], expected, atol=1e-7)


def test_hutchinson_mean_matches_the_exact_trace_within_its_standard_error():
    torch.manual_seed(0)
    field = VectorField(2, width=16).double()
    exact = AugmentedDynamics(field, 2, divergence="exact")
    estimate = AugmentedDynamics(field, 2, divergence="hutchinson")
    state = exact.initial_state(torch.randn(1, 2, dtype=torch.float64)).repeat(4000, 1)
    t = torch.tensor(0.3, dtype=torch.float64)
    with torch.no_grad():
        true_trace = exact(t, state)[:, 2]
        samples = estimate(t, state)[:, 2]  # one ε per row: 4000 independent estimates
    standard_error = samples.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - true_trace[0]) < 3 * standard_error
    assert samples.std() > 0  # it is an estimate, not the exact value


def test_noise_is_fixed_within_a_solve_and_redrawn_after_resample():
    field = VectorField(2, width=8).double()
    dynamics = AugmentedDynamics(field, 2, divergence="hutchinson")
    state = dynamics.initial_state(torch.randn(5, 2, dtype=torch.float64))
    t = torch.tensor(0.0, dtype=torch.float64)
    first, again = dynamics(t, state), dynamics(t, state)
    assert torch.equal(first, again)
    dynamics.resample()
    assert not torch.equal(first[:, 2], dynamics(t, state)[:, 2])


def test_kinetic_energy_and_jacobian_norm_of_a_linear_field():
    # f = -z: z(t) = z0 e^{-t}, ∫‖f‖² = ‖z0‖² (1 - e^{-2T}) / 2; ∂f/∂z = -I so ‖εᵀ J‖² = ‖ε‖² per unit time.
    dynamics = AugmentedDynamics(Linear(-torch.eye(2)), 2, divergence="exact", regularize=True)
    z0 = torch.randn(8, 2, dtype=torch.float64)
    ys, _ = solve(dynamics, dynamics.initial_state(z0), [0.0, 1.0], rtol=1e-10, atol=1e-12)
    parts = dynamics.split(ys[-1])
    assert torch.allclose(parts["kinetic"], (z0**2).sum(1) * (1 - math.exp(-2)) / 2, atol=1e-8)
    assert torch.allclose(parts["jacobian"], (dynamics._noise**2).sum(1), atol=1e-8)
    assert torch.allclose(parts["delta_logp"], torch.full((8,), 2.0, dtype=torch.float64), atol=1e-8)


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_adjoint_and_direct_gradients_agree_through_the_integrals(divergence):
    torch.manual_seed(0)
    field = VectorField(2, width=8).double()
    dynamics = AugmentedDynamics(field, 2, divergence=divergence, regularize=True)
    z0 = torch.randn(6, 2, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        field.zero_grad()
        ys, _ = solve(dynamics, dynamics.initial_state(z0), [0.0, 1.0], rtol=1e-10, atol=1e-10, adjoint=adjoint)
        ys[-1].sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in field.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-8)


def test_plain_field_passes_through_and_bad_divergence_is_refused():
    field = VectorField(2, width=8).double()
    dynamics = AugmentedDynamics(field, 2)
    z = torch.randn(3, 2, dtype=torch.float64)
    assert torch.equal(dynamics(torch.tensor(0.0), z), field(torch.tensor(0.0), z))
    with pytest.raises(ValueError, match="divergence"):
        AugmentedDynamics(field, 2, divergence="trace")
