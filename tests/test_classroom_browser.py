"""A class in a real browser: `odeviz serve --scheduler` on a LocalCluster started by the test (one
worker process), the classifier page training in the worker, and a second tab following it live."""
import re
import sys

import pytest

from harness import REPO, free_port, running, wait_for_first_picture

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts"
HISTORY_AT_LEAST = "n => Bokeh.documents[0].get_model_by_name('history').data.iteration.length >= n"


def test_a_page_trains_in_a_dask_worker_and_a_second_tab_follows_it(chromium):
    from dask.distributed import LocalCluster

    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        command = [sys.executable, "-m", "odeviz", "serve", "--port", str(port), "--scheduler", cluster.scheduler_address]
        with running(command, f"http://127.0.0.1:{port}/classifier", timeout=180):
            teacher = chromium.page
            teacher.goto(f"http://127.0.0.1:{port}/classifier")
            wait_for_first_picture(teacher, timeout=120_000)
            teacher.get_by_role("button", name="Train", exact=True).click()
            teacher.wait_for_function(HISTORY_AT_LEAST, arg=5, timeout=120_000)

            teacher.get_by_role("button", name="Share live").click()
            link = teacher.locator(".odeviz-share-link a").get_attribute("href")
            assert re.fullmatch(r"/classifier\?follow=[\w-]+", link)
            student = teacher.context.browser.new_page(viewport={"width": 1600, "height": 1000})
            student.on("pageerror", lambda error: chromium.errors.append(str(error)))
            student.goto(f"http://127.0.0.1:{port}{link}")
            student.wait_for_selector("text=following a live session", timeout=120_000)
            seen = student.evaluate("() => Bokeh.documents[0].get_model_by_name('history').data.iteration.length")
            student.wait_for_function(HISTORY_AT_LEAST, arg=seen + 3, timeout=120_000)  # the teacher's model, training
            assert student.get_by_role("button", name="Pause").is_disabled()  # read-only
            teacher.wait_for_selector(".odeviz-followers:has-text('1 following')", timeout=30_000)
            teacher.screenshot(path=str(ARTIFACTS / "classroom-teacher.png"))
            student.screenshot(path=str(ARTIFACTS / "classroom-student.png"))
            student.close()
            teacher.wait_for_function("() => !document.querySelector('.odeviz-followers')", timeout=30_000)
    assert chromium.errors == []
