"""The latent ODE of the paper's Section 5 and its RNN baseline, for irregularly sampled series.

Latent ODE (as torchdiffeq's ``examples/latent_ode.py``, with a GRU encoder fed the time gaps): a
recognition GRU reads the observations backwards, each with the gap Δtᵢ = tᵢ - tᵢ₋₁ to the one
before it (t₀ = 0, where z₀ lives), and gives the mean and log-variance of q(z₀); z(t) solves
dz/dt = f(z) from a sample of z₀; a decoder maps z(t) to observation space. Trained on the ELBO:
a Gaussian likelihood of fixed noise std and the Gaussian KL of q(z₀) to N(0, I) in closed form.

RNN baseline (the paper's): a GRU fed (xᵢ, Δtᵢ) forwards predicts the next observation from its state
and the gap to it; trained on one-step predictions over the observed window, it extrapolates by
feeding its own predictions back in, one gap at a time.

Batches are padded rectangles: ``t`` (B, L), ``x`` (B, L, D) and ``count`` (B,) valid entries from the
left (see :class:`odeviz.data.spirals.SeriesSet`). Solves go through an ``integrate(field, z0, times)``
callable returning an :class:`odeviz.Solution`, so the caller picks the solver settings.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import nn

from ..numerics.solve import Solution, SolveStats, solve

Integrator = Callable[[nn.Module, torch.Tensor, torch.Tensor], Solution]


def default_integrator(field: nn.Module, z0: torch.Tensor, times: torch.Tensor) -> Solution:
    return solve(field, z0, times, method="dopri5", rtol=1e-3, atol=1e-4)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) ‖ N(0, 1)) per coordinate, in closed form."""
    return 0.5 * (logvar.exp() + mean**2 - 1.0 - logvar)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    return -0.5 * (math.log(2 * math.pi) + 2 * math.log(std) + ((x - mean) / std) ** 2)


def valid(count: torch.Tensor, length: int) -> torch.Tensor:
    """(B, L) True where an entry is one of the row's ``count`` valid ones."""
    return torch.arange(length, device=count.device)[None, :] < count[:, None]


def check_times(t: torch.Tensor, count: torch.Tensor) -> None:
    """Refuse times that are negative or not strictly increasing within a series."""
    if (t[:, 0] < 0).any():
        raise ValueError("observation times must be at or after 0, the time of z₀")
    backwards = (t[:, 1:] <= t[:, :-1]) & valid(count - 1, t.shape[1] - 1)
    if backwards.any():
        series = int(backwards.any(1).nonzero()[0])
        raise ValueError(f"the observation times of series {series} are not strictly increasing; sort them first")


def gaps(t: torch.Tensor) -> torch.Tensor:
    """Δtᵢ = tᵢ - tᵢ₋₁ with t₀ = 0, as a feature column (B, L, 1)."""
    return torch.diff(t, dim=1, prepend=torch.zeros_like(t[:, :1]))[..., None]


class Encoder(nn.Module):
    """A GRU run backwards over (xᵢ, Δtᵢ): the mean and log-variance of q(z₀)."""

    def __init__(self, obs_dim: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(obs_dim + 1, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, t: torch.Tensor, x: torch.Tensor, count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_times(t, count)
        features = torch.cat([x, gaps(t)], dim=2)
        # Each row's valid entries, last first, padding after them; a GRU is causal, so its output
        # after a row's last valid entry is the state of that row's observations alone. (Packing
        # the rows instead makes the backward pass zero and add a full-size gradient per step:
        # a quarter of an iteration at 100 observations.)
        position = torch.arange(t.shape[1], device=t.device)[None, :]
        backwards = (count[:, None] - 1 - position).clamp(min=0)
        features = features.gather(1, backwards[..., None].expand_as(features))
        states, _ = self.gru(features)
        last = states[torch.arange(t.shape[0], device=t.device), count - 1]
        mean, logvar = self.out(last).chunk(2, dim=1)
        return mean, logvar


class LatentField(nn.Module):
    """dz/dt = f(z): the example's two-hidden-layer ELU network (autonomous: no t input)."""

    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, latent_dim)
        )

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ELBO(NamedTuple):
    loss: torch.Tensor  # -ELBO per series, averaged over the batch
    log_likelihood: torch.Tensor  # per series, averaged
    kl: torch.Tensor  # per series, averaged
    stats: SolveStats


class Decoded(NamedTuple):
    x: torch.Tensor  # (B, L, D) at the requested times
    times: torch.Tensor  # (T,) the solve's output grid: 0 and every requested time
    z: torch.Tensor  # (T, B, latent) on that grid
    stats: SolveStats


class LatentODE(nn.Module):
    """Encoder, latent field and decoder (sizes as in torchdiffeq's example by default)."""

    def __init__(self, obs_dim: int = 2, latent_dim: int = 4, hidden: int = 20, encoder_hidden: int = 25) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = Encoder(obs_dim, latent_dim, encoder_hidden)
        self.field = LatentField(latent_dim, hidden)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, obs_dim))

    def sample_z0(self, mean: torch.Tensor, logvar: torch.Tensor, samples: int | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """z₀ ~ q(z₀) by reparameterisation: (B, latent), or (samples, B, latent)."""
        shape = mean.shape if samples is None else (samples, *mean.shape)
        noise = torch.randn(shape, generator=generator, dtype=mean.dtype).to(mean.device)
        return mean + noise * (0.5 * logvar).exp()

    def decode(self, z0: torch.Tensor, t: torch.Tensor, integrate: Integrator = default_integrator) -> Decoded:
        """x̂ at every time of ``t`` (B, L): one solve of all z₀ (B, latent) on the union of the times."""
        times = torch.unique(torch.cat([t.new_zeros(1), t.reshape(-1)]))  # sorted
        if len(times) < 2:
            times = torch.cat([times, times[-1:] + 1.0])  # every time is 0: solve a little past it
        z, stats = integrate(self.field, z0, times)
        x = self.decoder(z)  # (T, B, D)
        rows = torch.arange(t.shape[0], device=t.device)[:, None]
        return Decoded(x[torch.searchsorted(times, t), rows], times, z, stats)

    def elbo(self, t: torch.Tensor, x: torch.Tensor, count: torch.Tensor, noise_std: float,
             integrate: Integrator = default_integrator, generator: torch.Generator | None = None) -> ELBO:
        mean, logvar = self.encoder(t, x, count)
        decoded = self.decode(self.sample_z0(mean, logvar, generator=generator), t, integrate)
        mask = valid(count, t.shape[1])[..., None]
        log_likelihood = (gaussian_log_density(x, decoded.x, noise_std) * mask).sum((1, 2))
        kl = gaussian_kl(mean, logvar).sum(1)
        return ELBO((kl - log_likelihood).mean(), log_likelihood.mean(), kl.mean(), decoded.stats)


class RNNBaseline(nn.Module):
    """A GRU fed (xᵢ, Δtᵢ); its read-out of (state, gap to the next time) predicts the next x."""

    def __init__(self, obs_dim: int = 2, hidden: int = 30) -> None:
        super().__init__()
        self.gru = nn.GRU(obs_dim + 1, hidden, batch_first=True)
        self.readout = nn.Linear(hidden + 1, obs_dim)

    def one_step_loss(self, t: torch.Tensor, x: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """Mean squared error of predicting each observation from the ones before it (teacher forcing)."""
        check_times(t, count)
        dt = gaps(t)
        states, _ = self.gru(torch.cat([x, dt], dim=2))
        predicted = self.readout(torch.cat([states[:, :-1], dt[:, 1:]], dim=2))
        mask = valid(count - 1, t.shape[1] - 1)[..., None]
        return (((predicted - x[:, 1:]) ** 2) * mask).sum() / (mask.sum() * x.shape[2]).clamp(min=1)

    def extrapolate(self, t: torch.Tensor, x: torch.Tensor, count: torch.Tensor, future_t: torch.Tensor) -> torch.Tensor:
        """Predictions at ``future_t`` (B, M), each fed back in as the next input: (B, M, D)."""
        check_times(t, count)
        states, _ = self.gru(torch.cat([x, gaps(t)], dim=2))
        rows = torch.arange(t.shape[0], device=t.device)
        state, last_t = states[rows, count - 1], t[rows, count - 1]
        predictions = []
        for column in range(future_t.shape[1]):
            gap = (future_t[:, column] - last_t)[:, None]
            predicted = self.readout(torch.cat([state, gap], dim=1))
            predictions.append(predicted)
            _, state = self.gru(torch.cat([predicted, gap], dim=1)[:, None], state[None].contiguous())
            state, last_t = state[0], future_t[:, column]
        return torch.stack(predictions, dim=1)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def rnn_matching(model: LatentODE, obs_dim: int) -> RNNBaseline:
    """The RNN baseline whose parameter count is nearest the latent ODE's (a fair comparison)."""
    target = parameter_count(model)
    low, high = 1, 1024  # the count grows with the width: bisect for the first width at or past it
    while low < high:
        middle = (low + high) // 2
        if parameter_count(RNNBaseline(obs_dim, middle)) < target:
            low = middle + 1
        else:
            high = middle
    candidates = [RNNBaseline(obs_dim, width) for width in (max(1, low - 1), low)]
    return min(candidates, key=lambda rnn: abs(parameter_count(rnn) - target))


def rmse(predicted: torch.Tensor, target: torch.Tensor, count: torch.Tensor) -> float:
    """Root mean squared error over the valid entries of padded (B, M, D) arrays."""
    mask = valid(count, target.shape[1])[..., None]
    return float(((((predicted - target) ** 2) * mask).sum() / (mask.sum() * target.shape[2])).sqrt())
