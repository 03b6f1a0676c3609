"""Figure builders every page shares: one look, figures that fill their grid cell, hover tools, the
input colour map, and the larger type and lines of presenter mode.

Pages draw with Bokeh figures whose ColumnDataSources are updated in place from snapshots: at 10
frames per second this costs about 4 ms per frame, where re-rendering HoloViews elements through
Pipe streams cost about 150 ms (profiled on this page's first version), starving both the event
loop and, through the GIL, the training thread.
"""
from __future__ import annotations

import numpy as np
from bokeh.models import ColorBar, ColumnDataSource, GlyphRenderer, HoverTool, Legend
from bokeh.palettes import Viridis256
from bokeh.plotting import figure as bokeh_figure
from bokeh.transform import linear_cmap

# The nominal frame: figures stretch to their grid cell, and arrows are sized for this frame (their
# directions are exact at any size: see arrows.py).
FRAME_WIDTH, FRAME_HEIGHT = 330, 230
MIN_WIDTH, MIN_HEIGHT = 260, 200
ODE_COLOR, RESNET_COLOR, TARGET_COLOR, BACKWARD_COLOR = "#2b59c3", "#e8590c", "#222222", "#7048e8"
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def figure(title: str, x_label: str, y_label: str, **kwargs):
    """A Bokeh figure in odeviz's look that fills the grid cell it is put in (``sizing_mode="fixed"``
    and a ``frame_width``/``frame_height`` for one of a set of small multiples or tiles)."""
    kwargs.setdefault("sizing_mode", "stretch_both")
    if kwargs["sizing_mode"] != "fixed":
        kwargs.update(min_width=MIN_WIDTH, min_height=MIN_HEIGHT)
    fig = bokeh_figure(
        title=title, x_axis_label=x_label, y_axis_label=y_label,
        tools=kwargs.pop("tools", TOOLS), toolbar_location="above", **kwargs,
    )
    fig.toolbar.logo = None
    fig.toolbar.autohide = True
    fig.title.text_font_size = "13px"
    fig.axis.axis_label_text_font_style = "normal"
    fig.axis.axis_label_text_font_size = "12px"
    fig.grid.grid_line_alpha = 0.5
    return fig


def padded(low: float, high: float, fraction: float = 0.05) -> tuple[float, float]:
    """A range a little wider than the data's, so no marker at the edge is cut in half."""
    pad = fraction * (high - low)
    return low - pad, high + pad


def always_in_legend(fig, renderer) -> None:
    """Show ``renderer``'s legend symbol even while its source is empty (Bokeh draws none for an empty
    renderer): a copy of its glyph on one blank point leads the legend item; hiding the item hides both."""
    blank = ColumnDataSource({name: [np.nan] for name in renderer.data_source.column_names})
    proxy = fig.add_glyph(blank, renderer.glyph.clone())
    for legend in fig.legend:
        for item in legend.items:
            if renderer in item.renderers:
                item.renderers = [proxy, *item.renderers]


def hover(fig, renderers, tooltips: list[tuple[str, str]]) -> None:
    fig.add_tools(HoverTool(renderers=list(renderers), tooltips=tooltips))


def source(*columns: str, name: str | None = None) -> ColumnDataSource:
    """An empty source with the given columns; ``name`` lets tests and benchmarks find it in the page."""
    return ColumnDataSource({column: np.array([], dtype=float) for column in columns}, name=name)


def refill(source: ColumnDataSource, columns: dict) -> None:
    """Replace the data of ``source`` with ``columns``, unless they hold the same values: a source a
    frame did not change (an empty selection, unmoved probes) then sends nothing to the browser."""
    old = source.data
    if set(old) == set(columns) and all(_same(old[name], values) for name, values in columns.items()):
        return
    source.data = columns


def _same(old, new) -> bool:
    if old is new:
        return True
    if not (isinstance(old, np.ndarray) and isinstance(new, np.ndarray)) or old.dtype != new.dtype:
        return False
    return old.shape == new.shape and np.array_equal(old, new, equal_nan=old.dtype.kind == "f")


class HistoryPlots:
    """For a page's figures: the per-iteration scalars in a ``history`` source of ``history_columns``,
    grown by streaming (only the new rows travel) and emptied when the experiment is reset."""

    history_columns: tuple[str, ...] = ()
    history: ColumnDataSource

    def append_history(self, columns: dict[str, np.ndarray]) -> None:
        self.history.stream({name: columns[name] for name in self.history_columns})

    def clear_history(self) -> None:
        self.history.data = {name: np.array([], dtype=float) for name in self.history_columns}


def input_colors(field: str = "x"):
    """Colour by the input value x ∈ [-1, 1], the same in every plot of a page."""
    return linear_cmap(field, Viridis256, -1.0, 1.0)


def input_colorbar(fig, title: str = "input x") -> None:
    mapper = input_colors()["transform"]
    fig.add_layout(ColorBar(color_mapper=mapper, title=title, width=10, title_text_font_size="11px"), "right")


OUTSIDE = ("above", "below", "right")


def style_legend(fig, location: str = "top_left", columns: int | None = None) -> None:
    """A legend in a corner of the frame the data leave free, or off the frame: ``location`` "above"
    (under the title), "below" or "right"; above or below, more than two items take two columns unless
    ``columns`` says how many (short labels fit in one row)."""
    if location in OUTSIDE:
        legend = fig.legend[0]
        fig.center = [item for item in fig.center if item is not legend]
        fig.add_layout(legend, location)
        legend.orientation = "vertical" if location == "right" else "horizontal"
        legend.location = "top_left" if location == "right" else "center"
        legend.margin = 0
        if location != "right" and len(legend.items) > 2:
            legend.ncols = columns or 2  # two columns fit a grid cell's width
    else:
        fig.legend.location = location
    fig.legend.label_text_font_size = "11px"
    fig.legend.background_fill_alpha = 0.75
    fig.legend.padding = 4
    one_row = location in ("above", "below") and len(fig.legend[0].items) <= max(2, columns or 0)
    fig.legend.spacing = 12 if one_row else 0  # items side by side must not run into each other
    fig.legend.click_policy = "hide"


def nfe_figure(history, title: str = "Evaluations of f per iteration (NFE)"):
    """NFE-forward and NFE-backward (adjoint) against training iteration, from a history source."""
    fig = figure(title, "training iteration", "evaluations of f (NFE)")
    forward = fig.line("iteration", "nfe_forward", source=history, color=ODE_COLOR, line_width=2,
                       legend_label="NFE forward")
    backward = fig.line("iteration", "nfe_backward", source=history, color=BACKWARD_COLOR, line_dash="dashed",
                        legend_label="NFE backward (adjoint)")
    hover(fig, [forward, backward], [("iteration", "@iteration"), ("forward", "@nfe_forward"),
                                             ("backward", "@nfe_backward")])
    style_legend(fig, "above")  # inside, it covered the backward curve where NFE runs highest
    return fig


# ---- presenter mode: the same figures, readable from the back of a room --------------------------
PRESENTING_FONTS = {"title": "18px", "axis_label": "16px", "tick": "14px", "legend": "15px"}
NORMAL_FONTS = {"title": "13px", "axis_label": "12px", "tick": "11px", "legend": "11px"}
PRESENTING_LINE_SCALE = 1.6


def present(fig, presenting: bool) -> None:
    """Larger type and thicker lines on ``fig`` while ``presenting``; back to normal when not."""
    if not hasattr(fig, "title") or fig.title is None:
        return
    fonts = PRESENTING_FONTS if presenting else NORMAL_FONTS
    fig.title.text_font_size = fonts["title"]
    for axis in (*fig.xaxis, *fig.yaxis):
        axis.axis_label_text_font_size = fonts["axis_label"]
        axis.major_label_text_font_size = fonts["tick"]
    for legend in fig.select(type=Legend):
        legend.label_text_font_size = fonts["legend"]
    scale = PRESENTING_LINE_SCALE if presenting else 1 / PRESENTING_LINE_SCALE
    for renderer in fig.select(type=GlyphRenderer):
        glyph = renderer.glyph
        if "line_width" in glyph.properties() and isinstance(glyph.line_width, (int, float)):
            glyph.line_width = glyph.line_width * scale
