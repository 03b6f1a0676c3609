"""The continuity page rendered to Bokeh models, driven headless (no server, no browser)."""
import time

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from panel.io.model import diff

from odeviz.experiments import ContinuityExperiment
from odeviz.views import PAGES, CNFPage, ContinuityPage
from odeviz.views.streaming import JUPYTER_IOPUB_MESSAGES_PER_SECOND, NOTEBOOK_POLL_PERIOD_MS
from odeviz.views.continuity_plots import arrow_columns, nearest_input, nearest_trajectory, trajectory_columns


@pytest.fixture
def page():
    page = ContinuityPage(experiment=ContinuityExperiment()).ready()  # the first snapshot shown
    yield page
    page.stream.stop()


def sources(root, name):
    return [m for m in root.references() if isinstance(m, ColumnDataSource) and m.name == name]


def test_page_renders_to_bokeh_with_data(page):
    root = pn.panel(page).get_root()
    (ode,) = sources(root, "ode-trajectories")
    snapshot = page.stream.snapshot
    assert len(ode.data["t"]) == (len(snapshot.ode_times) - 1) * len(snapshot.inputs)
    assert np.isfinite(ode.data["h"]).all()
    for name in ("resnet-trajectories", "euler-trajectories", "history"):
        assert len(sources(root, name)) == 1
    assert "continuity" in PAGES and PAGES["continuity"] is ContinuityPage


def test_training_streams_into_the_sources(page):
    pn.panel(page).get_root()
    before = page.figures.sources["ode"].data["h"].copy()
    page.experiment.step(10)
    page.experiment.trainer.wait_idle()
    page.stream.poll()
    assert len(page.figures.history.data["iteration"]) == 10
    assert not np.allclose(page.figures.sources["ode"].data["h"], before)
    assert "Iteration 10" in page.controls.status.object
    assert "NFE-F" in page.controls.status.object
    page.experiment.reset()
    page.experiment.trainer.wait_idle()
    page.stream.poll()
    assert len(page.figures.history.data["iteration"]) == 0
    assert "Iteration 0" in page.controls.status.object


def test_a_page_not_yet_shown_draws_nothing_and_draws_at_once_when_shown():
    # Served, Panel would drop what is drawn before the browser shows the page: the stream waits for it.
    page = ContinuityPage(experiment=ContinuityExperiment())
    try:
        page.stream.shown = False
        pn.panel(page).get_root()
        page.experiment.step(4)
        page.experiment.trainer.wait_idle()
        page.stream.poll()
        assert len(page.figures.sources["ode"].data["h"]) == 0 and len(page.figures.history.data["iteration"]) == 0
        page.stream.show()
        assert len(page.figures.sources["ode"].data["h"]) > 0
        assert len(page.figures.history.data["iteration"]) == 4
    finally:
        page.stream.stop()


def test_curves_are_paced_while_training_runs_and_a_step_shows_at_once():
    from odeviz.views.streaming import SessionStream

    experiment = ContinuityExperiment()
    stream = SessionStream(experiment, rows_period=3600.0)  # no second batch while training runs
    handed = []
    stream.on_rows(lambda rows: handed.append(len(rows["iteration"])))
    try:
        experiment.step(2)
        assert experiment.trainer.wait_idle()
        stream.poll()
        assert handed == [2]
        experiment.step(3)  # a Step: its rows at the next poll, whatever the pace
        assert experiment.trainer.wait_idle()
        stream.poll()
        assert handed == [2, 3]
        experiment.trainer.start()
        deadline = time.monotonic() + 60
        while experiment.trainer.iteration < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
            stream.poll()
        assert experiment.trainer.iteration >= 8 and handed == [2, 3]  # paced: the period has not passed
        experiment.trainer.pause()
        assert experiment.trainer.wait_idle()
        stream.poll()
        assert sum(handed) == experiment.trainer.iteration  # stopped: every row at once
    finally:
        stream.stop()


def test_buttons_drive_the_trainer(page):
    pn.panel(page).get_root()
    page.controls.train_button.clicks += 1
    assert page.experiment.trainer.running
    page.controls.update()
    assert page.controls.train_button.label == "Pause"
    page.controls.train_button.clicks += 1
    assert not page.experiment.trainer.running
    page.controls.step_button.clicks += 1
    page.experiment.trainer.wait_idle()
    assert page.experiment.trainer.iteration >= 1


def test_tolerance_slider_resolves_a_paused_model(page):
    pn.panel(page).get_root()
    slider = next(w for w in page._layout.select(pn.widgets.IntSlider) if w.label == "Rtol")
    slider.value = 0  # the leftmost of 1e-8, 3e-8, …, 1e-1
    assert page.experiment.rtol == 1e-8
    page.experiment.trainer.wait_idle()
    page.stream.poll()
    assert page.stream.snapshot.solver.rtol == 1e-8
    assert "1e-08" in page.readout.object
    page.experiment.rtol = 1e-2  # and back: the param drives the widget too
    assert slider.value == 12


def test_a_default_between_the_log_stops_is_a_stop_of_its_own():
    """The latent ODE learns at 1.5e-2 by default: its slider says 1.5e-2 (not its neighbour 1e-2), and
    showing it changes nothing; a step left is 1e-2."""
    from odeviz.experiments import LatentODEExperiment
    from odeviz.views.controls import log_slider

    experiment = LatentODEExperiment()
    try:
        slider = log_slider(experiment, "learning_rate", -4, -1).select(pn.widgets.IntSlider)[0]
        labels = slider.format.code
        assert experiment.learning_rate == 1.5e-2 and '"1.5e-2"' in labels and '"1e-2"' in labels
        assert labels.index('"1e-2"') < labels.index('"1.5e-2"') < labels.index('"3e-2"')
        slider.value -= 1
        assert experiment.learning_rate == 1e-2
        experiment.learning_rate = 2e-2  # between two stops, set by a link or a saved run: kept as it is
        assert labels.split(",")[slider.value].strip('"[ ') == "1.5e-2" and experiment.learning_rate == 2e-2
        slider.value += 1  # the handle moved on: the stop's value
        assert experiment.learning_rate == 3e-2
    finally:
        experiment.close()

def test_refused_value_keeps_the_session(page):
    pn.panel(page).get_root()
    slider = next(w for w in page._layout.select(pn.widgets.IntSlider) if w.label == "Rtol")
    slider.param.trigger("value")  # a legal value passes silently
    rtol = page.experiment.rtol
    with pytest.raises(ValueError, match="rtol"):
        page.experiment.rtol = float("nan")  # refused at the edge, the model keeps its value
    assert page.experiment.rtol == rtol and slider.value == 10  # 1e-3


def test_pointer_events_highlight_the_nearest_trajectory(page):
    from bokeh.events import MouseLeave, MouseMove

    pn.panel(page).get_root()
    snapshot = page.stream.snapshot
    learned = page.figures.figures["learned"]
    learned._trigger_event(MouseMove(learned, x=float(snapshot.inputs[3]) + 0.01, y=0.0))
    assert page.hovered == 3
    assert set(page.figures.highlights["euler"].data["x"]) == {snapshot.inputs[3]}
    assert list(page.figures.input_highlight.data["x"]) == [snapshot.inputs[3]]  # ringed in the learned map
    ode = page.figures.figures["ode"]
    ode._trigger_event(MouseMove(ode, x=1.0, y=float(snapshot.ode_states[-1, 7])))
    assert page.hovered == 7
    ode._trigger_event(MouseLeave(ode))
    assert page.hovered is None and len(page.figures.highlights["ode"].data["x"]) == 0


def test_highlight_follows_selection_and_hover(page):
    pn.panel(page).get_root()
    page.figures.inputs.selected.indices = [2, 5]
    assert page.selected == [2, 5]
    highlighted = page.figures.highlights["ode"].data
    snapshot = page.stream.snapshot
    assert set(highlighted["x"]) == {snapshot.inputs[2], snapshot.inputs[5]}
    page.hovered = 0
    assert set(page.figures.highlights["resnet"].data["x"]) == {snapshot.inputs[i] for i in (0, 2, 5)}


def test_pure_column_builders():
    times = np.linspace(0, 1, 5)
    states = np.stack([np.linspace(-1, 0, 5), np.linspace(1, 2, 5)], 1)
    columns = trajectory_columns(times, states, np.array([-1.0, 1.0]))
    assert len(columns["t"]) == 8 and columns["h_end"][0] == states[1, 0]
    assert nearest_trajectory(times, states, 0.5, 1.4) == 1
    assert nearest_trajectory(times, states, 0.5, -0.6) == 0
    assert nearest_input(np.array([-1.0, 0.0, 1.0]), 0.4) == 1


def test_arrows_point_along_the_field(page):
    snapshot = page.stream.snapshot
    arrows = arrow_columns(snapshot)
    n = len(snapshot.field_t)
    slope = (arrows["h_end"][:n] - arrows["h"][:n]) / (arrows["t_end"][:n] - arrows["t"][:n])
    np.testing.assert_allclose(slope, snapshot.field_dh, rtol=1e-9, atol=1e-12)
    assert (arrows["t_end"][:n] > arrows["t"][:n]).all()  # time runs forward


def test_blow_up_shows_the_reason_and_keeps_the_session():
    page = ContinuityPage(experiment=ContinuityExperiment(learning_rate=10.0, max_nfe=2000)).ready()
    try:
        pn.panel(page).get_root()
        page.experiment.step(20)
        page.experiment.trainer.wait_idle()
        page.stream.poll()
        assert not page.experiment.trainer.running
        assert page.controls.alert.visible and "Paused at iteration" in page.controls.alert.object
        assert page.controls.train_button.label == "Train"
        page.experiment.learning_rate = 1e-2  # the user lowers the learning rate and carries on
        page.experiment.step(2)
        page.experiment.trainer.wait_idle()
        page.stream.poll()
        assert not page.controls.alert.visible
        assert np.isfinite(page.figures.sources["ode"].data["h"]).all()
    finally:
        page.stream.stop()


@pytest.mark.parametrize("page_class", [ContinuityPage, CNFPage])  # the pages sending the most arrays a frame
def test_a_notebook_page_stays_under_the_jupyter_servers_message_rate(page_class):
    """In a notebook a frame of a page is 3 comm messages plus 2 per array it sends, and the Jupyter
    server drops IOPub messages beyond its rate limit mid-frame (the page then stops updating)."""
    page = page_class()
    try:
        assert page.experiment.trainer.wait_idle(300)
        document = Document()
        document.add_root(pn.panel(page).get_root(document))
        page.stream.poll()
        page.experiment.step(2)
        assert page.experiment.trainer.wait_idle(300)
        document.hold("combine")
        page.stream.poll()  # one frame: what a notebook's comm carries for it
        frame = diff(document)
        assert frame is not None and frame.buffers
        messages_per_second = (3 + 2 * len(frame.buffers)) * 1000 / NOTEBOOK_POLL_PERIOD_MS
        assert messages_per_second <= 0.8 * JUPYTER_IOPUB_MESSAGES_PER_SECOND, (len(frame.buffers), messages_per_second)
    finally:
        page.stream.stop()
