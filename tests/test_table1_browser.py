"""The Table 1 page in a real browser: panel serve + Debian's Chromium driven by Playwright."""
import pytest
from playwright.sync_api import expect

from harness import REPO, SOURCE_COLUMN_JS, served, wait_for_first_picture

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts"


def test_training_fills_the_table_in_and_bad_input_is_refused(chromium, monkeypatch):
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium.page
    monkeypatch.setenv("ODEVIZ_DATA_ROOT", "/")  # the served page takes MNIST paths (anywhere, here)
    with served("apps/table1.py") as url:
        page.goto(url)
        wait_for_first_picture(page, timeout=90_000)

        def column(name, field):
            return page.evaluate(SOURCE_COLUMN_JS, [name, field])

        page.wait_for_function(  # the page appears at once and fills in with the first picture
            "([name]) => Bokeh.documents.some(d => { const s = d.get_model_by_name(name); return s && s.data.model.length; })",
            arg=["table1-rows"], timeout=90_000,
        )
        assert column("table1-rows", "model") == ["1-layer MLP", "ResNet", "RK-Net", "ODE-Net"]
        assert column("table1-rows", "test_error") == ["–"] * 4
        assert len(column("hidden-ode", "t")) == 13 * 4

        # Zero epochs is refused with a message; the value in force stays.
        epochs = page.get_by_label("Epochs per model")
        epochs.fill("0")
        epochs.press("Enter")
        page.wait_for_selector("text=/epochs.*must be at least 1/i", timeout=10_000)
        expect(epochs).to_have_value("12", timeout=5_000)
        epochs.fill("1")
        epochs.press("Enter")

        # A missing MNIST directory is refused; the page keeps the bundled digits.
        mnist = page.locator(".odeviz-mnist-dir input")
        mnist.fill("/nonexistent/mnist")
        mnist.press("Enter")
        page.wait_for_selector("text=/nonexistent.mnist does not exist/", timeout=10_000)

        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_function(  # the first row fills in while the others wait
            "() => { const d = Bokeh.documents[0].get_model_by_name('table1-rows').data;"
            " return d.test_error.length == 4 && d.test_error[0].endsWith('%') && d.status[3] === 'waiting'; }", timeout=60_000,
        )
        page.wait_for_function(
            "() => { const s = Bokeh.documents[0].get_model_by_name('table1-rows').data.status;"
            " return s.length == 4 && s.every(cell => cell.startsWith('done')); }",
            timeout=120_000,
        )
        page.wait_for_selector("text=Table complete", timeout=10_000)
        expect(page.locator(".slick-cell", has_text="done (1 ep.)")).to_have_count(4, timeout=10_000)  # what the grid shows
        errors = [float(cell.rstrip(" %")) for cell in column("table1-rows", "test_error")]
        assert all(0 <= error <= 100 for error in errors)
        assert float(column("table1-rows", "nfe_backward")[3]) > 0  # the ODE-Net's adjoint solve
        for key in ("mlp", "resnet", "rknet", "odenet"):
            assert len(column(f"loss-{key}", "loss")) > 0 and len(column(f"error-{key}", "error")) == 1
        memory = column("memory-sweep", "odenet")
        assert len(set(memory)) == 1 and column("memory-sweep", "rknet")[-1] > 10 * memory[0]
        page.screenshot(path=str(ARTIFACTS / "table1.png"), full_page=True)
    assert chromium.errors == [], f"browser console errors: {chromium.errors}"
