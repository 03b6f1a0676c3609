"""The CNF page: a Gaussian flows into a 2-D density while you watch (the paper's Figures 4 and 5)."""
from __future__ import annotations

import panel as pn
import param

from ..data.densities import DENSITY_TARGETS, MIN_POINTS, parse_points
from ..experiments import CNFExperiment
from .cnf_plots import CNFFigures, frame_label
from .controls import TrainingControls, linked_input, log_slider, reporting_errors
from .streaming import SessionStream

INTRO = """
**A continuous normalizing flow** moves points along an ODE, dz/dt = f(z, t). Following the flow, the
log-density changes by d log p(z(t))/dt = −tr(∂f/∂z) (the paper's instantaneous change of variables), so
the model's likelihood is exact and it trains by maximum likelihood. Scrub the **time slider** (or press
▶) to watch the base Gaussian bend into the target. **Draw your own density**: click points on the
target plot with the ✚ tool, then press *Learn my drawing*. Beside it, **planar flows** of K = 2, 8, 32
layers learn the same data: compare their losses against capacity.
"""


class CNFPage(pn.viewable.Viewer):
    """A CNF and planar flows learning one 2-D density, streamed while they train."""

    title = "Continuous normalizing flows: density transforms"

    experiment = param.ClassSelector(class_=CNFExperiment, doc="the model layer this page shows")
    frame = param.Integer(default=10, bounds=(0, 10), doc="density frame shown by the transform plots")

    def __init__(self, **params) -> None:
        if params.get("experiment") is None:
            params["experiment"] = CNFExperiment()
        super().__init__(**params)
        self.stream = SessionStream(self.experiment)
        self.figures = CNFFigures()
        self.controls = TrainingControls(experiment=self.experiment, describe=self._describe)
        self.readout = pn.pane.HTML("", css_classes=["odeviz-readout"], sizing_mode="stretch_width")
        self.player = pn.widgets.Player(
            name="Generative time", start=0, end=10, value=self.frame, interval=350, loop_policy="once",
            show_loop_controls=False, show_value=False, width=330, css_classes=["odeviz-time"],
        )
        self.time_label = pn.pane.HTML("", css_classes=["odeviz-time-label"], margin=(18, 5, 0, 5))
        self.player.param.watch(lambda event: setattr(self, "frame", event.new), "value")
        self.drawn_count = pn.pane.HTML("", css_classes=["odeviz-drawn"], margin=(0, 10))
        self.figures.sources["drawn"].on_change("data", lambda _attr, _old, _new: self._count_drawn())
        self._shown = None  # the snapshot the figures show, so the next one sends only what changed
        self.stream.on_snapshot(self._show)
        self.stream.on_rows(self.figures.append_history)
        self.stream.on_clear(self.figures.clear_history)
        self.stream.on_poll(self.controls.update)
        self._show(self.stream.snapshot)
        self._count_drawn()
        self.controls.update()
        plots = pn.FlexBox(*(pn.pane.Bokeh(figure, margin=(0, 4)) for figure in self.figures.figures.values()))
        multiples = pn.Row(*(pn.pane.Bokeh(figure, margin=(0, 2)) for figure in self.figures.small_figures))
        self._layout = pn.Row(
            self._sidebar(),
            pn.Column(self._header(), pn.Row(self.player, self.time_label), multiples, plots),
            sizing_mode="stretch_width",
        )

    # ---- layout ---------------------------------------------------------------------------
    def _header(self) -> pn.Column:
        return pn.Column(
            pn.pane.Markdown(f"## {self.title}", margin=(0, 10)),
            pn.pane.Markdown(INTRO, margin=(0, 10), styles={"max-width": "1100px", "color": "#444"}),
            self.controls.status_line,
        )

    def _sidebar(self) -> pn.Column:
        experiment, widget = self.experiment, pn.widgets
        targets = [*DENSITY_TARGETS, "file", "drawn"]
        self.target_select = linked_input(experiment, "target", widget.Select(name="Target density", options=targets, value=experiment.target))
        self.file_input = widget.FileInput(accept=".npy,.csv", multiple=False, sizing_mode="stretch_width")
        self.file_input.param.watch(reporting_errors(self._load_file), "value")
        self.learn_drawing = widget.Button(label="Learn my drawing", color="primary", variant="outline", width=150)
        self.learn_drawing.on_click(reporting_errors(lambda _: self._learn_drawing()))
        clear = widget.Button(label="Clear drawing", width=110)
        clear.on_click(lambda _: self.figures.clear_drawing())
        self.width_input = linked_input(experiment, "width", widget.IntInput(name="Hidden units M per layer", value=experiment.width,
                                                        sizing_mode="stretch_width"))
        return pn.Column(
            pn.pane.Markdown("### Training"),
            self.controls,
            self.target_select,
            pn.pane.Markdown("Or load N×2 points (.npy or .csv):", margin=(0, 10)),
            self.file_input,
            pn.Row(self.learn_drawing, clear),
            self.drawn_count,
            pn.pane.Markdown("### CNF and planar flow"),
            self.width_input,
            widget.IntSlider.from_param(experiment.param.depth, label="Hidden layers", throttled=True),
            widget.RadioButtonGroup.from_param(experiment.param.trace, button_style="outline"),
            linked_input(experiment, "batch_size", widget.IntInput(name="Batch size", value=experiment.batch_size, sizing_mode="stretch_width")),
            linked_input(experiment, "regularization", widget.FloatInput(name="Regularisation (kinetic + Jacobian), 0 = off",
                                           value=experiment.regularization, step=0.01, sizing_mode="stretch_width")),
            widget.Select.from_param(experiment.param.planar_layers, label="Planar flow shown: K layers"),
            log_slider(experiment, "learning_rate", -4, -1),
            pn.pane.Markdown("### ODE solver"),
            widget.Select.from_param(experiment.param.method, label="Method"),
            log_slider(experiment, "rtol", -8, -1),
            log_slider(experiment, "atol", -8, -1),
            widget.Checkbox.from_param(experiment.param.adjoint, label="Backprop by the adjoint method"),
            self.readout,
            width=300,
            styles={"background": "#f6f7f9", "border-radius": "6px"},
            margin=(5, 10),
        )

    # ---- data from the page -------------------------------------------------------------------
    def _load_file(self, event) -> None:
        if event.new:
            name = self.file_input.filename or "upload"
            self.experiment.use_points(parse_points(event.new, name), f"file {name!r}", target="file", name=name)

    def _learn_drawing(self) -> None:
        self.experiment.use_points(self.figures.drawn_points(), "the drawing", target="drawn")

    def _count_drawn(self) -> None:
        count = len(self.figures.sources["drawn"].data["x"])
        hint = "" if count >= MIN_POINTS else f" (at least {MIN_POINTS} needed)"
        self.drawn_count.object = f"<span style='font-size:13px'>{count} points drawn{hint}</span>"

    # ---- updates --------------------------------------------------------------------------
    @param.depends("frame", watch=True)
    def _show_frame(self) -> None:
        snapshot = self.stream.snapshot
        if snapshot is not None:
            self.figures.show_frame(snapshot, self.frame)
            self.time_label.object = self._time_text(snapshot)

    def _time_text(self, snapshot) -> str:
        return f"<b>{frame_label(snapshot.fractions[self.frame])}</b> of the flow from the base N(0, I) to the data"

    def _show(self, snapshot) -> None:
        if snapshot is not None:
            self.figures.show(snapshot, self.frame, previous=self._shown)
            self._shown = snapshot
            self.time_label.object = self._time_text(snapshot)
            self.readout.object = (
                f"<div style='font-size:13px;line-height:1.5'>Density frames: <b>{snapshot.solver.method}</b> at rtol "
                f"{snapshot.solver.rtol:.0e}, atol {snapshot.solver.atol:.0e}, NFE <b class='odeviz-nfe'>{snapshot.nfe_density}</b>"
                f"<br>Held-out NLL: CNF <b class='odeviz-heldout'>{snapshot.held_out_nll:.3f}</b> · planar K = "
                f"{snapshot.planar_layers} <b>{snapshot.planar_held_out_nll:.3f}</b> nats</div>"
            )

    def _describe(self) -> str:
        history = self.experiment.trainer.history
        last = history.last()
        if last is None:
            return "untrained: press <b>Train</b> or <b>Step</b>"
        k = self.experiment.planar_layers
        return (
            f"NLL CNF <b>{last['nll']:.3f}</b> · planar K = {k} {last[f'nll_planar_{k}']:.3f} · "
            f"<b>NFE-F {last['nfe_forward']:.0f}</b> · NFE-B {last['nfe_backward']:.0f} · "
            f"evaluations of f so far <b class='odeviz-total-nfe'>{history.total_nfe:,}</b>"
        )

    def __panel__(self):
        self.stream.start()
        return self._layout
