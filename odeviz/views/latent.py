"""The latent ODE page: irregularly sampled spirals, extrapolated by a latent ODE and by an RNN."""
from __future__ import annotations

import html

import panel as pn
import param
from bokeh.events import Tap

from ..experiments import LatentODEExperiment
from ..experiments.latent_table2 import Table2Run
from .controls import TrainingControls, log_slider, reporting_errors
from .latent_plots import LatentFigures, table2_html, tapped
from .layout import page_header, sidebar
from .streaming import SessionStream

INTRO = """
A **latent ODE** reads a series' observations — at *any* times, no grid — backwards with a GRU and
infers q(z₀); z(t) then follows dz/dt = f(z) and is decoded to the plane. It continues the spiral past
the observed window (purple) where an **RNN** fed the time gaps drifts (orange). **Tap the plot** to add
an observation there, tap one to remove it: the posterior and the extrapolation follow at once, without
retraining. *Measure Table 2* trains fresh models at 30, 50 and 100 observations, as in the paper.
"""
ROWS_PERIOD = 0.5
TABLE2_ITERATIONS = 1000


def describe_training(experiment: LatentODEExperiment) -> str:
    last = experiment.trainer.history.last()
    if last is None:
        return "untrained: press <b>Train</b> or <b>Step</b>"
    return (f"ELBO {last['elbo']:.1f} (KL {last['kl']:.2f}) · test RMSE latent ODE <b>{last['rmse_ode']:.3f}</b>, "
            f"RNN <b>{last['rmse_rnn']:.3f}</b> · <b>NFE-F {last['nfe_forward']:.0f}</b> · NFE-B {last['nfe_backward']:.0f}")


class LatentPage(pn.viewable.Viewer):
    """A latent ODE and an RNN trained live on irregular spirals; one test series to edit by tapping."""

    title = "Latent ODE: irregularly sampled time series"

    experiment = param.ClassSelector(class_=LatentODEExperiment, doc="the model layer this page shows")

    def __init__(self, **params) -> None:
        if params.get("experiment") is None:
            params["experiment"] = LatentODEExperiment()
        super().__init__(**params)
        self.stream = SessionStream(self.experiment, rows_period=ROWS_PERIOD)
        self.figures = LatentFigures()
        self.controls = TrainingControls(experiment=self.experiment, describe=lambda: describe_training(self.experiment))
        self.table2_run: Table2Run | None = None
        self.table2_button = pn.widgets.Button(label="Measure Table 2", variant="outline", width=150)
        self.table2_button.on_click(reporting_errors(lambda _event: self._toggle_table2()))
        self.table2_status = pn.pane.HTML("", css_classes=["odeviz-table2-status"], width=260)
        self.table2 = pn.pane.HTML(table2_html([]), css_classes=["odeviz-table2"], width=440,
                                   stylesheets=["td, th {padding: 2px 8px; border-bottom: 1px solid #ddd}"])
        self.stream.on_snapshot(self._show)
        self.stream.on_rows(self.figures.append_history)
        self.stream.on_clear(self.figures.clear_history)
        self.stream.on_poll(self.controls.update)
        self.stream.on_poll(self._show_table2)
        self.figures.figures["series"].on_event(Tap, reporting_errors(self._tap))
        self._show(self.stream.snapshot)
        self.controls.update()
        plots = self.figures.figures
        table = pn.Column(pn.Row(self.table2_button, self.table2_status), self.table2, margin=(0, 4))
        side = pn.Column(pn.pane.Bokeh(plots["latent"], margin=(0, 4)), table)
        others = (pn.pane.Bokeh(plots[name], margin=(0, 4)) for name in ("rmse", "loss", "nfe"))
        header = page_header(self.title, INTRO, self.controls)
        body = pn.FlexBox(pn.pane.Bokeh(plots["series"], margin=(0, 4)), side, *others)
        self._layout = pn.Row(self._sidebar(), pn.Column(header, body), sizing_mode="stretch_width")

    def _sidebar(self) -> pn.Column:
        params, widget = self.experiment.param, pn.widgets
        last_series = params.series.bounds[1]
        reset = widget.Button(label="Restore the series' observations", variant="outline", width=240)
        reset.on_click(lambda _event: self.experiment.reset_observations())
        return sidebar(
            pn.pane.Markdown("### Training"), self.controls,
            widget.IntSlider.from_param(params.series, label="Test series", end=last_series, throttled=True),
            reset,
            widget.IntSlider.from_param(params.observations, label="Observations per spiral", step=10, throttled=True),
            widget.FloatSlider.from_param(params.horizon, label="Extrapolation horizon (window lengths)", step=0.05,
                                          throttled=True),
            widget.IntSlider.from_param(params.posterior_samples, label="Posterior samples shown", throttled=True),
            widget.IntSlider.from_param(params.latent_dim, label="Latent dimensions", end=8, throttled=True),
            widget.IntSlider.from_param(params.batch_size, label="Batch size", start=10, end=500, step=10, throttled=True),
            log_slider(self.experiment, "learning_rate", -4, -1),
            pn.pane.Markdown("### ODE solver"),
            widget.Select.from_param(params.method, label="Method"),
            log_slider(self.experiment, "rtol", -8, -1),
            log_slider(self.experiment, "atol", -8, -1),
            widget.Checkbox.from_param(params.adjoint, label="Backprop by the adjoint method"),
        )

    # ---- actions --------------------------------------------------------------------------
    def _tap(self, event) -> None:
        snapshot = self.stream.snapshot
        if snapshot is None:
            return
        action, where, value = tapped(snapshot, event.x, event.y)
        if action == "remove":
            self.experiment.remove_observation(where)
        else:
            self.experiment.add_observation(where, value)

    def _toggle_table2(self) -> None:
        if self.table2_run is not None and self.table2_run.running:
            self.table2_run.cancel()
            return
        e = self.experiment
        self.table2_run = Table2Run(iterations=TABLE2_ITERATIONS, latent_dim=e.latent_dim, hidden=e.hidden,
                                    encoder_hidden=e.encoder_hidden, batch_size=e.batch_size, seed=e.seed)
        self._show_table2()

    def _show_table2(self) -> None:
        run = self.table2_run
        if run is None:
            return
        table = table2_html(run.rows)
        if self.table2.object != table:
            self.table2.object = table
        running = run.running
        self.table2_button.label = "Stop Table 2" if running else "Measure Table 2"
        status = (f"training column {len(run.rows) + 1} of 3 ({TABLE2_ITERATIONS} iterations each)…" if running
                  else run.error and f"failed: {html.escape(run.error)}" or f"{len(run.rows)} of 3 columns measured")
        if self.table2_status.object != status:
            self.table2_status.object = status

    # ---- drawing --------------------------------------------------------------------------
    def _show(self, snapshot) -> None:
        if snapshot is None:
            return
        with pn.io.hold():
            self.figures.show(snapshot)

    def __panel__(self):
        self.stream.start()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.on_session_destroyed(lambda _context: self.table2_run and self.table2_run.cancel())
        return self._layout
