"""odeviz.models.flows: the CNF's change of variables and the planar flow against known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from odeviz.numerics.dynamics import AugmentedDynamics
from odeviz.models.flows import CNF, ConcatSquashField, PlanarFlow, standard_normal_log_prob

TIGHT = dict(method="dopri5", rtol=1e-9, atol=1e-10)
A = torch.tensor([[0.3, -1.0], [0.7, -0.5]], dtype=torch.float64)


class LinearField(nn.Module):
    """f(z, t) = A z, whose flow and trace are known: z(t) = e^{At} z(0), tr = tr(A)."""

    def forward(self, t, z):
        return z @ A.T

    def forward_with_trace(self, t, z):
        return self(t, z), torch.full(z.shape[:1], float(A.trace()), dtype=z.dtype)


def linear_cnf(horizon: float = 2.0) -> CNF:
    cnf = CNF(horizon=horizon).double()
    cnf.field = LinearField()
    cnf.dynamics = AugmentedDynamics(cnf.field, 2, divergence="exact")
    cnf.exact_dynamics = cnf.dynamics
    return cnf


def random_field(seed: int = 0) -> ConcatSquashField:
    torch.manual_seed(seed)
    field = ConcatSquashField(2, width=16, depth=2).double()
    for p in field.parameters():  # away from the identity start, so traces are not trivially zero
        nn.init.normal_(p, std=0.6)
    return field


def test_linear_field_log_det_is_trace_times_time():
    cnf = linear_cnf(horizon=2.0)
    x = torch.randn(32, 2, dtype=torch.float64)
    z, log_prob, parts, _ = cnf.normalise(x, **TIGHT)
    assert torch.allclose(parts["delta_logp"], torch.full((32,), -float(A.trace()) * 2.0, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(z, x @ torch.linalg.matrix_exp(2.0 * A).T, atol=1e-8)
    # log p(x) = log N(e^{AT} x) + tr(A)·T: the change of variables of a linear map
    assert torch.allclose(log_prob, standard_normal_log_prob(z) + float(A.trace()) * 2.0, atol=1e-8)


def test_density_at_every_fraction_of_the_flow_matches_the_linear_answer():
    """The batched solve over time windows gives each frame's density exactly (linear field)."""
    cnf = linear_cnf(horizon=1.5)
    x = torch.randn(10, 2, dtype=torch.float64)
    fractions = [0.0, 0.25, 1.0]
    log_density, _ = cnf.densities_over_time(x, fractions, **TIGHT)
    for row, s in zip(log_density, fractions):
        remaining = 1.5 * s  # at fraction s the points sit at τ = T(1 − s) and flow the rest of the way
        z = x @ torch.linalg.matrix_exp(remaining * A).T
        assert torch.allclose(row, standard_normal_log_prob(z) + float(A.trace()) * remaining, atol=1e-8)


def test_forward_mode_trace_matches_autograd_with_per_row_times():
    field = random_field()
    z = torch.randn(64, 2, dtype=torch.float64, requires_grad=True)
    for t in (torch.tensor(0.4, dtype=torch.float64), torch.rand(64, 1, dtype=torch.float64)):
        value, trace = field.forward_with_trace(t, z)
        out = field(t, z)
        jacobian = torch.stack([torch.autograd.grad(out[:, i].sum(), z, retain_graph=True)[0] for i in range(2)], 1)
        assert torch.allclose(value, out)
        assert torch.allclose(trace, jacobian.diagonal(dim1=1, dim2=2).sum(-1), atol=1e-12)


def test_regularised_exact_dynamics_give_the_exact_kinetic_energy_and_frobenius_norm():
    field = random_field(2)
    dynamics = AugmentedDynamics(field, 2, divergence="exact", regularize=True)
    z = torch.randn(32, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(0.7, dtype=torch.float64)
    columns = dynamics(t, dynamics.initial_state(z))
    out = field(t, z)
    jacobian = torch.stack([torch.autograd.grad(out[:, i].sum(), z, retain_graph=True)[0] for i in range(2)], 1)
    assert torch.allclose(columns[:, :2], out)
    assert torch.allclose(-columns[:, 2], jacobian.diagonal(dim1=1, dim2=2).sum(-1), atol=1e-12)
    assert torch.allclose(columns[:, 3], (out * out).sum(1), atol=1e-12)
    assert torch.allclose(columns[:, 4], (jacobian * jacobian).sum((1, 2)), atol=1e-12)  # exact, no ε


def test_hutchinson_mean_matches_the_exact_trace_within_its_standard_error():
    cnf = CNF(width=16, divergence="hutchinson").double()
    cnf.field.load_state_dict(random_field(1).state_dict())
    state = cnf.dynamics.initial_state(torch.randn(1, 2, dtype=torch.float64)).repeat(20_000, 1)
    t = torch.tensor(0.3, dtype=torch.float64)
    with torch.no_grad():
        estimates = cnf.dynamics(t, state)[:, 2]  # one ε per row: 20 000 independent estimates
        exact = cnf.exact_dynamics(t, state[:1])[0, 2]
    standard_error = estimates.std() / math.sqrt(len(estimates))
    assert estimates.std() > 0.01  # it is an estimate, not the exact value
    assert abs(estimates.mean() - exact) < 3 * standard_error


def test_x_to_z_to_x_round_trips_within_the_tolerance():
    cnf = CNF(width=16).double()
    cnf.field.load_state_dict(random_field(2).state_dict())
    x = torch.randn(200, 2, dtype=torch.float64)
    with torch.no_grad():
        z = cnf.normalise(x, **TIGHT)[0]
        assert (z - x).abs().max() > 0.1  # the flow moved the points
        back = cnf.generate(z, [0.0, 1.0], **TIGHT)[0][-1]
    assert (back - x).abs().max() < 1e-6


@pytest.mark.parametrize("layers", [1, 16])
def test_planar_flow_is_a_density_and_its_sampler_inverts_it(layers):
    torch.manual_seed(layers)
    flow = PlanarFlow(layers=layers).double()
    with torch.no_grad():
        flow.u.mul_(4.0)  # strong layers, some pushed to the invertibility limit wᵀû → −1
        xs = np.linspace(-30, 30, 1200)  # strong layers stretch the density far out
        gx, gy = np.meshgrid(xs, xs)
        grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1))
        mass = flow.log_prob(grid).exp().sum() * (xs[1] - xs[0]) ** 2
        assert abs(float(mass) - 1.0) < 0.02
        samples = flow.sample(500, generator=torch.Generator().manual_seed(0))
        z, _ = flow.standardise(samples)
        u = flow._u_hat()
        for k in range(layers):  # push the samples forward again: we must land on N(0, I) draws
            z = z + torch.tanh(z @ flow.w[k] + flow.b[k])[:, None] * u[k]
    expected = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(z, expected, atol=1e-8)
