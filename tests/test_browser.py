"""The continuity page in a real browser: panel serve + Debian's Chromium driven by Playwright."""
import re
import threading
import time
import urllib.request

import pytest

from harness import REPO, SOURCE_COLUMN_JS, served, wait_for_first_picture

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts"


def number(text: str, pattern: str) -> float:
    match = re.search(pattern, text.replace(",", ""))
    assert match, f"{pattern!r} not in {text!r}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def url():
    ARTIFACTS.mkdir(exist_ok=True)
    with served("apps/continuity.py") as url:
        yield url


def test_train_pause_and_tolerance_in_the_browser(url, chromium):
    page = chromium.page
    page.goto(url)
    wait_for_first_picture(page, timeout=90_000)

    def trajectories():
        return page.evaluate(SOURCE_COLUMN_JS, ["ode-trajectories", "h"])

    def status():
        return page.locator(".odeviz-status").first.locator("div").first.inner_text()

    def readout_nfe():
        return number(page.locator(".odeviz-readout .odeviz-nfe").inner_text(), r"NFE (\d+)")

    before = trajectories()
    assert before and len(before) > 100

    clicked = time.monotonic()
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(
        "([name, before]) => { const d = Bokeh.documents[0].get_model_by_name(name).data.h;"
        " return d.some((v, i) => Math.abs(v - before[i]) > 1e-6); }",
        arg=["ode-trajectories", before], timeout=10_000,
    )
    assert time.monotonic() - clicked < 3.0, "Figure 1 must move within about a second of pressing Train"
    page.wait_for_selector("text=/Iteration [1-9]/", timeout=10_000)
    total_early = number(status(), r"so far (\d+)")
    page.wait_for_timeout(1500)
    total_later = number(status(), r"so far (\d+)")
    assert total_later > total_early > 0, "the NFE readout must rise while training"
    assert number(status(), r"NFE-F (\d+)") > 0
    assert len(page.evaluate(SOURCE_COLUMN_JS, ["history", "iteration"])) > 0

    # Train on until the field has some structure (NFE then depends on the tolerance), then pause.
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('history').data.iteration.length >= 120", timeout=90_000
    )
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("button:text-is('Train')", timeout=30_000)
    # The button flips at once; an iteration whose solves had already ended still completes (its
    # status arrives at the next poll), and nothing after it.
    flipped_at = number(status(), r"Iteration (\d+)")
    page.wait_for_timeout(1000)
    paused_at = number(status(), r"Iteration (\d+)")
    assert paused_at <= flipped_at + 1, "Pause must stop training within the iteration it interrupts"
    page.wait_for_timeout(800)
    assert number(status(), r"Iteration (\d+)") == paused_at, "paused training must not advance"

    nfe_before = readout_nfe()
    paused_trajectories = trajectories()
    rtol_handle = page.locator(".odeviz-rtol .noUi-handle")
    rtol_handle.focus()
    for _ in range(10):  # 1e-3 → 1e-8, one half-decade per key press
        page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(80)
    page.wait_for_selector("text=Rtol: 1e-8", timeout=5_000)
    # (the re-solves at ever tighter tolerances queue behind each other: on a loaded machine, seconds)
    page.wait_for_selector("text=/at rtol 1e-08/", timeout=30_000)
    assert readout_nfe() != nfe_before, "a tighter rtol must change the number of evaluations"
    assert trajectories() != paused_trajectories, "the re-solve must redraw the trajectories"

    # Hovering an input in the learned map rings it and highlights its trajectory in every plot.
    learned = page.locator("canvas").nth(3).bounding_box()  # row-major: resnet, ode, euler, learned, …
    page.mouse.move(learned["x"] + learned["width"] / 2, learned["y"] + learned["height"] / 2)
    for name in ("resnet-highlight", "ode-highlight", "euler-highlight", "learned-highlight"):
        page.wait_for_function(
            "name => Bokeh.documents[0].get_model_by_name(name).data.x.length > 0", arg=name, timeout=5_000
        )
    page.screenshot(path=str(ARTIFACTS / "continuity.png"), full_page=True)
    assert chromium.errors == [], f"browser console errors: {chromium.errors}"


def test_bad_session_input_does_not_break_the_page(url, chromium):
    """Step, Reset and structural changes in quick succession: the page keeps working."""
    page = chromium.page
    page.goto(url)
    wait_for_first_picture(page, timeout=90_000)
    page.get_by_role("button", name="Step").click()
    page.wait_for_selector("text=Iteration 1", timeout=10_000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.locator("select").first.select_option("reflection")  # target change restarts the models
    page.wait_for_function(  # the target curve is now g(x) = -x
        "() => { const d = Bokeh.documents[0].get_model_by_name('learned-target').data;"
        " return d.x.length > 0 && d.x.every((x, i) => Math.abs(d.h[i] + x) < 1e-9); }",
        timeout=10_000,
    )
    page.get_by_role("button", name="Reset").click()
    wait_for_first_picture(page, timeout=10_000)
    page.get_by_role("button", name="Step").click()
    page.wait_for_selector("text=Iteration 1", timeout=10_000)
    assert chromium.errors == []


def test_closing_the_tab_ends_the_sessions_training_thread(chromium):
    """A served session's trainer thread stops when the browser tab closes and the session is destroyed."""
    import panel as pn

    from odeviz.runtime import configure_session
    from harness import free_port
    from odeviz.views import ContinuityPage

    pages = []

    def continuity():
        configure_session()
        pages.append(ContinuityPage())
        return pages[-1]

    port = free_port()
    server = pn.serve(
        {"continuity": continuity}, port=port, address="127.0.0.1", websocket_origin=f"127.0.0.1:{port}",
        show=False, threaded=True, check_unused_sessions_milliseconds=200, unused_session_lifetime_milliseconds=200,
    )
    try:
        url = f"http://127.0.0.1:{port}/continuity"
        deadline = time.monotonic() + 60
        while True:  # the threaded server starts listening a moment after pn.serve returns
            try:
                urllib.request.urlopen(url, timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline, "the in-process server did not come up"
                time.sleep(0.2)
        page = chromium.page
        page.goto(url)
        wait_for_first_picture(page, timeout=90_000)
        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_selector("text=/Iteration [1-9]/", timeout=10_000)
        thread = pages[-1].experiment.trainer._thread  # the session this tab is connected to
        assert thread.is_alive()
        page.close()
        deadline = time.monotonic() + 20
        while thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not thread.is_alive(), "the training thread outlived its session"
        assert not any(t.name.startswith("odeviz-") for t in threading.enumerate() if t.is_alive())
    finally:
        server.stop()


def test_each_browser_session_trains_its_own_models(url, chromium):
    """Two tabs are two sessions: training in one leaves the other untouched (a class on one server)."""
    first = chromium.page
    second = first.context.browser.new_page()
    second.on("pageerror", lambda error: chromium.errors.append(str(error)))
    for page in (first, second):
        page.goto(url)
        wait_for_first_picture(page, timeout=90_000)
    first.get_by_role("button", name="Train", exact=True).click()
    first.wait_for_selector("text=/Iteration [1-9]\\d/", timeout=30_000)  # ten or more
    assert second.locator("text=Iteration 0").count() == 1
    second.get_by_role("button", name="Step").click()
    second.wait_for_selector("text=Iteration 1 ", timeout=10_000)
    assert chromium.errors == []
