"""The notebook in a real JupyterLab: the page renders as a cell output and trains live."""
import shutil
import sys

import pytest

from harness import REPO, free_port, running, wait_for_first_picture

pytestmark = pytest.mark.browser
pytest.importorskip("jupyterlab")

# This machine is offline, like many a user's: every stylesheet must come from the Jupyter server.
CDN_HOSTS = ("cdn.holoviz.org", "cdn.bokeh.org", "unpkg.com", "cdn.jsdelivr.net")


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on a free port, serving a copy of the notebook (autosave must not touch the repo)."""
    shutil.copy(REPO / "apps" / "continuity.ipynb", tmp_path / "continuity.ipynb")
    port = free_port()
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
        "--ServerApp.token=", "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={tmp_path}",
    ]
    with running(command, f"http://127.0.0.1:{port}/api", timeout=90) as api:
        yield api.removesuffix("/api")


def test_page_renders_and_trains_in_jupyterlab(jupyterlab, chromium):
    page = chromium.page
    stylesheets: list[str] = []
    page.on("request", lambda request: stylesheets.append(request.url) if request.resource_type == "stylesheet" else None)
    page.goto(f"{jupyterlab}/lab/tree/continuity.ipynb")
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    page.wait_for_selector("text=/Python 3 \\(ipykernel\\) \\| Idle/", timeout=90_000)  # kernel ready
    page.get_by_role("menuitem", name="Run").click()
    page.get_by_text("Run All Cells", exact=True).click()
    try:
        wait_for_first_picture(page, timeout=120_000)  # the page is a live cell output
    finally:
        page.screenshot(path=str(REPO / "test-artifacts" / "jupyterlab.png"))
    page.get_by_role("button", name="Train", exact=True).first.click()
    page.wait_for_selector("text=/Iteration [1-9]\\d*/", timeout=30_000)
    page.screenshot(path=str(REPO / "test-artifacts" / "jupyterlab.png"))
    assert stylesheets, "no stylesheet request recorded"
    from_cdn = [url for url in stylesheets if any(host in url for host in CDN_HOSTS)]
    assert from_cdn == [], from_cdn
    assert chromium.errors == [], chromium.errors
