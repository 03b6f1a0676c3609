"""The latent ODE and its RNN baseline as plain torch modules: the ELBO's parts against their closed
forms, the encoder's handling of order, a known linear latent system, and Table 2's comparison."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from odeviz.data.spirals import spirals
from odeviz.models.latent import LatentODE, gaussian_kl, parameter_count, rmse, rnn_matching


def tensors(data, part="obs"):
    t, x, count = (getattr(data, f"{part}_{name}") for name in ("t", "x", "count"))
    return torch.as_tensor(t, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(count)


def test_kl_term_is_the_closed_form_gaussian_kl():
    torch.manual_seed(0)
    mean, logvar = torch.randn(50, 4), torch.randn(50, 4)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(4), torch.ones(4))
    torch.testing.assert_close(gaussian_kl(mean, logvar), torch.distributions.kl_divergence(q, p))
    assert gaussian_kl(torch.zeros(3), torch.zeros(3)).abs().max() == 0  # q = p


def test_elbo_is_likelihood_minus_kl_and_samples_come_from_q():
    torch.manual_seed(0)
    model = LatentODE()
    t, x, count = tensors(spirals(20, count=8))
    parts = model.elbo(t, x, count, noise_std=0.3)
    torch.testing.assert_close(parts.loss, parts.kl - parts.log_likelihood)
    assert parts.kl > 0 and parts.stats.nfe_forward > 0
    mean, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, float(np.log(0.25))]])
    draws = LatentODE(latent_dim=2).sample_z0(mean, logvar, samples=20000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(draws.std(0), torch.tensor([[1.0, 0.5]]), atol=0.02, rtol=0)


def test_encoder_refuses_unsorted_times_and_sorting_them_gives_the_same_posterior():
    torch.manual_seed(0)
    model = LatentODE()
    t, x, count = tensors(spirals(30, count=4, seed=2))
    mean, logvar = model.encoder(t, x, count)
    order = torch.randperm(30)
    shuffled_t, shuffled_x = t[:, order], x[:, order]
    with pytest.raises(ValueError, match="not strictly increasing; sort them"):
        model.encoder(shuffled_t, shuffled_x, count)
    resorted = shuffled_t.argsort(1)
    again = model.encoder(shuffled_t.gather(1, resorted), shuffled_x.gather(1, resorted[..., None].expand(-1, -1, 2)), count)
    torch.testing.assert_close(again[0], mean)
    torch.testing.assert_close(again[1], logvar)
    with pytest.raises(ValueError, match="not strictly increasing"):  # duplicates too
        model.encoder(t.index_fill(1, torch.tensor([5]), float(t[0, 4])), x, count)


def test_padding_past_a_series_count_does_not_change_its_posterior():
    torch.manual_seed(0)
    model = LatentODE()
    t, x, _ = tensors(spirals(30, count=3))
    short = model.encoder(t[:, :20], x[:, :20], torch.full((3,), 20))
    padded = model.encoder(t, x + torch.arange(30.0)[None, :, None] * (torch.arange(30) >= 20)[None, :, None],
                           torch.full((3,), 20))
    torch.testing.assert_close(short, padded)


def test_parameter_counts_of_the_two_models_are_within_20_percent():
    for latent_dim, hidden, encoder_hidden in ((4, 20, 25), (2, 8, 8), (8, 64, 64)):
        model = LatentODE(2, latent_dim, hidden, encoder_hidden)
        rnn = rnn_matching(model, obs_dim=2)
        assert abs(parameter_count(rnn) / parameter_count(model) - 1) <= 0.2, (parameter_count(rnn), parameter_count(model))


def test_recovers_a_known_linear_latent_system():
    """Data from z' = A z (a damped rotation) seen through a linear map: the latent ODE fits them."""
    rng = np.random.default_rng(0)
    A, C = np.array([[-0.1, 1.5], [-1.5, -0.1]]), np.array([[1.0, 0.3], [-0.4, 0.8]])
    grid = np.linspace(0, 2, 21)
    eigen, vectors = np.linalg.eig(A)
    flow = lambda t: (vectors @ np.diag(np.exp(eigen * t)) @ np.linalg.inv(vectors)).real  # noqa: E731
    series = 96
    times = np.sort(np.stack([rng.choice(21, 10, replace=False) for _ in range(series)]), 1)
    z0 = rng.normal(size=(series, 2))
    x = np.stack([[C @ flow(grid[i]) @ z for i in row] for row, z in zip(times, z0)])
    t = torch.as_tensor(grid[times], dtype=torch.float32)
    x = torch.as_tensor(x + 0.02 * rng.normal(size=x.shape), dtype=torch.float32)
    count = torch.full((series,), 10)
    torch.manual_seed(0)
    model = LatentODE(obs_dim=2, latent_dim=2, hidden=16, encoder_hidden=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    untrained = _reconstruction_rmse(model, t, x, count)
    for _ in range(200):
        optimizer.zero_grad()
        model.elbo(t, x, count, noise_std=0.05).loss.backward()
        optimizer.step()
    fitted = _reconstruction_rmse(model, t, x, count)
    assert untrained > 0.5 * float(x.std()) and fitted < 0.1 * float(x.std()), (untrained, fitted, float(x.std()))


@torch.no_grad()
def _reconstruction_rmse(model, t, x, count) -> float:
    mean, _ = model.encoder(t, x, count)
    return rmse(model.decode(mean, t).x, x, count)
