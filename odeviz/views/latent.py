"""The latent ODE page: irregularly sampled spirals, extrapolated by a latent ODE and by an RNN."""
from __future__ import annotations

import html

import panel as pn
from bokeh.events import Tap

from ..experiments import LatentODEExperiment
from ..experiments.latent_table2 import Table2Run
from ..runtime import in_served_session
from .catalog import title_and_summary
from .controls import knob_widget, log_slider, reporting_errors
from .help import explained
from .latent_plots import LatentFigures, table2_html, tapped
from .layout import fill_cell, plot_grid
from .page import ExperimentPage, plot, solver_widgets

INTRO = """
A **latent ODE** reads a series' observations — at *any* times, no grid — backwards with a GRU and
infers q(z₀); z(t) then follows dz/dt = f(z) and is decoded to the plane. It continues the spiral past
the observed window (purple) where an **RNN** fed the time gaps drifts (orange). **Tap the plot** to add
an observation there, tap one to remove it: the posterior and the extrapolation follow at once, without
retraining. *Measure Table 2* trains fresh models at 30, 50 and 100 observations, as in the paper.
"""
ROWS_PERIOD = 0.5
TABLE2_ITERATIONS = 1000
TABLE2_STYLE = "table {font-size: 12px} td, th {padding: 2px 6px; border-bottom: 1px solid #ddd}"


class LatentPage(ExperimentPage):
    """A latent ODE and an RNN trained live on irregular spirals; one test series to edit by tapping."""

    experiment_class = LatentODEExperiment
    figures_class = LatentFigures
    title, summary = title_and_summary("latent")
    intro = INTRO
    rows_period = ROWS_PERIOD

    def setup(self) -> None:
        self.table2_run: Table2Run | None = None
        self.table2_button = pn.widgets.Button(label="Measure Table 2", variant="outline", width=150)
        self.table2_button.on_click(reporting_errors(lambda _event: self._toggle_table2(), self.experiment))
        self.table2_status = pn.pane.HTML("", css_classes=["odeviz-table2-status"], width=260)
        self.table2 = pn.pane.HTML(table2_html([]), css_classes=["odeviz-table2"], sizing_mode="stretch_width",
                                   stylesheets=[TABLE2_STYLE])
        self.series_slider = pn.widgets.IntSlider.from_param(self.experiment.param.series, label="Test series",
                                                             end=1, throttled=True)
        self.figures.figures["series"].on_event(Tap, reporting_errors(self._tap, self.experiment))

    def settings(self) -> list:
        experiment, widget = self.experiment, pn.widgets
        restore = widget.Button(label="Restore the series' observations", variant="outline", width=240)
        restore.on_click(lambda _event: experiment.reset_observations())
        return [
            explained(self.series_slider, experiment, "series"), restore,
            knob_widget(widget.IntSlider, experiment, "observations", label="Observations per spiral", step=10, throttled=True),
            knob_widget(widget.FloatSlider, experiment, "horizon", label="Extrapolation horizon (window lengths)", step=0.05,
                                          throttled=True),
            knob_widget(widget.IntSlider, experiment, "posterior_samples", label="Posterior samples shown", throttled=True),
            knob_widget(widget.IntSlider, experiment, "latent_dim", label="Latent dimensions", end=8, throttled=True),
            knob_widget(widget.IntSlider, experiment, "batch_size", label="Batch size", start=10, end=800, step=10, throttled=True),
            log_slider(experiment, "learning_rate", -4, -1),
            knob_widget(widget.IntSlider, experiment, "kl_warmup", label="KL warm-up (iterations)", end=1000, step=50,
                                        throttled=True),
            pn.pane.Markdown("### ODE solver"), *solver_widgets(experiment),
        ]

    def plots(self) -> list:
        figures = self.figures.figures
        table = fill_cell(pn.Row(self.table2_button, self.table2_status), self.table2)
        # The series, the page's subject, two rows tall (its plane at one scale on both axes wants a
        # squarer cell than a row gives); beside it z(t), the Table 2 grid and the curves it sums up.
        return [plot_grid(plot(figures["series"]), plot(figures["latent"]), table,
                          *(plot(figures[name]) for name in ("rmse", "loss", "nfe")), tall={0: 2})]

    def describe_loss(self, last: dict) -> str:
        return (f"ELBO {last['elbo']:.1f} (KL {last['kl']:.2f}) · test RMSE latent ODE <b>{last['rmse_ode']:.3f}</b>, "
                f"RNN <b>{last['rmse_rnn']:.3f}</b>")

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
    def on_snapshot(self, snapshot) -> None:
        last_series = max(1, snapshot.series_count - 1)  # the slider needs a range; the data say how long
        if self.series_slider.end != last_series:
            self.series_slider.end = last_series
        self.figures.show(snapshot)

    def on_poll(self) -> None:
        super().on_poll()
        self._show_table2()

    def __panel__(self):
        if in_served_session():
            pn.state.on_session_destroyed(lambda _context: self.table2_run and self.table2_run.cancel())
        return super().__panel__()
