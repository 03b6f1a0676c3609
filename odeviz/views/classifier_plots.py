"""The classifier page's plots: pure functions from a snapshot to columns, and the figures they fill.

The vector field and the trajectories live in the state plane (h₁, h₂) and share both ranges; the
decision map lives in the input plane (x₁, x₂) = h(0). Lines of many trajectories are drawn as one
line per class with NaN breaks between trajectories: one glyph, a few thousand numbers per frame.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from bokeh.models import ColorBar, LinearAxis, LinearColorMapper, LinearScale, Range1d
from bokeh.palettes import Greys256

from ..experiments.classifier import ClassifierSnapshot
from . import figures
from .arrows import SEGMENTS_PER_ARROW, arrow_segments
from .figures import ODE_COLOR, RESNET_COLOR, nfe_figure

SQUARE = 300  # nominal frame side of the plane plots, px: the arrows' length (figures scale, arrows with them)
CLASS_COLORS = (ODE_COLOR, RESNET_COLOR)  # class 0 blue, class 1 orange, everywhere
PROBE_COLOR = "#111111"
MAX_DRAWN = 300  # trajectories drawn per frame (evenly spaced over the data); selected ones always
SPEED_PALETTE = Greys256[40:200][::-1]  # light grey (slow) … near black (fast): class colours stay readable
HISTORY_COLUMNS = ("iteration", "loss", "cross_entropy", "accuracy", "nfe_forward", "nfe_backward")
STATE_LABELS = ("h₁ (first coordinate of the state)", "h₂ (second coordinate of the state)")
INPUT_LABELS = ("input x₁ = h₁(0)", "input x₂ = h₂(0)")


def _blend(start: str, end: str, steps: int) -> list[str]:
    a, b = (np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)]) for color in (start, end))
    return ["#%02x%02x%02x" % tuple(np.round(a + (b - a) * s).astype(int)) for s in np.linspace(0, 1, steps)]


# P(class 1) from 0 to 1: class 0's blue through white to class 1's orange.
DECISION_PALETTE = _blend(CLASS_COLORS[0], "#ffffff", 128) + _blend("#ffffff", CLASS_COLORS[1], 128)


# ---- pure: snapshot -> columns ---------------------------------------------------------------
def drawn_indices(count: int, limit: int = MAX_DRAWN) -> np.ndarray:
    """Evenly spaced indices of the trajectories drawn when there are more than ``limit``."""
    return np.arange(count) if count <= limit else np.linspace(0, count - 1, limit).round().astype(int)


def broken_line(states: np.ndarray) -> dict[str, np.ndarray]:
    """Trajectories (time, k, 2) as one line, NaN between trajectories (Bokeh breaks a line at NaN)."""
    count = states.shape[1]
    padded = np.concatenate([states, np.full((1, count, 2), np.nan, dtype=states.dtype)])  # (T + 1, k, 2)
    path = padded.transpose(1, 0, 2).reshape(-1, 2)
    return {"x": path[:, 0], "y": path[:, 1]}


def trajectory_columns(snapshot: ClassifierSnapshot, label: int) -> dict[str, np.ndarray]:
    chosen = drawn_indices(len(snapshot.labels))
    chosen = chosen[snapshot.labels[chosen] == label]
    return broken_line(snapshot.states[:, chosen])


def highlight_columns(snapshot: ClassifierSnapshot, indices: Sequence[int]) -> dict[str, np.ndarray]:
    chosen = [i for i in indices if 0 <= i < len(snapshot.labels)][:MAX_DRAWN]
    return broken_line(snapshot.states[:, chosen])


def point_columns(points: np.ndarray, labels: np.ndarray, probability: np.ndarray) -> dict[str, np.ndarray]:
    """Points with their class (coloured by a colour mapper in the browser: no colour strings to send)."""
    return {"x": points[:, 0], "y": points[:, 1], "label": labels, "p": probability}


def positions_columns(snapshot: ClassifierSnapshot, index: int) -> dict[str, np.ndarray]:
    """Where the data are at time ``times[index]``."""
    return point_columns(snapshot.states[index], snapshot.labels, snapshot.probability)


def probe_columns(snapshot: ClassifierSnapshot, index: int) -> dict[str, dict[str, np.ndarray]]:
    """The probes' inputs and their positions at ``times[index]`` and at t = 1."""
    number = np.arange(1, len(snapshot.probe_inputs) + 1, dtype=float)

    def at(points):
        return {"x": points[:, 0], "y": points[:, 1], "probe": number, "p": snapshot.probe_probability}

    return {
        "inputs": at(snapshot.probe_inputs),
        "now": at(snapshot.probe_states[index]),
        "end": at(snapshot.probe_states[-1]),
    }


def field_columns(snapshot: ClassifierSnapshot, field_index: int, frame_px: float = SQUARE) -> dict[str, np.ndarray]:
    """f(h, t) at the field's ``field_index``-th time as arrows of one length, with their speed |f|."""
    low, high = snapshot.box
    u, v = snapshot.field_u[field_index], snapshot.field_v[field_index]
    scale = frame_px / (high - low)
    x0, y0, x1, y1 = arrow_segments(snapshot.field_x, snapshot.field_y, u, v, scale, scale)
    tile = lambda values: np.tile(values, SEGMENTS_PER_ARROW)  # noqa: E731
    return {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "speed": tile(np.hypot(u, v)), "u": tile(u), "v": tile(v)}


def decision_map_columns(snapshot: ClassifierSnapshot) -> dict[str, list]:
    low, high = snapshot.input_box
    return {"image": [snapshot.decision_map], "x": [low], "y": [low], "dw": [high - low], "dh": [high - low]}


def titles(snapshot: ClassifierSnapshot, field_index: int) -> dict[str, str]:
    t = snapshot.field_times[field_index]
    augmented = f", {snapshot.augment} augmented dim{'s' if snapshot.augment > 1 else ''} at 0" if snapshot.augment else ""
    return {
        "field": f"Field f(h, t) and the data at t = {t:.1f}{augmented}",
        "trajectories": f"Trajectories h(t): f evaluated {snapshot.nfe_forward}× ({snapshot.solver.method})",  # fits its cell at 1280 px
        "decision": f"Decision map: {100 * snapshot.accuracy:.1f} % of {len(snapshot.labels)} right",
    }


# ---- the figures -----------------------------------------------------------------------------
def plane_figure(title: str, labels: tuple[str, str], x_range=None, y_range=None, tools: str = figures.TOOLS):
    fig = figures.figure(title, *labels, x_range=x_range or Range1d(-3, 3), y_range=y_range or Range1d(-3, 3),
                         tools=tools)
    return fig


class ClassifierFigures(figures.HistoryPlots):
    """Five figures whose sources :meth:`show`, :meth:`show_time` and :meth:`append_history` refill."""

    history_columns = HISTORY_COLUMNS

    def __init__(self) -> None:
        self.box = Range1d(-3, 3), Range1d(-3, 3)  # the state plane, shared by field and trajectories
        self.arrows = figures.source("x0", "y0", "x1", "y1", "speed", "u", "v", name="field-arrows")
        self.positions = figures.source("x", "y", "label", "p", name="positions")
        self.trajectories = [figures.source("x", "y", name=f"trajectories-{label}") for label in (0, 1)]
        self.highlight_source = figures.source("x", "y", name="highlighted-trajectories")
        self.ends = figures.source("x", "y", "label", "p", name="ends")
        self.data = figures.source("x", "y", "label", "p", name="data")
        self.decision = figures.source("image", "x", "y", "dw", "dh", name="decision-map")
        self.probes = {part: figures.source("x", "y", "probe", "p", name=f"probe-{part}") for part in ("inputs", "now", "end")}
        self.probe_paths = figures.source("x", "y", name="probe-paths")
        self.history = figures.source(*HISTORY_COLUMNS, name="history")
        self.speed_colors = LinearColorMapper(palette=SPEED_PALETTE, low=0.0, high=1.0)
        self.class_colors = {"field": "label", "transform": LinearColorMapper(palette=list(CLASS_COLORS), low=0, high=1)}
        self.figures = {
            "field": self._field(), "trajectories": self._trajectories(), "decision": self._decision(),
            "loss": self._loss(), "nfe": nfe_figure(self.history),
        }
        self.figures["nfe"].x_range = self.figures["loss"].x_range

    def _probe_markers(self, fig, part: str, size: int = 13, **legend):
        return fig.scatter("x", "y", source=self.probes[part], marker="star", size=size, fill_color="#ffd43b",
                           line_color=PROBE_COLOR, line_width=1.2, **legend)

    def _field(self):
        fig = plane_figure("Vector field", STATE_LABELS, *self.box)
        arrows = fig.segment("x0", "y0", "x1", "y1", source=self.arrows, line_width=1.4,
                             color={"field": "speed", "transform": self.speed_colors})
        points = fig.scatter("x", "y", source=self.positions, color=self.class_colors, size=5, alpha=0.75, line_color="white",
                             line_width=0.5)
        self._probe_markers(fig, "now")
        figures.hover(fig, [arrows], [("h", "(@x0{0.00}, @y0{0.00})"), ("f", "(@u{0.000}, @v{0.000})"),
                                      ("|f|", "@speed{0.000}")])
        figures.hover(fig, [points], [("class", "@label"), ("P(class 1)", "@p{0.000}")])
        fig.add_layout(ColorBar(color_mapper=self.speed_colors, title="|f(h, t)|", width=10,
                                title_text_font_size="11px"), "right")
        return fig

    def _trajectories(self):
        fig = plane_figure("Trajectories", STATE_LABELS, *self.box)
        for label, source in enumerate(self.trajectories):
            fig.line("x", "y", source=source, color=CLASS_COLORS[label], alpha=0.35, line_width=1.2,
                     legend_label=f"class {label}")
        selected = fig.line("x", "y", source=self.highlight_source, color="#111111", line_width=2.5, alpha=0.9,
                            legend_label="selected in the map")
        probes = fig.line("x", "y", source=self.probe_paths, color=PROBE_COLOR, line_width=2, line_dash="dashed",
                          legend_label="probes (tap the map)")
        ends = fig.scatter("x", "y", source=self.ends, color=self.class_colors, size=4, line_color=None)
        self._probe_markers(fig, "end")
        figures.hover(fig, [ends], [("class", "@label"), ("h(1)", "(@x{0.00}, @y{0.00})"), ("P(class 1)", "@p{0.000}")])
        figures.style_legend(fig, "above")
        for renderer in (selected, probes):
            figures.always_in_legend(fig, renderer)
        return fig

    def _decision(self):
        fig = plane_figure("Decision map", INPUT_LABELS, tools=figures.TOOLS + ",box_select,lasso_select")
        colors = LinearColorMapper(palette=DECISION_PALETTE, low=0.0, high=1.0)
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.decision, color_mapper=colors, alpha=0.85)
        data = fig.scatter("x", "y", source=self.data, color=self.class_colors, size=6, line_color="white", line_width=0.7,
                           nonselection_alpha=0.25, selection_line_color="#111111", selection_line_width=1.5)
        probes = self._probe_markers(fig, "inputs", size=15, legend_label="probe (tap to drop one)")
        figures.hover(fig, [data], [("input", "(@x{0.00}, @y{0.00})"), ("class", "@label"), ("P(class 1)", "@p{0.000}")])
        figures.hover(fig, [probes], [("probe", "@probe"), ("input", "(@x{0.00}, @y{0.00})"), ("P(class 1)", "@p{0.000}")])
        fig.add_layout(ColorBar(color_mapper=colors, title="P(class 1)", width=10, title_text_font_size="11px"), "right")
        figures.style_legend(fig, "above")
        figures.always_in_legend(fig, probes)
        return fig

    def _loss(self):
        fig = figures.figure("Training loss and accuracy", "training iteration", "cross-entropy (batch)",
                             y_axis_type="log")
        fig.extra_y_ranges = {"accuracy": Range1d(0.0, 1.02)}
        fig.extra_y_scales = {"accuracy": LinearScale()}  # the loss axis is logarithmic, accuracy is not
        fig.add_layout(LinearAxis(y_range_name="accuracy", axis_label="accuracy (batch)",
                                  axis_label_text_font_style="normal"), "right")
        loss = fig.line("iteration", "cross_entropy", source=self.history, color="#222222", legend_label="cross-entropy")
        accuracy = fig.line("iteration", "accuracy", source=self.history, color="#2f9e44", y_range_name="accuracy",
                            legend_label="accuracy")
        figures.hover(fig, [loss, accuracy], [("iteration", "@iteration"), ("cross-entropy", "@cross_entropy{0.000e}"),
                                              ("accuracy", "@accuracy{0.0%}")])
        figures.style_legend(fig, "above")  # inside, it covered the loss curve
        return fig

    # ---- updates (on the session's event loop) --------------------------------------------
    # Sources, titles and ranges a frame leaves unchanged are not sent again (figures.refill).
    def show(self, snapshot: ClassifierSnapshot, field_index: int, highlighted: Sequence[int] = ()) -> None:
        low, high = figures.padded(*snapshot.box)
        for axis in self.box:
            if (axis.start, axis.end) != (low, high):  # the box grows in steps: redraw only then
                axis.update(start=low, end=high)
        decision = self.figures["decision"]
        low, high = figures.padded(*snapshot.input_box)  # a probe at the edge shows whole
        if (decision.x_range.start, decision.x_range.end) != (low, high):
            for axis in (decision.x_range, decision.y_range):
                axis.update(start=low, end=high)
        self.speed_colors.high = max(float(np.hypot(snapshot.field_u, snapshot.field_v).max()), 1e-6)
        for label, source in enumerate(self.trajectories):
            figures.refill(source, trajectory_columns(snapshot, label))
        figures.refill(self.ends, point_columns(snapshot.states[-1], snapshot.labels, snapshot.probability))
        if len(self.data.data["x"]) != len(snapshot.labels):  # new data: the old selection means nothing
            self.data.selected.indices = []
        figures.refill(self.data, point_columns(snapshot.inputs, snapshot.labels, snapshot.probability))
        figures.refill(self.decision, decision_map_columns(snapshot))
        figures.refill(self.probe_paths, broken_line(snapshot.probe_states))
        self.show_time(snapshot, field_index)
        self.highlight(snapshot, highlighted)

    def show_time(self, snapshot: ClassifierSnapshot, field_index: int) -> None:
        """The field, the data and the probes at the field's ``field_index``-th time."""
        index = int(snapshot.field_index[field_index])
        figures.refill(self.arrows, field_columns(snapshot, field_index))
        figures.refill(self.positions, positions_columns(snapshot, index))
        for part, columns in probe_columns(snapshot, index).items():
            figures.refill(self.probes[part], columns)
        for name, title in titles(snapshot, field_index).items():
            if self.figures[name].title.text != title:
                self.figures[name].title.text = title

    def highlight(self, snapshot: ClassifierSnapshot, indices: Sequence[int]) -> None:
        figures.refill(self.highlight_source, highlight_columns(snapshot, indices))
