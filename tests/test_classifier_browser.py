"""The classifier and Figure 3 pages in a real browser: panel serve + Debian's Chromium via Playwright."""
import re

import pytest

from harness import REPO, SOURCE_COLUMN_JS, wait_for_first_picture

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts"
CHANGED_JS = """([name, column, before]) => {
  const data = Bokeh.documents[0].get_model_by_name(name).data[column];
  return data.length > 0 && (data.length !== before.length || data.some((v, i) => v !== before[i] && !(isNaN(v) && isNaN(before[i]))));
}"""


def column(page, name, key):
    return page.evaluate(SOURCE_COLUMN_JS, [name, key])


def tighten(page, name: str, presses: int):
    """Move a tolerance slider down by ``presses`` half-decades with the keyboard, as a user would."""
    page.locator(f".odeviz-{name} .noUi-handle").focus()
    for _ in range(presses):
        page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(80)


def plot_boxes(page) -> list[dict]:
    """The on-screen box of each plot in page order (a plot draws on a few stacked canvases; legends on small ones)."""
    boxes = []
    for index in range(page.locator("canvas").count()):
        box = page.locator("canvas").nth(index).bounding_box()
        if box and box["width"] > 200 and box not in boxes:
            boxes.append(box)
    return boxes


def readout_nfe(page) -> int:
    return int(re.search(r"NFE (\d+)", page.locator(".odeviz-readout .odeviz-nfe").inner_text()).group(1))


def test_classifier_page_trains_probes_and_resolves(odeviz_server, chromium):
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium.page
    url = odeviz_server + "classifier"
    page.goto(url)
    wait_for_first_picture(page, timeout=90_000)
    arrows, paths = column(page, "field-arrows", "x1"), column(page, "trajectories-0", "x")
    assert len(arrows) > 100 and len(paths) > 100

    page.get_by_role("button", name="Train", exact=True).click()
    for name, key, before in (("trajectories-0", "x", paths), ("field-arrows", "x1", arrows)):
        page.wait_for_function(CHANGED_JS, arg=[name, key, before], timeout=20_000)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('history').data.iteration.length >= 15",
                           timeout=60_000)

    # A tap on the decision map drops a probe; its trajectory is drawn in the state plane.
    decision = plot_boxes(page)[2]  # field, trajectories, decision map, …
    page.mouse.click(decision["x"] + decision["width"] * 0.4, decision["y"] + decision["height"] * 0.5)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('probe-inputs').data.x.length === 1",
                           timeout=10_000)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('probe-paths').data.x.length > 10",
                           timeout=10_000)

    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("button:text-is('Train')", timeout=5_000)
    nfe_before = readout_nfe(page)
    tighten(page, "rtol", 10)  # 1e-3 → 1e-8
    tighten(page, "atol", 4)  # 1e-4 → 1e-6 (float32 training resolves not much tighter)
    # The labels name where the handles are, at once (the browser writes them), then the model answers.
    page.wait_for_selector(".odeviz-rtol :text('Rtol: 1e-8')", timeout=2_000)
    page.wait_for_selector(".odeviz-atol :text('Atol: 1e-6')", timeout=2_000)
    page.wait_for_selector("text=/at rtol 1e-08, atol 1e-06/", timeout=15_000)
    assert readout_nfe(page) > nfe_before, "a tighter rtol must cost more evaluations"
    page.screenshot(path=str(ARTIFACTS / "classifier.png"), full_page=True)
    assert chromium.errors == [], f"browser console errors: {chromium.errors}"


def test_figure3_page_measures_while_training(odeviz_server, chromium):
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium.page
    url = odeviz_server + "figure3"
    page.goto(url)
    wait_for_first_picture(page, timeout=90_000)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('sweep').data.nfe.length === 8", timeout=30_000)
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('memory').data.steps.length === 7",
                           timeout=60_000)
    adjoint = column(page, "memory", "adjoint_kb")
    direct = column(page, "memory", "direct_kb")
    assert len(set(adjoint)) == 1 and direct[-1] > 50 * direct[0], "adjoint flat, backprop through the solver linear"

    sweep_before = column(page, "sweep", "error")
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('history').data.iteration.length >= 10",
                           timeout=60_000)
    page.get_by_role("button", name="Pause").click()
    # Pausing sweeps the trained weights again: panel (a) moves.
    page.wait_for_function(CHANGED_JS, arg=["sweep", "error", sweep_before], timeout=30_000)
    page.wait_for_selector(".odeviz-readout .odeviz-ratio", timeout=10_000)  # NFE-B / NFE-F, panel (c)
    assert float(page.locator(".odeviz-ratio").inner_text()) > 0
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('current-setting').data.nfe.length === 1",
                           timeout=30_000)
    nfe_before = column(page, "current-setting", "nfe")[0]
    tighten(page, "rtol", 10)  # 1e-3 → 1e-8
    tighten(page, "atol", 8)  # 1e-4 → 1e-8: the sweep's copy is float64
    page.wait_for_selector(".odeviz-rtol :text('Rtol: 1e-8')", timeout=2_000)
    page.wait_for_selector(".odeviz-atol :text('Atol: 1e-8')", timeout=2_000)
    page.wait_for_function(
        "() => { const d = Bokeh.documents[0].get_model_by_name('current-setting').data;"
        " return d.rtol[0] === 1e-8 && d.atol[0] === 1e-8; }", timeout=30_000
    )
    assert column(page, "current-setting", "nfe")[0] > nfe_before, "the marker moves to more evaluations"
    page.screenshot(path=str(ARTIFACTS / "figure3.png"), full_page=True)
    assert chromium.errors == [], f"browser console errors: {chromium.errors}"
