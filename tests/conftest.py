"""Shared fixtures: single-threaded torch (the nets are tiny), experiments that always close, and
a Chromium page that records every console and page error."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from harness import CHROMIUM, free_port, launch_chromium, running


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def make_experiment():
    """Build experiments (any Experiment class) that are closed when the test ends, pass or fail."""
    from odeviz.experiments import ContinuityExperiment

    made = []

    def make(cls=ContinuityExperiment, **params):
        experiment = cls(**params)
        made.append(experiment)
        return experiment

    yield make
    for experiment in made:
        experiment.close()


class _SharedChromium:
    """One Chromium for a run of browser tests in a row (a start costs ~1.5 s of the suite's critical
    path each time). It is stopped before any other test: while Playwright's sync API is started, its
    event loop counts as running in this thread, and that test's own asyncio (nbclient, asyncio.run)
    would refuse to run."""

    def __init__(self) -> None:
        self._playwright = self._browser = None

    def browser(self):
        if self._browser is None or not self._browser.is_connected():
            from playwright.sync_api import sync_playwright

            self.stop()
            self._playwright = sync_playwright().start()
            self._browser = launch_chromium(self._playwright)
        return self._browser

    def stop(self) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()
        self._playwright = self._browser = None


_shared_chromium = _SharedChromium()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if "chromium" not in getattr(item, "fixturenames", ()):
        _shared_chromium.stop()


def pytest_sessionfinish(session):
    _shared_chromium.stop()


@pytest.fixture
def chromium():
    """``.page`` in Debian's Chromium (1600×1000, a fresh browser context: no cookies, storage or
    permissions from another test) and ``.errors``, its console and page errors."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    browser = _shared_chromium.browser()
    page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Which request failed (the console says only "Failed to load resource" and why).
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url} ({request.failure})"))
    yield SimpleNamespace(page=page, errors=errors)
    for context in browser.contexts:  # every tab the test opened, so no session of it goes on training
        context.close()


@pytest.fixture(scope="session")
def odeviz_server():
    """The base URL of one ``odeviz serve`` (every page, the index, the lesson), shared by the browser
    tests that need no server of their own: each page's session starts and ends with its tab, and a
    server started once saves each test its start and its first, cold page."""
    port = free_port()
    with running([sys.executable, "-m", "odeviz", "serve", "--port", str(port)], f"http://127.0.0.1:{port}/",
                 timeout=180) as base:
        yield base
