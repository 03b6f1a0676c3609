"""From a trainer to the browser: a session periodic callback drains the trainer's mailbox and
history into HoloViews streams, on the session's own event loop (never from the training thread).
"""
from __future__ import annotations

from typing import Callable

import holoviews as hv
import numpy as np
import panel as pn

from ..experiments import Experiment

POLL_PERIOD_MS = 100  # ~10 Hz: as fast as a person follows a moving picture, cheap for the server


class SessionStream:
    """``pipe`` carries the latest snapshot; ``history`` streams the per-iteration scalars."""

    def __init__(self, experiment: Experiment, first_snapshot_timeout: float = 30.0) -> None:
        self.trainer = experiment.trainer
        if self.trainer.mailbox.latest() is None:
            self.trainer.wait_idle(first_snapshot_timeout)
        self._version, snapshot = self.trainer.mailbox.newer_than(0) or (0, None)
        self.pipe = hv.streams.Pipe(data=snapshot)
        empty = {name: np.array([], dtype=float) for name in experiment.history_columns}
        self.history = hv.streams.Buffer(empty, length=1_000_000, index=False)
        self._generation = self.trainer.history.generation
        self._rows_sent = 0
        self._listeners: list[Callable[[], None]] = []
        self._callback = None

    def on_poll(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every poll (status lines, button labels)."""
        self._listeners.append(listener)

    def poll(self) -> None:
        news = self.trainer.mailbox.newer_than(self._version)
        if news is not None:
            self._version, snapshot = news
            self.pipe.send(snapshot)
        generation, rows = self.trainer.history.since(self._rows_sent)
        if generation != self._generation:  # the experiment was reset: start the curves over
            self._generation, self._rows_sent = generation, 0
            self.history.clear()
            generation, rows = self.trainer.history.since(0)
        if rows and generation == self._generation:
            self._rows_sent += len(next(iter(rows.values())))
            self.history.send({name: rows.get(name, np.full(len(rows["iteration"]), np.nan)) for name in self.history.data})
        for listener in self._listeners:
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
