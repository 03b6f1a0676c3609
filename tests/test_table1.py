"""The paper's Table 1: digit data and MNIST IDX files, the four models, their memory, the experiment,
the CLI and the page rendered to Bokeh models (no server, no browser)."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import panel as pn
import pytest
import torch

from odeviz.data.digits import MnistError, bundled_digits, load_mnist, read_idx, write_idx
from odeviz.experiments import Table1Experiment
from odeviz.experiments.table1 import MODELS
from odeviz.models.table1 import MLP, ODENet, ConvResNet, downsamplings, parameter_count

ROOT = Path(__file__).resolve().parents[1]


# ---- data ----------------------------------------------------------------------------------------
def test_bundled_digits_split_is_fixed_and_scaled():
    data = bundled_digits(seed=0)
    assert data.train_images.shape == (1438, 1, 8, 8) and data.test_images.shape == (359, 1, 8, 8)
    assert data.train_images.dtype == np.float32 and 0.0 == data.train_images.min() and data.train_images.max() == 1.0
    assert set(np.unique(data.test_labels)) == set(range(10))
    again = bundled_digits(seed=0)
    assert np.array_equal(data.test_labels, again.test_labels) and np.array_equal(data.train_images, again.train_images)
    assert not np.array_equal(bundled_digits(seed=1).test_labels, data.test_labels)


def write_mnist(directory: Path, train=12, test=5, side=28, gz=False, seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    arrays = {}
    for split, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, side, side), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels)
        arrays[split] = images, labels
    return arrays["train"]


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_round_trip(tmp_path, gz):
    images, labels = write_mnist(tmp_path, gz=gz)
    data = load_mnist(tmp_path)
    assert data.train_images.shape == (12, 1, 28, 28) and data.test_images.shape == (5, 1, 28, 28)
    assert np.allclose(data.train_images[:, 0] * 255, images) and np.array_equal(data.train_labels, labels)
    assert data.side == 28 and data.name == "MNIST"


def test_idx_reader_refuses_truncated_and_mislabelled_files(tmp_path):
    write_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    raw = images.read_bytes()
    images.write_bytes(raw[:-100])
    with pytest.raises(MnistError, match=r"train-images-idx3-ubyte is truncated: .*shape \(12, 28, 28\)"):
        load_mnist(tmp_path)
    # A labels file where the images belong: its header says 1-D.
    images.write_bytes((tmp_path / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(MnistError, match="holds 1-D data .* expected images"):
        load_mnist(tmp_path)
    images.write_bytes(b"PK\x03\x04" + raw[4:])
    with pytest.raises(MnistError, match="not an IDX file"):
        load_mnist(tmp_path)
    images.write_bytes(raw)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, np.uint8))
    with pytest.raises(MnistError, match="12 images but 11 labels"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(12, 12, np.uint8))
    with pytest.raises(MnistError, match="include 12; digits are 0–9"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MnistError, match="no MNIST test labels .* t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(MnistError, match="does not exist"):
        load_mnist(tmp_path / "elsewhere")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01")[:-3])
    with pytest.raises(MnistError, match="cannot read"):
        read_idx(tmp_path / "bad.gz", 1)


# ---- models -------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, side", [(16, 8), (64, 28)])
def test_parameter_counts_follow_the_architectures(channels, side):
    c, k = channels, downsamplings(side)
    stem = 10 * c + k * (2 * c + 16 * c * c + c)  # 3×3 conv 1→C; per downsampling: GroupNorm + 4×4 conv C→C
    readout = 2 * c + 10 * c + 10  # GroupNorm, linear C→10
    residual_block = 2 * (2 * c + 9 * c * c)  # (GroupNorm, 3×3 conv without bias) twice
    field = 2 * (2 * c + 9 * (c + 1) * c + c) + 2 * c  # (GroupNorm, 3×3 conv on C + time channel) twice, GroupNorm
    assert parameter_count(MLP(side * side)) == side * side * 300 + 300 + 300 * 10 + 10
    assert parameter_count(ConvResNet(c, side)) == stem + 6 * residual_block + readout
    assert parameter_count(ODENet(c, side)) == stem + field + readout
    if (channels, side) == (64, 28):  # the paper's MNIST models: 0.24 M, 0.60 M, 0.22 M
        assert parameter_count(MLP(784)) == pytest.approx(0.24e6, rel=0.01)
        assert parameter_count(ConvResNet(c, side)) == pytest.approx(0.60e6, rel=0.05)
        assert parameter_count(ODENet(c, side)) == pytest.approx(0.22e6, rel=0.06)


def test_downsampling_reaches_seven_by_seven_or_less():
    assert [downsamplings(side) for side in (7, 8, 14, 28)] == [0, 1, 1, 2]
    assert ConvResNet(8, 28).hidden_states(torch.zeros(2, 1, 28, 28))[-1].shape == (2, 8, 7, 7)
    assert ConvResNet(8, 8).hidden_states(torch.zeros(2, 1, 8, 8))[-1].shape == (2, 8, 4, 4)


# ---- the experiment -------------------------------------------------------------------------------
def test_memory_grows_with_depth_except_for_the_adjoint(make_experiment):
    experiment = make_experiment(Table1Experiment, models=["mlp"])
    experiment.trainer.wait_idle()
    sweep = experiment.trainer.mailbox.latest().memory
    depths = sweep.depths
    resnet_per_block = np.diff(sweep.resnet) / np.diff(depths)
    rknet_per_step = np.diff(sweep.rknet) / np.diff(depths)
    assert np.allclose(resnet_per_block, resnet_per_block[0]) and resnet_per_block[0] > 0  # O(L)
    assert np.allclose(rknet_per_step, rknet_per_step[0], rtol=0.01) and rknet_per_step[0] > 0  # O(L̃)
    assert np.all(sweep.odenet_adjoint == sweep.odenet_adjoint[0])  # O(1)
    assert sweep.odenet_adjoint[0] < sweep.rknet[0] / 2 and sweep.rknet[-1] > 30 * sweep.odenet_adjoint[0]


def test_rknet_takes_its_rk4_steps_through_the_solver(make_experiment):
    experiment = make_experiment(Table1Experiment, models=["rknet"], rk_steps=3, adjoint=True)
    experiment.step(1)
    experiment.trainer.wait_idle()
    experiment.rk_steps = 5
    experiment.step(1)
    experiment.trainer.wait_idle()
    _, history = experiment.trainer.history.since(0)
    # Four evaluations of f per RK4 step, and no adjoint solve whatever the ODE-Net's setting.
    assert history["nfe_forward"].tolist() == [12, 20] and history["nfe_backward"].tolist() == [0, 0]


@pytest.mark.parametrize("model", MODELS)
def test_each_model_learns_the_digits_under_five_percent(make_experiment, model):
    experiment = make_experiment(Table1Experiment, models=[model], epochs=8)
    experiment.trainer.snapshot_interval = float("inf")
    experiment.step(experiment.total_iterations())
    assert experiment.trainer.wait_idle(timeout=600)  # generous: the machine may be shared
    experiment.trainer.refresh()
    experiment.trainer.wait_idle()
    (row,) = experiment.trainer.mailbox.latest().rows
    assert row.status == "done" and row.epochs_done == 8 and len(row.test_errors) == 8
    assert row.test_error < 5.0, f"{model}: {row.test_errors}"
    assert row.test_errors[0] > row.test_error  # it learned
    assert row.seconds_per_epoch > 0
    if model == "odenet":
        assert row.nfe_forward >= 8 and row.nfe_backward >= 8  # dopri5 forward, adjoint backward
    elif model == "rknet":
        assert row.nfe_forward == 4 * 4 and np.isnan(row.nfe_backward)  # 4 RK4 steps, backprop through them
    else:
        assert np.isnan(row.nfe_forward)


def test_models_train_in_turn_then_the_table_is_complete(make_experiment):
    experiment = make_experiment(Table1Experiment, models=["mlp", "rknet"], epochs=1, batch_size=256)
    experiment.start()
    deadline = 60
    while experiment.trainer.state != "done" and deadline > 0:
        experiment.trainer.wait_idle(timeout=1)
        deadline -= 1
    experiment.trainer.wait_idle()
    snapshot = experiment.trainer.mailbox.latest()
    assert [row.key for row in snapshot.rows] == ["mlp", "rknet"]
    assert all(row.status == "done" and np.isfinite(row.test_error) for row in snapshot.rows)
    _, history = experiment.trainer.history.since(0)
    assert list(np.unique(history["model"])) == [0.0, 2.0]  # MLP's rows first, then the RK-Net's
    assert np.all(np.diff(history["model"]) >= 0)
    experiment.start()  # nothing left: stops again at once, without an error
    experiment.trainer.wait_idle()
    assert experiment.trainer.state == "done" and experiment.trainer.message == ""
    experiment.epochs = 2  # one more epoch each
    assert experiment.total_iterations() == 2 * experiment.batches_per_epoch


def test_pause_mid_epoch_resumes_where_it_stopped(make_experiment):
    experiment = make_experiment(Table1Experiment, models=["odenet"], epochs=1, batch_size=128)
    experiment.step(3)
    experiment.trainer.wait_idle()
    run = experiment.runs["odenet"]
    assert (run.batch, run.epochs_done) == (3, 0)
    experiment.step(experiment.total_iterations())
    experiment.trainer.wait_idle()
    assert run.epochs_done == 1 and run.batch == 0 and len(run.test_errors) == 1


def test_a_nan_gradient_pauses_and_restores_the_model_in_training(make_experiment):
    experiment = make_experiment(Table1Experiment, models=["mlp", "resnet"], epochs=1, batch_size=256)
    trainer, mlp = experiment.trainer, experiment.runs["mlp"]
    experiment.step(experiment.batches_per_epoch + 1)  # the MLP's epoch, then one ResNet step
    trainer.wait_idle()
    resnet = experiment.runs["resnet"]
    # The last good weights are those the last good step computed with: the ones before its update.
    weights = {name: value.clone() for name, value in resnet.model.state_dict().items()}
    adam_steps = [state["step"].item() for state in resnet.optimizer.state.values()]
    mlp_weights = {name: value.clone() for name, value in mlp.model.state_dict().items()}
    experiment.step(1)
    trainer.wait_idle()
    first = next(resnet.model.parameters())
    poisoned = first.register_hook(lambda grad: grad * float("nan"))  # the loss stays finite
    experiment.step(1)
    trainer.wait_idle()
    poisoned.remove()
    assert trainer.state == "paused" and "a gradient became NaN or infinite" in trainer.message
    for name, value in resnet.model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    assert [state["step"].item() for state in resnet.optimizer.state.values()] == adam_steps
    assert all(torch.equal(value, mlp_weights[name]) for name, value in mlp.model.state_dict().items())
    experiment.step(1)
    trainer.wait_idle()
    assert trainer.message == "" and resnet.steps == 3


def test_bad_values_are_refused_and_the_experiment_keeps_working(make_experiment, tmp_path):
    experiment = make_experiment(Table1Experiment, models=["mlp"], epochs=1)
    for name, value, message in (("epochs", 0, "at least 1"), ("rtol", 0.0, "at least 1e-10"), ("atol", 2.0, "at most 1")):
        with pytest.raises(ValueError, match=message):
            setattr(experiment, name, value)
    with pytest.raises(MnistError, match="does not exist"):
        experiment.mnist_dir = str(tmp_path / "missing")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 5)
    with pytest.raises(MnistError, match="truncated|no MNIST"):
        experiment.mnist_dir = str(tmp_path)
    assert experiment.mnist_dir is None and experiment.epochs == 1
    experiment.step(experiment.total_iterations())
    experiment.trainer.wait_idle()
    assert experiment.runs["mlp"].epochs_done == 1 and experiment.trainer.message == ""


def test_mnist_directory_trains_on_mnist(make_experiment, tmp_path):
    write_mnist(tmp_path, train=40, test=10)
    experiment = make_experiment(Table1Experiment, models=["resnet"], epochs=1, channels=4, batch_size=20)
    experiment.mnist_dir = str(tmp_path)  # restarts the table on MNIST
    experiment.trainer.wait_idle()
    experiment.step(experiment.total_iterations())
    experiment.trainer.wait_idle()
    snapshot = experiment.trainer.mailbox.latest()
    assert (snapshot.dataset, snapshot.train_size, snapshot.test_size) == ("MNIST", 40, 10)
    assert snapshot.rows[0].epochs_done == 1
    assert snapshot.hidden.digit.shape == (28, 28) and snapshot.hidden.resnet_states.shape[-2:] == (7, 7)


# ---- the CLI ----------------------------------------------------------------------------------------
def odeviz(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "odeviz", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env, check=False)  # the tests read the exit code


def test_cli_table1_prints_the_whole_table():
    result = odeviz("table1", "--epochs", "1", "--batch-size", "256", "--channels", "8", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["experiment"] == "table1" and report["dataset"] == "8×8 digits"
    assert [row["model"] for row in report["rows"]] == list(MODELS)
    for row in report["rows"]:
        assert row["epochs"] == 1 and 0 <= row["test_error_percent"] <= 100 and row["params"] > 0
        assert row["activation_bytes"] > 0 and row["seconds_per_epoch"] > 0
    odenet = report["rows"][3]
    assert odenet["nfe_forward"] > 0 and odenet["nfe_backward"] > 0 and odenet["paper"]["memory"] == "O(1)"
    assert report["rows"][2]["activation_bytes"] > 2 * odenet["activation_bytes"]  # RK-Net keeps every step


def test_cli_train_supervised_one_model_as_a_table():
    result = odeviz("train", "supervised", "--model", "mlp", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("8×8 digits: 1,438 training / 359 test images")
    assert lines[2].startswith("1-layer MLP") and "0.24 M" in lines[2]


@pytest.mark.parametrize(
    "args, named",
    [
        (["--epochs", "0"], "--epochs"),
        (["--rtol", "0"], "--rtol"),
        (["--atol", "nan"], "--atol"),
        (["--mnist-dir", "/nonexistent/mnist"], "/nonexistent/mnist does not exist"),
    ],
)
def test_cli_bad_input_is_one_line(args, named):
    result = odeviz("table1", *args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and named in lines[0], result.stderr


def test_cli_reads_the_mnist_directory_from_the_environment(tmp_path):
    import os

    write_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03")
    result = odeviz("train", "supervised", "--model", "mlp", env={**os.environ, "ODEVIZ_MNIST_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "t10k-images-idx3-ubyte is truncated: its header is incomplete" in result.stderr


# ---- the page, rendered to Bokeh models ---------------------------------------------------------------
@pytest.fixture
def page():
    from odeviz.views import Table1Page

    page = Table1Page(experiment=Table1Experiment(models=["mlp", "resnet"], epochs=1, batch_size=128)).ready()
    yield page
    page.stream.stop()


def test_page_renders_and_the_table_fills_in(page):
    from bokeh.document import Document
    from bokeh.models import ColumnDataSource

    from odeviz.views import PAGES, Table1Page

    assert PAGES["table1"] is Table1Page
    document = Document()
    root = pn.panel(page).get_root(document)
    names = {m.name for m in root.references() if isinstance(m, ColumnDataSource)}
    assert {"table1-rows", "memory-sweep", "hidden-resnet", "hidden-ode", "loss-mlp", "error-odenet"} <= names
    rows = page.figures.rows.data
    assert rows["model"] == ["1-layer MLP", "ResNet"] and rows["test_error"] == ["–", "–"]
    assert rows["paper_error"] == ["1.60 %", "0.41 %"]
    assert len(page.figures.tiles["resnet"].data["image"]) == 7 * 4  # depths 0…6 × 4 channels
    assert len(page.figures.tiles["ode"].data["image"]) == 13 * 4
    page.experiment.step(page.experiment.total_iterations())
    page.experiment.trainer.wait_idle()
    page.stream.poll()
    rows = page.figures.rows.data
    assert all(cell.endswith("%") for cell in rows["test_error"]) and rows["status"][0].startswith("done")
    assert len(page.figures.losses["mlp"].data["loss"]) == page.experiment.batches_per_epoch
    assert len(page.figures.errors["resnet"].data["error"]) == 1
    assert page.figures.epochs.end > 1  # the epoch axis spans the planned epoch, its markers inside
    # Snapshots come at 10 Hz: drawing one again that changes nothing sends nothing to the browser.
    sent = []
    document.on_change(sent.append)
    page.figures.show(page.stream.snapshot)
    assert sent == []


def test_page_refuses_bad_input_and_keeps_working(page):
    pn.panel(page).get_root()
    epochs = next(w for w in page._layout.select(pn.widgets.IntInput) if w.label == "Epochs per model")
    epochs.value = 0
    assert page.experiment.epochs == 1 and epochs.value == 1  # refused, and the widget shows the value in force
    mnist = next(w for w in page._layout.select(pn.widgets.TextInput) if w.label.startswith("MNIST"))
    mnist.value = "/nonexistent/mnist"
    assert page.experiment.mnist_dir is None and mnist.value == ""
    page.experiment.step(2)
    page.experiment.trainer.wait_idle()
    page.stream.poll()
    assert "Iteration 2" in page.controls.status.object
