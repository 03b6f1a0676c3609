"""The continuity page's plots: pure functions from a snapshot to columns, and the figures they fill.

Time/depth share one x range and the hidden state one y range across the trajectory plots (and
the learned map's output axis), so panning or zooming one moves them all.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from bokeh.core.property.vectorization import value
from bokeh.models import Range1d

from ..data.clouds import CONTINUITY_TARGETS
from ..experiments.continuity import ContinuitySnapshot
from . import figures
from .arrows import SEGMENTS_PER_ARROW, arrow_segments
from .figures import FRAME_HEIGHT, FRAME_WIDTH, ODE_COLOR, RESNET_COLOR, TARGET_COLOR

T_LABEL, H_LABEL = "time t   (ResNet: depth k/L)", "hidden state h"
H_LABELS = {False: H_LABEL, True: "h, first of the state (h, h₂)"}
FIELD_LABELS = {False: "vector field f(t, h)", True: "vector field at h₂ = 0"}
TRAJECTORY_TIPS = [("input x", "@x{0.00}"), ("t", "@t{0.000}"), ("h", "@h{0.000}")]
HISTORY_COLUMNS = ("iteration", "loss_ode", "loss_resnet", "nfe_forward", "nfe_backward")


# ---- pure: snapshot -> columns ---------------------------------------------------------------
def trajectory_columns(times: np.ndarray, states: np.ndarray, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Each input's path through the (t, h) plane as segments; ``states`` is (len(times), len(inputs))."""
    return {
        "t": np.repeat(times[:-1], len(inputs)),
        "h": states[:-1].ravel(),
        "t_end": np.repeat(times[1:], len(inputs)),
        "h_end": states[1:].ravel(),
        "x": np.tile(inputs, len(times) - 1),
    }


def point_columns(times: np.ndarray, states: np.ndarray, inputs: np.ndarray) -> dict[str, np.ndarray]:
    return {"t": np.repeat(times, len(inputs)), "h": states.ravel(), "x": np.tile(inputs, len(times))}


def chosen_inputs(inputs: np.ndarray, indices: Sequence[int]) -> list[int]:
    return sorted({i for i in indices if 0 <= i < len(inputs)})


def highlight_columns(times: np.ndarray, states: np.ndarray, inputs: np.ndarray, indices: Sequence[int]):
    chosen = chosen_inputs(inputs, indices)
    return trajectory_columns(times, states[:, chosen], inputs[chosen])


def evaluation_columns(snapshot: ContinuitySnapshot) -> dict[str, np.ndarray]:
    """Where the solver evaluated f, on every trajectory (evaluations past t = 1 are off the plot)."""
    inside = (snapshot.eval_times >= 0.0) & (snapshot.eval_times <= 1.0)
    return point_columns(snapshot.eval_times[inside], snapshot.eval_states[inside], snapshot.inputs)


def evaluation_style(times: int, clear_up_to: int = 24) -> dict:
    """Circles that stay circles: past ``clear_up_to`` evaluation times (tight tolerances) they get
    smaller and fainter instead of merging into black bands."""
    crowding = min(1.0, clear_up_to / max(times, 1))
    return {"size": 2.5 + 2.5 * crowding, "line_alpha": 0.25 + 0.75 * crowding, "fill_alpha": 0.5 + 0.5 * crowding}


def arrow_columns(snapshot: ContinuitySnapshot, length_px: float = 14.0, head_px: float = 4.5):
    """dh/dt = f(t, h) as arrows of one on-screen length along (1, f) in the (t, h) plane: the drawn
    slopes are the true slopes of the trajectories (see :mod:`.arrows`)."""
    low, high = snapshot.h_range
    t, h, t_end, h_end = arrow_segments(
        snapshot.field_t, snapshot.field_h, np.ones_like(snapshot.field_dh), snapshot.field_dh,
        FRAME_WIDTH / 1.0, FRAME_HEIGHT / (high - low), length_px, head_px,
    )
    return {"t": t, "h": h, "t_end": t_end, "h_end": h_end, "dhdt": np.tile(snapshot.field_dh, SEGMENTS_PER_ARROW)}


def learned_map_columns(snapshot: ContinuitySnapshot) -> dict[str, dict[str, np.ndarray]]:
    dense = np.linspace(-1.0, 1.0, 201)
    return {
        "target": {"x": dense, "h": CONTINUITY_TARGETS[snapshot.target](dense)},
        "data": {"x": snapshot.train_x, "h": snapshot.train_y},
        "ode": {"x": snapshot.inputs, "h": snapshot.ode_outputs},
        "resnet": {"x": snapshot.inputs, "h": snapshot.resnet_outputs},
    }


def nearest_trajectory(times: np.ndarray, states: np.ndarray, t: float, h: float) -> int:
    """Index of the trajectory passing closest to h at time t."""
    at_t = np.array([np.interp(t, times, states[:, i]) for i in range(states.shape[1])])
    return int(np.argmin(np.abs(at_t - h)))


def nearest_input(inputs: np.ndarray, x: float) -> int:
    return int(np.argmin(np.abs(inputs - x)))


# The three trajectory plots, by the snapshot fields they draw.
TRAJECTORY_FIELDS = {"resnet": ("resnet_depth", "resnet_states"), "ode": ("ode_times", "ode_states"),
                     "euler": ("euler_times", "euler_states")}


def titles(snapshot: ContinuitySnapshot) -> dict[str, str]:
    blocks = f"{snapshot.depth} residual block{'s' if snapshot.depth > 1 else ''}"
    return {
        "resnet": f"ResNet: {blocks}, discrete steps",
        # This picture's own solve (all inputs), not the training batch's NFE-F of the status line.
        "ode": f"ODE-Net: {snapshot.solver.method}, {snapshot.nfe_forward} evaluations of f",
        "euler": f"Euler, L = {snapshot.depth}: max |Δh(1)| = {snapshot.euler_deviation:.1e}",
        "learned": f"What each model learned: {snapshot.target}",
    }


# ---- the figures -----------------------------------------------------------------------------
class ContinuityFigures(figures.HistoryPlots):
    """Six linked figures whose sources :meth:`show` and :meth:`append_history` refill in place."""

    history_columns = HISTORY_COLUMNS

    def __init__(self) -> None:
        self.t_range = Range1d(0.0, 1.0, bounds=(-0.5, 1.5))
        self.h_range = Range1d(-1.0, 1.0)
        self.sources = {
            name: figures.source("t", "h", "t_end", "h_end", "x", name=f"{name}-trajectories") for name in TRAJECTORY_FIELDS
        }
        self.highlights = {
            name: figures.source("t", "h", "t_end", "h_end", "x", name=f"{name}-highlight") for name in TRAJECTORY_FIELDS
        }
        self.resnet_points = figures.source("t", "h", "x")
        self.euler_points = figures.source("t", "h", "x")
        self.evaluations = figures.source("t", "h", "x")
        self.arrows = figures.source("t", "h", "t_end", "h_end", "dhdt")
        self.learned = {name: figures.source("x", "h", name=f"learned-{name}") for name in ("target", "data", "ode", "resnet")}
        self.inputs = figures.source("x", "h")
        self.input_highlight = figures.source("x", "h", name="learned-highlight")
        self.history = figures.source(*HISTORY_COLUMNS, name="history")
        self.figures = {
            "resnet": self._resnet(), "ode": self._ode(), "euler": self._euler(), "learned": self._learned(),
            "loss": self._loss(), "nfe": figures.nfe_figure(self.history, "ODE-Net cost per iteration"),
        }
        self.figures["nfe"].x_range = self.figures["loss"].x_range


    def _trajectory_figure(self, title: str):
        return figures.figure(title, T_LABEL, H_LABEL, x_range=self.t_range, y_range=self.h_range)

    def _draw_trajectories(self, fig, name: str, **line):
        renderer = fig.segment("t", "h", "t_end", "h_end", source=self.sources[name], color=figures.input_colors(), **line)
        fig.segment("t", "h", "t_end", "h_end", source=self.highlights[name], color="#111111", line_width=4, alpha=0.85)
        return renderer

    def _resnet(self):
        fig = self._trajectory_figure("ResNet")
        lines = self._draw_trajectories(fig, "resnet", line_width=1.5)
        states = fig.scatter("t", "h", source=self.resnet_points, color=figures.input_colors(), size=5)
        figures.hover(fig, [states, lines], TRAJECTORY_TIPS)
        return fig

    def _ode(self):
        fig = self._trajectory_figure("ODE-Net")
        arrows = fig.segment("t", "h", "t_end", "h_end", source=self.arrows, color="#b8bec9", line_width=1.2,
                             legend_label=FIELD_LABELS[False])
        lines = self._draw_trajectories(fig, "ode", line_width=2)
        circles = fig.scatter("t", "h", source=self.evaluations, size=5, fill_color="white", line_color="#333333",
                              legend_label="evaluations of f")
        self.evaluation_marks = circles.glyph
        figures.hover(fig, [circles, lines], TRAJECTORY_TIPS)
        figures.hover(fig, [arrows], [("t", "@t{0.00}"), ("h", "@h{0.00}"), ("dh/dt", "@dhdt{0.000}")])
        figures.input_colorbar(fig)
        figures.style_legend(fig, "above")
        self.field_legend = fig.legend[0].items[0]
        return fig

    def _euler(self):
        fig = self._trajectory_figure("ResNet = Euler")
        fig.segment("t", "h", "t_end", "h_end", source=self.sources["ode"], color="#c9ced6", line_width=3,
                    legend_label="ODE-Net (adaptive)")
        lines = self._draw_trajectories(fig, "euler", line_width=1.5, line_dash="dashed", legend_label="Euler, L steps")
        steps = fig.scatter("t", "h", source=self.euler_points, color=figures.input_colors(), size=4)
        figures.hover(fig, [steps, lines], TRAJECTORY_TIPS)
        figures.style_legend(fig, "above")
        return fig

    def _learned(self):
        fig = figures.figure("What each model learned", "input x = h(0)", "output h(1)", y_range=self.h_range,
                             tools=figures.TOOLS + ",tap,box_select")
        fig.line("x", "h", source=self.learned["target"], color=TARGET_COLOR, line_dash="dotted", line_width=2,
                 legend_label="target g(x)")
        fig.scatter("x", "h", source=self.learned["data"], color="#adb5bd", size=4, legend_label="training data")
        fig.line("x", "h", source=self.learned["ode"], color=ODE_COLOR, line_width=2, legend_label="ODE-Net")
        fig.line("x", "h", source=self.learned["resnet"], color=RESNET_COLOR, line_width=2, legend_label="ResNet")
        picks = fig.scatter("x", "h", source=self.inputs, color=figures.input_colors(), size=9, line_color="white",
                            nonselection_alpha=0.3, selection_line_color="#111111")
        fig.scatter("x", "h", source=self.input_highlight, size=15, fill_color=None, line_color="#111111", line_width=2.5)
        figures.hover(fig, [picks], [("input x", "@x{0.00}"), ("ODE-Net h(1)", "@h{0.000}")])
        figures.style_legend(fig, "top_left")
        return fig

    def _loss(self):
        fig = figures.figure("Training loss", "training iteration", "mean squared error", y_axis_type="log")
        ode = fig.line("iteration", "loss_ode", source=self.history, color=ODE_COLOR, legend_label="ODE-Net")
        resnet = fig.line("iteration", "loss_resnet", source=self.history, color=RESNET_COLOR, legend_label="ResNet")
        figures.hover(fig, [ode, resnet], [("iteration", "@iteration"), ("ODE-Net", "@loss_ode{0.000e}"),
                                           ("ResNet", "@loss_resnet{0.000e}")])
        figures.style_legend(fig, "top_right")
        return fig


    # ---- updates (on the session's event loop) --------------------------------------------
    def show(self, snapshot: ContinuitySnapshot, highlighted: Sequence[int] = ()) -> None:
        low, high = snapshot.h_range
        if (self.h_range.start, self.h_range.end) != (low, high):  # only on a new target: keep the user's zoom
            self.h_range.update(start=low, end=high)
        for name, (times, states) in TRAJECTORY_FIELDS.items():
            self.sources[name].data = trajectory_columns(getattr(snapshot, times), getattr(snapshot, states), snapshot.inputs)
        self.resnet_points.data = point_columns(snapshot.resnet_depth, snapshot.resnet_states, snapshot.inputs)
        self.euler_points.data = point_columns(snapshot.euler_times, snapshot.euler_states, snapshot.inputs)
        self.evaluations.data = evaluation_columns(snapshot)
        self.evaluation_marks.update(**evaluation_style(len(np.unique(snapshot.eval_times))))
        self.arrows.data = arrow_columns(snapshot)
        for name, columns in learned_map_columns(snapshot).items():
            self.learned[name].data = columns
        self.inputs.data = {"x": snapshot.inputs, "h": snapshot.ode_outputs}
        for name, title in titles(snapshot).items():
            self.figures[name].title.text = title
        for name in TRAJECTORY_FIELDS:
            self.figures[name].yaxis.axis_label = H_LABELS[snapshot.augmented]
        self.field_legend.label = value(FIELD_LABELS[snapshot.augmented])
        rising = snapshot.targets[-1] > snapshot.targets[0]  # keep the legend in the corner the target leaves free
        self.figures["learned"].legend.location = "top_left" if rising else "top_right"
        self.highlight(snapshot, highlighted)

    def highlight(self, snapshot: ContinuitySnapshot, indices: Sequence[int]) -> None:
        """Draw the chosen inputs' trajectories dark and thick, and ring the inputs in the learned map."""
        for name, (times, states) in TRAJECTORY_FIELDS.items():
            self.highlights[name].data = highlight_columns(
                getattr(snapshot, times), getattr(snapshot, states), snapshot.inputs, indices
            )
        chosen = chosen_inputs(snapshot.inputs, indices)
        self.input_highlight.data = {"x": snapshot.inputs[chosen], "h": snapshot.ode_outputs[chosen]}
