"""The classifier and Figure 3 pages rendered to Bokeh models and driven headless (no server, no browser)."""
import numpy as np
import panel as pn
import pytest
from bokeh.events import Tap
from bokeh.models import ColumnDataSource

from odeviz.experiments import ClassifierExperiment
from odeviz.views import PAGES, ClassifierPage
from odeviz.views.classifier_plots import broken_line, drawn_indices


def sources(root, name):
    return [m for m in root.references() if isinstance(m, ColumnDataSource) and m.name == name]


def settle(page):
    page.experiment.trainer.wait_idle(120)
    page.stream.poll()


@pytest.fixture
def classifier():
    page = ClassifierPage(experiment=ClassifierExperiment(samples=128)).ready()  # the first snapshot shown
    yield page
    page.stream.stop()


def test_classifier_page_renders_trains_and_follows_time(classifier):
    page = classifier
    root = pn.panel(page).get_root()
    assert PAGES["classifier"] is ClassifierPage
    (arrows,) = sources(root, "field-arrows")
    (trajectories,) = sources(root, "trajectories-0")
    snapshot = page.stream.snapshot
    assert len(arrows.data["x0"]) == 3 * len(snapshot.field_x)  # shaft + two head strokes per arrow
    assert np.isfinite(arrows.data["speed"]).all()
    assert len(sources(root, "decision-map")[0].data["image"][0]) == snapshot.decision_map.shape[0]
    before = {"arrows": arrows.data["x1"].copy(), "paths": trajectories.data["x"].copy()}
    page.experiment.step(5)
    settle(page)
    assert len(page.figures.history.data["iteration"]) == 5
    assert not np.allclose(arrows.data["x1"], before["arrows"])
    assert not np.allclose(trajectories.data["x"], before["paths"], equal_nan=True)
    assert "Iteration 5" in page.controls.status.object and "NFE-F" in page.controls.status.object
    # The time player moves the field and the data to another time, without touching the model.
    positions = page.figures.positions.data["x"].copy()
    np.testing.assert_allclose(positions, page.stream.snapshot.inputs[:, 0], rtol=1e-6)  # t = 0: the data are the inputs
    page.time.value = 1.0
    np.testing.assert_allclose(page.figures.positions.data["x"], page.stream.snapshot.states[-1, :, 0])
    assert "t = 1.0" in page.figures.figures["field"].title.text
    # A served page's player can get its options back from the browser as their labels (text; seen
    # at session start under load): the page goes on, and the next picture puts the numbers back.
    page.time.param.update(options=[str(t) for t in page.time.options], value="0.5")
    assert "t = 0.5" in page.figures.figures["field"].title.text
    page.experiment.step()
    settle(page)
    assert all(isinstance(t, float) for t in page.time.options)


def test_tap_drops_a_probe_and_selection_highlights_trajectories(classifier):
    page = classifier
    pn.panel(page).get_root()
    decision = page.figures.figures["decision"]
    decision._trigger_event(Tap(decision, x=0.5, y=-0.5))
    settle(page)
    np.testing.assert_allclose(page.figures.probes["inputs"].data["x"], [0.5])
    paths = page.figures.probe_paths.data["x"]
    assert np.isfinite(paths).sum() == len(page.stream.snapshot.times)  # one trajectory, t = 0 … 1
    page.figures.data.selected.indices = [3, 7]
    assert page.selected == [3, 7]
    highlighted = page.figures.highlight_source.data["x"]
    np.testing.assert_allclose(highlighted[~np.isnan(highlighted)][[0, len(page.stream.snapshot.times)]],
                               page.stream.snapshot.inputs[[3, 7], 0], rtol=1e-6)


def test_typed_values_out_of_range_are_refused_and_the_box_restored(classifier, monkeypatch):
    from odeviz.views import controls

    page = classifier
    pn.panel(page).get_root()
    messages = []
    monkeypatch.setattr(controls, "notify_error", messages.append)
    noise = next(w for w in page._layout.select(pn.widgets.FloatInput) if w.label == "Noise")
    samples = next(w for w in page._layout.select(pn.widgets.IntInput) if w.label == "Samples")
    noise.value = 3.0
    samples.value = 2
    assert page.experiment.noise == 0.1 and noise.value == 0.1
    assert page.experiment.samples == 128 and samples.value == 128
    assert any("noise" in m and "0.5" in m for m in messages) and any("samples" in m for m in messages)
    samples.value = 256  # a legal value goes through, rebuilds the data, and the page keeps working
    settle(page)
    assert len(page.figures.data.data["x"]) == 256


def test_pure_column_builders():
    states = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)  # 2 times, 3 trajectories
    line = broken_line(states)
    assert len(line["x"]) == 3 * 3 and np.isnan(line["x"][2::3]).all()
    np.testing.assert_array_equal(line["x"][:2], states[:, 0, 0])
    assert list(drawn_indices(5, 10)) == [0, 1, 2, 3, 4]
    assert len(drawn_indices(1000, 300)) == 300 and drawn_indices(1000, 300)[-1] == 999


def test_figure3_page_draws_the_four_panels_and_memory():
    from odeviz.experiments import Figure3Experiment
    from odeviz.views import Figure3Page

    page = Figure3Page(experiment=Figure3Experiment(samples=128, sweep_points=64)).ready()
    try:
        root = pn.panel(page).get_root()
        assert PAGES["figure3"] is Figure3Page
        settle(page)
        (sweep,) = sources(root, "sweep")
        (memory,) = sources(root, "memory")
        assert len(sweep.data["nfe"]) == 8 and (np.diff(sweep.data["nfe"]) >= 0).all()
        assert list(memory.data["steps"]) == [8, 16, 32, 64, 128, 256, 512]
        assert len(set(memory.data["adjoint_kb"])) == 1 and memory.data["direct_kb"][-1] > 50 * memory.data["direct_kb"][0]
        assert len(sources(root, "current-setting")[0].data["nfe"]) == 1
        page.experiment.step(4)
        settle(page)
        page.stream.poll()  # the sweep after the steps, then its picture
        history = page.figures.history.data
        assert len(history["iteration"]) == 4 and (np.asarray(history["nfe_backward"]) > 0).all()
        assert np.isfinite(page.figures.ratio) and "mean ratio" in page.figures.figures["backward"].title.text
        assert "NFE-backward / NFE-forward" in page.readout.object
        nfe_before = page.experiment.measurements.latest().current.nfe_forward
        rtol = next(w for w in page._layout.select(pn.widgets.IntSlider) if w.label == "Rtol")
        atol = next(w for w in page._layout.select(pn.widgets.IntSlider) if w.label == "Atol")
        rtol.value, atol.value = 0, 0  # the leftmost: 1e-8
        settle(page)
        marker = sources(root, "current-setting")[0].data
        assert list(marker["rtol"]) == [1e-8] and marker["nfe"][0] > nfe_before
        assert "rtol 1e-08" in page.readout.object
    finally:
        page.stream.stop()
