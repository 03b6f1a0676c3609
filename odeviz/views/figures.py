"""Figure builders every page shares: one look, fixed frames, hover tools, the input colour map.

Pages draw with Bokeh figures whose ColumnDataSources are updated in place from snapshots: at 10
frames per second this costs about 4 ms per frame, where re-rendering HoloViews elements through
Pipe streams cost about 150 ms (profiled on this page's first version), starving both the event
loop and, through the GIL, the training thread.
"""
from __future__ import annotations

import numpy as np
from bokeh.models import ColorBar, ColumnDataSource, HoverTool
from bokeh.palettes import Viridis256
from bokeh.plotting import figure as bokeh_figure
from bokeh.transform import linear_cmap

FRAME_WIDTH, FRAME_HEIGHT = 330, 230
ODE_COLOR, RESNET_COLOR, TARGET_COLOR, BACKWARD_COLOR = "#2b59c3", "#e8590c", "#222222", "#7048e8"
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def figure(title: str, x_label: str, y_label: str, **kwargs):
    """A Bokeh figure with odeviz's fixed frame size (so on-screen directions can be computed)."""
    fig = bokeh_figure(
        title=title, x_axis_label=x_label, y_axis_label=y_label, frame_width=FRAME_WIDTH, frame_height=FRAME_HEIGHT,
        tools=kwargs.pop("tools", TOOLS), toolbar_location="above", **kwargs,
    )
    fig.toolbar.logo = None
    fig.toolbar.autohide = True
    fig.title.text_font_size = "13px"
    fig.axis.axis_label_text_font_style = "normal"
    fig.axis.axis_label_text_font_size = "12px"
    fig.grid.grid_line_alpha = 0.5
    return fig


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


def style_legend(fig, location: str = "top_left") -> None:
    fig.legend.location = location
    fig.legend.label_text_font_size = "11px"
    fig.legend.background_fill_alpha = 0.75
    fig.legend.padding = 4
    fig.legend.spacing = 0
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
    style_legend(fig, "top_left")
    return fig
