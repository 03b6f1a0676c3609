"""The continuity page: a ResNet becomes an ODE-Net as depth grows and the step shrinks (Figure 1)."""
from __future__ import annotations

import panel as pn
import param
from bokeh.events import MouseLeave, MouseMove

from ..experiments import ContinuityExperiment
from .catalog import title_and_summary
from .continuity_plots import TRAJECTORY_FIELDS, ContinuityFigures, nearest_input, nearest_trajectory
from .controls import knob_widget, log_slider
from .page import ExperimentPage, solver_widgets

INTRO = """
**A ResNet** applies L discrete updates h ← h + f(h, θₖ)/L. **An ODE-Net** follows one vector field,
dh/dt = f(h, t, θ), and an adaptive solver picks where to evaluate f (the circles). **Euler's method**
with L steps on the ODE-Net's f *is* a ResNet with shared weights: as L grows it converges to the ODE.
Try the *reflection* target: ODE trajectories cannot cross, so the ODE-Net fails until you *augment* it,
and so does the ResNet once L is large (at L = 1 or 2 its steps can jump over each other).
Hover a trajectory or an input, or select inputs in the learned map, to follow them in every plot.
"""


class ContinuityPage(ExperimentPage):
    """Figure 1 come alive: ResNet and ODE-Net trained side by side, streamed while they learn."""

    experiment_class, figures_class = ContinuityExperiment, ContinuityFigures
    title, summary = title_and_summary("continuity")
    intro = INTRO

    selected = param.List(default=[], doc="inputs picked in the learned-map plot (tap or box select)")
    hovered = param.Integer(default=None, allow_None=True, doc="input whose trajectory is under the pointer")

    def setup(self) -> None:
        self._connect_highlighting()

    def settings(self) -> list:
        widget = pn.widgets
        return [
            knob_widget(widget.Select, self.experiment, "target", label="Target map g(x)"),
            knob_widget(widget.Checkbox, self.experiment, "augment", label="Augment the state with one zero dimension"),
            knob_widget(widget.IntSlider, self.experiment, "depth", label="ResNet depth L (= Euler steps)", throttled=True),
            log_slider(self.experiment, "learning_rate", -4, -1),
            pn.pane.Markdown("### ODE solver"),
            *solver_widgets(self.experiment),
            self.readout,
        ]

    # ---- highlighting: hover a trajectory, or tap/box-select inputs in the learned map ----------
    def _connect_highlighting(self) -> None:
        for name, (times, states) in TRAJECTORY_FIELDS.items():
            self._follow_pointer(self.figures.figures[name], self._nearest_at(times, states))
        self._follow_pointer(self.figures.figures["learned"], lambda snapshot, x, _y: nearest_input(snapshot.inputs, x))
        self.figures.inputs.selected.on_change("indices", lambda _attr, _old, new: setattr(self, "selected", list(new)))

    def _follow_pointer(self, figure, nearest) -> None:
        """Hovering over ``figure`` highlights ``nearest(snapshot, x, y)``; leaving it clears the highlight."""

        def follow(event) -> None:
            if self.stream.snapshot is not None and event.x is not None and event.y is not None:
                self.hovered = nearest(self.stream.snapshot, event.x, event.y)

        figure.on_event(MouseMove, follow)
        figure.on_event(MouseLeave, lambda _event: setattr(self, "hovered", None))

    @staticmethod
    def _nearest_at(times: str, states: str):
        return lambda snapshot, t, h: nearest_trajectory(getattr(snapshot, times), getattr(snapshot, states), t, h)

    @param.depends("selected", "hovered", watch=True)
    def _redraw_highlight(self) -> None:
        if self.stream.snapshot is not None:
            self.figures.highlight(self.stream.snapshot, self._highlighted())

    def _highlighted(self) -> list[int]:
        return list(self.selected) + ([self.hovered] if self.hovered is not None else [])

    def on_snapshot(self, snapshot) -> None:
        self.figures.show(snapshot, self._highlighted())
        self._update_readout(snapshot)

    # ---- readouts -------------------------------------------------------------------------
    def describe_loss(self, last: dict) -> str:
        return f"loss ODE-Net {last['loss_ode']:.2e} · ResNet {last['loss_resnet']:.2e}"

    def _update_readout(self, data) -> None:
        error = f"<b>{data.reference_error:.1e}</b>"
        self.readout.object = (
            f"<div style='font-size:13px;line-height:1.5'>"
            f"<b>{data.solver.method}</b> at rtol {data.solver.rtol:.0e}, atol {data.solver.atol:.0e}:<br>"
            f"<span class='odeviz-nfe'>NFE <b>{data.nfe_forward}</b></span> · {1e3 * data.solve_seconds:.1f} ms · "
            f"error vs reference {error}<br>"
            f"Euler with L = {data.depth} steps: max |Δh(1)| <b>{data.euler_deviation:.1e}</b></div>"
        )
