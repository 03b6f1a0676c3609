"""How a training thread hands its results to any number of readers without ever blocking on them.

A :class:`Mailbox` keeps only the latest snapshot (readers that fall behind drop frames instead of
queueing them); a :class:`History` keeps every iteration's scalars so curves can be streamed
incrementally.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np


class Mailbox:
    """The latest value, with a version number that grows with every ``put``; ``unread`` says whether
    nobody has taken the latest value yet (so a writer can skip making values nobody reads). Readers
    that poll may also ask to be told of a ``put`` and whether a person is waiting for it (``asked``),
    on the writer's thread: they must only schedule work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._value: Any = None
        self.unread = False
        self._listeners: list[Callable[[bool], None]] = []

    def put(self, value: Any, asked: bool = False) -> None:
        with self._lock:
            self._version += 1
            self._value = value
            self.unread = True
            listeners = list(self._listeners)
        for listener in listeners:
            listener(asked)

    def listen(self, listener: Callable[[bool], None]) -> Callable[[], None]:
        """Call ``listener(asked)`` after every ``put``; returns the function that stops it."""
        with self._lock:
            self._listeners.append(listener)

        def stop() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return stop

    def newer_than(self, version: int) -> tuple[int, Any] | None:
        """(version, value) if something newer than ``version`` was put, else None."""
        with self._lock:
            if self._version <= version:
                return None
            self.unread = False
            return self._version, self._value

    def latest(self) -> Any:
        with self._lock:
            self.unread = False
            return self._value


class History:
    """Append-only columns of per-iteration scalars. ``clear`` starts a new generation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[dict[str, float]] = []
        self.generation = 0
        self.total_nfe = 0  # evaluations of f, forward and backward, since the last clear

    def append(self, row: dict[str, float]) -> None:
        with self._lock:
            self._rows.append(dict(row))
            self.total_nfe += int(row.get("nfe_forward", 0) + row.get("nfe_backward", 0))

    def clear(self) -> None:
        with self._lock:
            self._rows = []
            self.generation += 1
            self.total_nfe = 0

    def __len__(self) -> int:
        return len(self._rows)

    def replace(self, rows: list[dict[str, float]]) -> None:
        """Start a new generation holding ``rows`` (a saved run's history, taken back)."""
        self.clear()
        for row in rows:
            self.append(row)

    def since(self, start: int) -> tuple[int, dict[str, np.ndarray]]:
        """(generation, columns of the rows from index ``start`` on)."""
        with self._lock:
            rows, generation = self._rows[start:], self.generation
        columns = {key: np.array([row.get(key, np.nan) for row in rows], dtype=float) for key in (rows[0] if rows else {})}
        return generation, columns

    def rows(self) -> list[dict[str, float]]:
        """Every row, as dicts (what a saved run keeps)."""
        return self.rows_since(0)[1]

    def rows_since(self, start: int) -> tuple[int, list[dict[str, float]]]:
        """(generation, the rows from index ``start`` on), as rows: what a mirror appends."""
        with self._lock:
            return self.generation, [dict(row) for row in self._rows[start:]]

    def last(self) -> dict[str, float] | None:
        with self._lock:
            return dict(self._rows[-1]) if self._rows else None
