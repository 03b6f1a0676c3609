"""Every page at projector size (1280×720) in a real browser: its plots above the fold, nothing moving
when Train is pressed, Space training it; a screenshot of each goes to assets/ for the README."""
import pytest

from harness import REPO, wait_for_first_picture

pytestmark = pytest.mark.browser
SLUGS = ("continuity", "classifier", "figure3", "table1", "cnf", "latent")
# The plots each page is about: the first ones of its grid (Table 1: the table and its curves; CNF: the
# transform, paths, density, losses and target, below its time strip; latent:
# the series, z(t), RMSE and ELBO, with the Table 2 grid among them).
ABOUT = {"continuity": 6, "classifier": 5, "figure3": 3, "table1": 3, "cnf": 6, "latent": 4}
VIEWPORT = {"width": 1280, "height": 720}


def boxes(page) -> list[dict]:
    """Where each plot of the page's grid is (Playwright's locators see into Bokeh's shadow DOM)."""
    grid = page.locator(".odeviz-grid").first
    figures = grid.locator(".bk-Figure")
    return [figures.nth(i).bounding_box() for i in range(figures.count())]


@pytest.mark.parametrize("slug", SLUGS)
def test_page_fits_a_projector_and_stays_put_when_training(odeviz_server, chromium, slug):
    page = chromium.page
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.set_viewport_size(VIEWPORT)
    page.goto(odeviz_server + slug)
    wait_for_first_picture(page, timeout=600_000)
    page.wait_for_timeout(1500)  # the first picture drawn
    before = boxes(page)
    assert len(before) >= ABOUT[slug]
    for box in before[: ABOUT[slug]]:
        assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"] + 1, (slug, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"] + 1, (slug, box)
    height = page.evaluate("document.documentElement.scrollHeight")

    page.locator("body").click(position={"x": 640, "y": 5})  # focus the page, not a text box
    page.keyboard.press(" ")  # Space = Train
    page.wait_for_selector("button:has-text('Pause')", timeout=30_000)
    page.wait_for_selector("text=/Iteration [1-9]/", timeout=300_000)
    page.wait_for_timeout(2000)
    assert boxes(page) == before, "no plot may move when training starts"
    assert page.evaluate("document.documentElement.scrollHeight") == height
    page.screenshot(path=str(REPO / "assets" / f"{slug}.png"))
    page.keyboard.press(" ")  # Space again = Pause
    page.wait_for_selector("button:text-is('Train')", timeout=30_000)
    assert not chromium.errors, f"console errors {chromium.errors[:3]}, failed requests {failed[:5]}"


def test_the_index_lists_every_page_on_one_projector_screen(odeviz_server, chromium):
    from odeviz.views.catalog import CATALOG

    page = chromium.page
    page.set_viewport_size(VIEWPORT)
    page.goto(odeviz_server)
    cards = page.locator("a.page")
    assert cards.count() == len(CATALOG)
    for index, listing in enumerate(CATALOG.values()):
        card = cards.nth(index)
        assert card.locator("h2").inner_text() == listing.title and card.locator("p").inner_text() == listing.summary
        box = card.bounding_box()
        assert box["y"] + box["height"] <= VIEWPORT["height"] and box["x"] + box["width"] <= VIEWPORT["width"], listing.title
    page.screenshot(path=str(REPO / "assets" / "index.png"))
    assert not chromium.errors, f"console errors {chromium.errors[:3]}"
