"""The paper's Table 2 measured: fresh latent ODEs and RNNs trained at 30, 50 and 100 observations.

:func:`table2_rows` trains one :class:`LatentODEExperiment` per column, one after the other, and
yields each row as it finishes (the CLI prints them, a page fills its grid). :class:`Table2Run` does
the same in a background thread that a page can poll and cancel.
"""
from __future__ import annotations

import threading
import time
from typing import Iterator

from ..data.spirals import OBSERVATION_PRESETS
from .latent import LatentODEExperiment

# Predictive RMSE on the extrapolated part, from the paper's Table 2.
PAPER_TABLE2 = {30: {"rnn": 0.3937, "latent_ode": 0.1642}, 50: {"rnn": 0.3202, "latent_ode": 0.1502},
                100: {"rnn": 0.1813, "latent_ode": 0.1346}}


def table2_rows(iterations: int = 1000, max_seconds: float | None = None, observations=OBSERVATION_PRESETS,
                cancelled: threading.Event | None = None, **params) -> Iterator[dict]:
    """Train fresh models for each number of observations and yield one row each: measured RMSE of
    the RNN and the latent ODE on the test continuations, the paper's, iterations and seconds."""
    for n in observations:
        experiment = LatentODEExperiment(observations=n, **params)
        experiment.trainer.snapshot_interval = float("inf")  # only numbers here, no pictures
        try:
            experiment.trainer.wait_idle()
            start = time.perf_counter()
            experiment.step(iterations)
            while not experiment.trainer.wait_idle(0.2):
                if (cancelled is not None and cancelled.is_set()) or (
                        max_seconds is not None and time.perf_counter() - start > max_seconds):
                    experiment.pause()
            if cancelled is not None and cancelled.is_set():
                return
            seconds = time.perf_counter() - start
            rmse_ode, rmse_rnn = experiment.test_rmse()
            paper = PAPER_TABLE2.get(n, {})
            yield {"observations": n, "rnn": rmse_rnn, "latent_ode": rmse_ode, "paper_rnn": paper.get("rnn"),
                   "paper_latent_ode": paper.get("latent_ode"), "iterations": experiment.trainer.iteration,
                   "seconds": seconds, "message": experiment.trainer.message}
        finally:
            experiment.close()


class Table2Run:
    """:func:`table2_rows` in a daemon thread: ``rows`` grows as columns finish; ``cancel`` stops it."""

    def __init__(self, **kwargs) -> None:
        self.rows: list[dict] = []
        self.error = ""
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, kwargs=kwargs, name="odeviz-table2", daemon=True)
        self._thread.start()

    def _run(self, **kwargs) -> None:
        try:
            for row in table2_rows(cancelled=self._cancelled, **kwargs):
                self.rows = [*self.rows, row]  # a new list: readers on other threads see whole rows
        except Exception as error:  # shown on the page; the server keeps going
            self.error = str(error)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def cancel(self) -> None:
        self._cancelled.set()
