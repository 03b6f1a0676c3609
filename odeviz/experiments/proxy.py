"""Stand-ins for an experiment that lives elsewhere: in a Dask worker (:mod:`.remote`), or in another
session (a :class:`FollowerExperiment`, a read-only view of it).

A stand-in is a ``param.Parameterized`` whose params are copies of the experiment class's own (so
every knob is still declared once, with its bounds and words) and whose ``trainer`` offers what pages
read: ``mailbox``, ``history``, ``running``, ``iteration``, ``state``, ``message``. Pages use it as they
use the experiment: set params, call start/pause/step/reset and the class's ``commands``.
"""
from __future__ import annotations

import copy
import threading

import param

from .base import Experiment
from .knobs import experiment_class_of

READ_ONLY = "This page follows another session live: only that session can train it or change its settings"


class ExperimentProxy(param.Parameterized):
    """The common frame of the stand-ins (subclasses come from :func:`proxy_class`)."""

    experiment_class: type[Experiment] = Experiment
    trainer = None  # set by each stand-in

    @classmethod
    def knob_names(cls) -> list[str]:
        return [name for name in cls.param if name != "name"]

    def knob_values(self) -> dict:
        return {name: getattr(self, name) for name in self.knob_names()}

    def command(self, name: str, *args, **kwargs) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self.command("start")

    def pause(self) -> None:
        self.command("pause")

    def step(self, count: int = 1) -> None:
        self.command("step", count)

    def reset(self) -> None:
        self.command("reset")

    def close(self) -> None:
        raise NotImplementedError


def _forwarded(name: str):
    def forward(self, *args, **kwargs):
        self.command(name, *args, **kwargs)

    forward.__name__ = name
    return forward


_made: dict[tuple[type, type], type] = {}
_lock = threading.Lock()


def proxy_class(base: type[ExperimentProxy], experiment_class: type[Experiment]) -> type:
    """``base`` with the params of ``experiment_class``, its ``commands`` forwarded and its
    ``param_methods`` (which only set params) run on the stand-in itself. Made once per pair."""
    with _lock:
        key = (base, experiment_class)
        if key not in _made:
            body = {name: copy.copy(knob) for name, knob in experiment_class.param.objects("existing").items()
                    if name != "name"}
            body.update({name: _forwarded(name) for name in experiment_class.commands})
            body.update({name: getattr(experiment_class, name) for name in experiment_class.param_methods})
            body.update(experiment_class=experiment_class, __doc__=f"{base.__doc__}\n\nFor a {experiment_class.__name__}.")
            _made[key] = type(f"{base.__name__}_{experiment_class.__name__}", (base,), body)
        return _made[key]


class FollowerExperiment(ExperimentProxy):
    """A read-only view of another session's experiment: its knobs follow the leader's, its trainer is
    the leader's (read, never driven), and every command is refused in words."""

    def __init__(self, leader, on_close=lambda: None) -> None:
        super().__init__(**{name: getattr(leader, name) for name in self.knob_names()})
        self.leader, self.trainer, self._on_close = leader, leader.trainer, on_close
        self._watcher = leader.param.watch(self._follow, self.knob_names())
        self._following = False
        self.param.watch(self._put_back, self.knob_names())

    @classmethod
    def of(cls, leader, on_close=lambda: None) -> FollowerExperiment:
        return proxy_class(cls, experiment_class_of(leader))(leader, on_close)

    def _follow(self, event) -> None:
        self._copy(event.name, event.new)

    def _copy(self, name: str, value) -> None:
        self._following = True
        try:
            setattr(self, name, value)
        finally:
            self._following = False

    def _put_back(self, event) -> None:
        # A widget got past its disabled state: the knob goes back to the leader's value.
        if not self._following:
            self._copy(event.name, getattr(self.leader, event.name))

    def command(self, name: str, *args, **kwargs) -> None:
        raise ValueError(READ_ONLY)

    def close(self) -> None:
        if self._watcher is not None:
            self.leader.param.unwatch(self._watcher)
            self._watcher = None
            self._on_close()
