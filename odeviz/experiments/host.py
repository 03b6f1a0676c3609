"""The worker's side of a remote experiment: a Dask actor holding the real experiment, and the
worker's training slots.

The page's stand-in (:mod:`.remote`) calls :meth:`ExperimentHost.exchange` at its poll rate: the
commands and param changes queued since, in order, and back what is new (the latest snapshot if
newer than the page's, the new history rows, the status). Nothing is pushed, so a slow page fetches
less and drops frames. Training runs on the experiment's own trainer thread, never on the actor's.

:class:`TrainingSlots` shares a worker's CPU between the sessions that want to train: at most
``cap`` train at once; the others wait in line, and a session that has trained for a turn
(``TURN_ITERATIONS``, or ``TURN_SECONDS`` if those take longer) while others wait goes to the back at
the end of its iteration, so all make progress at the same pace in iterations (a model that costs
more per iteration at the same settings does not fall behind; one made far costlier, a very tight
tolerance, is held back by the time bound). A session that pauses, stops by itself, closes or stops
asking (its server went away) frees its slot. The trainers take their turns themselves, between
iterations (see ``Trainer.turns``); a knob on a session waiting its turn is redrawn at once all the same.
"""
from __future__ import annotations

import importlib
import sys
import threading
import time

from ..numerics.device import configure_torch
from ..runtime import SERVED_GIL_SWITCH_SECONDS
from .trainer import Trainer

# Short turns: every page in line sees its model move (its turn's last iteration is drawn) as often as
# it trains. Turns counted in iterations: at 20 sessions, turns of 0.5 s gave 0.42–0.99 it/s per
# session, following each model's cost. One iteration a turn against two (20 sessions, 2 workers, no
# browsers): 1.5 against 0.9 pictures a second per page, for 1.5 against 1.8 it/s.
TURN_ITERATIONS = 1
TURN_SECONDS = 0.5
# A host not asked for news this long belongs to a page that is gone (its server died: a closed tab
# closes its host at once). A new host waits longer for its page's first question: a loaded server
# took over 10 s to send it while 20 sessions opened, and the host was closed before its first Train.
LEASE_SECONDS = 30.0
FIRST_LEASE_SECONDS = 120.0
CLOSED = "This model was closed on its worker (the page stopped asking for news); reload the page for a new one"


class TrainingSlots:
    """The training slots of one worker process (one instance per process: :func:`worker_slots`),
    the :class:`~.trainer.Turns` of its trainers. Turns change hands between iterations, never
    inside one: no work is thrown away."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._holders: dict[Trainer, tuple[float, int]] = {}  # trainer → when its turn began, its iteration then
        self._line: list[Trainer] = []
        self._hosts: set[ExperimentHost] = set()
        threading.Thread(target=self._expire_leases, name="odeviz-slots", daemon=True).start()

    def add(self, host: ExperimentHost) -> None:
        with self._lock:
            self._hosts.add(host)
        host.trainer.turns = self

    def remove(self, host: ExperimentHost) -> None:
        with self._lock:
            self._hosts.discard(host)

    def settle(self, trainer: Trainer) -> None:
        with self._lock:
            wants = trainer.training
            if trainer in self._holders:
                if not wants:
                    del self._holders[trainer]
                elif self._over(trainer):  # to the back of the line
                    del self._holders[trainer]
                    self._line.append(trainer)
            elif trainer in self._line:
                if not wants:
                    self._line.remove(trainer)
            elif wants:
                self._line.append(trainer)
            granted = self._fill()
        for other in granted:  # outside the lock: a trainer's own lock is taken before this one
            other.turn_came()

    def holds(self, trainer: Trainer) -> bool:
        with self._lock:
            return trainer in self._holders

    def turn_ending(self, trainer: Trainer) -> bool:
        with self._lock:
            return trainer in self._holders and self._over(trainer)

    def others_wait(self) -> bool:
        with self._lock:
            return bool(self._line)

    def position(self, trainer: Trainer) -> int | None:
        with self._lock:
            return self._line.index(trainer) + 1 if trainer in self._line else None

    @property
    def training(self) -> int:
        with self._lock:
            return len(self._holders)

    def _over(self, trainer: Trainer) -> bool:
        if not self._line:
            return False
        began, iteration = self._holders[trainer]
        # (a reset during the turn restarts the count: the time bound ends that turn)
        return trainer.iteration - iteration >= TURN_ITERATIONS or time.monotonic() - began >= TURN_SECONDS

    def _fill(self) -> list[Trainer]:
        granted = []
        while self._line and len(self._holders) < self.cap:
            trainer = self._line.pop(0)
            self._holders[trainer] = (time.monotonic(), trainer.iteration)
            granted.append(trainer)
        return granted

    def _expire_leases(self) -> None:
        while True:
            time.sleep(1.0)
            now = time.monotonic()
            with self._lock:
                gone = [host for host in self._hosts if now > host.lease_ends]
            for host in gone:
                host.close()


_slots: TrainingSlots | None = None
_slots_lock = threading.Lock()


def worker_slots(cap: int) -> TrainingSlots:
    """This process's training slots (the first host on a worker sets the cap)."""
    global _slots
    with _slots_lock:
        if _slots is None:  # the first host in this worker process
            _slots = TrainingSlots(cap)
            # The worker's event loop answers the pages' exchanges between training threads (as a server's does).
            sys.setswitchinterval(SERVED_GIL_SWITCH_SECONDS)
        return _slots


class ExperimentHost:
    """One experiment in a Dask worker, driven by :meth:`exchange` (create it with
    ``client.submit(ExperimentHost, "module:Class", params, cap, actor=True)``)."""

    def __init__(self, class_path: str, params: dict, slots_per_worker: int) -> None:
        configure_torch()
        module, _, name = class_path.partition(":")
        experiment_class = getattr(importlib.import_module(module), name)
        self.experiment = experiment_class(build_later=True, **params)
        self.trainer = self.experiment.trainer
        self.slots = worker_slots(slots_per_worker)
        self.notice = ""  # why the last command was refused
        self.lease_ends = time.monotonic() + FIRST_LEASE_SECONDS
        self.closed = False
        self.slots.add(self)

    def exchange(self, commands: list[tuple[str, tuple, dict]], version: int, rows_seen: int, generation: int) -> dict:
        """Apply ``commands`` in order, then return what the page has not seen yet."""
        if self.closed:  # nothing to train any more: say so, whatever was asked
            return dict(snapshot=None, generation=self.trainer.history.generation, rows=[], iteration=self.trainer.iteration,
                        running=False, state="paused", message=CLOSED, queue_position=None, idle=True)
        self.lease_ends = time.monotonic() + LEASE_SECONDS
        for name, args, kwargs in commands:
            self._apply(name, *args, **kwargs)
        trainer = self.trainer
        history_generation, rows = trainer.history.rows_since(rows_seen if generation == trainer.history.generation else 0)
        return dict(
            snapshot=trainer.mailbox.newer_than(version),
            generation=history_generation,
            rows=rows,
            iteration=trainer.iteration,
            running=trainer.running,
            state=str(trainer.state),
            message=trainer.message or self.notice,
            queue_position=trainer.queue_position,
            idle=not trainer.training and trainer.wait_idle(0),
        )

    def _apply(self, name: str, *args, **kwargs) -> None:
        if name == "set":
            setattr(self.experiment, *args)
        else:
            try:
                self.notice = ""
                getattr(self.experiment, name)(*args, **kwargs)
            except (ValueError, TypeError) as error:
                self.notice = str(error)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.slots.remove(self)
            self.experiment.close()
