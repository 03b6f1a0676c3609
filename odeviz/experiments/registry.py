"""The live experiments of this process by id, so another session can follow one read-only
(``/classifier?follow=ID``) and its owner can see how many do."""
from __future__ import annotations

import secrets
import threading

from .proxy import FollowerExperiment

NOT_LIVE = "There is no live session {id} to follow on this server (it may have ended); this page trains its own model"


class LiveExperiments:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, object] = {}
        self._followers: dict[str, int] = {}

    def register(self, experiment) -> str:
        """Offer ``experiment`` to followers; returns its id (unguessable: a link is an invitation)."""
        live_id = secrets.token_urlsafe(6)
        with self._lock:
            self._live[live_id], self._followers[live_id] = experiment, 0
        return live_id

    def unregister(self, live_id: str) -> None:
        with self._lock:
            self._live.pop(live_id, None)
            self._followers.pop(live_id, None)

    def follow(self, live_id: str) -> FollowerExperiment:
        """A read-only view of the live experiment ``live_id`` (ValueError in words if there is none)."""
        with self._lock:
            leader = self._live.get(live_id)
            if leader is None:
                raise ValueError(NOT_LIVE.format(id=live_id))
            self._followers[live_id] += 1
        return FollowerExperiment.of(leader, on_close=lambda: self._left(live_id))

    def _left(self, live_id: str) -> None:
        with self._lock:
            if live_id in self._followers:
                self._followers[live_id] -= 1

    def followers(self, live_id: str) -> int:
        with self._lock:
            return self._followers.get(live_id, 0)


LIVE = LiveExperiments()
