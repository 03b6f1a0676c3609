"""Bad input, from the command line and from Python: each gets a message in the user's words, the CLI's
exit code says what kind of failure it was (2: a bad option, 1: a run that stopped), and an experiment
that refused a value keeps its weights and keeps working."""
from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
import torch

import odeviz
from odeviz.cli import main
from odeviz.experiments import ClassifierExperiment, CNFExperiment, ContinuityExperiment
from odeviz.models.flows import CNF
from odeviz.models.saving import TrainedFlow, save_cnf

PARAM_CLASS_WORDS = ("Number parameter", "Integer parameter", "Selector parameter", "Parameterized")


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``odeviz ARGV`` in this process: (exit code, stdout, the last line of stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit:  # argparse's own usage errors
            code = exit.code
    lines = err.getvalue().strip().splitlines()
    assert "Traceback" not in err.getvalue()
    return code, out.getvalue(), lines[-1] if lines else ""


def strict_json(text: str) -> dict:
    def refuse(constant):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# ---- the command line: bad options, exit code 2, one line naming the option -------------------
USAGE_ERRORS = [
    (["train", "continuity", "--iters", "0"], "--iters must be at least 1, not 0"),
    (["train", "continuity", "--lr", "11"], "--lr must be at most 10.0, not 11.0"),
    (["train", "continuity", "--lr", "0"], "--lr must be at least 1e-05"),
    (["train", "continuity", "--rtol", "nan"], "--rtol: must be a finite number, not 'nan'"),
    (["train", "continuity", "--atol", "abc"], "--atol: expected a number, not 'abc'"),
    (["train", "continuity", "--method", "rk45"], "--method: invalid choice: 'rk45'"),
    (["train", "continuity", "--depth", "0"], "--depth must be at least 1, not 0"),
    (["train", "classifier", "--samples", "2"], "--samples must be at least 16, not 2"),
    (["train", "classifier", "--noise", "-1"], "--noise must be at least 0.0"),
    (["train", "classifier", "--data", "smiley"], "--data: invalid choice: 'smiley'"),
    (["train", "classifier", "--max-nfe", "5"], "--max-nfe must be at least 10, not 5"),
    (["fig3", "--iters", "0"], "--iters must be at least 1, not 0"),
    (["train", "cnf", "--data", "nowhere.csv"], "is neither a known density"),
    (["train", "cnf", "--data", "moons", "--save", ""], "--save needs a file name"),
    (["train", "cnf", "--data", "moons", "--save", "/tmp"], "'/tmp' is a folder; give a file name in it"),
    (["train", "cnf", "--data", "moons", "--save", "/proc/version"], "--save: cannot write to '/proc/version'"),
    (["train", "cnf", "--data", "moons", "--save", "/no/such/folder/m.pt"], "the folder '/no/such/folder' does not exist"),
    (["train", "cnf", "--data", "moons", "--iters", "0"], "--iters must be at least 1, not 0"),
    (["train", "cnf", "--data", "moons", "--max-seconds", "-1"], "--max-seconds must be positive"),
    (["train", "cnf", "--data", "moons", "--width", "0"], "--width must be at least 1, not 0"),
    (["train", "supervised", "--model", "vgg"], "--model: invalid choice: 'vgg'"),
    (["train", "supervised", "--model", "mlp", "--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["train", "supervised", "--model", "mlp", "--mnist-dir", "/no/such/mnist"], "/no/such/mnist does not exist"),
    (["table1", "--lr", "-1"], "--lr must be at least 1e-05, not -1.0"),
]


@pytest.mark.parametrize("argv, message", USAGE_ERRORS, ids=[" ".join(argv) for argv, _ in USAGE_ERRORS])
def test_a_bad_option_is_one_line_and_exit_2(argv, message):
    code, out, last = run_cli(*argv)
    assert code == 2 and out == ""
    assert message in last and "error" in last, last
    assert not any(word in last for word in PARAM_CLASS_WORDS), last


def test_a_bad_points_file_is_refused_before_training(tmp_path):
    bad = tmp_path / "three columns.csv"
    bad.write_text("1,2,3\n4,5,6\n")
    code, _, last = run_cli("train", "cnf", "--data", str(bad))
    assert code == 2 and "--data" in last and "three columns.csv" in last, last


def test_save_is_checked_without_leaving_a_file_behind(tmp_path):
    # The up-front check writes nothing: a refused run (here: a bad width) leaves the folder as it was.
    target = tmp_path / "model.pt"
    code, _, _ = run_cli("train", "cnf", "--data", "moons", "--save", str(target), "--width", "0")
    assert code == 2 and not target.exists()


# ---- the command line: runs that stop, exit code 1, one line saying why ----------------------
def test_supervised_at_learning_rate_10_stops_with_the_reason():
    code, out, last = run_cli("train", "supervised", "--model", "mlp", "--lr", "10", "--epochs", "3", "--json")
    report = strict_json(out)
    assert code == 1 and report["stopped_early"] is True
    assert last == f"odeviz: {report['message']}" and "the loss jumped to" in last


def test_classifier_json_is_strict_json():
    code, out, _ = run_cli("train", "classifier", "--iters", "3", "--samples", "64", "--json")
    report = strict_json(out)  # the penalty's columns are NaN without a penalty: null here
    assert code == 0 and report["final_kinetic"] is None and math.isfinite(report["final_loss"])


def test_fig3_that_cannot_train_reports_null_measurements():
    code, out, last = run_cli("fig3", "--max-nfe", "10", "--iters", "3", "--samples", "64", "--json")
    report = strict_json(out)
    assert code == 1 and report["a_b_tolerance_sweep"] is None and report["iterations"] == 0
    assert "more than 10 evaluations" in last


def test_a_save_that_fails_after_training_is_one_line_and_exit_1():
    code, _, last = run_cli("train", "cnf", "--data", "moons", "--iters", "2", "--width", "8", "--save", "/dev/full")
    assert code == 1 and last.startswith("odeviz: trained, but could not save the model to '/dev/full'"), last


# ---- Python: an experiment refuses a value, keeps its weights and keeps working -----------------
@pytest.fixture(scope="module")
def continuity():
    experiment = ContinuityExperiment(samples=16, width=8)
    experiment.trainer.snapshot_interval = math.inf
    yield experiment
    experiment.close()


def _weights(experiment) -> dict:
    assert experiment.trainer.wait_idle(60)
    return {name: value.clone() for name, value in experiment.model.state_dict().items()}


REFUSED_VALUES = [
    ("learning_rate", 11.0, "at most 10.0"),
    ("learning_rate", 0.0, "at least 1e-05"),
    ("learning_rate", True, "must be a number, not True"),
    ("rtol", 0.0, "at least 1e-10"),
    ("rtol", float("nan"), "rtol must be a number, not nan"),
    ("atol", -1.0, "at least 1e-12"),
    ("method", "rk45", "rk45"),
    ("depth", 0, "at least 1"),
    ("fixed_steps", 0, "at least 1"),
    ("max_nfe", 5, "at least 10"),
    ("seed", -1, "at least 0"),
    ("target", "sine wave", "sine wave"),
]


@pytest.mark.parametrize("name, value, message", REFUSED_VALUES, ids=[f"{n}={v!r}" for n, v, _ in REFUSED_VALUES])
def test_a_refused_value_leaves_the_experiment_as_it_was(continuity, name, value, message):
    before, kept = _weights(continuity), getattr(continuity, name)
    with pytest.raises(ValueError, match=message) as refused:
        setattr(continuity, name, value)
    assert name in str(refused.value)  # names the knob
    assert getattr(continuity, name) == kept
    after = _weights(continuity)
    assert all(torch.equal(after[key], before[key]) for key in before)
    iteration = continuity.trainer.iteration
    continuity.step(1)  # and it still trains
    assert continuity.trainer.wait_idle(60) and continuity.trainer.iteration == iteration + 1
    assert continuity.trainer.message == ""


def test_a_probe_off_the_map_is_refused(make_experiment):
    experiment = make_experiment(ClassifierExperiment, samples=32)
    with pytest.raises(ValueError, match="a probe needs finite coordinates"):
        experiment.add_probe(float("nan"), 0.0)
    experiment.step(1)
    assert experiment.trainer.wait_idle(60) and experiment.trainer.iteration == 1


@pytest.mark.parametrize("points, message", [
    (np.zeros((5, 3)), "N×2"),
    (np.full((40, 2), np.nan), "NaN"),
    (np.zeros((0, 2)), "point"),
])
def test_points_that_cannot_be_learnt_are_refused(make_experiment, points, message):
    experiment = make_experiment(CNFExperiment, width=8, batch_size=64)
    experiment.trainer.snapshot_interval = math.inf
    before = _weights(experiment)
    with pytest.raises(ValueError, match=message):
        experiment.use_points(points)
    assert experiment.target == "moons"
    after = _weights(experiment)
    assert all(torch.equal(after[key], before[key]) for key in before)
    experiment.step(1)
    assert experiment.trainer.wait_idle(60) and experiment.trainer.iteration == 1


# ---- Python: the library's functions ----------------------------------------------------------
def decay(t, y):
    return -y


@pytest.mark.parametrize("kwargs, message", [
    (dict(t="abc"), "t must be a sequence of times"),
    (dict(t=[0.0]), "at least two times"),
    (dict(t=[0.0, 1.0], method="euler", options={"step_size": 0}), "step_size must be a positive finite number, got 0"),
    (dict(t=[0.0, 1.0], method="euler", options={"step_size": -0.1}), "step_size must be a positive finite number, got -0.1"),
    (dict(t=[0.0, 1.0], y0=torch.ones(0, 2)), "y0 is empty"),
    (dict(t=[0.0, 1.0], y0=torch.ones(2, dtype=torch.int64)), "floating-point"),
    (dict(t=[0.0, 1.0], rtol="tight"), "rtol must be a positive finite number"),
])
def test_solve_refuses_bad_arguments_with_value_error(kwargs, message):
    kwargs = {"y0": torch.ones(2), **kwargs}
    with pytest.raises(ValueError, match=message):
        odeviz.solve(decay, kwargs.pop("y0"), kwargs.pop("t"), **kwargs)


@pytest.fixture(scope="module")
def flow():
    return TrainedFlow(CNF(width=8, depth=1))


@pytest.mark.parametrize("n", [-1, 2.5, True, "3"])
def test_sample_refuses_a_count_that_is_not_a_whole_number(flow, n):
    with pytest.raises(ValueError, match="the number of samples must be a whole number ≥ 0"):
        flow.sample(n)


def test_sample_of_zero_is_empty(flow):
    assert flow.sample(0).shape == (0, 2)
    assert flow.sample(3, seed=1).shape == (3, 2)  # and it still samples


def test_load_names_a_file_whose_model_cannot_be_rebuilt(tmp_path):
    path = tmp_path / "edited.pt"
    save_cnf(CNF(width=8, depth=1), path)
    saved = torch.load(path, weights_only=True)
    for change, message in (
        (lambda s: s["config"].update(colour="red"), "describes a model this version of odeviz does not know"),
        (lambda s: s["state_dict"].pop("standardise.shift"), "holds weights that do not fit the model it describes"),
    ):
        edited = {**saved, "config": dict(saved["config"]), "state_dict": dict(saved["state_dict"])}
        change(edited)
        torch.save(edited, path)
        with pytest.raises(ValueError, match=message) as refused:
            odeviz.load(path)
        assert str(path) in str(refused.value)


def test_load_of_a_file_not_saved_by_odeviz(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a model")
    with pytest.raises(ValueError, match="is not a model saved by odeviz"):
        odeviz.load(path)
    with pytest.raises(FileNotFoundError, match="no saved model"):
        odeviz.load(tmp_path / "missing.pt")
