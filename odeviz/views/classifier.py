"""The classifier page: an ODE-Net separates two classes by deforming the plane with a learned flow."""
from __future__ import annotations

import panel as pn
import param
from bokeh.events import Tap

from ..experiments import ClassifierExperiment
from .classifier_plots import ClassifierFigures
from .controls import TrainingControls, checked_input, log_slider, reporting_errors
from .layout import page_header, sidebar
from .streaming import SessionStream

INTRO = """
An **ODE-Net classifier** carries each input x along dh/dt = f(h, t, θ) from t = 0 to 1 and reads the
class off h(1) with one straight line. So it has to *move* the plane until the classes lie on either
side of a line — watch the field bend the moons apart. Press ▶ to play the flow over time, **tap the
decision map** to drop a probe and follow it, and box- or lasso-select data there to highlight their
trajectories. Two circles, one inside the other, cannot be pulled apart in the plane without trajectories
crossing: *augment* the state with a zero dimension and they can.
"""
ROWS_PERIOD = 0.5  # the loss and NFE curves move twice a second: the pictures are what moves


def classifier_settings(experiment: ClassifierExperiment) -> tuple[list, list]:
    """Widgets for the data and the model, and for the solver, shared by the pages on this experiment."""
    params = experiment.param
    widget = pn.widgets
    model = [
        widget.Select.from_param(params.dataset, label="Dataset"),
        pn.Row(
            checked_input(experiment, "noise", widget.FloatInput, step=0.05, width=130),
            checked_input(experiment, "samples", widget.IntInput, step=64, width=130),
        ),
        widget.IntSlider.from_param(params.augment, label="Augmented zero dimensions", throttled=True),
        widget.IntSlider.from_param(params.width, label="Hidden units of f", start=8, end=128, step=8, throttled=True),
        widget.IntSlider.from_param(params.batch_size, label="Batch size", start=16, end=1024, step=16, throttled=True),
        log_slider(experiment, "learning_rate", -4, -1),
        widget.FloatSlider.from_param(params.regularization, label="Kinetic + Jacobian penalty (RNODE)", start=0.0,
                                      end=0.3, step=0.01, throttled=True),
    ]
    solver = [
        widget.Select.from_param(params.method, label="Method"),
        widget.IntSlider.from_param(params.fixed_steps, label="Steps of fixed-grid methods", end=128, throttled=True),
        log_slider(experiment, "rtol", -8, -1),
        log_slider(experiment, "atol", -8, -1),
        widget.Checkbox.from_param(params.adjoint, label="Backprop by the adjoint method"),
        widget.Checkbox.from_param(params.seminorm, label="Adjoint with seminorm (fewer backward steps)"),
    ]
    return model, solver


def describe_training(experiment: ClassifierExperiment) -> str:
    """The page-specific part of the status line: last loss, accuracy and evaluations of f."""
    history = experiment.trainer.history
    last = history.last()
    if last is None:
        return "untrained: press <b>Train</b> or <b>Step</b>"
    return (
        f"cross-entropy {last['cross_entropy']:.2e} · batch accuracy {100 * last['accuracy']:.0f} % · "
        f"<b>NFE-F {last['nfe_forward']:.0f}</b> · NFE-B {last['nfe_backward']:.0f} · "
        f"evaluations of f so far <b class='odeviz-total-nfe'>{history.total_nfe:,}</b>"
    )


class ClassifierPage(pn.viewable.Viewer):
    """A 2-D ODE-Net classifier trained live: its field, its flow and its decision map."""

    title = "ODE-Net classifier: a flow that separates classes"

    experiment = param.ClassSelector(class_=ClassifierExperiment, doc="the model layer this page shows")
    selected = param.List(default=[], doc="data points picked in the decision map (box or lasso select)")

    def __init__(self, **params) -> None:
        if params.get("experiment") is None:
            params["experiment"] = ClassifierExperiment()
        super().__init__(**params)
        self.stream = SessionStream(self.experiment, rows_period=ROWS_PERIOD)
        self.figures = ClassifierFigures()
        self.controls = TrainingControls(experiment=self.experiment, describe=lambda: describe_training(self.experiment))
        self.readout = pn.pane.HTML("", css_classes=["odeviz-readout"], sizing_mode="stretch_width")
        self.time = pn.widgets.DiscretePlayer(
            label="time t", options=[0.0], value=0.0, interval=400, loop_policy="loop", show_loop_controls=False,
            visible_buttons=["slower", "previous", "play", "pause", "next", "faster"], css_classes=["odeviz-time"],
            width=330, margin=(0, 10),
        )
        self.time.param.watch(lambda _event: self._show_time(), "value")
        self.stream.on_snapshot(self._show)
        self.stream.on_rows(self.figures.append_history)
        self.stream.on_clear(self.figures.clear_history)
        self.stream.on_poll(self.controls.update)
        self.figures.figures["decision"].on_event(Tap, reporting_errors(lambda event: self.experiment.add_probe(event.x, event.y)))
        self.figures.data.selected.on_change("indices", lambda _attr, _old, new: setattr(self, "selected", list(new)))
        self._show(self.stream.snapshot)
        self.controls.update()
        plots = self.figures.figures
        field = pn.Column(self.time, pn.pane.Bokeh(plots["field"]), margin=(0, 4))
        others = (pn.pane.Bokeh(plots[name], margin=(0, 4)) for name in ("trajectories", "decision", "loss", "nfe"))
        header = page_header(self.title, INTRO, self.controls)
        self._layout = pn.Row(self._sidebar(), pn.Column(header, pn.FlexBox(field, *others)), sizing_mode="stretch_width")

    # ---- layout ---------------------------------------------------------------------------
    def _sidebar(self) -> pn.Column:
        model, solver = classifier_settings(self.experiment)
        clear = pn.widgets.Button(label="Clear probes", variant="outline", width=120)
        clear.on_click(lambda _event: self.experiment.clear_probes())
        return sidebar(
            pn.pane.Markdown("### Training"), self.controls, *model,
            pn.pane.Markdown("### ODE solver"), *solver, self.readout, clear,
        )

    # ---- drawing --------------------------------------------------------------------------
    def _field_index(self, snapshot) -> int:
        times = list(snapshot.field_times)
        return min(range(len(times)), key=lambda i: abs(times[i] - self.time.value))

    def _show(self, snapshot) -> None:
        if snapshot is None:
            return
        with pn.io.hold():  # a frame changes a dozen sources: one message to the browser, not a dozen
            self._draw(snapshot)

    def _draw(self, snapshot) -> None:
        options = [round(float(t), 3) for t in snapshot.field_times]
        if self.time.options != options:
            self.time.options = options
        self.figures.show(snapshot, self._field_index(snapshot), self.selected)
        self.readout.object = (
            f"<div style='font-size:13px;line-height:1.5'><b>{snapshot.solver.method}</b> at rtol {snapshot.solver.rtol:.0e}, "
            f"atol {snapshot.solver.atol:.0e}: <span class='odeviz-nfe'>NFE <b>{snapshot.nfe_forward}</b></span> · "
            f"{1e3 * snapshot.solve_seconds:.0f} ms for data, probes and map<br>"
            f"all {len(snapshot.labels)} points: accuracy <b>{100 * snapshot.accuracy:.1f} %</b>, "
            f"cross-entropy {snapshot.loss:.3f}</div>"
        )

    def _show_time(self) -> None:
        if self.stream.snapshot is not None:
            with pn.io.hold():
                self.figures.show_time(self.stream.snapshot, self._field_index(self.stream.snapshot))

    @param.depends("selected", watch=True)
    def _redraw_highlight(self) -> None:
        if self.stream.snapshot is not None:
            self.figures.highlight(self.stream.snapshot, self.selected)

    def __panel__(self):
        self.stream.start()
        return self._layout
