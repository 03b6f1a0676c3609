"""Widgets every page shares: Train/Pause, Step and Reset, a status line, log-scale sliders, and
reporting of refused input as a notification instead of an exception.
"""
from __future__ import annotations

import functools
import json
import math
import time
from collections import deque
from typing import Callable

import panel as pn
import param
from bokeh.models import CustomJSTickFormatter

from ..experiments import Experiment
from ..experiments.proxy import ExperimentProxy
from .help import explained, help_text
from .text import escape_html, user_message


def notify_error(message: str) -> None:
    """Show ``message`` (plain text: it is escaped here) as a notification in the page, or in the
    notebook's log, and keep going."""
    text = escape_html(message)
    if pn.state.notifications is not None:
        pn.state.notifications.error(text, duration=8000)
    else:
        pn.state.log(text)


def reporting_errors(action: Callable, owner: param.Parameterized | None = None) -> Callable:
    """Wrap a widget callback so a refused value becomes a message, never a broken session."""

    @functools.wraps(action)
    def guarded(*args, **kwargs):
        try:
            return action(*args, **kwargs)
        except (ValueError, TypeError) as error:
            notify_error(user_message(error, owner))

    return guarded


def _short(value: float) -> str:
    """1e-3, 3e-4, 1.5e-2, 1: a tolerance or rate as people write it."""
    mantissa, exponent = f"{value:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa if int(exponent) == 0 else f"{mantissa}e{int(exponent)}"


def _log_values(low_exponent: int, high_exponent: int, also: float | None = None) -> dict[str, float]:
    values = {m * 10.0**e for e in range(low_exponent, high_exponent) for m in (1, 3)} | {10.0**high_exponent}
    if also is not None and 10.0**low_exponent <= also <= 10.0**high_exponent:
        values.add(also)  # a default between the stops (1.5e-2) is one of them, not shown as its neighbour
    return {_short(v): v for v in sorted(values)}


class PromptIntSlider(pn.widgets.IntSlider):
    """An IntSlider whose moves the server takes up on the event loop's next turn. Panel waits 50 ms
    after a widget's change before handling it (to gather a burst of changes into one), a third of
    the 150 ms in which a knob's re-solved picture should be back; changes that arrive before that
    turn are still gathered, and a burst of re-solves is gathered by the trainer anyway (a refresh
    asked while one is pending is the same refresh)."""

    _debounce = 0


def log_slider(owner: param.Parameterized, name: str, low_exponent: int, high_exponent: int) -> pn.widgets.IntSlider:
    """A slider over 1·10^k and 3·10^k (and the param's value when the slider is made, if it lies
    between them), linked both ways to the numeric param ``owner.name``.

    Its value is the position among those numbers (0 for 10^low_exponent). The label ("Rtol: 1e-3")
    is written by the browser from the handle's own position, so it always names where the handle
    is. Panel's DiscreteSlider labels it twice, in the browser and again from the server once the
    server has caught up; under load the server's label for the previous key press could arrive
    after the browser's for the last one and stay there.
    """
    options = _log_values(low_exponent, high_exponent, also=getattr(owner, name))
    labels, values = list(options), list(options.values())

    def position(value: float) -> int:
        return min(range(len(values)), key=lambda i: abs(math.log10(values[i]) - math.log10(value)))

    slider = PromptIntSlider(
        label=owner.param[name].label, start=0, end=len(values) - 1, value=position(getattr(owner, name)),
        format=CustomJSTickFormatter(code=f"return {json.dumps(labels)}[tick] ?? ''"),
        sizing_mode="stretch_width", css_classes=[f"odeviz-{name}"],
    )
    def to_param(event) -> None:
        # Only a move of the handle: a value set on the param between two stops (a link's, a saved
        # run's) moves the handle to the nearest stop, and that echo must not round the value.
        if position(getattr(owner, name)) != event.new:
            setattr(owner, name, values[event.new])

    slider.param.watch(reporting_errors(to_param), "value")
    owner.param.watch(lambda event: setattr(slider, "value", position(event.new)), name)
    return explained(slider, owner, name)


class TrainingControls(pn.viewable.Viewer):
    """Train/Pause, Step and Reset for an experiment, plus its status line and failure message."""

    experiment = param.ClassSelector(class_=(Experiment, ExperimentProxy))
    describe = param.Callable(doc="returns the page-specific part of the status line (HTML)")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.train_button = pn.widgets.Button(label="Train", color="primary", width=90)
        self.step_button = pn.widgets.Button(label="Step", color="default", width=70)
        self.reset_button = pn.widgets.Button(label="Reset", color="warning", variant="outline", width=70)
        self.train_button.on_click(reporting_errors(lambda _: self._toggle()))
        self.step_button.on_click(reporting_errors(lambda _: self.experiment.step()))
        self.reset_button.on_click(reporting_errors(lambda _: self.experiment.reset()))
        self.spinner = pn.indicators.LoadingSpinner(value=False, size=18, color="primary", margin=(8, 0, 0, 10))
        self.status = pn.pane.HTML("", css_classes=["odeviz-status"], sizing_mode="stretch_width", margin=(5, 5))
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._shown_message = ""
        self._progress: deque[tuple[float, int]] = deque(maxlen=20)  # (time, iteration): ~2 s of polls

    def _toggle(self) -> None:
        if self.experiment.trainer.running:
            self.experiment.pause()
        else:
            self.experiment.start()
        self.update()

    def update(self) -> None:
        """Refresh labels and the status line from the trainer (called on every poll)."""
        trainer = self.experiment.trainer
        running = trainer.running
        self.train_button.label = "Pause" if running else "Train"
        self.spinner.value = running
        self.status.object = (f"<b>Iteration {trainer.iteration}</b>{self._queued(trainer.queue_position)} · "
                              f"{self.describe()}{self._speed(running)}")
        if trainer.message != self._shown_message:
            self._shown_message = trainer.message
            self.alert.object, self.alert.visible = escape_html(trainer.message), bool(trainer.message)
            if trainer.message:
                notify_error(trainer.message)

    @staticmethod
    def _queued(position: int | None) -> str:
        """Where a session waits for its turn on a worker (sessions take turns: see experiments.host)."""
        if not position:
            return ""
        place = "next" if position == 1 else f"number {position}"
        return f" · <b class='odeviz-queued'>waiting for its turn on a worker: {place} in line</b>"

    def _speed(self, running: bool) -> str:
        """Training speed over the last couple of seconds, while training runs."""
        if not running:
            self._progress.clear()
            return ""
        self._progress.append((time.monotonic(), self.experiment.trainer.iteration))
        (start, first), (now, last) = self._progress[0], self._progress[-1]
        if now - start <= 0.5:
            return ""
        rate = (last - first) / (now - start)
        return f" · {rate:.1f} it/s" if rate < 10 else f" · {rate:.0f} it/s"  # slow pages: not "0 it/s"

    @property
    def status_line(self) -> pn.Row:
        """The spinner (on while training) and the status text, for the top of a page."""
        return pn.Row(self.spinner, self.status, sizing_mode="stretch_width")

    def __panel__(self):
        return pn.Column(pn.Row(self.train_button, self.step_button, self.reset_button), self.alert)


def knob_widget(kind: type[pn.widgets.Widget], owner: param.Parameterized, name: str, **kwargs):
    """A ``kind`` widget for ``owner``'s param ``name`` (Panel's ``from_param``), with its tooltip."""
    return explained(kind.from_param(owner.param[name], **kwargs), owner, name)


def linked_input(owner: param.Parameterized, name: str, widget: pn.widgets.Widget | None = None, *,
                 convert: Callable = lambda v: v, shown: Callable = lambda v: v, **kwargs) -> pn.widgets.Widget:
    """``widget`` (default: a number box labelled like the param) linked both ways to ``owner.name``,
    ``convert`` on the way in and ``shown`` on the way out.

    Unlike ``from_param`` (whose widget silently clamps to the bounds), it takes any typed value: one
    the param refuses becomes a message naming the knob, and the widget shows the value in force again.
    """
    knob = owner.param[name]
    if widget is None:
        box = pn.widgets.IntInput if isinstance(knob, param.Integer) else pn.widgets.FloatInput
        widget = box(**{"label": knob.label, **kwargs}, value=getattr(owner, name))

    def push(event) -> None:
        try:
            setattr(owner, name, convert(event.new))
        except (ValueError, TypeError) as error:
            value = getattr(owner, name)
            message = f"{knob.label} cannot be empty" if event.new is None else user_message(error, owner)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                message += f"; {knob.label.lower()} stays {value:g}"
            notify_error(message)
            widget.value = shown(value)

    widget.param.watch(push, "value")
    owner.param.watch(lambda event: setattr(widget, "value", shown(event.new)), name)
    if "description" in widget.param:  # the widget itself (a slider's tooltip goes beside it: see explained)
        widget.description = help_text(owner, name) or widget.description
    return widget
