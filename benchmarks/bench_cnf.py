"""CNF training speed against a plain torchdiffeq CNF configured like torchdiffeq's examples/cnf.py.

Baseline (as in the example): two circles (sklearn ``make_circles``, noise 0.06, factor 0.5, a fresh
batch of 512 every iteration), the hypernetwork CNF (hidden 32, width 64), base N(0, 0.1·I), the data
at t = 10 solved back to t = 0 with dopri5 at rtol = atol = 1e-5, exact trace by autograd, direct
backprop, Adam at 1e-3, 1000 iterations. Its held-out NLL is then measured.

odeviz: ``CNFExperiment`` on the same distribution (a pool of 100 000 ``make_circles`` points) trained
by its background trainer, with what the science offers: exact trace by forward-mode differentiation
(2-D), horizon T = 1 with a concat-squash field and base N(0, I) after a fixed standardisation, RNODE
regularisation (Finlay et al. 2020: kinetic energy + Jacobian Frobenius norm, weight 0.01, both exact
from the forward-mode Jacobian), which keeps the flow straight enough to train with four fixed RK4
steps (16 evaluations of f per iteration, as RNODE does), and Adam at 5e-2 falling along a cosine over
800 iterations (the large step carries the flow past the plateau where one ring is learnt and the other
not). Training pauses every ``--check-every`` iterations to measure the held-out NLL (not timed), and
stops once it reaches the baseline's.

Held-out NLL, the same measure for both: mean −log p(x) in nats over 5000 fresh points of the data
distribution (``random_state`` 2024, never trained on), each model in float64 with dopri5 at
rtol 1e-7 / atol 1e-9. One process, one intra-op thread, so both run on the same machine state.

    PYTHONPATH=. python benchmarks/bench_cnf.py [--baseline-iters 1000] [--check-every 25]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import numpy as np
import torch
from sklearn.datasets import make_circles
from torch import nn
from torchdiffeq import odeint

from odeviz.experiments import CNFExperiment
from odeviz.runtime import configure_torch

NOISE, FACTOR, BATCH = 0.06, 0.5, 512
EVALUATION = dict(method="dopri5", rtol=1e-7, atol=1e-9)
HELD_OUT = make_circles(n_samples=5000, noise=NOISE, factor=FACTOR, random_state=2024)[0]


# ---- the baseline: torchdiffeq's examples/cnf.py, without its plotting -----------------------
class HyperNetwork(nn.Module):
    """Weights W, B, U of a width-64 one-layer field as functions of t (as in the example)."""

    def __init__(self, in_out_dim: int, hidden_dim: int, width: int) -> None:
        super().__init__()
        self.blocksize = width * in_out_dim
        self.fc1 = nn.Linear(1, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, 3 * self.blocksize + width)
        self.in_out_dim, self.width = in_out_dim, width

    def forward(self, t):
        params = torch.tanh(self.fc2(torch.tanh(self.fc1(t.reshape(1, 1)))))
        params = self.fc3(params).reshape(-1)
        b = self.blocksize
        W = params[:b].reshape(self.width, self.in_out_dim, 1)
        U = params[b:2 * b].reshape(self.width, 1, self.in_out_dim)
        G = params[2 * b:3 * b].reshape(self.width, 1, self.in_out_dim)
        return W, params[3 * b:].reshape(self.width, 1, 1), U * torch.sigmoid(G)


def trace_df_dz(f, z):
    return sum(torch.autograd.grad(f[:, i].sum(), z, create_graph=True)[0][:, i] for i in range(z.shape[1]))


class BaselineCNF(nn.Module):
    def __init__(self, in_out_dim: int = 2, hidden_dim: int = 32, width: int = 64) -> None:
        super().__init__()
        self.width = width
        self.hyper_net = HyperNetwork(in_out_dim, hidden_dim, width)

    def forward(self, t, states):
        z = states[0]
        with torch.set_grad_enabled(True):
            z.requires_grad_(True)
            W, B, U = self.hyper_net(t)
            h = torch.tanh(torch.matmul(z.unsqueeze(0).repeat(self.width, 1, 1), W) + B)
            dz_dt = torch.matmul(h, U).mean(0)
            return dz_dt, -trace_df_dz(dz_dt, z).view(-1, 1)


def baseline_log_prob(func, x, times, dtype, **tolerances):
    base = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=dtype), 0.1 * torch.eye(2, dtype=dtype))
    z, delta = odeint(func, (x, torch.zeros(len(x), 1, dtype=dtype)), times.to(dtype), method="dopri5", **tolerances)
    return base.log_prob(z[-1]) - delta[-1].view(-1)


def run_baseline(iterations: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    np.random.seed(seed)
    func = BaselineCNF()
    optimizer = torch.optim.Adam(func.parameters(), lr=1e-3)
    times = torch.tensor([10.0, 0.0])
    start = time.perf_counter()
    for _ in range(iterations):
        optimizer.zero_grad()
        x = torch.tensor(make_circles(n_samples=BATCH, noise=NOISE, factor=FACTOR)[0], dtype=torch.float32)
        loss = -baseline_log_prob(func, x, times, torch.float32, rtol=1e-5, atol=1e-5).mean()
        loss.backward()
        optimizer.step()
    wall = time.perf_counter() - start
    evaluation = copy.deepcopy(func).double()
    with torch.no_grad():
        held = torch.as_tensor(HELD_OUT)
        nll = -baseline_log_prob(evaluation, held, times, torch.float64, rtol=1e-7, atol=1e-9).mean().item()
    return {"iterations": iterations, "wall_seconds": wall, "held_out_nll": nll, "final_batch_nll": loss.item()}


# ---- odeviz --------------------------------------------------------------------------------
ODEVIZ_SETTINGS = dict(width=64, depth=2, trace="exact", regularization=0.01, learning_rate=5e-2, decay_iterations=800,
                       method="rk4", fixed_steps=4, adjoint=False, batch_size=BATCH, compare_planar=False)


def run_odeviz(target_nll: float, time_limit: float, check_every: int, seed: int = 0) -> dict:
    pool = make_circles(n_samples=100_000, noise=NOISE, factor=FACTOR, random_state=seed)[0]
    experiment = CNFExperiment(**ODEVIZ_SETTINGS, seed=seed)
    experiment.trainer.snapshot_interval = float("inf")  # headless: no pictures
    experiment.use_points(pool, "the circles", target="file", name="make_circles")
    trainer = experiment.trainer
    trainer.wait_idle()
    trained, curve = 0.0, []
    try:
        while trained < time_limit:
            start = time.perf_counter()
            experiment.step(check_every)
            trainer.wait_idle()
            trained += time.perf_counter() - start
            if trainer.message:
                raise RuntimeError(trainer.message)
            nll = float(-experiment.trained_flow().log_prob(HELD_OUT, **EVALUATION).mean())
            curve.append((trainer.iteration, round(trained, 1), round(nll, 4)))
            if nll <= target_nll:
                break
    finally:
        experiment.close()
    _, history = trainer.history.since(0)
    return {
        "reached": curve[-1][2] <= target_nll, "iterations": trainer.iteration, "wall_seconds": trained,
        "held_out_nll": curve[-1][2], "nfe_forward_mean": float(history["nfe_forward"].mean()),
        "curve_iteration_seconds_nll": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-iters", type=int, default=1000)
    parser.add_argument("--check-every", type=int, default=25)
    parser.add_argument("--target-nll", type=float, default=None,
                        help="skip the baseline and aim at this NLL (for tuning only; the result is not a comparison)")
    parser.add_argument("--time-limit", type=float, default=None)
    args = parser.parse_args()
    configure_torch()
    if args.target_nll is None:
        baseline = run_baseline(args.baseline_iters)
        print(f"baseline: {json.dumps(baseline)}", file=sys.stderr, flush=True)  # progress: the long half is done
        target, limit = baseline["held_out_nll"], baseline["wall_seconds"]
    else:
        baseline, target, limit = None, args.target_nll, args.time_limit or 600.0
    odeviz = run_odeviz(target, limit, args.check_every)
    report = {
        "benchmark": "CNF on two circles (make_circles noise 0.06 factor 0.5): time to the baseline's held-out NLL",
        "torch_threads": torch.get_num_threads(),
        "held_out": {"points": len(HELD_OUT), **EVALUATION, "dtype": "float64"},
        "baseline_torchdiffeq_examples_cnf": baseline,
        "odeviz": {**odeviz, "settings": ODEVIZ_SETTINGS},
    }
    if baseline is not None:
        report["speedup"] = round(baseline["wall_seconds"] / odeviz["wall_seconds"], 2)
        report["target_met"] = bool(odeviz["reached"] and odeviz["wall_seconds"] <= baseline["wall_seconds"] / 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
