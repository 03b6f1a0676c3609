"""The classifier page: an ODE-Net separates two classes by deforming the plane with a learned flow."""
from __future__ import annotations

import math

import panel as pn
import param
from bokeh.events import Tap

from ..experiments import ClassifierExperiment
from .catalog import title_and_summary
from .classifier_plots import ClassifierFigures
from .help import help_text
from .controls import knob_widget, linked_input, log_slider, reporting_errors
from .layout import fill_cell, plot_grid
from .page import ExperimentPage, plot, solver_widgets

INTRO = """
An **ODE-Net classifier** carries each input x along dh/dt = f(h, t, θ) from t = 0 to 1 and reads the
class off h(1) with one straight line. So it has to *move* the plane until the classes lie on either
side of a line — watch the field bend the moons apart. Press ▶ to play the flow over time, **tap the
decision map** to drop a probe and follow it, and box- or lasso-select data there to highlight their
trajectories. Two circles, one inside the other, cannot be pulled apart in the plane without trajectories
crossing: *augment* the state with a zero dimension and they can.
"""
ROWS_PERIOD = 0.5  # the loss and NFE curves move twice a second: the pictures are what moves
BACKWARD_FACTORS = {"as the forward": 1, "10× looser": 10, "100× looser": 100, "1000× looser": 1000}


def backward_tolerance(experiment: ClassifierExperiment) -> pn.widgets.Select:
    """The adjoint's backward tolerances as a factor of the forward ones, kept so as rtol and atol move."""
    rtol = experiment.adjoint_rtol
    factor = 1 if rtol is None else min(BACKWARD_FACTORS.values(), key=lambda f: abs(math.log(rtol / (f * experiment.rtol))))
    select = pn.widgets.Select(name="Backward (adjoint) tolerance", options=BACKWARD_FACTORS, value=factor,
                               description=help_text(experiment, "adjoint_rtol"))

    def apply(*_events) -> None:
        f = select.value
        experiment.param.update(adjoint_rtol=None if f == 1 else min(1.0, f * experiment.rtol),
                                adjoint_atol=None if f == 1 else min(1.0, f * experiment.atol))

    select.param.watch(reporting_errors(apply, experiment), "value")
    experiment.param.watch(apply, ["rtol", "atol"])
    return select


def steps_text(last: dict | None) -> str:
    """The last training iteration's accepted/rejected steps, forward and backward (HTML)."""
    if not last or "accepted_forward" not in last:
        return ""
    text = f"last iteration's steps accepted/rejected: forward <b>{last['accepted_forward']:.0f}/{last['rejected_forward']:.0f}</b>"
    if last["nfe_backward"]:
        text += f", backward <b>{last['accepted_backward']:.0f}/{last['rejected_backward']:.0f}</b>"
    return text


def classifier_settings(experiment: ClassifierExperiment) -> list:
    """Widgets for the data and the model, shared by the pages on this experiment."""
    widget = pn.widgets
    return [
        knob_widget(widget.Select, experiment, "dataset", label="Dataset"),
        pn.Row(
            linked_input(experiment, "noise", step=0.05, width=130),
            linked_input(experiment, "samples", step=64, width=130),
        ),
        knob_widget(widget.IntSlider, experiment, "augment", label="Augmented zero dimensions", throttled=True),
        knob_widget(widget.IntSlider, experiment, "width", label="Hidden units of f", start=8, end=128, step=8, throttled=True),
        knob_widget(widget.IntSlider, experiment, "batch_size", label="Batch size", start=16, end=1024, step=16, throttled=True),
        log_slider(experiment, "learning_rate", -4, -1),
        knob_widget(widget.FloatSlider, experiment, "regularization", label="Kinetic + Jacobian penalty (RNODE)", start=0.0,
                                      end=0.3, step=0.01, throttled=True),
    ]


class ClassifierPageBase(ExperimentPage):
    """What the pages on a classifier share: its settings, and its loss and accuracy in the status line."""

    experiment_class = ClassifierExperiment

    def settings(self) -> list:
        return [*classifier_settings(self.experiment), pn.pane.Markdown("### ODE solver"),
                *solver_widgets(self.experiment), backward_tolerance(self.experiment), self.readout]

    def describe_loss(self, last: dict) -> str:
        return f"cross-entropy {last['cross_entropy']:.2e} · batch accuracy {100 * last['accuracy']:.0f} %"


class ClassifierPage(ClassifierPageBase):
    """A 2-D ODE-Net classifier trained live: its field, its flow and its decision map."""

    figures_class = ClassifierFigures
    title, summary = title_and_summary("classifier")
    intro = INTRO
    rows_period = ROWS_PERIOD

    selected = param.List(default=[], doc="data points picked in the decision map (box or lasso select)")

    def setup(self) -> None:
        self.time = pn.widgets.DiscretePlayer(
            label="time t", options=[0.0], value=0.0, interval=400, loop_policy="loop", show_loop_controls=False,
            visible_buttons=["slower", "previous", "play", "pause", "next", "faster"], css_classes=["odeviz-time"],
            sizing_mode="stretch_width", margin=(0, 10),
        )
        self.time.param.watch(lambda _event: self._show_time(), "value")
        self.figures.figures["decision"].on_event(
            Tap, reporting_errors(lambda event: self.experiment.add_probe(event.x, event.y), self.experiment))
        self.figures.data.selected.on_change("indices", lambda _attr, _old, new: setattr(self, "selected", list(new)))

    def settings(self) -> list:
        clear = pn.widgets.Button(label="Clear probes", variant="outline", width=120)
        clear.on_click(lambda _event: self.experiment.clear_probes())
        return [*super().settings(), clear]

    def plots(self) -> list:
        figures = self.figures.figures
        field = fill_cell(self.time, plot(figures["field"]))
        return [plot_grid(field, *(plot(figures[name]) for name in ("trajectories", "decision", "loss", "nfe")))]

    # ---- drawing --------------------------------------------------------------------------
    def _field_index(self, snapshot) -> int:
        times, shown = list(snapshot.field_times), float(self.time.value)  # the browser may send back its label
        return min(range(len(times)), key=lambda i: abs(times[i] - shown))

    def on_snapshot(self, snapshot) -> None:
        options = [round(float(t), 3) for t in snapshot.field_times]
        if self.time.options != options:
            self.time.options = options
        self.figures.show(snapshot, self._field_index(snapshot), self.selected)
        self.readout.object = (
            f"<div style='font-size:13px;line-height:1.5'><b>{snapshot.solver.method}</b> at rtol {snapshot.solver.rtol:.0e}, "
            f"atol {snapshot.solver.atol:.0e}: <span class='odeviz-nfe'>NFE <b>{snapshot.nfe_forward}</b></span> · "
            f"{1e3 * snapshot.solve_seconds:.0f} ms for data, probes and map<br>"
            f"all {len(snapshot.labels)} points: accuracy <b>{100 * snapshot.accuracy:.1f} %</b>, "
            f"cross-entropy {snapshot.loss:.3f}<br>{steps_text(self.experiment.trainer.history.last())}</div>"
        )

    def _show_time(self) -> None:
        if self.stream.snapshot is not None:
            with pn.io.hold():
                self.figures.show_time(self.stream.snapshot, self._field_index(self.stream.snapshot))

    @param.depends("selected", watch=True)
    def _redraw_highlight(self) -> None:
        if self.stream.snapshot is not None:
            self.figures.highlight(self.stream.snapshot, self.selected)
