"""The Figure 3 page: what an adaptive solver costs, measured on a classifier training live."""
from __future__ import annotations

import numpy as np
import panel as pn

from ..experiments import Figure3Experiment
from .catalog import title_and_summary
from .classifier import ClassifierPageBase
from .controls import knob_widget, reporting_errors
from .figure3_plots import PAPER_RATIO, Figure3Figures
from .text import escape_html

INTRO = """
The paper's **Figure 3**, measured live on this page's own 2-D ODE-Net classifier (two moons by default).
**(a)** and **(b)**: a tolerance sweep 1e-1 … 1e-8 (rtol = atol) of the current weights — tighter tolerances
cost more evaluations of f (NFE) and more time, and buy a smaller error; each time is the median of 5 solves,
with the cost per evaluation fitted. The red diamond is your rtol/atol (off the sweep when they differ).
**(c)**: evaluations of the adjoint's backward solve against the forward ones, one point per iteration, and
beside it their ratio against the **gradient error** of the adjoint (relative to backprop at 1e-10) as the
backward tolerance loosens. The paper's ½ does not come at matched tolerances: torchdiffeq's backward dopri5
accepts about as many steps as the forward but also *rejects* some (the forward rejects none), because its
error is measured on the re-solved state h(t), never on the adjoint or the parameter part — so the seminorm
changes nothing here. A ratio near ½ comes only with a 100× looser backward tolerance, and costs gradient
accuracy (torchdiffeq's author: the paper's numbers came from a different solver, LSODA).
**(d)**: NFE grows as the network trains. **Memory**: backprop through the solver keeps every step's
activations (O(L̃)); the adjoint keeps none (O(1)). Sweeps run when training pauses and every few iterations.
"""


class Figure3Page(ClassifierPageBase):
    """Figure 3 of the paper, reproduced from live measurements of a classifier this page trains."""

    experiment_class, figures_class = Figure3Experiment, Figure3Figures
    title, summary = title_and_summary("figure3")
    intro = INTRO

    def setup(self) -> None:
        self.progress = pn.indicators.Progress(value=100, max=100, sizing_mode="stretch_width", bar_color="primary",
                                               margin=(0, 10))
        self.activity = pn.pane.HTML("", css_classes=["odeviz-activity"], margin=(0, 10))
        self._measured_version, self._measured = 0, None
        self._poll_measurements()

    def settings(self) -> list:
        measure = pn.widgets.Button(label="Sweep now", color="primary", variant="outline", width=110)
        measure.on_click(reporting_errors(lambda _event: self.experiment.measure()))
        cancel = pn.widgets.Button(label="Cancel", variant="outline", width=80)
        cancel.on_click(lambda _event: self.experiment.cancel_measurements())
        every = knob_widget(pn.widgets.IntSlider, self.experiment, "sweep_every", label="Sweep every … iterations while training",
                                                start=0, end=500, step=25, throttled=True)
        return [*super().settings(), pn.pane.Markdown("### Measurements"), pn.Row(measure, cancel), every,
                self.activity, self.progress]

    def on_rows(self, rows) -> None:
        super().on_rows(rows)
        self._update_readout()  # the NFE ratio moved

    def on_poll(self) -> None:
        super().on_poll()
        self._poll_measurements()

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
                lines.append(f"at rtol {current.solver.rtol:.0e}, atol {current.solver.atol:.0e}: {escape_html(current.failure)}")
            else:
                lines.append(
                    f"<b>{current.solver.method}</b> at rtol {current.solver.rtol:.0e}, atol {current.solver.atol:.0e}: "
                    f"<span class='odeviz-nfe'>NFE <b>{current.nfe_forward:.0f}</b></span> · error "
                    f"<b>{current.error:.1e}</b> · {1e3 * current.wall_time:.1f} ms"
                )
        adjoint = measured.adjoint
        if adjoint is not None:
            forward, backward = adjoint.steps_forward, adjoint.steps_backward
            lines.append(
                f"adjoint at backward rtol {adjoint.solver.adjoint_rtol or adjoint.solver.rtol:.0e}, atol "
                f"{adjoint.solver.adjoint_atol or adjoint.solver.atol:.0e} (iteration {measured.adjoint_iteration}): "
                f"steps accepted/rejected forward <b>{forward.accepted}/{forward.rejected}</b>, backward "
                f"<b>{backward.accepted}/{backward.rejected}</b> · NFE {adjoint.nfe_forward} → {adjoint.nfe_backward} · "
                f"gradient error <b class='odeviz-gradient-error'>{adjoint.gradient_error:.1e}</b>"
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
