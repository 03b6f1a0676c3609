"""CNF training speed as users run it: a plain torchdiffeq CNF set up like torchdiffeq's examples/cnf.py
against ``odeviz train cnf`` with its defaults and a time budget, in the same run on the same machine.

Peer (the example's own settings, torch's default threads): two circles (sklearn ``make_circles``, noise
0.06, factor 0.5, a fresh batch of 512 every iteration), the hypernetwork CNF (hidden 32, width 64), base
N(0, 0.1·I), the data at t = 10 solved back to t = 0 with dopri5 at rtol = atol = 1e-5, exact trace by
autograd, direct backprop, Adam at 1e-3, 1000 iterations (300 with ``--quick``).

odeviz: the public entry point, ``python -m odeviz train cnf --data circles.npy --max-seconds S --save``,
with every other setting its default (whatever they are today: the command's help says), on a file of
100 000 points of the same distribution, given S = the peer's training time / ``--share`` (5 by default).
Its training time is the command's own ``wall_time_seconds`` (like the peer's, it leaves out imports and
the final measurement); the process's whole wall time is reported beside it.

Held-out NLL, the same measure for both: mean −log p(x) in nats over 5000 fresh points of the data
distribution (``random_state`` 2024, never trained on), each model in float64 with dopri5 at
rtol 1e-7 / atol 1e-9. The machine may be shared: the report carries ``uptime``'s load averages, and
only the ratio of the two times, measured minutes apart, means anything.

    PYTHONPATH=. python benchmarks/bench_cnf.py [--quick] [--share 5]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_circles
from torch import nn
from torchdiffeq import odeint

import odeviz

ROOT = Path(__file__).resolve().parents[1]
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


# ---- odeviz, through its command line --------------------------------------------------------------
def run_odeviz(budget_seconds: float, folder: Path, seed: int = 0) -> dict:
    data, model = folder / "circles.npy", folder / "cnf.pt"
    np.save(data, make_circles(n_samples=100_000, noise=NOISE, factor=FACTOR, random_state=seed)[0])
    command = [sys.executable, "-m", "odeviz", "train", "cnf", "--data", str(data), "--iters", "1000000",
               "--max-seconds", f"{budget_seconds:.2f}", "--save", str(model), "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    process_seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"odeviz train cnf failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    nll = float(-odeviz.load(model).log_prob(HELD_OUT, **EVALUATION).mean())
    return {
        "command": " ".join(command[1:]).replace(str(folder), "TMP"), "budget_seconds": budget_seconds,
        "wall_seconds": report["wall_time_seconds"], "process_seconds": process_seconds,
        "iterations": report["iterations"], "held_out_nll": nll, "nfe_forward_mean": report["nfe_forward"]["mean"],
        "defaults": {name: report["params"][name] for name in ("method", "fixed_steps", "learning_rate",
                     "decay_iterations", "regularization", "compare_planar", "rtol", "atol", "adjoint", "batch_size")},
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the peer trains 300 iterations, not 1000")
    parser.add_argument("--share", type=float, default=5.0, help="odeviz gets the peer's time divided by this")
    args = parser.parse_args()
    loads = {"start": load_average()}
    baseline = run_baseline(300 if args.quick else 1000)
    loads["after_peer"] = load_average()
    print(f"peer: {json.dumps(baseline)}", file=sys.stderr, flush=True)  # progress: the long half is done
    with tempfile.TemporaryDirectory() as folder:
        ours = run_odeviz(baseline["wall_seconds"] / args.share, Path(folder))
    loads["end"] = load_average()
    report = {
        "benchmark": "CNF on two circles (make_circles noise 0.06 factor 0.5): held-out NLL of odeviz's defaults "
                     f"given 1/{args.share:g} of the peer's training time",
        "held_out": {"points": len(HELD_OUT), **EVALUATION, "dtype": "float64"},
        "peer_torchdiffeq_examples_cnf": {**baseline, "torch_threads": torch.get_num_threads()},
        "odeviz_train_cnf_defaults": ours,
        "time_ratio_peer_over_odeviz": round(baseline["wall_seconds"] / ours["wall_seconds"], 2),
        "target_met": bool(ours["held_out_nll"] <= baseline["held_out_nll"]
                           and ours["wall_seconds"] <= baseline["wall_seconds"] / args.share * 1.02),
        "load_average_1_5_15min": loads,
        "note": "a shared machine: absolute times are noisy; the two runs are minutes apart in one process",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
