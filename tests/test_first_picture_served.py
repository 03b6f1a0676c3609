"""The first picture reaches a browser however long it takes to show the page: a real served page
and Bokeh's own client, which says the page is shown only seconds after pulling it (as a browser on
a loaded machine does), by when the page's first snapshot has long been published."""
from __future__ import annotations

import time

import pytest
from harness import LightClient, served

pytestmark = pytest.mark.browser
SHOWN_AFTER_S = 10.0


def test_a_page_shown_late_still_gets_its_first_picture():
    with served("apps/classifier.py") as url:
        client = LightClient(url, train=False, ready_after=SHOWN_AFTER_S)
        try:
            deadline = time.monotonic() + 60
            while (drawn := client.on_loop(lambda document: len(document.get_model_by_name(
                    LightClient.PICTURE_SOURCE).data["x"]))) == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert drawn, "the first picture never reached the page"
        finally:
            client.close()
