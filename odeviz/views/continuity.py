"""The continuity page: a ResNet becomes an ODE-Net as depth grows and the step shrinks (Figure 1)."""
from __future__ import annotations

import panel as pn
import param
from bokeh.events import MouseLeave, MouseMove

from ..experiments import ContinuityExperiment
from .continuity_plots import TRAJECTORY_FIELDS, ContinuityFigures, nearest_input, nearest_trajectory
from .controls import TrainingControls, log_slider
from .layout import page_header, sidebar
from .streaming import SessionStream

INTRO = """
**A ResNet** applies L discrete updates h ← h + f(h, θₖ)/L. **An ODE-Net** follows one vector field,
dh/dt = f(h, t, θ), and an adaptive solver picks where to evaluate f (the circles). **Euler's method**
with L steps on the ODE-Net's f *is* a ResNet with shared weights: as L grows it converges to the ODE.
Try the *reflection* target: ODE trajectories cannot cross, so the ODE-Net fails until you *augment* it,
and so does the ResNet once L is large (at L = 1 or 2 its steps can jump over each other).
Hover a trajectory or an input, or select inputs in the learned map, to follow them in every plot.
"""


class ContinuityPage(pn.viewable.Viewer):
    """Figure 1 come alive: ResNet and ODE-Net trained side by side, streamed while they learn."""

    title = "ResNet → ODE-Net: depth becomes time"

    experiment = param.ClassSelector(class_=ContinuityExperiment, doc="the model layer this page shows")
    selected = param.List(default=[], doc="inputs picked in the learned-map plot (tap or box select)")
    hovered = param.Integer(default=None, allow_None=True, doc="input whose trajectory is under the pointer")

    def __init__(self, **params) -> None:
        if params.get("experiment") is None:
            params["experiment"] = ContinuityExperiment()
        super().__init__(**params)
        self.stream = SessionStream(self.experiment)
        self.figures = ContinuityFigures()
        self.controls = TrainingControls(experiment=self.experiment, describe=self._describe)
        self.readout = pn.pane.HTML("", css_classes=["odeviz-readout"], sizing_mode="stretch_width")
        self.stream.on_snapshot(self._show)
        self.stream.on_rows(self.figures.append_history)
        self.stream.on_clear(self.figures.clear_history)
        self.stream.on_poll(self.controls.update)
        self._connect_highlighting()
        self._show(self.stream.snapshot)
        self.controls.update()
        # A flex box wraps the plots to the width at hand: three per row on a wide screen, two in a notebook.
        plots = pn.FlexBox(*(pn.pane.Bokeh(figure, margin=(0, 4)) for figure in self.figures.figures.values()))
        header = page_header(self.title, INTRO, self.controls)
        self._layout = pn.Row(self._sidebar(), pn.Column(header, plots), sizing_mode="stretch_width")

    # ---- layout ---------------------------------------------------------------------------
    def _sidebar(self) -> pn.Column:
        experiment = self.experiment.param
        widget = pn.widgets
        return sidebar(
            pn.pane.Markdown("### Training"),
            self.controls,
            widget.Select.from_param(experiment.target, label="Target map g(x)"),
            widget.Checkbox.from_param(experiment.augment, label="Augment the state with one zero dimension"),
            widget.IntSlider.from_param(experiment.depth, label="ResNet depth L (= Euler steps)", throttled=True),
            log_slider(self.experiment, "learning_rate", -4, -1),
            pn.pane.Markdown("### ODE solver"),
            widget.Select.from_param(experiment.method, label="Method"),
            widget.IntSlider.from_param(experiment.fixed_steps, label="Steps of fixed-grid methods", throttled=True,
                                        end=128),
            log_slider(self.experiment, "rtol", -8, -1),
            log_slider(self.experiment, "atol", -8, -1),
            widget.Checkbox.from_param(experiment.adjoint, label="Backprop by the adjoint method"),
            self.readout,
        )

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

    def _show(self, snapshot) -> None:
        if snapshot is not None:
            self.figures.show(snapshot, self._highlighted())
            self._update_readout(snapshot)

    # ---- readouts -------------------------------------------------------------------------
    def _describe(self) -> str:
        history = self.experiment.trainer.history
        last = history.last()
        if last is None:
            return "untrained: press <b>Train</b> or <b>Step</b>"
        return (
            f"loss ODE-Net {last['loss_ode']:.2e} · ResNet {last['loss_resnet']:.2e} · "
            f"<b>NFE-F {last['nfe_forward']:.0f}</b> · NFE-B {last['nfe_backward']:.0f} · "
            f"evaluations of f so far <b class='odeviz-total-nfe'>{history.total_nfe:,}</b>"
        )

    def _update_readout(self, data) -> None:
        error = f"<b>{data.reference_error:.1e}</b>"
        self.readout.object = (
            f"<div style='font-size:13px;line-height:1.5'>"
            f"<b>{data.solver.method}</b> at rtol {data.solver.rtol:.0e}, atol {data.solver.atol:.0e}:<br>"
            f"<span class='odeviz-nfe'>NFE <b>{data.nfe_forward}</b></span> · {1e3 * data.solve_seconds:.1f} ms · "
            f"error vs reference {error}<br>"
            f"Euler with L = {data.depth} steps: max |Δh(1)| <b>{data.euler_deviation:.1e}</b></div>"
        )

    def __panel__(self):
        self.stream.start()
        return self._layout
