"""Latent ODE training speed against a plain torchdiffeq latent ODE set up like torchdiffeq's
examples/latent_ode.py.

Peer (as in the example, as a user runs it): 4-D latent, the example's RNN recognition network
(tanh cell, 25 units, fed the observations backwards without their times), ELU latent field (20
units), ReLU decoder (20 units), ``odeint`` with dopri5 at its default tolerances (rtol 1e-7, atol
1e-9), direct backprop, Adam at 1e-2, full batch, default torch threads. The example runs 1000
iterations; at its tolerances that takes hours on a shared 2-core machine, so the peer trains for
``--peer-iters`` iterations or ``--budget`` seconds, whichever comes first, and its test RMSE then
is the target. Data: odeviz's spirals at 100 observations per window (every grid point: the
example's regular sampling), the same train/test split for both.

odeviz: ``LatentODEExperiment(observations=100)`` with its defaults, trained by its background
trainer; every ``--check-every`` iterations training pauses (not timed) to measure the test RMSE,
and stops once it reaches the peer's (or after the same budget). Both are scored the same way: RMSE
of the decoded posterior mean on the test series' held-out continuations. Wall and CPU seconds are
both reported: on a loaded machine the CPU time is the fairer measure of work.

    PYTHONPATH=. python benchmarks/bench_latent.py [--budget 600] [--peer-iters 1000] [--check-every 25]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn
from torchdiffeq import odeint

from odeviz.data.spirals import NOISE_STD, spirals
from odeviz.experiments import LatentODEExperiment
from odeviz.numerics.device import configure_torch
from odeviz.models.latent import LatentField, gaussian_kl, gaussian_log_density, rmse


class RecognitionRNN(nn.Module):
    """The example's encoder: a tanh RNN cell over the observations, last first, no times."""

    def __init__(self, latent_dim: int = 4, obs_dim: int = 2, hidden: int = 25) -> None:
        super().__init__()
        self.hidden = hidden
        self.i2h = nn.Linear(obs_dim + hidden, hidden)
        self.h2o = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.new_zeros(x.shape[0], self.hidden)
        for step in reversed(range(x.shape[1])):
            h = torch.tanh(self.i2h(torch.cat([x[:, step], h], dim=1)))
        return self.h2o(h).chunk(2, dim=1)


def train_peer(train, test, iterations: int, budget: float) -> dict:
    """The example's model after ``iterations`` full-batch steps or ``budget`` seconds: its test RMSE."""
    torch.manual_seed(0)
    encoder, field = RecognitionRNN(), LatentField(4, 20)
    decoder = nn.Sequential(nn.Linear(4, 20), nn.ReLU(), nn.Linear(20, 2))
    optimizer = torch.optim.Adam([*encoder.parameters(), *field.parameters(), *decoder.parameters()], lr=1e-2)
    x = torch.as_tensor(train.obs_x, dtype=torch.float32)
    times = torch.as_tensor(train.obs_t[0], dtype=torch.float32)  # every series: the same regular grid
    start, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < iterations and time.perf_counter() - start < budget:
        done += 1
        optimizer.zero_grad()
        mean, logvar = encoder(x)
        z0 = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        predicted = decoder(odeint(field, z0, times)).permute(1, 0, 2)
        loss = (gaussian_kl(mean, logvar).sum(1) - gaussian_log_density(x, predicted, NOISE_STD).sum((1, 2))).mean()
        loss.backward()
        optimizer.step()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    with torch.no_grad():
        mean, _ = encoder(torch.as_tensor(test.obs_x, dtype=torch.float32))
        future_t = torch.as_tensor(test.future_t, dtype=torch.float32)
        grid = torch.unique(torch.cat([torch.zeros(1), future_t.reshape(-1)]))
        decoded = decoder(odeint(field, mean, grid))[torch.searchsorted(grid, future_t), torch.arange(len(test))[:, None]]
        score = rmse(decoded, torch.as_tensor(test.future_x, dtype=torch.float32), torch.as_tensor(test.future_count))
    return {"iterations": done, "seconds": seconds, "cpu_seconds": cpu, "test_rmse": score,
            "threads": torch.get_num_threads()}


def train_odeviz(target: float, check_every: int, max_seconds: float) -> dict:
    experiment = LatentODEExperiment(observations=100)
    experiment.trainer.snapshot_interval = float("inf")
    try:
        experiment.trainer.wait_idle()
        trained, cpu, score = 0.0, 0.0, experiment.test_rmse()[0]
        while score > target and trained < max_seconds:
            start, cpu_start = time.perf_counter(), time.process_time()
            experiment.step(check_every)
            experiment.trainer.wait_idle(3600)
            trained, cpu = trained + time.perf_counter() - start, cpu + time.process_time() - cpu_start
            score = experiment.test_rmse()[0]
        return {"seconds": trained, "cpu_seconds": cpu, "iterations": experiment.trainer.iteration,
                "test_rmse": score, "reached": score <= target}
    finally:
        experiment.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-iters", type=int, default=1000, help="the example's iterations (default: 1000)")
    parser.add_argument("--budget", type=float, default=600.0,
                        help="seconds of training for the peer, and at most for odeviz (default: 600)")
    parser.add_argument("--check-every", type=int, default=25)
    args = parser.parse_args()
    data = spirals(100, seed=0)
    train, test = data.split(seed=0)
    assert np.allclose(train.obs_t, train.obs_t[:1]), "100 observations: every series on the same grid"
    peer = train_peer(train, test, args.peer_iters, args.budget)
    configure_torch()  # odeviz as it runs itself (one intra-op thread); the peer had torch's default
    ours = train_odeviz(peer["test_rmse"], args.check_every, args.budget)
    print(json.dumps({
        "load_average": os.getloadavg(), "peer": peer, "odeviz": ours,
        "time_ratio_odeviz_over_peer": ours["seconds"] / peer["seconds"] if ours["reached"] else None,
        "cpu_ratio_odeviz_over_peer": ours["cpu_seconds"] / peer["cpu_seconds"] if ours["reached"] else None,
    }))


if __name__ == "__main__":
    main()
