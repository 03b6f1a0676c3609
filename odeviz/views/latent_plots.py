"""The latent ODE page's plots: pure functions from a snapshot to columns, and the figures they fill.

The series is drawn in observation space (x₁, x₂) as the paper's Figure 8 does; a series of one
dimension is drawn as x₁ against t instead. Many posterior samples are one line with NaN breaks.
"""
from __future__ import annotations

import numpy as np
from bokeh.models import DataRange1d, Span

from ..experiments.latent import LatentSnapshot
from ..experiments.latent_table2 import PAPER_TABLE2
from . import figures
from .figures import BACKWARD_COLOR, ODE_COLOR, RESNET_COLOR, TARGET_COLOR, nfe_figure

RNN_COLOR = RESNET_COLOR
HISTORY_COLUMNS = ("iteration", "loss", "elbo", "kl", "rmse_ode", "rmse_rnn", "nfe_forward", "nfe_backward")
REMOVE_RADIUS = 0.04  # of the curve's extent: a tap this close to an observation removes it


# ---- pure: snapshot -> columns ---------------------------------------------------------------
def plane(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where points of a series are drawn: (x₁, x₂), or (t, x₁) for a one-dimensional series."""
    return (x[..., 0], x[..., 1]) if x.shape[-1] >= 2 else (np.broadcast_to(t, x.shape[:-1]), x[..., 0])


def _points(t: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    horizontal, vertical = plane(t, x)
    return {"x": np.asarray(horizontal, dtype=float), "y": np.asarray(vertical, dtype=float), "t": np.asarray(t, float)}


def series_columns(snapshot: LatentSnapshot) -> dict[str, dict[str, np.ndarray]]:
    """The true curve, the observations, the latent ODE's reconstruction (t ≤ end of the observed
    window) and extrapolation (after it), the posterior fan, and the RNN's prediction."""
    seen = snapshot.times <= snapshot.observed_until
    later = ~seen
    later[np.argmax(later) - 1 if later.any() else 0] = True  # the extrapolation starts where the reconstruction ends
    truth = snapshot.curve_t <= snapshot.horizon_end
    samples = snapshot.sample_x
    fan = np.concatenate([samples, np.full((len(samples), 1, samples.shape[2]), np.nan)], 1) if len(samples) else samples
    fan_t = np.concatenate([np.tile(snapshot.times, (len(samples), 1)), np.full((len(samples), 1), np.nan)], 1)
    rnn_t = np.concatenate([snapshot.obs_t[-1:], snapshot.rnn_t])  # from the last observation on
    rnn_x = np.concatenate([snapshot.obs_x[-1:], snapshot.rnn_x])
    observations = _points(snapshot.obs_t, snapshot.obs_x)
    observations["index"] = np.arange(len(snapshot.obs_t), dtype=float)
    return {
        "truth": _points(snapshot.curve_t[truth], snapshot.curve_x[truth]),
        "observations": observations,
        "reconstruction": _points(snapshot.times[seen], snapshot.ode_x[seen]),
        "extrapolation": _points(snapshot.times[later], snapshot.ode_x[later]),
        "samples": _points(fan_t.reshape(-1), fan.reshape(-1, samples.shape[2])),
        "rnn": _points(rnn_t, rnn_x),
    }


def latent_columns(snapshot: LatentSnapshot) -> dict[str, dict[str, np.ndarray]]:
    return {
        "latent": {"t": snapshot.times, "z1": snapshot.latent_z[:, 0], "z2": snapshot.latent_z[:, 1]},
        "evaluations": {"t": snapshot.eval_times, "z1": snapshot.eval_z[:, 0], "z2": snapshot.eval_z[:, 1]},
    }


def tapped(snapshot: LatentSnapshot, x: float, y: float) -> tuple[str, int | float, np.ndarray | None]:
    """What a tap at (x, y) on the series plot means: ("remove", index, None) on an observation, else
    ("add", t, value): an observation of value (x, y) at the time of the nearest point of the true
    curve (x, y read as t, x₁ for a one-dimensional series)."""
    truth = snapshot.curve_t <= snapshot.horizon_end
    curve_t, curve_x = snapshot.curve_t[truth], snapshot.curve_x[truth]
    horizontal, vertical = plane(curve_t, curve_x)
    extent = max(np.ptp(horizontal), np.ptp(vertical), 1e-9)
    obs_h, obs_v = plane(snapshot.obs_t, snapshot.obs_x)
    if len(obs_h):
        distance = np.hypot(obs_h - x, obs_v - y)
        if distance.min() <= REMOVE_RADIUS * extent:
            return "remove", int(distance.argmin()), None
    if snapshot.curve_x.shape[1] == 1:
        return "add", float(x), np.array([y])
    nearest = int(np.hypot(horizontal - x, vertical - y).argmin())
    value = curve_x[nearest].astype(float).copy()
    value[:2] = x, y
    return "add", float(curve_t[nearest]), value


def table2_columns(rows: list[dict]) -> dict[str, list]:
    """The Table 2 grid: measured RMSEs beside the paper's, "…" where a column has not finished."""
    measured = {row["observations"]: row for row in rows}
    grid = {"observations": [], "rnn": [], "latent_ode": [], "paper_rnn": [], "paper_latent_ode": []}
    for n, paper in PAPER_TABLE2.items():
        row = measured.get(n)
        grid["observations"].append(str(n))
        grid["rnn"].append(f"{row['rnn']:.4f}" if row else "…")
        grid["latent_ode"].append(f"{row['latent_ode']:.4f}" if row else "…")
        grid["paper_rnn"].append(f"{paper['rnn']:.4f}")
        grid["paper_latent_ode"].append(f"{paper['latent_ode']:.4f}")
    return grid


TABLE2_HEADINGS = ("observations", "RNN", "latent ODE", "RNN (paper)", "latent ODE (paper)")


def table2_html(rows: list[dict]) -> str:
    """The Table 2 grid as an HTML table (numbers only: nothing from the user)."""
    grid = table2_columns(rows)
    head = "".join(f"<th>{heading}</th>" for heading in TABLE2_HEADINGS)
    body = "".join(
        "<tr>" + "".join(f"<td>{grid[key][i]}</td>" for key in grid) + "</tr>" for i in range(len(grid["observations"]))
    )
    return (f"<table class='odeviz-table2' style='border-collapse:collapse;font-size:13px;text-align:right'>"
            f"<caption style='text-align:left'>Table 2: test RMSE on the extrapolated part</caption>"
            f"<tr>{head}</tr>{body}</table>")


def titles(snapshot: LatentSnapshot) -> dict[str, str]:
    edited = ", edited" if snapshot.edited else ""
    return {
        # Short enough for a grid cell at 1280 px: a clipped title hides its numbers.
        "rmse": f"Test RMSE: latent ODE {snapshot.rmse_ode:.3f} · RNN {snapshot.rmse_rnn:.3f}",
        "series": f"Test series {snapshot.series}: {len(snapshot.obs_t)} observations{edited}",
        "latent": f"Latent z(t): f evaluated {snapshot.nfe_forward}× ({snapshot.solver.method})",
    }


# ---- the figures -----------------------------------------------------------------------------
class LatentFigures(figures.HistoryPlots):
    """The series, the latent trajectory, the Table 2 grid and the training curves."""

    history_columns = HISTORY_COLUMNS

    def __init__(self) -> None:
        self.series = {name: figures.source("x", "y", "t", name=f"series-{name}")
                       for name in ("truth", "reconstruction", "extrapolation", "samples", "rnn")}
        self.series["observations"] = figures.source("x", "y", "t", "index", name="series-observations")
        self.latent = figures.source("t", "z1", "z2", name="latent")
        self.evaluations = figures.source("t", "z1", "z2", name="latent-evaluations")
        self.history = figures.source(*HISTORY_COLUMNS, name="history")
        self.window_end = Span(dimension="height", line_color="#888888", line_dash="dotted", location=0.0)
        self.figures = {"series": self._series(), "latent": self._latent(), "loss": self._loss(), "rmse": self._rmse(),
                        "nfe": nfe_figure(self.history)}
        for name in ("rmse", "nfe"):
            self.figures[name].x_range = self.figures["loss"].x_range

    def _series(self):
        # The plane at one scale on both axes, whatever the cell's shape (a spiral stays a spiral), fitted
        # to the true curve and the observations: not to predictions, which may fly off while training.
        fig = figures.figure("Test series", "x₁", "x₂", x_range=DataRange1d(), y_range=DataRange1d(),
                             match_aspect=True, name="series-plot")
        truth = fig.line("x", "y", source=self.series["truth"], color="#bbbbbb", line_width=6, alpha=0.6,
                         legend_label="true curve")
        fig.line("x", "y", source=self.series["samples"], color=ODE_COLOR, alpha=0.2, line_width=1,
                 legend_label="posterior samples")
        fig.line("x", "y", source=self.series["reconstruction"], color=ODE_COLOR, line_width=2.5,
                 legend_label="ODE reconstruction")
        fig.line("x", "y", source=self.series["extrapolation"], color=BACKWARD_COLOR, line_width=2.5,
                 legend_label="ODE extrapolation")
        rnn = fig.line("x", "y", source=self.series["rnn"], color=RNN_COLOR, line_width=1.5, line_dash="dashed",
                       legend_label="RNN prediction")
        fig.scatter("x", "y", source=self.series["rnn"], color=RNN_COLOR, size=4)
        observed = fig.scatter("x", "y", source=self.series["observations"], size=7, color=TARGET_COLOR, alpha=0.8,
                               legend_label="observations (tap)")
        fig.x_range.renderers = fig.y_range.renderers = [truth, observed]
        figures.hover(fig, [observed], [("observation", "@index"), ("t", "@t{0.00}"), ("x", "(@x{0.00}, @y{0.00})")])
        figures.hover(fig, [rnn], [("t", "@t{0.00}"), ("RNN", "(@x{0.00}, @y{0.00})")])
        figures.style_legend(fig, "below")  # off the data: taps land on the plot, not on the legend
        return fig

    def _latent(self):
        fig = figures.figure("Latent trajectory z(t)", "time t", "latent state z")
        for name, color in (("z1", ODE_COLOR), ("z2", BACKWARD_COLOR)):
            fig.line("t", name, source=self.latent, color=color, line_width=2, legend_label=f"z{'₁' if name == 'z1' else '₂'}")
        evaluations = fig.scatter("t", "z1", source=self.evaluations, size=6, fill_color="white", line_color=TARGET_COLOR,
                                  legend_label="solver's evaluations of f")
        fig.add_layout(self.window_end)
        figures.hover(fig, [evaluations], [("t", "@t{0.000}"), ("z₁", "@z1{0.000}")])
        figures.style_legend(fig)
        legend = fig.legend[0]
        legend.orientation = "horizontal"
        fig.add_layout(legend, "below")  # off the curves, whatever their shape
        return fig

    def _loss(self):
        fig = figures.figure("Negative ELBO and KL per series", "training iteration", "nats (batch)", y_axis_type="log")
        loss = fig.line("iteration", "loss", source=self.history, color=TARGET_COLOR, legend_label="−ELBO")
        kl = fig.line("iteration", "kl", source=self.history, color=ODE_COLOR, line_dash="dashed", legend_label="KL(q(z₀) ‖ p(z₀))")
        figures.hover(fig, [loss, kl], [("iteration", "@iteration"), ("ELBO", "@elbo{0.0}"), ("KL", "@kl{0.00}")])
        figures.style_legend(fig, "above")  # curves start high: any corner of the frame would cover them
        return fig

    def _rmse(self):
        fig = figures.figure("Test RMSE on the extrapolated part", "training iteration", "RMSE", y_axis_type="log")
        ode = fig.line("iteration", "rmse_ode", source=self.history, color=ODE_COLOR, line_width=2, legend_label="latent ODE")
        rnn = fig.line("iteration", "rmse_rnn", source=self.history, color=RNN_COLOR, line_width=2, legend_label="RNN")
        figures.hover(fig, [ode, rnn], [("iteration", "@iteration"), ("latent ODE", "@rmse_ode{0.000}"),
                                        ("RNN", "@rmse_rnn{0.000}")])
        figures.style_legend(fig, "above")
        return fig

    # ---- updates (on the session's event loop) --------------------------------------------
    def show(self, snapshot: LatentSnapshot) -> None:
        for name, columns in series_columns(snapshot).items():
            figures.refill(self.series[name], columns)
        latent = latent_columns(snapshot)
        figures.refill(self.latent, latent["latent"])
        figures.refill(self.evaluations, latent["evaluations"])
        self.window_end.location = snapshot.observed_until
        self._label_axes(snapshot)
        for name, title in titles(snapshot).items():
            if self.figures[name].title.text != title:
                self.figures[name].title.text = title

    def _label_axes(self, snapshot: LatentSnapshot) -> None:
        """A series of one coordinate is drawn against time: its axes then keep scales of their own."""
        if snapshot.curve_x.shape[1] == 1:
            fig = self.figures["series"]
            fig.match_aspect = False
            fig.xaxis.axis_label, fig.yaxis.axis_label = "time t", "x₁"
