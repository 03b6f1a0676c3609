"""From a trainer to the browser: a session periodic callback (~10 Hz served, 2.5 Hz in a notebook;
on the session's own event loop, never on the training thread) hands the newest snapshot and the new
history rows to the page, which writes them into its Bokeh sources. Frames the page is too slow for are dropped.

In a served session the stream draws nothing until the browser has shown the page: Panel drops
the changes made under ``pn.io.hold`` between the browser pulling the document and reporting it
ready (it counts on a full serialization that has already happened), so a first picture drawn in
that window, seconds long on a loaded machine, would never reach the page, and pages skip redrawing
what their sources already hold, so handing it over again later would not help either.
"""
from __future__ import annotations

import contextlib
import time
from functools import partial
from typing import Any, Callable

import numpy as np
import panel as pn
from bokeh.events import ConnectionLost
from panel.io.callbacks import PeriodicCallback
from panel.io.state import set_curdoc

from ..experiments import Experiment
from ..runtime import in_served_session

POLL_PERIOD_MS = 100  # ~10 Hz: as fast as a person follows a moving picture, cheap for the server
# In a notebook every Bokeh message goes as 3 comm messages plus 2 per array (Panel's protocol: a
# frame of the CNF page is ~260, of the continuity page ~125), and the Jupyter server drops every
# IOPub message beyond 1000 a second over 3 s, mid-frame: the browser's Bokeh then fails ("Expected
# binary fragment but received text fragment") and the page stops updating. 2.5 frames a second
# keeps every page well under that.
NOTEBOOK_POLL_PERIOD_MS = 400
JUPYTER_IOPUB_MESSAGES_PER_SECOND = 1000  # jupyter_server's default iopub_msg_rate_limit


class SessionStream:
    """Polls one experiment's trainer and calls the page's listeners with what is new.

    It never waits for the trainer: ``snapshot`` is None until the first one is published (the
    experiment builds its models on its training thread), and the first poll after that hands it on.

    ``one_message``: what a poll changes on the page (a snapshot, the new history rows, the status
    line) goes to the browser as one message (Panel's ``pn.io.hold``); a reset's clear of the history
    goes on its own before it.

    ``rows_period`` > 0 hands new history rows over at most every that many seconds while training
    runs continuously: each batch of rows repaints the page's curves in the browser (a plot repaint
    costs milliseconds of the browser's CPU, more in software rendering), and curves need not move as
    often as pictures. Rows of a Step or of a run that has stopped are handed over at the next poll.
    """

    def __init__(self, experiment: Experiment, rows_period: float = 0.0, on_stop: Callable[[], None] | None = None,
                 one_message: bool = True) -> None:
        self.experiment = experiment
        self.one_message = one_message
        self._on_stop = on_stop
        self.trainer = experiment.trainer
        self.version, self.snapshot = 0, None
        self._generation = self.trainer.history.generation
        self._rows_seen = 0
        self.rows_period = rows_period
        self._rows_handed = float("-inf")  # when rows last went to the listeners
        self._on_snapshot: list[Callable[[Any], None]] = []
        self._on_rows: list[Callable[[dict[str, np.ndarray]], None]] = []
        self._on_clear: list[Callable[[], None]] = []
        self._on_poll: list[Callable[[], None]] = []
        self._callback = None
        self._stop_listening: Callable[[], None] | None = None
        self._wake_pending = False
        self.shown = True  # False while a browser has the document but has not shown it yet

    def on_snapshot(self, listener: Callable[[Any], None]) -> None:
        self._on_snapshot.append(listener)

    def on_rows(self, listener: Callable[[dict[str, np.ndarray]], None]) -> None:
        """``listener(columns)`` gets the history rows appended since it was last called."""
        self._on_rows.append(listener)

    def on_clear(self, listener: Callable[[], None]) -> None:
        """Called when the experiment was reset and its history started over."""
        self._on_clear.append(listener)

    def on_poll(self, listener: Callable[[], None]) -> None:
        self._on_poll.append(listener)

    def show(self) -> None:
        """The browser shows the page: draw from now on, at the event loop's next turn. (Not in this
        on-load callback: until it returns Panel does not count the session as loaded and sends each
        change of a poll as a message of its own, a first picture's two dozen, each laid out anew by the
        browser.)"""
        self.shown = True
        if pn.state.curdoc is None:  # outside a session (a script, a test): nothing to wait for
            self.poll()
        else:
            self._wake(pn.state.curdoc, asked=True)

    def poll(self) -> None:
        if not self.shown:
            return
        drawing = time.thread_time()  # this thread's CPU: what a frame takes from training, not GIL waits
        drew = self._hand_news()
        if drew:  # the trainer spaces its pictures by what they cost here too
            self.trainer.note_display_cost(time.thread_time() - drawing)

    def _hand_news(self) -> bool:
        """Hand the listeners what is new; True if that included a snapshot."""
        self._hand_clear()
        news = self.trainer.mailbox.newer_than(self.version)
        # A poll's changes (a picture's dozen source changes, the new rows, the status line) go to the
        # browser as one message, unless the page says otherwise: sent one by one, each is serialised
        # and written on its own, with the GIL (a Bokeh message's cost grows with the page's models).
        with pn.io.hold() if self.one_message else contextlib.nullcontext():
            if news is not None:
                self.version, self.snapshot = news
                for listener in self._on_snapshot:
                    listener(self.snapshot)
            # Continuous training adds rows all the time; otherwise (a Step, a finished run) they come at once.
            if not self.trainer.running or time.monotonic() - self._rows_handed >= self.rows_period:
                self._hand_rows()
            for listener in self._on_poll:
                listener()
        return news is not None

    def _hand_clear(self) -> None:
        """After a reset, the history's clear goes on its own: a clear and a stream of one source in
        one message reach the browser as the new rows twice (the clear carries the source's data as
        it is by the time the message is sent)."""
        if self.trainer.history.generation != self._generation:
            self._generation, self._rows_seen = self.trainer.history.generation, 0
            for listener in self._on_clear:
                listener()

    def _hand_rows(self) -> None:
        self._rows_handed = time.monotonic()
        generation, rows = self.trainer.history.since(self._rows_seen)
        if rows and generation == self._generation:  # else a reset came between: cleared at the next poll
            self._rows_seen += len(rows["iteration"])
            for listener in self._on_rows:
                listener(rows)

    def start(self) -> None:
        """Begin polling in the current session; stop, and close the experiment, when it closes."""
        if self._callback is None:
            # In the background: a poll must not flip the session's busy state (two more messages
            # and ~8 ms of work on the event loop, ten times a second), nor log.
            served = in_served_session()
            self._callback = PeriodicCallback(callback=self.poll, period=POLL_PERIOD_MS if served else NOTEBOOK_POLL_PERIOD_MS,
                                              background=True, log=False)
            self._callback.start()
            if served:
                pn.state.on_session_destroyed(lambda _context: self.stop())
                self.shown = False
                pn.state.onload(self.show)
                # A closed tab frees its training at once: Bokeh ends the session only seconds later.
                pn.state.curdoc.on_event(ConnectionLost, lambda _event: self.stop())
                self._stop_listening = self.trainer.mailbox.listen(partial(self._wake, pn.state.curdoc))

    def _wake(self, doc, asked: bool) -> None:
        """A picture a person waits for (a knob re-solved, a step done, anything made while nothing
        trains) goes out on the event loop's next turn, not at the next poll (up to POLL_PERIOD_MS
        later). Called on the training thread (and once as the page is shown); training's own pictures
        keep the poll's pace."""
        if (self.trainer.running and not asked) or self._wake_pending:
            return
        self._wake_pending = True
        try:
            doc.add_next_tick_callback(partial(self._woken, doc))  # Bokeh's one thread-safe entry
        except RuntimeError:  # the session's document is already gone
            pass

    def _woken(self, doc) -> None:
        self._wake_pending = False
        with set_curdoc(doc):
            self.poll()

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        self.experiment.close()  # ends its training thread and any work of its own (a sweep)
        if self._on_stop is not None:
            self._on_stop()
