"""A closed session leaves nothing of itself in the server process: a real in-process Panel server
serving a page as ``odeviz serve`` does, Bokeh's own client opening and closing sessions of it."""
from __future__ import annotations

import gc
import sys
import time

import panel as pn
import pytest
from bokeh.document import Document
from harness import LightClient, free_port

from odeviz.cli.serve import TRIM_DELAY_SECONDS, _catalog_page
from odeviz.experiments import Experiment
from odeviz.runtime import SERVED_GIL_SWITCH_SECONDS

SESSIONS = 3


def closed_documents() -> list[Document]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, Document) and o.session_context is None and o is not pn.state.curdoc]


def experiment_ids() -> set[int]:
    """The experiments alive in this process, as the server sees them (no collection forced here)."""
    return {id(o) for o in gc.get_objects() if isinstance(o, Experiment)}


def panel_objects() -> int:
    """Live Panel components (widgets, panes, layouts) in this process."""
    gc.collect()
    return sum(isinstance(o, pn.viewable.Viewable) for o in gc.get_objects())


def test_closed_sessions_leave_no_document_and_no_view_behind():
    port = free_port()
    server = pn.serve({"continuity": _catalog_page("continuity")}, port=port, address="127.0.0.1", show=False,
                      threaded=True, check_unused_sessions_milliseconds=200, unused_session_lifetime_milliseconds=500,
                      websocket_origin=[f"127.0.0.1:{port}"])
    try:
        experiments_before = experiment_ids()
        sys.setswitchinterval(0.005)  # Python's default
        before, views_before, components_before = len(closed_documents()), set(pn.state._views), panel_objects()  # other tests' pages, in notebook documents
        for _ in range(SESSIONS):
            client = LightClient(f"http://127.0.0.1:{port}/continuity", train=False)
            client.close()
        del client  # its own copy of the document
        # A served session lets the event loop have the GIL back from training threads within 1 ms.
        assert sys.getswitchinterval() == pytest.approx(SERVED_GIL_SWITCH_SECONDS)
        deadline = time.monotonic() + 30
        while pn.state.session_info["live"] and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(TRIM_DELAY_SECONDS + 1.0)
        # The closed sessions' models are freed once their sessions end, not when the collector gets to them.
        assert experiment_ids() - experiments_before == set()
        leftover = [view for ref, view in pn.state._views.items() if ref not in views_before]
        assert leftover == [], [type(view[0]).__name__ for view in leftover]
        assert len(closed_documents()) <= before
        # Nothing of a page outlives its session (each used to leave its "Copy link" button behind).
        assert panel_objects() <= components_before
    finally:
        server.stop()
