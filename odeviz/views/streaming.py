"""From a trainer to the browser: a session periodic callback (~10 Hz, on the session's own event
loop, never on the training thread) hands the newest snapshot and the new history rows to the
page, which writes them into its Bokeh sources. Frames the page is too slow for are dropped.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import panel as pn

from ..experiments import Experiment

POLL_PERIOD_MS = 100  # ~10 Hz: as fast as a person follows a moving picture, cheap for the server


class SessionStream:
    """Polls one experiment's trainer and calls the page's listeners with what is new."""

    def __init__(self, experiment: Experiment, first_snapshot_timeout: float = 30.0) -> None:
        self.trainer = experiment.trainer
        if self.trainer.mailbox.latest() is None:
            self.trainer.wait_idle(first_snapshot_timeout)
        self.version, self.snapshot = self.trainer.mailbox.newer_than(0) or (0, None)
        self._generation = self.trainer.history.generation
        self._rows_seen = 0
        self._on_snapshot: list[Callable[[Any], None]] = []
        self._on_rows: list[Callable[[dict[str, np.ndarray]], None]] = []
        self._on_clear: list[Callable[[], None]] = []
        self._on_poll: list[Callable[[], None]] = []
        self._callback = None

    def on_snapshot(self, listener: Callable[[Any], None]) -> None:
        self._on_snapshot.append(listener)

    def on_rows(self, listener: Callable[[dict[str, np.ndarray]], None]) -> None:
        """``listener(columns)`` gets the history rows appended since the last poll."""
        self._on_rows.append(listener)

    def on_clear(self, listener: Callable[[], None]) -> None:
        """Called when the experiment was reset and its history started over."""
        self._on_clear.append(listener)

    def on_poll(self, listener: Callable[[], None]) -> None:
        self._on_poll.append(listener)

    def poll(self) -> None:
        news = self.trainer.mailbox.newer_than(self.version)
        if news is not None:
            self.version, self.snapshot = news
            for listener in self._on_snapshot:
                listener(self.snapshot)
        generation, rows = self.trainer.history.since(self._rows_seen)
        if generation != self._generation:
            self._generation, self._rows_seen = generation, 0
            for listener in self._on_clear:
                listener()
            generation, rows = self.trainer.history.since(0)
        if rows and generation == self._generation:
            self._rows_seen += len(rows["iteration"])
            for listener in self._on_rows:
                listener(rows)
        for listener in self._on_poll:
            listener()

    def start(self) -> None:
        """Begin polling in the current session; stop, and end the training thread, when it closes."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.poll, period=POLL_PERIOD_MS)
            if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
                pn.state.on_session_destroyed(lambda _context: self.stop())

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        self.trainer.close()
