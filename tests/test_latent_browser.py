"""The latent ODE page in a real browser: panel serve + Debian's Chromium via Playwright."""
import time

import pytest

from harness import REPO, SOURCE_COLUMN_JS, wait_for_first_picture, wait_for_source

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts"
CHANGED_JS = """([name, column, before]) => {
  const data = Bokeh.documents[0].get_model_by_name(name).data[column];
  return data.length > 0 && (data.length !== before.length || data.some((v, i) => v !== before[i]));
}"""
# Where a point (x, y) of the series plot's data space is on the screen, from the plot's own scales.
SCREEN_POINT_JS = """([x, y]) => {
  const view = Bokeh.index.query_one((v) => v.model.name === "series-plot");
  const box = view.canvas_view.el.getBoundingClientRect();
  return [box.left + view.frame.x_scale.compute(x), box.top + view.frame.y_scale.compute(y)];
}"""


def column(page, name, key):
    return page.evaluate(SOURCE_COLUMN_JS, [name, key])


def test_latent_page_trains_and_a_tap_moves_the_prediction(odeviz_server, chromium):
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium.page
    url = odeviz_server + "latent"
    page.goto(url)
    wait_for_first_picture(page, timeout=90_000)
    wait_for_source(page, "series-extrapolation")
    extrapolation = column(page, "series-extrapolation", "x")
    assert len(extrapolation) > 50 and len(column(page, "series-observations", "x")) == 30

    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(CHANGED_JS, arg=["series-extrapolation", "x", extrapolation], timeout=60_000)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('history').data.iteration.length >= 5",
                           timeout=120_000)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("button:text-is('Train')", timeout=10_000)
    page.wait_for_timeout(1000)  # the picture on pausing

    # Tap off the curve, near its start: a new observation, and the prediction moves at once.
    truth_x, truth_y = column(page, "series-truth", "x"), column(page, "series-truth", "y")
    before = column(page, "series-extrapolation", "x")
    target = [truth_x[3] + 1.0, truth_y[3] + 1.0]
    screen_x, screen_y = page.evaluate(SCREEN_POINT_JS, target)
    page.mouse.click(screen_x, screen_y)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('series-observations').data.x.length === 31",
                           timeout=15_000)
    page.wait_for_function(CHANGED_JS, arg=["series-extrapolation", "x", before], timeout=15_000)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('series-plot').title.text"
                           ".endsWith('31 observations, edited')", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "latent.png"))  # (a full-page one resizes the page: it lays out anew)

    # On the new observation, where the plot shows it once it has settled: a point off the curve widens
    # the plot's ranges (they follow the data), and BokehJS rescales over the next animation frames.
    point, deadline = None, time.monotonic() + 10
    while (now := page.evaluate(SCREEN_POINT_JS, target)) != point and time.monotonic() < deadline:
        point = now
        page.wait_for_timeout(300)
    page.mouse.click(*point)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('series-observations').data.x.length === 30",
                           timeout=15_000)
    assert chromium.errors == [], f"browser console errors: {chromium.errors}"
