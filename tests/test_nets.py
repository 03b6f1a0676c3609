"""odeviz.models.fields: the ResNet's size and shapes, the vector field's time input, the Euler rollout."""
from __future__ import annotations

import pytest
import torch

from odeviz.models.fields import FieldResNet, VectorField, residual_rollout


@pytest.mark.parametrize("depth, width, dim", [(1, 32, 1), (8, 32, 2), (64, 5, 3), (3, 2, 7)])
def test_resnet_parameter_count(depth, width, dim):
    net = FieldResNet(dim, depth, width)
    count = sum(p.numel() for p in net.parameters())
    assert count == depth * (dim * width + width + width * dim + dim)
    assert net.depth == depth


@pytest.mark.parametrize("depth", [1, 4, 16])
def test_resnet_forward_returns_all_states(depth):
    torch.manual_seed(0)
    net = FieldResNet(2, depth).double()
    h0 = torch.randn(5, 2, dtype=torch.float64)
    states = net(h0)
    assert states.shape == (depth + 1, 5, 2)
    assert torch.equal(states[0], h0)
    # Each state is the previous one plus a 1/L step of that block.
    for k in range(depth):
        assert torch.allclose(states[k + 1], states[k] + net.block(k, states[k]) / depth, atol=1e-14)


def test_resnet_blocks_have_their_own_weights():
    torch.manual_seed(0)
    net = FieldResNet(1, 3, 4)
    assert not torch.equal(net.w_in[0], net.w_in[1])
    h = torch.ones(2, 1)
    assert not torch.equal(net.block(0, h), net.block(1, h))


def test_resnet_gradients_reach_every_block():
    torch.manual_seed(0)
    net = FieldResNet(2, 4)
    net(torch.randn(3, 2))[-1].sum().backward()
    for p in net.parameters():
        assert p.grad is not None and (p.grad.abs().sum(dim=tuple(range(1, p.grad.ndim))) > 0).all()


def test_vector_field_scalar_time_equals_per_row_time():
    torch.manual_seed(0)
    field = VectorField(3, width=8).double()
    h = torch.randn(6, 3, dtype=torch.float64)
    t = torch.tensor(0.37, dtype=torch.float64)
    scalar = field(t, h)
    per_row = field(torch.full((6, 1), 0.37, dtype=torch.float64), h)
    assert scalar.shape == (6, 3)
    assert torch.equal(scalar, per_row)
    # Different rows at different times are each the scalar-time result for their own time.
    times = torch.linspace(0.0, 1.0, 6, dtype=torch.float64)[:, None]
    mixed = field(times, h)
    for i in range(6):
        assert torch.allclose(mixed[i], field(times[i, 0], h[i : i + 1])[0], atol=1e-15)
    assert not torch.allclose(field(torch.tensor(0.0, dtype=torch.float64), h), scalar)  # time matters


def test_vector_field_layers_and_width():
    field = VectorField(2, width=16, layers=3)
    linear = [m for m in field.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(3, 16), (16, 16), (16, 16), (16, 2)]


def test_residual_rollout_shapes_and_steps():
    h0 = torch.ones(4, 2, dtype=torch.float64)
    states = residual_rollout(lambda k, h: torch.full_like(h, float(k)), h0, 4)
    assert states.shape == (5, 4, 2)
    # h_L = h_0 + (0 + 1 + 2 + 3) / 4
    assert torch.allclose(states[-1], h0 + 1.5)
