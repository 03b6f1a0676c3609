"""The latent ODE page rendered to Bokeh models and driven headless (no server, no browser)."""
import numpy as np
import panel as pn
import pytest
from bokeh.events import Tap
from bokeh.models import ColumnDataSource

from odeviz.experiments import LatentODEExperiment
from odeviz.views import PAGES, LatentPage
from odeviz.views.latent_plots import series_columns, table2_columns, tapped


def sources(root, name):
    return [m for m in root.references() if isinstance(m, ColumnDataSource) and m.name == name]


def settle(page):
    assert page.experiment.trainer.wait_idle(300)
    page.stream.poll()


@pytest.fixture
def latent():
    page = LatentPage(experiment=LatentODEExperiment(hidden=12, encoder_hidden=12, batch_size=32)).ready()
    yield page
    page.stream.stop()


def test_latent_page_renders_trains_and_rescores(latent):
    page = latent
    root = pn.panel(page).get_root()
    assert list(PAGES)[-2:] == ["cnf", "latent"] and PAGES["latent"] is LatentPage
    (extrapolation,) = sources(root, "series-extrapolation")
    (observations,) = sources(root, "series-observations")
    (samples,) = sources(root, "series-samples")
    snapshot = page.stream.snapshot
    assert len(observations.data["x"]) == 30 and len(extrapolation.data["x"]) > 50
    assert (extrapolation.data["t"] >= snapshot.observed_until - 0.05).all()
    assert np.isnan(samples.data["x"]).sum() == 12  # one break after each posterior sample
    assert len(sources(root, "latent-evaluations")[0].data["t"]) == snapshot.nfe_forward
    before = extrapolation.data["x"].copy()
    page.experiment.step(5)
    settle(page)
    assert len(page.figures.history.data["iteration"]) == 5
    assert not np.allclose(extrapolation.data["x"], before)
    assert "Iteration 5" in page.controls.status.object and "RMSE latent ODE" in page.controls.status.object
    page.experiment.horizon = 0.5  # a shorter extrapolation, without training
    settle(page)
    assert extrapolation.data["t"].max() < snapshot.horizon_end and page.experiment.trainer.iteration == 5


def test_tap_adds_an_observation_and_tapping_it_again_removes_it(latent):
    page = latent
    pn.panel(page).get_root()
    snapshot = page.stream.snapshot
    series = page.figures.figures["series"]
    # Near the start of the true curve (the encoder reads backwards: early observations weigh most).
    x, y = snapshot.curve_x[3] + 0.8
    before = page.figures.series["extrapolation"].data["x"].copy()
    series._trigger_event(Tap(series, x=float(x), y=float(y)))
    settle(page)
    observed = page.figures.series["observations"].data
    assert len(observed["x"]) == 31 and float(x) in observed["x"]
    assert not np.allclose(page.figures.series["extrapolation"].data["x"], before)
    assert "edited" in series.title.text
    series._trigger_event(Tap(series, x=float(x), y=float(y)))  # on the new observation: removed again
    settle(page)
    assert len(page.figures.series["observations"].data["x"]) == 30


def test_pure_columns_and_taps():
    experiment = LatentODEExperiment(hidden=8, encoder_hidden=8)
    try:
        experiment.trainer.wait_idle(120)
        snapshot = experiment.trainer.mailbox.latest()
    finally:
        experiment.close()
    columns = series_columns(snapshot)
    np.testing.assert_allclose(columns["observations"]["x"], snapshot.obs_x[:, 0])
    assert columns["rnn"]["t"][0] == snapshot.obs_t[-1] and len(columns["rnn"]["t"]) == len(snapshot.rnn_t) + 1
    assert columns["reconstruction"]["t"].max() <= snapshot.observed_until
    action, index, _ = tapped(snapshot, *snapshot.obs_x[7])
    assert (action, index) == ("remove", 7)
    far = snapshot.curve_x[150] + np.array([0.0, 0.05 * np.ptp(snapshot.curve_x[:, 1])])
    action, t, value = tapped(snapshot, *far)
    assert action == "add" and t == pytest.approx(snapshot.curve_t[150], abs=0.2) and np.allclose(value, far)
    grid = table2_columns([{"observations": 50, "rnn": 0.5, "latent_ode": 0.25}])
    assert grid["observations"] == ["30", "50", "100"] and grid["latent_ode"] == ["…", "0.2500", "…"]
    assert grid["paper_rnn"] == ["0.3937", "0.3202", "0.1813"]


def test_measure_table2_fills_the_grid_row_by_row(latent, monkeypatch):
    import time

    import odeviz.views.latent as latent_view

    monkeypatch.setattr(latent_view, "TABLE2_ITERATIONS", 2)  # the real run, only shorter
    page = latent
    pn.panel(page).get_root()
    page.table2_button.clicks += 1
    assert page.table2_button.label == "Stop Table 2"
    deadline = time.monotonic() + 240
    while page.table2_run.running and time.monotonic() < deadline:
        time.sleep(0.5)
    page.stream.poll()
    table = page.table2.object
    assert "…" not in table and table.count("<tr>") == 4 and "0.1642" in table and "0.1346" in table
    assert page.table2_button.label == "Measure Table 2" and "3 of 3" in page.table2_status.object
