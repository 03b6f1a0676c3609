"""A background training thread any experiment can run on.

One thread per experiment does all work on its models: training iterations, snapshots for display,
rebuilds. Other threads (a page's event loop, the CLI, a test) only flip flags and queue commands,
so they never wait on training, and the models never see two writers. Pause, reset and close cancel
the token the running solve checks at every evaluation of f, so they take effect within one
evaluation.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from enum import Enum
from typing import Any, Callable, Protocol

from ..numerics.solve import CancelToken, SolveCancelled, SolverError
from .stream import History, Mailbox

log = logging.getLogger(__name__)


DRAW_FAILED = "Could not draw the model at these settings"
RETRY_ADVICE = "lower the learning rate or loosen the tolerance, then train again"


class _Word(str, Enum):
    """An Enum whose members are their words: equal to them, and printed as them on every Python."""

    def __str__(self) -> str:
        return self.value


class TrainerState(_Word):
    """Where training is (a word: ``state == "running"`` holds)."""

    IDLE = "idle"  # nothing trained since the last reset
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"  # the experiment has nothing left to train


class StopReason(_Word):
    """Why training stopped by itself (:attr:`Trainer.message` says it in words)."""

    FAILED = "failed"  # a solve failed or the loss diverged: the last good weights were kept
    ERROR = "error"  # an unexpected error on the training thread (a bug)


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or far larger than its recent values, or a gradient NaN or infinite."""


class TrainingComplete(Exception):
    """Raised by ``train_step`` when there is nothing left to train: training stops, state "done"."""


class Trainable(Protocol):
    def train_step(self, token: CancelToken) -> dict[str, float]:
        """One optimisation step; returns its scalars. Raises before updating weights if it fails."""

    def restore_last_good(self) -> None:
        """Put back recent weights from before the blow-up (finite, and a loss near its recent level)."""

    def rebuild(self) -> None:
        """Fresh models and optimiser from the current parameters (used by reset)."""

    def snapshot(self, token: CancelToken, iteration: int) -> Any:
        """An immutable, numpy-only picture of the current models for display."""


class Turns(Protocol):
    """Training shared with other trainers, in turns (a Dask worker's training slots: see
    ``host.TrainingSlots``). Called without the trainer's lock held; it wakes a trainer whose turn
    came with :meth:`Trainer.turn_came`."""

    def settle(self, trainer: Trainer) -> None:
        """Between iterations: take a free slot or join the line if ``trainer`` wants to train; hand
        the slot on if its turn is over and others wait, or if it stopped training."""

    def holds(self, trainer: Trainer) -> bool:
        """It may run an iteration now."""

    def turn_ending(self, trainer: Trainer) -> bool:
        """Its turn is over and another trainer waits: the iteration just run was its last for now."""

    def others_wait(self) -> bool:
        """Trainers wait in line: a trainer holding a slot draws only the last iteration of its turn."""

    def position(self, trainer: Trainer) -> int | None:
        """Its place in the line (1 = next), None when not waiting."""


class Trainer:
    """Start, pause, resume, single-step and reset a :class:`Trainable` in a background thread.

    Each iteration appends its scalars to :attr:`history`; a snapshot goes to :attr:`mailbox` at
    most every ``snapshot_interval`` seconds while running, and only once the last one was read
    (a run nobody watches draws nothing), and after every step, pause or refresh.
    With ``snapshot_share`` set, snapshots while running are spaced further apart when they are
    expensive, so that they take at most that share of the thread's time (measured, so the rate
    follows the machine's load and the model's cost); a part of a snapshot that spaces itself is left
    out of that cost (:meth:`spaced_separately`).
    """

    snapshot_interval = 0.1
    snapshot_share: float | None = None
    pictures = True  # False: publish no snapshots at all (a headless run that reads only the history)

    def __init__(self, experiment: Trainable, name: str = "odeviz-trainer", snapshot_interval: float | None = None,
                 snapshot_share: float | None = None) -> None:
        self.experiment = experiment
        self.name = name
        if snapshot_interval is not None:
            self.snapshot_interval = snapshot_interval
        if snapshot_share is not None:
            self.snapshot_share = snapshot_share
        self.mailbox = Mailbox()
        self.history = History()
        self.iteration = 0
        self.state = TrainerState.IDLE
        self.stop_reason: StopReason | None = None
        self._stop_message = ""
        self._draw_failure = ""  # why the last picture could not be drawn, "" when it was
        self._cond = threading.Condition()
        self._running = False
        self._steps_pending = 0
        self._refresh = False
        self._picture_owed = False  # the first trained iteration after Train or Step is shown at once
        self._closing = False
        self._busy = False
        self._iterating = False  # a training iteration is running (its token takes redraws in between)
        self._commands: deque[Callable[[], None]] = deque()
        self._token = CancelToken()
        self._thread: threading.Thread | None = None
        self._last_snapshot = float("-inf")
        self._snapshot_seconds = 0.0  # moving average of what one snapshot costs
        self._display_seconds = 0.0  # moving average of what showing one costs its reader (see note_display_cost)
        self._spaced_separately = 0.0  # seconds of the current snapshot that space themselves
        self.turns: Turns | None = None  # set: train only in turns shared with other trainers

    @property
    def queue_position(self) -> int | None:
        """Place in the line for a turn to train (1 = next); None when training, or not sharing."""
        return self.turns.position(self) if self.turns is not None else None

    def turn_came(self) -> None:
        """This trainer's turn to train came (called by its :class:`Turns`)."""
        with self._cond:
            self._cond.notify_all()

    @property
    def message(self) -> str:
        """Why training stopped by itself, else why the model could not be drawn, else ""."""
        if self.stop_reason is not None:
            return self._stop_message
        return f"{DRAW_FAILED}: {self._draw_failure}" if self._draw_failure else ""

    def _clear_message(self) -> None:
        self.stop_reason, self._stop_message, self._draw_failure = None, "", ""

    # ---- control, callable from any thread -------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Train continuously until paused (also resumes after a pause)."""
        with self._cond:
            if self._closing:
                return
            if not self._running and not self._iterating:
                # A paused-quality picture being drawn (a CNF's full density grids: ~1 s) is outdated
                # by the first trained iteration, which is shown at once: it must not wait for it.
                self._token.cancel()
            self._running = True
            self.state = TrainerState.RUNNING
            self._clear_message()
            self._picture_owed = True
            self._wake()

    resume = start

    @property
    def training(self) -> bool:
        """Running, or working through queued steps: more iterations are coming."""
        return self._running or self._steps_pending > 0

    def pause(self) -> None:
        """Stop within one evaluation of f; the interrupted iteration is discarded."""
        with self._cond:
            if self._running or self._steps_pending:
                self.state = TrainerState.PAUSED
            self._halt()
            self._refresh = True
            self._wake()

    def step(self, count: int = 1) -> None:
        """Run ``count`` more iterations, then stop."""
        with self._cond:
            if self._closing:
                return
            self._steps_pending += int(count)
            self._clear_message()
            self._picture_owed = True
            self._wake()

    def reset(self) -> None:
        """Stop, then rebuild fresh models and forget the history."""
        with self._cond:
            self._halt()
            self._commands.append(self._do_reset)
            self._wake()

    def submit(self, command: Callable[[], None]) -> None:
        """Run ``command`` on the training thread between iterations, then publish a snapshot."""
        with self._cond:
            self._commands.append(command)
            self._wake()

    def call(self, function: Callable[[], Any]) -> Future:
        """Run ``function`` on the training thread between iterations; its result (or error) in the Future."""
        future: Future = Future()

        def run() -> None:
            try:
                future.set_result(function())
            except Exception as error:  # handed to whoever waits on the future
                future.set_exception(error)

        self.submit(run)
        return future

    def restore_progress(self, iteration: int, rows: list[dict]) -> None:
        """Go on from a saved run: its iteration count and history (on the training thread)."""
        self.iteration = int(iteration)
        self.history.replace(rows)
        self.state = TrainerState.PAUSED if self.iteration else TrainerState.IDLE
        self._clear_message()

    def refresh(self) -> None:
        """Publish a fresh snapshot soon (e.g. after a tolerance change on a paused model): while an
        iteration runs, between two of its evaluations of f, so a knob never waits for training."""
        with self._cond:
            self._refresh = True
            if self._iterating:
                self._token.between(self._publish_between)
            self._wake()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel any running solve and end the thread."""
        with self._cond:
            self._closing = True
            self._halt()
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @contextlib.contextmanager
    def spaced_separately(self):
        """Wrap the part of a snapshot that spaces itself (a picture cached and redrawn on its own
        schedule): its time is left out of the snapshot cost that spaces the pictures while training."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._spaced_separately += time.perf_counter() - start

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no work is pending or running (for tests and the CLI)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closing or not self._has_work() and not self._busy, timeout)

    # ---- internals ------------------------------------------------------------------------
    def _halt(self) -> None:
        self._running = False
        self._steps_pending = 0
        self._token.cancel()

    def _may_train(self) -> bool:
        """Training is asked for, and (sharing turns) it is this trainer's turn."""
        return bool(self._running or self._steps_pending) and (self.turns is None or self.turns.holds(self))

    def _has_work(self) -> bool:
        return bool(self._may_train() or self._refresh or self._commands)

    def _wake(self) -> None:
        if self._closing:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        self._cond.notify_all()

    def _do_reset(self) -> None:
        self.experiment.rebuild()
        self.iteration = 0
        self.history.clear()
        self.state = TrainerState.IDLE
        self._clear_message()

    def _loop(self) -> None:
        while True:
            if self.turns is not None:
                self.turns.settle(self)
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._closing or self._has_work() or self._wants_turn_settled())
                if self._closing:
                    break
                if self._wants_turn_settled():
                    continue
                self._busy = True
                commands, self._commands = list(self._commands), deque()
                train = self._may_train()
                if train and self._steps_pending:  # (a round that only redraws, waiting its turn, keeps its steps)
                    self._steps_pending -= 1
                continuous = self._running or self._steps_pending > 0
                refresh, self._refresh = self._refresh, False
                owed = False
                if train:  # this iteration settles a picture owed since Train or Step
                    owed, self._picture_owed = self._picture_owed, False
                self._token = token = CancelToken()
            try:
                for command in commands:
                    command()
                with self._cond:
                    self._iterating = train
                trained = self._iterate(token) if train else False
                self._iterating = False
                # While training runs on, a picture is due once spaced and once the last one was taken:
                # nobody reads a headless run's pictures, and it trains the faster for it. The first
                # trained iteration after Train or Step is shown at once, if the last one was read:
                # someone pressed it and watches.
                owed = owed and trained and not self.mailbox.unread
                if trained and self.turns is not None and self.turns.others_wait():
                    # Taking turns, only the last iteration of a turn is shown (its page waits for the
                    # next turn with it): the others' training comes before more pictures of this one.
                    due = self.turns.turn_ending(self)
                else:
                    due = time.perf_counter() - self._last_snapshot >= self._snapshot_spacing()
                due = due and not self.mailbox.unread
                if self.pictures and (commands or refresh or owed or (trained and (due or not continuous))):
                    self._publish(token, asked=bool(commands or refresh or owed))
            except Exception as error:  # a bug must not kill the thread and hang the page
                self._iterating = False
                log.exception("training thread error")
                self._stop_with(StopReason.ERROR, f"Paused: unexpected error: {error}")
            with self._cond:
                if not self._running and not self._steps_pending and self.state == TrainerState.RUNNING:
                    self.state = TrainerState.PAUSED
        if self.turns is not None:  # closed: its slot, or its place in the line, goes to the others
            self.turns.settle(self)

    def _wants_turn_settled(self) -> bool:
        """Sharing turns: it holds a slot it no longer trains with, or its turn is over while others
        wait, or it wants to train and is not in the line, or is in it and no longer does (the loop's
        top settles it)."""
        if self.turns is None:
            return False
        training = bool(self._running or self._steps_pending)
        if self.turns.holds(self):
            return not training or self.turns.turn_ending(self)
        return training == (self.turns.position(self) is None)  # to join the line, or to leave it

    def _iterate(self, token: CancelToken) -> bool:
        start = time.perf_counter()
        try:
            scalars = self.experiment.train_step(token)
        except SolveCancelled:
            return False
        except TrainingComplete:
            with self._cond:
                self._running = False
                self._steps_pending = 0
                self.state = TrainerState.DONE
            self._refresh = True
            return False
        except (SolverError, TrainingDiverged) as error:
            self.experiment.restore_last_good()
            advice = getattr(error, "advice", RETRY_ADVICE)  # said once: some errors carry their own
            self._stop_with(StopReason.FAILED, f"Paused at iteration {self.iteration + 1}: {error}. "
                            f"Kept the last good weights{'; ' + advice if advice else ''}.")
            self._refresh = True
            return False
        self.iteration += 1
        self.history.append({"iteration": self.iteration, **scalars, "seconds": time.perf_counter() - start})
        return True

    def _publish_between(self) -> None:
        """A snapshot in the middle of an iteration (the weights do not change during its solves);
        the model's training mode is put back for the rest of the iteration."""
        with self._cond:
            self._refresh = False
        model = getattr(self.experiment, "model", None)
        training = model.training if model is not None else False
        try:
            self._publish(CancelToken(), asked=True)
        finally:
            if model is not None:
                model.train(training)

    def note_display_cost(self, seconds: float) -> None:
        """What showing one snapshot cost its reader in this process (a served page's event loop:
        refilling its sources and serialising the frame, holding the GIL this thread trains with).
        With ``snapshot_share`` set, pictures are spaced by that cost too. Callable from any thread."""
        self._display_seconds = _smoothed(self._display_seconds, seconds)

    def _snapshot_spacing(self) -> float:
        """Seconds from the end of one snapshot to the next while training."""
        if not self.snapshot_share:
            return self.snapshot_interval
        cost = self._snapshot_seconds + self._display_seconds
        return max(self.snapshot_interval, cost / self.snapshot_share - cost)

    def _publish(self, token: CancelToken, asked: bool = False) -> None:
        """Put a snapshot in the mailbox; ``asked``: it answers a person (a knob, a command), not
        training's own pace, so readers should show it at once."""
        start = time.perf_counter()
        self._spaced_separately = 0.0
        try:
            snapshot = self.experiment.snapshot(token, self.iteration)
        except SolveCancelled:
            return
        except SolverError as error:
            self._draw_failure = str(error)  # shown unless why training stopped is (that matters more)
            return
        self._last_snapshot = time.perf_counter()
        if self._running:  # the pictures drawn while training are the ones to space out
            cost = self._last_snapshot - start - self._spaced_separately
            self._snapshot_seconds = _smoothed(self._snapshot_seconds, cost)
        self._draw_failure = ""  # the settings that could not be drawn have changed
        self.mailbox.put(snapshot, asked)

    def _stop_with(self, reason: StopReason, message: str) -> None:
        with self._cond:
            self._running = False
            self._steps_pending = 0
            self.state = TrainerState.PAUSED
            self.stop_reason, self._stop_message = reason, message


def _smoothed(average: float, value: float) -> float:
    """A moving average of costs (0: none measured yet, the first value stands)."""
    return value if not average else 0.7 * average + 0.3 * value
