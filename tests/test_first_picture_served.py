"""Pictures reach a served page when they should: the first however long the browser takes to show
the page (Bokeh's own client says the page is shown only seconds after pulling it, as a browser on a
loaded machine does, by when the first snapshot has long been published); and a knob's re-solved
picture on a paused page at once, not at the page's next poll."""
from __future__ import annotations

import socket
import time

import pytest
import panel as pn
from harness import LightClient, free_port, press_train, served

from odeviz.cli.serve import _catalog_page
from odeviz.views import streaming

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
            # As one message (the picture's two dozen changes each in a message of its own are each laid out anew by a browser)
            assert client.messages_by_first_picture == 1, client.messages_by_first_picture
        finally:
            client.close()


def _readout(document) -> str:
    return next(str(m.text) for m in document.models if "odeviz-readout" in (getattr(m, "css_classes", None) or []))


def test_a_knob_on_a_paused_page_is_redrawn_without_waiting_for_the_poll(monkeypatch):
    monkeypatch.setattr(streaming, "POLL_PERIOD_MS", 30_000)  # the poll alone would show it 30 s later
    port = free_port()
    server = pn.serve({"classifier": _catalog_page("classifier")}, port=port, address="127.0.0.1", show=False,
                      threaded=True, websocket_origin=[f"127.0.0.1:{port}"])
    client = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the server starts listening on its own thread
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        client = LightClient(f"http://127.0.0.1:{port}/classifier", train=False)
        deadline = time.monotonic() + 60
        while "rtol 1e-03" not in (client.on_loop(_readout) or "") and time.monotonic() < deadline:
            time.sleep(0.1)  # the first picture comes as the page is shown
        assert "rtol 1e-03" in client.on_loop(_readout)

        def rtol_one_step_down(document) -> None:  # (one step of the log slider: 1e-3, 3e-4, 1e-4, …)
            slider = next(m for m in document.models if "odeviz-rtol" in (getattr(m, "css_classes", None) or [])
                          and hasattr(m, "value") and hasattr(m, "step"))
            slider.value -= 1  # what a key press on its handle sends: 3e-4

        def rtol_changed_to(rtol: str) -> bool:
            changed = time.monotonic()
            while rtol not in client.on_loop(_readout) and time.monotonic() - changed < 20:
                time.sleep(0.02)
            return rtol in client.on_loop(_readout)

        client.on_loop(rtol_one_step_down)
        assert rtol_changed_to("rtol 3e-04"), "the re-solved picture waited for the poll"
        # While training runs, a picture someone asked for goes out at once too (training's own keep the poll's pace).
        client.on_loop(press_train)
        time.sleep(1.0)
        client.on_loop(rtol_one_step_down)
        assert rtol_changed_to("rtol 1e-04"), "the re-solved picture waited for the poll while training"
    finally:
        if client is not None:
            client.close()
        server.stop()
