"""The worker's side of a remote experiment: a Dask actor holding the real experiment, and the
worker's training slots.

The page's stand-in (:mod:`.remote`) calls :meth:`ExperimentHost.exchange` at its poll rate: the
commands and param changes queued since, in order, and back what is new (the latest snapshot if
newer than the page's, the new history rows, the status). Nothing is pushed, so a slow page fetches
less and drops frames. Training runs on the experiment's own trainer thread, never on the actor's.

:class:`TrainingSlots` shares a worker's CPU between the sessions that want to train: at most
``cap`` train at once; the others wait in line, and a session that has trained for a turn
(``TURN_SECONDS``) while others wait goes to the back, so all make progress. A session that pauses,
stops by itself, closes or stops asking (its server went away) frees its slot.
"""
from __future__ import annotations

import importlib
import threading
import time

from ..numerics.device import configure_torch

TURN_SECONDS = 2.0
LEASE_SECONDS = 10.0  # a host not asked for news this long belongs to a page that is gone


class TrainingSlots:
    """The training slots of one worker process (one instance per process: :func:`worker_slots`)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._holders: dict[ExperimentHost, float] = {}  # host → when its turn began
        self._line: list[ExperimentHost] = []
        self._hosts: set[ExperimentHost] = set()
        threading.Thread(target=self._rotate, name="odeviz-slots", daemon=True).start()

    def add(self, host: ExperimentHost) -> None:
        with self._lock:
            self._hosts.add(host)

    def request(self, host: ExperimentHost) -> None:
        with self._lock:
            if host not in self._holders and host not in self._line:
                self._line.append(host)
            self._fill()

    def release(self, host: ExperimentHost) -> None:
        with self._lock:
            self._holders.pop(host, None)
            if host in self._line:
                self._line.remove(host)
            self._fill()

    def remove(self, host: ExperimentHost) -> None:
        self.release(host)
        with self._lock:
            self._hosts.discard(host)

    def position(self, host: ExperimentHost) -> int | None:
        """1 for the next in line; None when training or not waiting."""
        with self._lock:
            return self._line.index(host) + 1 if host in self._line else None

    @property
    def training(self) -> int:
        with self._lock:
            return len(self._holders)

    def _fill(self) -> None:
        while self._line and len(self._holders) < self.cap:
            host = self._line.pop(0)
            self._holders[host] = time.monotonic()
            host.experiment.start()

    def _rotate(self) -> None:
        while True:
            time.sleep(TURN_SECONDS / 4)
            now = time.monotonic()
            with self._lock:
                gone = [host for host in self._hosts if now - host.last_asked > LEASE_SECONDS]
                if self._line:
                    done = [host for host, began in self._holders.items() if now - began >= TURN_SECONDS]
                    for host in done[: len(self._line)]:  # back of the line, still wanting to train
                        del self._holders[host]
                        host.experiment.pause()
                        self._line.append(host)
                    self._fill()
            for host in gone:
                host.close()


_slots: TrainingSlots | None = None
_slots_lock = threading.Lock()


def worker_slots(cap: int) -> TrainingSlots:
    """This process's training slots (the first host on a worker sets the cap)."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = TrainingSlots(cap)
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
        self.wants_training = False
        self.notice = ""  # why the last command was refused
        self.last_asked = time.monotonic()
        self.closed = False
        self.slots.add(self)

    def exchange(self, commands: list[tuple[str, tuple, dict]], version: int, rows_seen: int, generation: int) -> dict:
        """Apply ``commands`` in order, then return what the page has not seen yet."""
        self.last_asked = time.monotonic()
        for name, args, kwargs in commands:
            self._apply(name, *args, **kwargs)
        trainer = self.trainer
        if self.wants_training and self.slots.position(self) is None and not trainer.training:
            self.wants_training = False  # it stopped by itself: failed, or done
            self.slots.release(self)
        history_generation, rows = trainer.history.rows_since(rows_seen if generation == trainer.history.generation else 0)
        return dict(
            snapshot=trainer.mailbox.newer_than(version),
            generation=history_generation,
            rows=rows,
            iteration=trainer.iteration,
            running=self.wants_training,
            state=str(trainer.state),
            message=trainer.message or self.notice,
            queue_position=self.slots.position(self),
            idle=not self.wants_training and not trainer.training and trainer.wait_idle(0),
        )

    def _apply(self, name: str, *args, **kwargs) -> None:
        if name == "set":
            setattr(self.experiment, *args)
        elif name == "start":
            self.wants_training = True
            self.slots.request(self)
        elif name in ("pause", "reset"):
            self.wants_training = False
            self.slots.release(self)
            getattr(self.experiment, name)()
        else:
            try:
                self.notice = ""
                getattr(self.experiment, name)(*args, **kwargs)
            except (ValueError, TypeError) as error:
                self.notice = str(error)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.wants_training = False
            self.slots.remove(self)
            self.experiment.close()
