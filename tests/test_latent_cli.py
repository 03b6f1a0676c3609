"""``odeviz train latent`` and ``odeviz table2`` run as a user runs them: a subprocess, its exit code,
stdout and stderr."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--hidden", "8", "--encoder-hidden", "8", "--batch-size", "16"]


def odeviz(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "odeviz", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_train_latent_reports_both_models_and_saves(tmp_path):
    saved = tmp_path / "latent.pt"
    result = odeviz("train", "latent", "--obs", "50", "--iters", "5", "--save", str(saved), "--json", *SMALL)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["experiment"] == "latent" and report["iterations"] == 5 and report["test_series"] == 200
    assert report["params"]["observations"] == 50 and report["params"]["hidden"] == 8
    for key in ("rmse_latent_ode", "rmse_rnn", "final_elbo", "iterations_per_second"):
        assert math.isfinite(report[key]) and report[key] != 0, key
    assert report["nfe_forward"]["mean"] > 0 and "5/5" in result.stderr and "Traceback" not in result.stderr
    state = torch.load(saved, weights_only=True)
    assert state["format"] == "odeviz-latent-1" and state["config"]["hidden"] == 8


def test_train_latent_on_a_file_within_a_time_limit(tmp_path):
    data = tmp_path / "waves.csv"
    data.write_text("series,t,x1,x2\n" + "\n".join(
        f"{s},{0.1 * t},{math.sin(0.1 * t + s)},{math.cos(0.1 * t + s)}" for s in range(12) for t in range(20)))
    result = odeviz("train", "latent", "--data", str(data), "--iters", "100000", "--max-seconds", "3", *SMALL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("latent on file 'waves.csv'") and "RMSE on the extrapolated part" in result.stdout
    assert "Traceback" not in result.stderr


def test_table2_prints_every_column_beside_the_papers():
    result = odeviz("table2", "--iters", "2", "--json", *SMALL)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [row["observations"] for row in rows] == [30, 50, 100]
    assert [row["paper_rnn"] for row in rows] == [0.3937, 0.3202, 0.1813]
    assert [row["paper_latent_ode"] for row in rows] == [0.1642, 0.1502, 0.1346]
    assert all(row["iterations"] == 2 and row["latent_ode"] > 0 and row["rnn"] > 0 for row in rows)
    assert result.stderr.count("observations: latent ODE") == 3


@pytest.mark.parametrize(
    "args, named",
    [
        (["train", "latent", "--obs", "5"], "--obs must be at least 10, not 5"),
        (["train", "latent", "--data", "nowhere.csv"], "--data: data file 'nowhere.csv' does not exist"),
        (["train", "latent", "--data", "BAD"], "--data: file 'bad.csv': the times of series '1' are not sorted"),
        (["train", "latent", "--rtol", "nan"], "--rtol"),
        (["train", "latent", "--horizon", "3"], "--horizon must be at most 1.0"),
        (["train", "latent", "--max-seconds", "0"], "--max-seconds must be positive"),
        (["table2", "--iters", "0"], "--iters must be at least 1"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(tmp_path, args, named):
    bad = tmp_path / "bad.csv"
    bad.write_text("series,t,x\n" + "\n".join(f"{s},{t},0" for s in (1, 2) for t in (0, 2, 1, 3)))
    result = odeviz(*[str(bad) if a == "BAD" else a for a in args], timeout=120)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert named in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
