"""Saving and taking back a run: every experiment, the shipped trained models, and the CLI's --save/--load."""
import dataclasses
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from harness import REPO
from odeviz.experiments import ClassifierExperiment, CNFExperiment, ContinuityExperiment, Table1Experiment
from odeviz.experiments.pretrained import PRESETS, nearest_preset
from odeviz.experiments.saved import SavedStateError, read_state

SMALL = {  # quick to build and to step, each with a setting off its default that loading must restore
    ContinuityExperiment: dict(trajectories=3, depth=3, target="reflection"),
    ClassifierExperiment: dict(samples=64, batch_size=32, width=8, augment=1),
    CNFExperiment: dict(width=8, batch_size=64, compare_planar=False),
    Table1Experiment: dict(models=["mlp", "resnet"], epochs=1, batch_size=256, channels=4),
}


def trained(cls, steps: int = 2):
    experiment = cls(**SMALL[cls])
    experiment.step(steps)
    assert experiment.trainer.wait_idle(300)
    return experiment


def picture(experiment):
    experiment.trainer.refresh()
    assert experiment.trainer.wait_idle(300)
    return experiment.trainer.mailbox.latest()


def arrays(snapshot) -> dict:
    """Every array a snapshot holds, nested dataclasses (Table 1's rows, hidden states) included."""
    found = {}

    def walk(value, name):
        if isinstance(value, np.ndarray):
            found[name] = value
        elif dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                walk(getattr(value, field.name), f"{name}.{field.name}")
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                walk(item, f"{name}[{i}]")

    walk(snapshot, "snapshot")
    return found


@pytest.mark.parametrize("cls", list(SMALL), ids=lambda cls: cls.__name__)
def test_a_saved_run_comes_back_bit_for_bit(cls, tmp_path):
    original = trained(cls)
    restored = cls()  # defaults: loading must set the settings as well as the weights
    try:
        path = original.save(tmp_path / "run.pt")
        restored.load(path)
        for name, value in SMALL[cls].items():
            assert getattr(restored, name) == value, name
        assert restored.trainer.iteration == original.trainer.iteration == 2
        assert repr(restored.trainer.history.rows()) == repr(original.trainer.history.rows())  # NaN != NaN
        mine, theirs = arrays(picture(original)), arrays(picture(restored))
        assert mine.keys() == theirs.keys() and len(mine) > 3
        for name in mine:
            assert np.array_equal(mine[name], theirs[name], equal_nan=True), name
        original.step(), restored.step()  # and training goes on exactly as it would have
        original.trainer.wait_idle(300), restored.trainer.wait_idle(300)
        assert original.trainer.history.last()["loss"] == restored.trainer.history.last()["loss"]
    finally:
        original.close(), restored.close()


def test_a_file_that_does_not_fit_is_refused_and_nothing_changes(tmp_path):
    continuity = trained(ContinuityExperiment, 1)
    classifier = ClassifierExperiment(**SMALL[ClassifierExperiment])
    try:
        path = continuity.save(tmp_path / "continuity.pt")
        with pytest.raises(SavedStateError, match=r"holds a continuity model, not a classifier model"):
            classifier.load(path)
        (tmp_path / "junk.pt").write_bytes(b"not a model")
        with pytest.raises(SavedStateError, match=r"'.*junk.pt' is not a model saved by odeviz"):
            classifier.load(tmp_path / "junk.pt")
        state = read_state(path)
        state["settings"]["depth"] = 99
        with pytest.raises(SavedStateError, match="Depth must be at most 64, not 99"):
            ContinuityExperiment().load_state(state)

        # Weights that do not fit their own settings (another version, an edited file): refused on the
        # training thread, and the model and settings before the load stay.
        fresh = ContinuityExperiment(**SMALL[ContinuityExperiment])
        fresh.step(1)
        fresh.trainer.wait_idle(300)
        before = {key: value.clone() for key, value in fresh.model.state_dict().items()}
        edited = read_state(path)
        edited["settings"]["width"] = 16
        with pytest.raises(SavedStateError, match="do not fit the model its settings describe; the model you had is kept"):
            fresh.load_state(edited).result(60)
        assert fresh.width == 32 and fresh.trainer.iteration == 1
        assert all(torch.equal(before[key], value) for key, value in fresh.model.state_dict().items())
        fresh.close()
    finally:
        continuity.close(), classifier.close()


@pytest.mark.parametrize("preset", PRESETS, ids=lambda preset: preset.name)
def test_a_shipped_model_loads_in_under_a_second_and_is_trained(preset):
    assert preset.path.is_file(), f"regenerate with: python -m odeviz.experiments.pretrained {preset.name}"
    assert preset.path.stat().st_size < 500_000  # Table 1: four nets (~360 KB of weights) and 1440 history rows
    # As in a server, where the process is warm: the first experiment of a process pays seconds of
    # one-time imports and torch start-up, whatever it loads.
    preset.experiment_class(state=read_state(preset.path)).close()
    start = time.perf_counter()
    experiment = preset.experiment_class(state=read_state(preset.path))
    seconds = time.perf_counter() - start
    try:
        assert seconds < 1.0, f"{preset.name} took {seconds:.2f} s to load"
        for name, value in preset.settings.items():
            assert getattr(experiment, name) == value
        rows = experiment.trainer.history.rows()
        assert len(rows) >= 100
        if isinstance(experiment, Table1Experiment):  # four models one after another: each one's test error
            errors = {key: run.test_errors[-1] for key, run in experiment.runs.items()}
            assert all(error < 15 for error in errors.values()), errors
        else:
            first, last = np.mean([r["loss"] for r in rows[:5]]), np.mean([r["loss"] for r in rows[-5:]])
            assert last < first - 0.5 * abs(first), (first, last)  # well down from the start (NLLs go negative)
    finally:
        experiment.close()


def test_the_reflection_presets_show_the_readme_s_two_stories():
    plain, augmented = (read_state(nearest_preset(ContinuityExperiment, s).path)["history"][-1]
                        for s in ({"target": "reflection"}, {"target": "reflection", "augment": True}))
    assert plain["loss_ode"] > 0.2 and plain["loss_resnet"] < 0.05  # crossing needs jumps: a 2-block ResNet
    assert augmented["loss_ode"] < 0.01  # one more dimension, and the flow learns it


def test_the_nearest_preset_follows_the_link_s_knobs():
    assert nearest_preset(ContinuityExperiment, {}).name == "continuity"
    assert nearest_preset(ContinuityExperiment, {"target": "reflection", "depth": 2}).name == "continuity-reflection"
    assert nearest_preset(ContinuityExperiment, {"augment": True}).name == "continuity-reflection-augment"


# ---- the CLI ---------------------------------------------------------------------------------------
def odeviz(*args):
    return subprocess.run([sys.executable, "-m", "odeviz", *args], capture_output=True, text=True, cwd=REPO, timeout=900)


def test_the_cli_saves_a_run_and_goes_on_from_it(tmp_path):
    saved = tmp_path / "run.pt"
    first = odeviz("train", "continuity", "--iters", "2", "--target", "reflection", "--save", str(saved), "--json")
    assert first.returncode == 0, first.stderr
    again = odeviz("train", "continuity", "--iters", "1", "--load", str(saved), "--lr", "0.003", "--json")
    assert again.returncode == 0, again.stderr
    assert '"iterations": 3' in again.stdout and '"target": "reflection"' in again.stdout
    assert '"learning_rate": 0.003' in again.stdout


@pytest.mark.parametrize("command", [["train", "classifier"], ["table1"], ["train", "cnf", "--data", "moons"],
                                     ["fig3"]])
def test_the_cli_refuses_a_file_that_does_not_fit(command, tmp_path):
    saved = tmp_path / "continuity.pt"
    ContinuityExperiment(trajectories=3).save(saved)
    result = odeviz(*command, "--load", str(saved))
    assert result.returncode == 2
    assert "holds a continuity model, not a" in result.stderr and "Traceback" not in result.stderr
    junk = tmp_path / "junk.pt"
    junk.write_text("no")
    result = odeviz(*command, "--load", str(junk))
    assert result.returncode == 2 and "is not a model saved by odeviz" in result.stderr


# ---- the page's buttons, without a browser ------------------------------------------------------------
def test_the_page_loads_trained_saves_and_refuses_a_file_in_words(monkeypatch):
    from odeviz.views import ClassifierPage, ContinuityPage, sharing

    told = []
    monkeypatch.setattr(sharing, "notify_error", told.append)
    page = ContinuityPage()
    other = ClassifierPage()
    try:
        page.experiment.augment = True
        page.files.load_trained()  # the shipped model nearest the knobs: the augmented reflection
        page.files._pending[0].result(60)
        assert page.experiment.target == "reflection" and page.experiment.augment
        assert page.experiment.trainer.iteration == read_state(nearest_preset(ContinuityExperiment, {"augment": True}).path)["iteration"]
        assert page.link() == "/continuity?target=reflection&augment=true&trained=1"
        saved = page.files._saved_file().getvalue()
        assert read_state(saved)["settings"]["augment"] is True
        other.files.upload.filename = "mine.pt"
        other.files._uploaded(type("Event", (), {"new": saved})())
        assert told == ["'mine.pt' holds a continuity model, not a classifier model"]
        other.files._uploaded(type("Event", (), {"new": b"junk"})())
        assert told[-1] == "'mine.pt' is not a model saved by odeviz (it could not be read)"
        other.files._uploaded(type("Event", (), {"new": b""})())  # an empty file: refused in words, not ignored
        assert told[-1].startswith("'mine.pt' is empty")
    finally:
        page.experiment.close(), other.experiment.close()
