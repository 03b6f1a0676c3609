"""``odeviz train classifier`` and ``odeviz fig3``, run as a user runs them (a subprocess)."""
from __future__ import annotations

import json

import pytest

from test_cli import odeviz


def test_train_classifier_json():
    result = odeviz("train", "classifier", "--data", "moons", "--iters", "20", "--samples", "128", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["experiment"] == "classifier" and report["iterations"] == 20
    assert 0.5 <= report["accuracy"] <= 1.0 and report["loss_all_points"] > 0
    assert report["iterations_per_second"] > 0
    assert report["nfe_forward"]["mean"] > 0 and report["nfe_backward"]["mean"] > 0
    assert report["params"]["dataset"] == "moons" and report["params"]["samples"] == 128
    assert "20/20" in result.stderr and "Traceback" not in result.stderr


def test_fig3_json_has_the_four_panels_and_the_memory():
    result = odeviz("fig3", "--iters", "10", "--samples", "64", "--seminorm", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sweep = report["a_b_tolerance_sweep"]
    assert sweep["tolerance"] == [10.0**-k for k in range(1, 9)]
    assert sweep["nfe_forward"][-1] > sweep["nfe_forward"][0] and sweep["error"][-1] < sweep["error"][0]
    assert len(report["c_nfe_backward_vs_forward"]["nfe_backward"]) == 10
    assert report["c_nfe_backward_vs_forward"]["mean_ratio"] > 0
    assert report["d_nfe_over_training"]["iteration"] == list(range(1, 11))
    memory = report["memory"]
    assert memory["steps"] == [8, 16, 32, 64, 128, 256, 512] and len(set(memory["adjoint_bytes"])) == 1
    assert memory["direct_bytes"][-1] == pytest.approx(64 * memory["direct_bytes"][0], rel=1e-3)
    assert report["swept_at_iteration"] == 10 and report["params"]["seminorm"] is True


@pytest.mark.parametrize(
    "args, named",
    [(["train", "classifier", "--noise", "0.9"], "--noise"), (["fig3", "--samples", "3"], "--samples")],
)
def test_bad_input_is_one_line_naming_the_option(args, named):
    result = odeviz(*args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "error" in lines[0], result.stderr
