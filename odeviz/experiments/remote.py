"""A page's stand-in for an experiment that trains in a Dask worker (:class:`.host.ExperimentHost`).

:class:`RemoteExperiment` has the experiment class's params (see :mod:`.proxy`); every change of one,
and every start/pause/step/reset or command, is queued and sent in order. Its ``trainer`` is a
:class:`MirroredTrainer`: a local mailbox and history filled by fetching from the actor, on the
stand-in's own thread (never the server's event loop), once per read of the mailbox (the page's poll)
and so never faster than the page draws; about once a second while the experiment is idle.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from .host import ExperimentHost
from .proxy import ExperimentProxy
from .stream import History, Mailbox
from .trainer import TrainerState

log = logging.getLogger(__name__)

# How often a page's stand-in asks its host for news: at the page's poll rate while news comes; after
# a fetch that brought none, every QUIET_FETCH_SECONDS (each exchange costs the worker a Dask round
# trip: 20 sessions asking 10 times a second took the CPU the workers' training had, and queued the
# knobs behind them); for EAGER_SECONDS after a command at the poll rate again (its picture is coming).
QUIET_FETCH_SECONDS = 0.5
EAGER_SECONDS = 1.0
IDLE_FETCH_SECONDS = 1.0
EXCHANGE_TIMEOUT = 30.0
LOST = "Lost the worker that trained this model ({error}); reload the page for a new one"


def fetch_gap(idle: bool, quiet: bool, eager: bool) -> float:
    """Seconds from one fetch of a page's news to the next (0: at the page's poll rate): ``idle``, its
    experiment has nothing to do; ``quiet``, the last fetch brought nothing; ``eager``, a command went
    out less than EAGER_SECONDS ago."""
    if idle:
        return IDLE_FETCH_SECONDS
    return QUIET_FETCH_SECONDS if quiet and not eager else 0.0


_placed: Counter[str] = Counter()  # this server's live experiments per worker address
_placing = threading.Lock()


def _least_used_worker(client) -> str | None:
    """The worker the fewest of this server's experiments live on, counted as taken. Dask's scheduler
    sees a made actor as a finished task, so every session that arrives on its own would go to the
    same worker while the others idle."""
    with _placing:
        workers = list(client.scheduler_info()["workers"])
        if not workers:
            return None
        chosen = min(workers, key=lambda address: _placed[address])
        _placed[chosen] += 1
        return chosen


def _release_worker(address: str | None) -> None:
    with _placing:
        if address is not None:
            _placed[address] -= 1
            if _placed[address] <= 0:
                del _placed[address]


class _ReadMailbox(Mailbox):
    """A mailbox that tells its owner each time it is read (a read is a wish for news)."""

    def __init__(self, on_read) -> None:
        super().__init__()
        self._on_read = on_read

    def newer_than(self, version: int):
        self._on_read()
        return super().newer_than(version)


class MirroredTrainer:
    """What a page reads of a remote trainer, as of the last fetch (plus the page's own last command)."""

    def __init__(self, on_read) -> None:
        self.mailbox = _ReadMailbox(on_read)
        self.history = History()
        self.iteration = 0
        self.running = False
        self.state = TrainerState.IDLE
        self.message = ""
        self.queue_position: int | None = None
        self.idle = False
        self.synced = threading.Event()  # set after every fetch

    @property
    def training(self) -> bool:
        return self.running

    def refresh(self) -> None:
        """Nothing to do here: the remote experiment redraws itself when a param changes."""

    def note_display_cost(self, seconds: float) -> None:
        """Nothing to do here: the page's work does not slow a worker's training."""

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until a fetch finds the remote experiment idle (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.synced.clear()
            self.mailbox.newer_than(0)  # ask for news
            if self.synced.wait(max(0.0, deadline - time.monotonic())) and self.idle:
                return True
        return False


class RemoteExperiment(ExperimentProxy):
    """An experiment in a Dask worker, seen from the page (make one with ``proxy_class``)."""

    def __init__(self, client, slots_per_worker: int, **params) -> None:
        super().__init__(**params)
        self.trainer = MirroredTrainer(self._wish)
        cls = self.experiment_class
        self._worker = _least_used_worker(client)
        # No worker up (all restarting, or none started yet): the first to come takes it.
        where = dict(workers=[self._worker], allow_other_workers=True) if self._worker else {}
        self._future = client.submit(ExperimentHost, f"{cls.__module__}:{cls.__name__}", self.knob_values(),
                                     slots_per_worker, actor=True, pure=False, **where)
        self._cond = threading.Condition()
        self._outbox: list[tuple] = []
        self._wished = True
        self._closing = False
        self._quiet = False  # the last fetch brought nothing new
        self._eager_until = 0.0
        self._seen = dict(version=0, rows_seen=0, generation=-1)
        self.param.watch(lambda event: self.command("set", event.name, event.new), self.knob_names())
        self._thread = threading.Thread(target=self._run, name=f"odeviz-remote-{cls.__name__}", daemon=True)
        self._thread.start()

    def command(self, name: str, *args, **kwargs) -> None:
        if name in ("start", "pause", "reset"):  # the button shows the new state at once
            self.trainer.running = name == "start"
        with self._cond:
            self._outbox.append((name, args, kwargs))
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def _wish(self) -> None:
        with self._cond:
            if not self._wished:
                self._wished = True
                self._cond.notify_all()

    def _wait_seconds(self, last: float) -> float | None:
        """Seconds until the next fetch (0: now; None: until the page reads its news or gives a command)."""
        if self._closing or self._outbox:
            return 0.0
        if not self._wished:
            return None
        now = time.monotonic()
        return max(0.0, last + fetch_gap(self.trainer.idle, self._quiet, now < self._eager_until) - now)

    def _run(self) -> None:
        try:
            actor = self._future.result()
            last = float("-inf")
            while True:
                with self._cond:
                    while (wait := self._wait_seconds(last)) != 0.0:
                        self._cond.wait(wait)
                    if self._closing:
                        break
                    commands, self._outbox, self._wished = self._outbox, [], False
                news = actor.exchange(commands, **self._seen).result(EXCHANGE_TIMEOUT)
                last = time.monotonic()
                self._quiet = news["snapshot"] is None and not news["rows"]
                if commands:
                    self._eager_until = last + EAGER_SECONDS
                self._take(news)
            actor.close().result(EXCHANGE_TIMEOUT)
        except Exception as error:  # a worker died or the cluster went away: say so on the page
            log.warning("remote experiment lost: %s", error, exc_info=True)
            self.trainer.running, self.trainer.idle = False, True
            self.trainer.message = LOST.format(error=error)
            self.trainer.synced.set()
        finally:
            self._future.release()
            _release_worker(self._worker)

    def _take(self, news: dict) -> None:
        trainer, seen = self.trainer, self._seen
        if news["snapshot"] is not None:
            seen["version"], snapshot = news["snapshot"]
            trainer.mailbox.put(snapshot)
        if news["generation"] != seen["generation"]:
            trainer.history.clear()
            seen["generation"], seen["rows_seen"] = news["generation"], 0
        for row in news["rows"]:
            trainer.history.append(row)
        seen["rows_seen"] += len(news["rows"])
        with self._cond:
            current = not self._outbox  # else a command the page just gave is not reflected yet
        if current:
            trainer.running, trainer.queue_position = news["running"], news["queue_position"]
            trainer.state, trainer.message = TrainerState(news["state"]), news["message"]
            trainer.idle = news["idle"]
        trainer.iteration = news["iteration"]
        trainer.synced.set()
