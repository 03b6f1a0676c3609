"""Shared fixtures: single-threaded torch (the nets are tiny), experiments that always close, and
a Chromium page that records every console and page error."""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from harness import CHROMIUM, launch_chromium


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


@pytest.fixture
def chromium():
    """``.page`` in Debian's Chromium (1600×1000) and ``.errors``, its console and page errors."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield SimpleNamespace(page=page, errors=errors)
        browser.close()


# The longest browser tests (~4 and ~3 minutes), in a group of their own beside the others.
LONG_BROWSER_MODULES = {"test_lifecycle_browser.py", "test_cnf_browser.py"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    # Under pytest-xdist (`--dist loadgroup`), browser tests run in turn in two groups, one Chromium
    # each: the suite mostly waits on pages and servers (about one core busy on average), and one
    # group alone was its critical path.
    for item in items:
        if item.get_closest_marker("browser") or "chromium" in getattr(item, "fixturenames", ()):
            long = Path(str(item.fspath)).name in LONG_BROWSER_MODULES
            item.add_marker(pytest.mark.xdist_group("browser-long" if long else "browser"))
