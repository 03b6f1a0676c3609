"""The CNF page: a Gaussian flows into a 2-D density while you watch (the paper's Figures 4 and 5)."""
from __future__ import annotations

import panel as pn
import param

from ..data.densities import DENSITY_TARGETS, MIN_POINTS, parse_points
from ..experiments import CNFExperiment
from .catalog import title_and_summary
from .cnf_plots import SMALL, CNFFigures, frame_label
from .controls import knob_widget, linked_input, log_slider, reporting_errors
from .layout import plot_grid
from .page import ExperimentPage, plot, solver_widgets

PLAYER_WIDTH = 260
STRIP_PX = SMALL + 30  # the time slider and the small multiples
# The grid, by rows: first what the time slider drives, then the losses, then the rest.
GRID_ORDER = ("transform", "paths", "log_density", "nll", "capacity", "target", "samples", "planar", "nfe")

INTRO = """
**A continuous normalizing flow** moves points along an ODE, dz/dt = f(z, t). Following the flow, the
log-density changes by d log p(z(t))/dt = −tr(∂f/∂z) (the paper's instantaneous change of variables), so
the model's likelihood is exact and it trains by maximum likelihood. Scrub the **time slider** (or press
▶) to watch the base Gaussian bend into the target. **Draw your own density**: click points on the
target plot with the ✚ tool, then press *Learn my drawing*. Beside it, **planar flows** of K = 2, 8, 32
layers learn the same data: compare their losses against capacity.
"""


class CNFPage(ExperimentPage):
    """A CNF and planar flows learning one 2-D density, streamed while they train."""

    experiment_class, figures_class = CNFExperiment, CNFFigures
    title, summary = title_and_summary("cnf")
    intro = INTRO
    above_grid_px = STRIP_PX + 6

    frame = param.Integer(default=10, bounds=(0, 10), doc="density frame shown by the transform plots")

    def make_experiment(self) -> CNFExperiment:
        # The page compares the CNF with planar flows (Figure 4); headless runs train the CNF alone.
        return CNFExperiment(build_later=True, compare_planar=True)

    def setup(self) -> None:
        self.player = pn.widgets.Player(
            label="Generative time", start=0, end=10, value=self.frame, interval=350, loop_policy="once",
            show_loop_controls=False, show_value=False, width=PLAYER_WIDTH, css_classes=["odeviz-time"],
        )
        self.time_label = pn.pane.HTML("", css_classes=["odeviz-time-label"], margin=(0, 5), width=PLAYER_WIDTH)
        self.player.param.watch(lambda event: setattr(self, "frame", event.new), "value")
        self.drawn_count = pn.pane.HTML("", css_classes=["odeviz-drawn"], margin=(0, 10))
        self.figures.sources["drawn"].on_change("data", lambda _attr, _old, _new: self._count_drawn())
        self._shown = None  # the snapshot the figures show, so the next one sends only what changed
        self._count_drawn()

    def plots(self) -> list:
        # The time slider beside the small multiples: one strip, so that two rows of plots fit a projector.
        time = pn.Column(self.player, self.time_label, width=PLAYER_WIDTH + 10, margin=(0, 10, 0, 0))
        multiples = [pn.pane.Bokeh(figure, margin=(0, 2)) for figure in self.figures.small_figures]
        grid = plot_grid(*(plot(self.figures.figures[name]) for name in GRID_ORDER))
        return [pn.Row(time, *multiples, height=STRIP_PX), grid]

    def settings(self) -> list:
        experiment, widget = self.experiment, pn.widgets
        targets = [*DENSITY_TARGETS, "file", "drawn"]
        self.target_select = linked_input(experiment, "target", widget.Select(label="Target density", options=targets,
                                                                              value=experiment.target))
        self.file_input = widget.FileInput(accept=".npy,.csv", multiple=False, sizing_mode="stretch_width")
        self.file_input.param.watch(reporting_errors(self._load_file, experiment), "value")
        self.learn_drawing = widget.Button(label="Learn my drawing", color="primary", variant="outline", width=150)
        self.learn_drawing.on_click(reporting_errors(lambda _: self._learn_drawing(), experiment))
        clear = widget.Button(label="Clear drawing", width=110)
        clear.on_click(lambda _: self.figures.clear_drawing())
        boxes = dict(sizing_mode="stretch_width")
        self.width_input = linked_input(experiment, "width", label="Hidden units M per layer", **boxes)
        return [
            self.target_select,
            pn.pane.Markdown("Or load N×2 points (.npy or .csv):", margin=(0, 10)),
            self.file_input,
            pn.Row(self.learn_drawing, clear),
            self.drawn_count,
            pn.pane.Markdown("### CNF and planar flow"),
            self.width_input,
            knob_widget(widget.IntSlider, experiment, "depth", label="Hidden layers", throttled=True),
            knob_widget(widget.RadioButtonGroup, experiment, "trace", button_style="outline"),
            linked_input(experiment, "batch_size", label="Batch size", **boxes),
            linked_input(experiment, "regularization", label="Regularisation (kinetic + Jacobian), 0 = off", step=0.01,
                         **boxes),
            knob_widget(widget.Select, experiment, "planar_layers", label="Planar flow shown: K layers"),
            log_slider(experiment, "learning_rate", -4, -1),
            pn.pane.Markdown("### ODE solver"),
            *solver_widgets(experiment),
            self.readout,
        ]

    # ---- data from the page -------------------------------------------------------------------
    def _load_file(self, event) -> None:
        if event.new is not None:  # an empty file is b"": refused in words, not ignored
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
        return f"<b>{frame_label(snapshot.fractions[self.frame])}</b> of the flow, N(0, I) → data"

    def on_snapshot(self, snapshot) -> None:
        self.figures.show(snapshot, self.frame, previous=self._shown)
        self._shown = snapshot
        self.time_label.object = self._time_text(snapshot)
        self.readout.object = (
            f"<div style='font-size:13px;line-height:1.5'>Density frames: <b>{snapshot.density_solver.method}</b> at "
            f"rtol {snapshot.density_solver.rtol:.0e}, atol {snapshot.density_solver.atol:.0e}, NFE <b class='odeviz-nfe'>{snapshot.nfe_density}</b>"
            f"<br>Held-out NLL: CNF <b class='odeviz-heldout'>{snapshot.held_out_nll:.3f}</b> · planar K = "
            f"{snapshot.planar_layers} <b>{snapshot.planar_held_out_nll:.3f}</b> nats</div>"
        )

    def describe_loss(self, last: dict) -> str:
        k = self.experiment.planar_layers
        planar = last.get(f"nll_planar_{k}")  # None while the planar flows are not trained
        return f"NLL CNF <b>{last['nll']:.3f}</b>" + ("" if planar is None else f" · planar K = {k} {planar:.3f}")
