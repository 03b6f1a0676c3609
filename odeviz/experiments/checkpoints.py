"""Catching a loss that blows up, and weights to go back to.

:class:`LossWatch` remembers the last finite losses and tells a loss that left their range (NaN, or a
spike far above their running median) from an ordinary one. :class:`CheckpointRing` keeps copies of
recent weights and optimiser states whose loss was in range: the newest, and a few older ones spaced
``every`` iterations apart, so a loss that crept up for a while can still be undone. Copies are taken
at every iteration when they are cheap (small models, solve-heavy steps) and more rarely when they are
not, so that copying costs at most ``COPY_SHARE`` of the training time (measured, as pictures are).
"""
from __future__ import annotations

import copy
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass

import torch

WINDOW = 20  # recent finite losses the running median is taken over
MIN_HISTORY = 5  # fewer losses than this: only NaN and infinity count as blowing up
SPIKE_FACTOR = 10.0  # a loss above ~10× the recent median is a spike …
FLOOR = 0.5  # … and above median + 9·FLOOR: a loss that is tiny anyway may wobble (scale of a cross-entropy)
RESTORE_FACTOR = 2.0  # go back to the newest weights whose loss was below ~2× the recent median
# Copying the MLP's weights and Adam state every step made a step 27 % slower, the ResNet's 9 %.
COPY_SHARE = 0.03


class LossWatch:
    """Running median of the recent finite losses, and whether a new loss left their range."""

    def __init__(self) -> None:
        self._losses: deque[float] = deque(maxlen=WINDOW)

    def clear(self) -> None:
        self._losses.clear()

    def add(self, loss: float) -> None:
        self._losses.append(loss)

    def level(self) -> float | None:
        """The median of the recent losses, or None while there are too few to say."""
        return statistics.median(self._losses) if len(self._losses) >= MIN_HISTORY else None

    def top(self, factor: float) -> float:
        """``factor`` times the recent level (for a positive loss; shifted sensibly for a negative
        log-likelihood), never less than (factor − 1)·FLOOR above it; infinite without a level."""
        level = self.level()
        return math.inf if level is None else level + (factor - 1.0) * max(abs(level), FLOOR)

    def trouble(self, loss: float) -> str | None:
        """Why ``loss`` means training blew up, in a user's words; None when it is in range."""
        if not math.isfinite(loss):
            return f"the loss became {loss}"
        if loss > self.top(SPIKE_FACTOR):
            return f"the loss jumped to {loss:.3g}, far above its recent level of about {self.level():.3g}"
        return None


def cloned(state):
    """A copy of a (nested) state dict whose tensors are cloned and whose containers are new.

    ``copy.deepcopy`` does the same at ~50 µs a tensor (measured in benchmarks/bench_table1.py: half of
    a ResNet step); ``clone`` takes a tenth of that.
    """
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        copied = copy.copy(state)  # the same kind of dict, with a state dict's _metadata (versions)
        for key, value in state.items():
            copied[key] = cloned(value)
        return copied
    if type(state) in (list, tuple):
        return type(state)(cloned(value) for value in state)
    return copy.deepcopy(state)  # numbers, strings, anything else: as before


@dataclass(frozen=True)
class Checkpoint:
    step: int  # counted by the ring: steps kept since it was last cleared
    loss: float  # the loss these weights gave
    weights: dict
    optimizer_state: dict


class CheckpointRing:
    """The newest in-range weights plus up to ``size - 1`` older ones, ``every`` steps apart."""

    def __init__(self, size: int = 4, every: int = 10) -> None:
        self.every = every
        self._ring: deque[Checkpoint] = deque(maxlen=size)
        self._steps = 0
        self._copy_seconds = 0.0  # what the last copy cost
        self._copied_at = -math.inf  # when it ended
        self.restored: Checkpoint | None = None  # the one last gone back to

    def clear(self) -> None:
        self._ring.clear()
        self._copied_at = -math.inf
        self.restored = None

    def __len__(self) -> int:
        return len(self._ring)

    def keep(self, loss: float, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Copy the weights that gave ``loss`` (call before the optimiser steps away from them), unless
        the last copy was so recent that another would cost more than COPY_SHARE of the time."""
        self._steps += 1
        start = time.perf_counter()
        if start - self._copied_at < self._copy_seconds / COPY_SHARE:
            return
        checkpoint = Checkpoint(self._steps, loss, cloned(model.state_dict()), cloned(optimizer.state_dict()))
        self._copied_at = time.perf_counter()
        self._copy_seconds = self._copied_at - start
        ring = self._ring
        if len(ring) >= 2 and ring[-1].step - ring[-2].step < self.every:
            ring[-1] = checkpoint  # the newest moves on; the older ones stay spaced out
        else:
            ring.append(checkpoint)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, below: float = math.inf) -> bool:
        """Load the newest checkpoint whose loss was at most ``below`` (else the lowest-loss one)."""
        if not self._ring:
            return False
        fitting = [c for c in self._ring if c.loss <= below]
        checkpoint = fitting[-1] if fitting else min(self._ring, key=lambda c: c.loss)
        model.load_state_dict(checkpoint.weights)
        optimizer.load_state_dict(cloned(checkpoint.optimizer_state))  # Adam would update the kept tensors in place
        self.restored = checkpoint
        return True
