"""The Figure 3 page's plots: the paper's four panels and the memory plot, from live measurements.

(a) NFE-forward against the numerical error and (b) against wall time come from a tolerance sweep;
(c) NFE-backward against NFE-forward and (d) NFE against iteration come from the training history;
the memory plot compares direct backprop through the solver with the adjoint as steps grow.
"""
from __future__ import annotations

import numpy as np
from bokeh.models import ColorBar, FixedTicker, LinearColorMapper
from bokeh.palettes import Viridis256

from ..experiments.figure3 import Figure3Measurements, SolverSetting
from ..numerics.measure import MEMORY_STEPS, MemoryBySteps, ToleranceSweep, nfe_ratio
from . import figures
from .classifier_plots import HISTORY_COLUMNS
from .figures import nfe_figure
from .figures import BACKWARD_COLOR, ODE_COLOR, RESNET_COLOR

CURRENT_COLOR = "#e03131"
PAPER_RATIO = 0.5  # the paper: "the number of evaluations in the backward pass is roughly half of the forward pass"
SWEEP_TIPS = [("tolerance", "@tolerance{0e}"), ("NFE forward", "@nfe"), ("error", "@error{0.0e}"), ("time", "@wall_ms{0.00} ms")]


# ---- pure: measurements -> columns -------------------------------------------------------------
def sweep_columns(sweep: ToleranceSweep | None) -> dict[str, np.ndarray]:
    """The tolerances the solver met (failed ones have no point to draw)."""
    if sweep is None:
        return {name: np.array([]) for name in ("tolerance", "nfe", "error", "wall_ms")}
    met = np.isfinite(sweep.nfe_forward)
    return {
        "tolerance": sweep.tolerances[met], "nfe": sweep.nfe_forward[met],
        "error": np.maximum(sweep.error[met], 1e-17),  # an exact zero has no place on a log axis
        "wall_ms": 1e3 * sweep.wall_time[met],
    }


def current_columns(current: SolverSetting | None) -> dict[str, np.ndarray]:
    if current is None or not np.isfinite(current.nfe_forward):
        return {name: np.array([]) for name in ("nfe", "error", "wall_ms", "rtol", "atol")}
    return {"nfe": np.array([current.nfe_forward]), "error": np.array([max(current.error, 1e-17)]),
            "wall_ms": np.array([1e3 * current.wall_time]), "rtol": np.array([current.solver.rtol]),
            "atol": np.array([current.solver.atol])}


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
        self.sweep = figures.source("tolerance", "nfe", "error", "wall_ms", name="sweep")
        self.current = figures.source("nfe", "error", "wall_ms", "rtol", "atol", name="current-setting")
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
            "training": nfe_figure(self.history, "(d) NFE over training"),
            "memory": self._memory(),
        }

    def _sweep_plot(self, title: str, column: str, label: str, axis: str):
        fig = figures.figure(title, "NFE forward", label, y_axis_type=axis)
        line = fig.line("nfe", column, source=self.sweep, color=ODE_COLOR, line_width=2)
        points = fig.scatter("nfe", column, source=self.sweep, color=ODE_COLOR, size=7,
                             legend_label="tolerance sweep 1e-1 … 1e-8")
        current = fig.scatter("nfe", column, source=self.current, marker="diamond", size=16, color=CURRENT_COLOR,
                              line_color="white", legend_label="current rtol / atol")
        figures.hover(fig, [points, line], SWEEP_TIPS)
        figures.hover(fig, [current], [("rtol", "@rtol{0e}"), ("atol", "@atol{0e}"), ("NFE forward", "@nfe"),
                                       ("error", "@error{0.0e}"), ("time", "@wall_ms{0.00} ms")])
        figures.style_legend(fig, "top_right" if axis == "log" else "top_left")
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
