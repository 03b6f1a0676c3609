"""The Figure 3 page: what an adaptive solver costs, measured on a classifier training live."""
from __future__ import annotations

import numpy as np
import panel as pn
import param

from ..experiments import Figure3Experiment
from .classifier import classifier_settings, describe_training
from .controls import TrainingControls, reporting_errors
from .figure3_plots import PAPER_RATIO, Figure3Figures
from .layout import page_header, sidebar
from .streaming import SessionStream

INTRO = """
The paper's **Figure 3**, measured live on this page's own 2-D ODE-Net classifier (two moons by default).
**(a)** and **(b)**: a tolerance sweep 1e-1 … 1e-8 of the current weights — tighter tolerances cost more
evaluations of f (NFE) and more time, and buy a smaller error; the red diamond is your rtol/atol.
**(c)**: evaluations of the adjoint's backward solve against the forward ones, one point per iteration.
**(d)**: NFE grows as the network trains and its dynamics get more complex. **Memory**: backprop
through the solver keeps every step's activations (O(L̃)); the adjoint keeps none (O(1)).
Sweeps run when training pauses and every few iterations while it trains.
"""


class Figure3Page(pn.viewable.Viewer):
    """Figure 3 of the paper, reproduced from live measurements of a classifier this page trains."""

    title = "Figure 3: what the ODE solver costs"

    experiment = param.ClassSelector(class_=Figure3Experiment, doc="the model layer this page shows")

    def __init__(self, **params) -> None:
        if params.get("experiment") is None:
            params["experiment"] = Figure3Experiment()
        super().__init__(**params)
        self.stream = SessionStream(self.experiment)
        self.figures = Figure3Figures()
        self.controls = TrainingControls(experiment=self.experiment, describe=lambda: describe_training(self.experiment))
        self.readout = pn.pane.HTML("", css_classes=["odeviz-readout"], sizing_mode="stretch_width")
        self.progress = pn.indicators.Progress(value=100, max=100, sizing_mode="stretch_width", bar_color="primary",
                                               margin=(0, 10))
        self.activity = pn.pane.HTML("", css_classes=["odeviz-activity"], margin=(0, 10))
        self._measured_version, self._measured = 0, None
        self.stream.on_rows(self.figures.append_history)
        self.stream.on_rows(lambda _rows: self._update_readout())  # the NFE ratio moved
        self.stream.on_clear(self.figures.clear_history)
        self.stream.on_poll(self.controls.update)
        self.stream.on_poll(self._poll_measurements)
        self._poll_measurements()
        self.controls.update()
        plots = pn.FlexBox(*(pn.pane.Bokeh(figure, margin=(0, 4)) for figure in self.figures.figures.values()))
        header = page_header(self.title, INTRO, self.controls)
        self._layout = pn.Row(self._sidebar(), pn.Column(header, plots), sizing_mode="stretch_width")

    def _sidebar(self) -> pn.Column:
        model, solver = classifier_settings(self.experiment)
        measure = pn.widgets.Button(label="Sweep now", color="primary", variant="outline", width=110)
        measure.on_click(reporting_errors(lambda _event: self.experiment.measure()))
        cancel = pn.widgets.Button(label="Cancel", variant="outline", width=80)
        cancel.on_click(lambda _event: self.experiment.cancel_measurements())
        every = pn.widgets.IntSlider.from_param(self.experiment.param.sweep_every, label="Sweep every … iterations while training",
                                                start=0, end=500, step=25, throttled=True)
        return sidebar(
            pn.pane.Markdown("### Training"), self.controls, *model,
            pn.pane.Markdown("### ODE solver"), *solver, self.readout,
            pn.pane.Markdown("### Measurements"), pn.Row(measure, cancel), every, self.activity, self.progress,
        )

    def _poll_measurements(self) -> None:
        news = self.experiment.measurements.newer_than(self._measured_version)
        if news is not None:
            self._measured_version, self._measured = news
            measured = self._measured
            self.figures.show(measured)
            self.progress.value = int(100 * measured.progress)
            self.activity.object = f"<i>measuring: {measured.activity}</i>" if measured.activity else (
                f"swept the weights of iteration {measured.iteration}" if measured.sweep is not None else "")
            self._update_readout()

    def _update_readout(self) -> None:
        measured = self._measured
        if measured is None:
            return
        lines = []
        current = measured.current
        if current is not None:
            if current.failure:
                lines.append(f"at rtol {current.solver.rtol:.0e}, atol {current.solver.atol:.0e}: {current.failure}")
            else:
                lines.append(
                    f"<b>{current.solver.method}</b> at rtol {current.solver.rtol:.0e}, atol {current.solver.atol:.0e}: "
                    f"<span class='odeviz-nfe'>NFE <b>{current.nfe_forward:.0f}</b></span> · error "
                    f"<b>{current.error:.1e}</b> · {1e3 * current.wall_time:.1f} ms"
                )
        ratio = self.figures.ratio
        if np.isfinite(ratio):
            lines.append(f"NFE-backward / NFE-forward: <b class='odeviz-ratio'>{ratio:.2f}</b> (paper ≈ {PAPER_RATIO})")
        memory = measured.memory
        if memory is not None and len(memory.steps):
            lines.append(
                f"memory at {memory.steps[-1]} RK4 steps: {memory.direct_bytes[-1] / 2**20:.1f} MiB through the solver, "
                f"{memory.adjoint_bytes[-1] / 1024:.1f} KiB with the adjoint"
            )
        self.readout.object = f"<div style='font-size:13px;line-height:1.5'>{'<br>'.join(lines)}</div>"

    def __panel__(self):
        self.stream.start()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            # A sweep in progress stops within one evaluation when the tab closes.
            pn.state.on_session_destroyed(lambda _context: self.experiment.cancel_measurements())
        return self._layout
