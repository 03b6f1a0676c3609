"""A page's link in a real browser: the knobs it names are restored, ``trained=1`` opens on the shipped
model at once, the URL follows the knobs, and a value the page cannot use is told in its words."""
import re
import time

import pytest

from harness import REPO, SOURCE_COLUMN_JS, served
from odeviz.experiments import ContinuityExperiment
from odeviz.experiments.pretrained import nearest_preset
from odeviz.experiments.saved import read_state

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def url():
    ARTIFACTS.mkdir(exist_ok=True)
    with served("apps/continuity.py") as url:
        yield url


def test_a_link_opens_trained_with_its_knobs_and_follows_them(url, chromium):
    page = chromium.page
    page.set_viewport_size({"width": 1280, "height": 720})
    preset = read_state(nearest_preset(ContinuityExperiment, {"target": "reflection", "depth": 2}).path)
    iterations = preset["iteration"]
    page.goto(f"{url}?target=reflection&depth=2&trained=1")
    page.wait_for_selector(".odeviz-status", timeout=90_000)
    shown = time.monotonic()  # the page is there: from now on, the trained picture should follow at once
    page.wait_for_selector(f"text=Iteration {iterations}", timeout=30_000)
    seconds = time.monotonic() - shown
    print(f"trained picture {seconds:.2f} s after the page appeared")
    assert page.locator("select").first.input_value() == "reflection"
    assert page.get_by_text("ResNet depth L (= Euler steps): 2").count() == 1
    losses = page.evaluate(SOURCE_COLUMN_JS, ["history", "loss_ode"])
    assert len(losses) == iterations and losses[-1] < losses[0]  # the loss curve of the shipped run
    assert "target=reflection" in page.url and "depth=2" in page.url and "trained=1" in page.url

    handle = page.locator(".noUi-handle").first  # the depth slider, first in the sidebar
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => window.location.search.includes('depth=3')", timeout=30_000)
    assert "target=reflection" in page.url

    # Copy link puts the page's link, with the knobs as they are now, on the clipboard and says so.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy link").click()
    page.wait_for_selector("button:text-is('Link copied')", timeout=10_000)
    assert page.evaluate("navigator.clipboard.readText()") == page.url
    page.wait_for_selector("button:text-is('Copy link')", timeout=10_000)  # and reads as before again
    page.screenshot(path=str(ARTIFACTS / "continuity-link.png"))
    assert not chromium.errors, chromium.errors


def test_a_link_value_the_page_cannot_use_is_told_and_the_default_stays(url, chromium):
    page = chromium.page
    page.goto(f"{url}?depth=99&lr=fast&target=reflection")
    page.wait_for_selector("text=Depth must be at most 64, not 99; depth stays 8", timeout=90_000)
    page.wait_for_selector("text=/lr=fast, which cannot be used: Learning rate must be a number, not .*fast/", timeout=10_000)
    assert page.locator("select").first.input_value() == "reflection"  # the good value is taken
    assert page.get_by_text("ResNet depth L (= Euler steps): 8").count() == 1
    page.wait_for_function("() => !window.location.search.includes('depth=99')", timeout=30_000)
    assert re.search(r"target=reflection", page.url)
