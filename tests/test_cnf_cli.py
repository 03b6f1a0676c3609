"""``odeviz train cnf`` run as a user runs it: a subprocess, its exit code, stdout and stderr."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def odeviz(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "odeviz", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_train_cnf_json_save_and_load(tmp_path):
    saved = tmp_path / "moons.pt"
    result = odeviz("train", "cnf", "--data", "moons", "--iters", "8", "--compare-planar", "--save", str(saved), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["experiment"] == "cnf" and report["iterations"] == 8
    assert math.isfinite(report["held_out_nll"]) and report["held_out_points"] == 5000
    assert set(report["held_out_nll_planar"]) == {"2", "8", "32"}
    assert report["iterations_per_second"] > 0 and report["nfe_forward"]["mean"] > 0
    assert "8/8" in result.stderr and "Traceback" not in result.stderr

    import odeviz as library

    model = library.load(saved)
    points = np.random.default_rng(0).normal(size=(20, 2))
    assert model.log_prob(points).shape == (20,) and model.sample(7).shape == (7, 2)


def test_train_cnf_on_a_file_within_a_time_limit(tmp_path):
    data = tmp_path / "blob.csv"
    data.write_text("x,y\n" + "\n".join(f"{np.sin(i)},{np.cos(3 * i)}" for i in range(300)))
    result = odeviz("train", "cnf", "--data", str(data), "--iters", "100000", "--max-seconds", "3", "--width", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cnf on ") and "held-out NLL" in result.stdout and "(30 points)" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, named",
    [
        (["--data", "moons", "--width", "0"], "--width must be at least 1, not 0"),
        (["--data", "nowhere.npy"], "neither a known density"),
        (["--data", "BAD", "--iters", "1"], "NaN or infinite"),
        (["--data", "moons", "--rtol", "nan"], "--rtol"),
        (["--data", "moons", "--max-seconds", "0"], "--max-seconds must be positive"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(tmp_path, args, named):
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(f"{i},{'nan' if i == 4 else i}" for i in range(20)))
    result = odeviz("train", "cnf", *[str(bad) if a == "BAD" else a for a in args])
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
