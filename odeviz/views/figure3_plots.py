"""The Figure 3 page's plots: the paper's four panels and the memory plot, from live measurements.

(a) NFE-forward against the numerical error and (b) against wall time come from a tolerance sweep;
(c) NFE-backward against NFE-forward and (d) NFE against iteration come from the training history,
and beside (c) its price: NFE-B/NFE-F against the adjoint's gradient error as the backward tolerance
loosens; the memory plot compares direct backprop through the solver with the adjoint as steps grow.
"""
from __future__ import annotations

import numpy as np
from bokeh.models import ColorBar, FixedTicker, Label, LabelSet, LinearColorMapper, Span
from bokeh.palettes import Viridis256

from ..experiments.figure3 import ADJOINT_FACTORS, Figure3Measurements, SolverSetting
from ..numerics.measure import MEMORY_STEPS, MemoryBySteps, ToleranceSweep, nfe_ratio
from . import figures
from .classifier_plots import HISTORY_COLUMNS
from .figures import nfe_figure
from .figures import BACKWARD_COLOR, ODE_COLOR, RESNET_COLOR

CURRENT_COLOR = "#e03131"
PAPER_RATIO = 0.5  # the paper: "the number of evaluations in the backward pass is roughly half of the forward pass"
SWEEP_TIPS = [("tolerance", "@tolerance{0e}"), ("NFE forward", "@nfe"), ("error", "@error{0.0e}"),
              ("time (median)", "@wall_ms{0.00} ms"), ("spread of the repeats", "@spread{0%}")]
TRADEOFF_TIPS = [("backward rtol", "@adjoint_rtol{0e}"), ("backward atol", "@adjoint_atol{0e}"), ("NFE-B / NFE-F", "@ratio{0.00}"),
                 ("gradient error", "@gradient_error{0.0e}"), ("forward steps ✓/✗", "@forward_steps"),
                 ("backward steps ✓/✗", "@backward_steps")]
TRADEOFF_COLUMNS = ("gradient_error", "ratio", "adjoint_rtol", "adjoint_atol", "forward_steps", "backward_steps", "label")


# ---- pure: measurements -> columns -------------------------------------------------------------
def sweep_columns(sweep: ToleranceSweep | None) -> dict[str, np.ndarray]:
    """The tolerances the solver met (failed ones have no point to draw)."""
    if sweep is None:
        return {name: np.array([]) for name in ("tolerance", "nfe", "error", "wall_ms", "spread")}
    met = np.isfinite(sweep.nfe_forward)
    return {
        "tolerance": sweep.tolerances[met], "nfe": sweep.nfe_forward[met],
        "error": np.maximum(sweep.error[met], 1e-17),  # an exact zero has no place on a log axis
        "wall_ms": 1e3 * sweep.wall_time[met], "spread": sweep.wall_spread[met],
    }


def cost_fit(sweep: ToleranceSweep | None) -> tuple[dict[str, np.ndarray], str]:
    """The least-squares line of wall time against NFE over the sweep, and what it says in words."""
    per_evaluation, fixed = sweep.seconds_per_evaluation() if sweep is not None else (np.nan, np.nan)
    if not np.isfinite(per_evaluation):
        return {"x": np.array([]), "y": np.array([])}, ""
    x = np.array([0.0, float(np.nanmax(sweep.nfe_forward))])
    text = f"{1e6 * per_evaluation:.0f} µs per evaluation + {1e3 * fixed:.1f} ms"
    return {"x": x, "y": 1e3 * (fixed + per_evaluation * x)}, text


def loaded_warning(sweep: ToleranceSweep | None) -> str:
    if sweep is None or not sweep.loaded:
        return ""
    return (f"machine busy: the {sweep.repeats} repeats differ by up to {100 * np.nanmax(sweep.wall_spread):.0f} % "
            "— these times say more about the load than the solver")


def current_label(solver) -> str:
    """The marker's legend: its own rtol/atol, and why it may sit off the sweep's rtol = atol line."""
    label = f"yours: rtol {solver.rtol:.0e}, atol {solver.atol:.0e}"
    return label if solver.rtol == solver.atol else label + " (the sweep sets rtol = atol)"


def current_columns(current: SolverSetting | None) -> dict[str, np.ndarray]:
    if current is None or not np.isfinite(current.nfe_forward):
        return {name: np.array([]) for name in ("nfe", "error", "wall_ms", "rtol", "atol", "label")}
    return {"nfe": np.array([current.nfe_forward]), "error": np.array([max(current.error, 1e-17)]),
            "wall_ms": np.array([1e3 * current.wall_time]), "rtol": np.array([current.solver.rtol]),
            "atol": np.array([current.solver.atol]), "label": np.array([current_label(current.solver)])}


def tradeoff_columns(costs, labels=None) -> dict[str, np.ndarray]:
    """One point per adjoint measurement: NFE-B/NFE-F against the gradient error (relative L2)."""
    costs = [c for c in costs if c is not None]
    steps = lambda count: f"{count.accepted}/{count.rejected}"
    return {
        "gradient_error": np.array([max(c.gradient_error, 1e-17) for c in costs]),
        "ratio": np.array([c.ratio for c in costs]),
        "adjoint_rtol": np.array([c.solver.adjoint_rtol or c.solver.rtol for c in costs]),
        "adjoint_atol": np.array([c.solver.adjoint_atol or c.solver.atol for c in costs]),
        "forward_steps": np.array([steps(c.steps_forward) for c in costs]),
        "backward_steps": np.array([steps(c.steps_backward) for c in costs]),
        "label": np.array(labels if labels is not None else [""] * len(costs)),
    }


def memory_columns(memory: MemoryBySteps | None) -> dict[str, np.ndarray]:
    if memory is None:
        return {name: np.array([]) for name in ("steps", "direct_kb", "adjoint_kb")}
    return {"steps": memory.steps.astype(float), "direct_kb": memory.direct_bytes / 1024.0,
            "adjoint_kb": memory.adjoint_bytes / 1024.0}


def ratio_lines(nfe_forward: np.ndarray, nfe_backward: np.ndarray) -> tuple[float, dict, dict]:
    """The measured mean ratio NFE-B / NFE-F and two lines through 0: y = ratio·x and the paper's y = x/2."""
    ratio = nfe_ratio(nfe_forward, nfe_backward)
    top = float(np.max(nfe_forward)) * 1.1 if len(nfe_forward) else 1.0
    x = np.array([0.0, top])
    measured = {"x": x, "y": ratio * x if np.isfinite(ratio) else np.full(2, np.nan)}
    return ratio, measured, {"x": x, "y": PAPER_RATIO * x}


# ---- the figures -----------------------------------------------------------------------------
class Figure3Figures(figures.HistoryPlots):
    """Panels (a)–(d) and the memory plot; :meth:`show` and :meth:`append_history` refill them."""

    history_columns = HISTORY_COLUMNS

    def __init__(self) -> None:
        self.sweep = figures.source("tolerance", "nfe", "error", "wall_ms", "spread", name="sweep")
        self.current = figures.source("nfe", "error", "wall_ms", "rtol", "atol", "label", name="current-setting")
        self.fit = figures.source("x", "y", name="cost-fit")
        self.tradeoff = figures.source(*TRADEOFF_COLUMNS, name="adjoint-tradeoff")
        self.adjoint = figures.source(*TRADEOFF_COLUMNS, name="adjoint-current")
        self.loaded = Label(x=8, y=8, x_units="screen", y_units="screen", text="", text_font_size="11px",
                            text_color=CURRENT_COLOR, background_fill_color="white", background_fill_alpha=0.8)
        self.memory = figures.source("steps", "direct_kb", "adjoint_kb", name="memory")
        self.history = figures.source(*HISTORY_COLUMNS, name="history")
        self.measured_ratio = figures.source("x", "y", name="ratio-line")
        self.paper_ratio = figures.source("x", "y")
        self.iterations = LinearColorMapper(palette=Viridis256, low=0, high=1)
        self.ratio = float("nan")  # measured mean NFE-backward / NFE-forward
        self.figures = {
            "error": self._sweep_plot("(a) NFE-forward vs numerical error", "error", "error of h(1) vs dopri8 at 1e-12",
                                      "log"),
            "time": self._sweep_plot("(b) NFE-forward vs wall time", "wall_ms", "wall time of one solve (ms)", "linear"),
            "backward": self._backward(),
            "tradeoff": self._tradeoff(),
            "training": nfe_figure(self.history, "(d) NFE over training"),
            "memory": self._memory(),
        }

    def _sweep_plot(self, title: str, column: str, label: str, axis: str):
        fig = figures.figure(title, "NFE forward", label, y_axis_type=axis)
        line = fig.line("nfe", column, source=self.sweep, color=ODE_COLOR, line_width=2)
        points = fig.scatter("nfe", column, source=self.sweep, color=ODE_COLOR, size=7,
                             legend_label="tolerance sweep 1e-1 … 1e-8")
        current = fig.scatter("nfe", column, source=self.current, marker="diamond", size=16, color=CURRENT_COLOR,
                              line_color="white", legend_field="label")
        figures.hover(fig, [points, line], SWEEP_TIPS)
        if column == "wall_ms":
            fig.line("x", "y", source=self.fit, color="#868e96", line_dash="dotted", legend_label="least-squares fit")
            fig.add_layout(self.loaded)
        figures.hover(fig, [current], [("rtol", "@rtol{0e}"), ("atol", "@atol{0e}"), ("NFE forward", "@nfe"),
                                       ("error", "@error{0.0e}"), ("time", "@wall_ms{0.00} ms")])
        figures.style_legend(fig, "top_right" if axis == "log" else "top_left")
        return fig

    def _tradeoff(self):
        fig = figures.figure("(c) its price: NFE-B / NFE-F vs gradient error", "gradient error of the adjoint "
                             "(relative L2, vs backprop at 1e-10)", "NFE backward / NFE forward", x_axis_type="log")
        line = fig.line("gradient_error", "ratio", source=self.tradeoff, color=BACKWARD_COLOR, line_width=2)
        points = fig.scatter("gradient_error", "ratio", source=self.tradeoff, color=BACKWARD_COLOR, size=8,
                             legend_label="backward tolerance × forward")
        fig.add_layout(LabelSet(x="gradient_error", y="ratio", text="label", source=self.tradeoff, x_offset=5, y_offset=3,
                                text_font_size="10px"))
        current = fig.scatter("gradient_error", "ratio", source=self.adjoint, marker="diamond", size=16,
                              color=CURRENT_COLOR, line_color="white", legend_label="yours, measured live")
        fig.add_layout(Span(location=PAPER_RATIO, dimension="width", line_color="#868e96", line_dash="dashed"))
        figures.hover(fig, [points, line, current], TRADEOFF_TIPS)
        figures.style_legend(fig, "top_right")
        return fig

    def _backward(self):
        fig = figures.figure("(c) NFE-backward vs NFE-forward", "NFE forward", "NFE backward (adjoint)")
        points = fig.scatter("nfe_forward", "nfe_backward", source=self.history, size=6, alpha=0.6,
                             color={"field": "iteration", "transform": self.iterations})
        fig.line("x", "y", source=self.measured_ratio, color=BACKWARD_COLOR, line_width=2, legend_label="measured mean ratio")
        fig.line("x", "y", source=self.paper_ratio, color="#868e96", line_dash="dashed", legend_label="paper: ½")
        figures.hover(fig, [points], [("iteration", "@iteration"), ("forward", "@nfe_forward"), ("backward", "@nfe_backward")])
        fig.add_layout(ColorBar(color_mapper=self.iterations, title="iteration", width=10, title_text_font_size="11px"),
                       "right")
        figures.style_legend(fig, "top_left")
        return fig

    def _memory(self):
        fig = figures.figure("Memory kept for backward: O(L̃) vs O(1)", "RK4 steps on [0, 1] (L̃)",
                             "saved activations (KiB)", x_axis_type="log", y_axis_type="log")
        direct = fig.line("steps", "direct_kb", source=self.memory, color=RESNET_COLOR, line_width=2,
                          legend_label="backprop through the solver")
        fig.scatter("steps", "direct_kb", source=self.memory, color=RESNET_COLOR, size=6)
        adjoint = fig.line("steps", "adjoint_kb", source=self.memory, color=ODE_COLOR, line_width=2,
                           legend_label="adjoint")
        fig.scatter("steps", "adjoint_kb", source=self.memory, color=ODE_COLOR, size=6)
        fig.xaxis.ticker = FixedTicker(ticks=list(MEMORY_STEPS))
        figures.hover(fig, [direct, adjoint], [("steps", "@steps"), ("through the solver", "@direct_kb{0,0.0} KiB"),
                                               ("adjoint", "@adjoint_kb{0,0.0} KiB")])
        figures.style_legend(fig, "center_right")
        return fig

    # ---- updates (on the session's event loop) --------------------------------------------
    def show(self, measured: Figure3Measurements) -> None:
        self.sweep.data = sweep_columns(measured.sweep)
        self.current.data = current_columns(measured.current)
        self.fit.data, fit_text = cost_fit(measured.sweep)
        self.loaded.text = loaded_warning(measured.sweep)
        repeats = f"median of {measured.sweep.repeats}" if measured.sweep is not None else "median"
        self.figures["time"].title.text = f"(b) NFE-forward vs wall time ({repeats})" + (f": {fit_text}" if fit_text else "")
        self.tradeoff.data = tradeoff_columns(measured.tradeoff, [f"×{f:g}" for f in ADJOINT_FACTORS[: len(measured.tradeoff)]])
        self.adjoint.data = tradeoff_columns([measured.adjoint])
        self.memory.data = memory_columns(measured.memory)

    def append_history(self, columns: dict[str, np.ndarray]) -> None:
        super().append_history(columns)
        self._update_ratio()

    def clear_history(self) -> None:
        super().clear_history()
        self._update_ratio()

    def _update_ratio(self) -> None:
        data = self.history.data
        ratio, measured, paper = ratio_lines(np.asarray(data["nfe_forward"]), np.asarray(data["nfe_backward"]))
        self.measured_ratio.data, self.paper_ratio.data = measured, paper
        self.iterations.high = max(1.0, float(len(data["iteration"])))
        self.ratio = ratio
        title = "(c) NFE-backward vs NFE-forward"
        self.figures["backward"].title.text = title + (f": mean ratio {ratio:.2f}" if np.isfinite(ratio) else "")
