"""The continuity page: a ResNet becomes an ODE-Net as depth grows and the step shrinks (Figure 1)."""
from __future__ import annotations

import holoviews as hv
import panel as pn
import param

from ..experiments import ContinuityExperiment
from . import continuity_plots as plots
from .controls import TrainingControls, log_slider, reporting_errors
from .streaming import SessionStream

INTRO = """
**A ResNet** applies L discrete updates h ← h + f(h, θₖ)/L. **An ODE-Net** follows one vector field,
dh/dt = f(h, t, θ), and an adaptive solver picks where to evaluate f (the circles). **Euler's method**
with L steps on the ODE-Net's f *is* a ResNet with shared weights: as L grows it converges to the ODE.
Try the *reflection* target: 1-D trajectories cannot cross, so the ODE-Net fails until you *augment* it.
Hover or select inputs to follow their trajectories in every plot.
"""


class ContinuityPage(pn.viewable.Viewer):
    """Figure 1 come alive: ResNet and ODE-Net trained side by side, streamed while they learn."""

    experiment = param.ClassSelector(class_=ContinuityExperiment, doc="the model layer this page shows")
    selected = param.List(default=[], doc="inputs picked in the learned-map plot (tap or box select)")
    hovered = param.Integer(default=None, allow_None=True, doc="input whose trajectory is under the pointer")

    def __init__(self, **params) -> None:
        if params.get("experiment") is None:
            params["experiment"] = ContinuityExperiment()
        super().__init__(**params)
        self.stream = SessionStream(self.experiment)
        self.controls = TrainingControls(experiment=self.experiment, describe=self._describe)
        self.readout = pn.pane.HTML("", css_classes=["odeviz-readout"], sizing_mode="stretch_width")
        self.stream.on_poll(self.controls.update)
        self.stream.pipe.add_subscriber(self._update_readout)
        self._update_readout(self.stream.pipe.data)
        self.controls.update()
        self._layout = pn.Row(self._sidebar(), pn.Column(self._header(), self._plots()), sizing_mode="stretch_width")

    # ---- layout ---------------------------------------------------------------------------
    def _header(self) -> pn.Column:
        return pn.Column(
            pn.pane.Markdown("## ResNet → ODE-Net: depth becomes time", margin=(0, 10)),
            pn.pane.Markdown(INTRO, margin=(0, 10), styles={"max-width": "1100px", "color": "#444"}),
            self.controls.status,
        )

    def _sidebar(self) -> pn.Column:
        experiment = self.experiment.param
        widget = pn.widgets
        return pn.Column(
            pn.pane.Markdown("### Training"),
            self.controls,
            widget.Select.from_param(experiment.target, name="Target map g(x)"),
            widget.Checkbox.from_param(experiment.augment, name="Augment the state with one zero dimension"),
            widget.IntSlider.from_param(experiment.depth, name="ResNet depth L (= Euler steps)", throttled=True),
            log_slider(self.experiment, "learning_rate", -4, -1),
            pn.pane.Markdown("### ODE solver"),
            widget.Select.from_param(experiment.method, name="Method"),
            log_slider(self.experiment, "rtol", -8, -1),
            log_slider(self.experiment, "atol", -8, -1),
            widget.Checkbox.from_param(experiment.adjoint, name="Backprop by the adjoint method"),
            self.readout,
            width=300,
            styles={"background": "#f6f7f9", "border-radius": "6px"},
            margin=(5, 10),
        )

    def _plots(self) -> pn.pane.HoloViews:
        pipe = self.stream.pipe
        chosen = hv.streams.Params(self, ["selected", "hovered"])

        def trajectory_plot(draw, times: str, states: str) -> hv.DynamicMap:
            def frame(data, selected, hovered):
                return draw(data, list(selected) + ([hovered] if hovered is not None else []))

            plot = hv.DynamicMap(frame, streams=[pipe, chosen]).opts(framewise=True)
            hv.streams.PointerXY(source=plot).add_subscriber(self._hover(times, states))
            return plot

        resnet = trajectory_plot(plots.resnet_plot, "resnet_depth", "resnet_states")
        ode = trajectory_plot(plots.ode_plot, "ode_times", "ode_states")
        euler = trajectory_plot(plots.euler_plot, "euler_times", "euler_states")
        inputs = hv.DynamicMap(lambda data: plots.selectable_inputs(data), streams=[pipe])
        hv.streams.Selection1D(source=inputs).add_subscriber(reporting_errors(lambda index: self._select(index)))
        learned = (hv.DynamicMap(lambda data: plots.learned_map_plot(data), streams=[pipe]) * inputs).opts(
            title="What each model learned: h(1) against x", framewise=True
        )
        history = self.stream.history
        loss = hv.DynamicMap(lambda data: plots.loss_plot(data), streams=[history])
        nfe = hv.DynamicMap(lambda data: plots.nfe_plot(data), streams=[history])
        layout = hv.Layout([resnet, ode, euler, learned, loss, nfe]).cols(3).opts(shared_axes=True)
        return pn.pane.HoloViews(layout, linked_axes=True)

    # ---- interaction ----------------------------------------------------------------------
    def _hover(self, times: str, states: str):
        def follow(x=None, y=None):
            snapshot = self.stream.pipe.data
            if x is None or y is None or snapshot is None:
                return
            index = plots.nearest_trajectory(getattr(snapshot, times), getattr(snapshot, states), x, y)
            if index != self.hovered:
                self.hovered = index

        return follow

    def _select(self, index: list[int]) -> None:
        self.selected = list(index)

    # ---- readouts -------------------------------------------------------------------------
    def _describe(self) -> str:
        last = self.experiment.trainer.history.last()
        if last is None:
            return "untrained: press <b>Train</b> or <b>Step</b>"
        return (
            f"loss ODE-Net {last['loss_ode']:.2e} · ResNet {last['loss_resnet']:.2e} · "
            f"<b>NFE-F {last['nfe_forward']:.0f}</b> · NFE-B {last['nfe_backward']:.0f} · "
            f"{1e3 * last['seconds']:.0f} ms/iteration"
        )

    def _update_readout(self, data) -> None:
        if data is None:
            return
        self.readout.object = (
            f"<div style='font-size:13px;line-height:1.5'>"
            f"<b>{data.method}</b> at rtol {data.rtol:.0e}, atol {data.atol:.0e}:<br>"
            f"<span class='odeviz-nfe'>NFE <b>{data.nfe_forward}</b></span> · "
            f"error vs reference <b>{data.reference_error:.1e}</b> · {1e3 * data.solve_seconds:.1f} ms<br>"
            f"Euler with L = {data.depth} steps: max |Δh(1)| <b>{data.euler_deviation:.1e}</b></div>"
        )

    def __panel__(self):
        self.stream.start()
        return self._layout
