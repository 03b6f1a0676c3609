"""The Table 1 page's plots: pure functions from a snapshot to columns, and the figures they fill.

The table is a Bokeh DataTable on a named source (``table1-rows``), refilled in place like every plot.
"""
from __future__ import annotations

import math

import numpy as np
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    DataTable,
    FixedTicker,
    Legend,
    LegendItem,
    LinearColorMapper,
    NumeralTickFormatter,
    Range1d,
    StringFormatter,
    TableColumn,
)
from bokeh.palettes import RdBu11

from ..experiments.table1 import HIDDEN_CHANNELS, MODEL_LABELS, MODELS
from ..experiments.table1_results import HiddenStates, ModelRow, Table1Snapshot
from ..experiments.table1_memory import MemorySweep
from . import figures
from .figures import ODE_COLOR, RESNET_COLOR

MODEL_COLORS = {"mlp": "#868e96", "resnet": RESNET_COLOR, "rknet": "#2f9e44", "odenet": ODE_COLOR}
TABLE_COLUMNS = (
    # (source column, heading, width, from the paper?)
    ("model", "Model", 95, False),
    ("status", "Status", 105, False),
    ("test_error", "Test error (± std)", 150, False),
    ("paper_error", "paper", 55, True),
    ("params", "Params", 70, False),
    ("paper_params", "paper", 60, True),
    ("memory", "Activations / batch", 120, False),
    ("paper_memory", "paper", 50, True),
    ("seconds", "s / epoch", 70, False),
    ("paper_time", "paper time", 70, True),
    ("nfe_forward", "NFE-F", 55, False),
    ("nfe_backward", "NFE-B", 55, False),
)
TILE = 0.07  # a hidden-state tile's width in units of time t (depth k/L)
TILE_PX = 26  # the test digit's pixel (the hidden strips stretch to their grid cells)
# Test error in %, on a log axis from ERROR_FLOOR to 100. A 0 % error is drawn at the floor; hover tells.
ERROR_FLOOR = 0.2


# ---- pure: snapshot -> columns ---------------------------------------------------------------
def _number(value: float, text: str) -> str:
    return "–" if math.isnan(value) else text


def byte_size(count: float) -> str:
    for unit, size in (("MB", 1e6), ("KB", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count:.0f} B"


def status_text(row: ModelRow) -> str:
    if row.status == "waiting":
        return "waiting"
    return f"{row.status} {row.epochs_done}/{row.epochs}" if row.status != "done" else f"done ({row.epochs} ep.)"


def error_text(row: ModelRow) -> str:
    """The test error, as mean ± std (min–max) once two or more seeds are done."""
    if not np.isfinite(row.test_error_std):
        return _number(row.test_error, f"{row.test_error:.2f} %")
    errors = row.seed_errors
    return f"{errors.mean():.2f} ± {row.test_error_std:.2f} % ({errors.min():.1f}–{errors.max():.1f})"


def table_columns(rows: tuple[ModelRow, ...]) -> dict[str, list[str]]:
    """One string per cell: the measured values beside the paper's; '–' where there is none."""
    cells = {name: [] for name, *_ in TABLE_COLUMNS}
    for row in rows:
        for name, text in (
            ("model", row.label),
            ("status", status_text(row)),
            ("test_error", error_text(row)),
            ("paper_error", f"{row.paper.test_error:.2f} %"),
            ("params", f"{row.params:,}"),
            ("paper_params", row.paper.params),
            ("memory", byte_size(row.activation_bytes)),
            ("paper_memory", row.paper.memory),
            ("seconds", _number(row.seconds_per_epoch, f"{row.seconds_per_epoch:.2f}")),
            ("paper_time", row.paper.time),
            ("nfe_forward", _number(row.nfe_forward, f"{row.nfe_forward:.1f}")),
            ("nfe_backward", _number(row.nfe_backward, f"{row.nfe_backward:.1f}")),
        ):
            cells[name].append(text)
    return cells


def error_columns(errors: np.ndarray) -> dict[str, np.ndarray]:
    """A model's test error (%) after each epoch, and where it is drawn on the log axis."""
    return {"epoch": np.arange(1, len(errors) + 1, dtype=float), "error": errors, "drawn": np.maximum(errors, ERROR_FLOOR)}


def epoch_axis_end(rows: tuple[ModelRow, ...]) -> float:
    """The epoch axis spans the whole planned training, a little past the last epoch for its markers."""
    epochs = max((row.epochs for row in rows), default=1)
    return epochs + max(0.15, 0.04 * epochs)


def memory_columns(sweep: MemorySweep) -> dict[str, np.ndarray]:
    """The sweep in MB, per batch."""
    return {
        "depth": sweep.depths.astype(float),
        "resnet": sweep.resnet / 1e6,
        "rknet": sweep.rknet / 1e6,
        "odenet": sweep.odenet_adjoint / 1e6,
    }


def loss_columns(columns: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """New history rows split by model: each model's training loss against its fractional epoch."""
    split = {}
    for index, key in enumerate(MODELS):
        mine = columns["model"] == index
        if mine.any():
            split[key] = {"epoch": columns["epoch"][mine], "loss": columns["loss"][mine]}
    return split


def tile_columns(times: np.ndarray, states: np.ndarray, channels: np.ndarray) -> dict[str, list]:
    """Feature maps (time, channel, s, s) as image tiles: a column per time, a row per channel (top first)."""
    columns = {name: [] for name in ("image", "x", "y", "dw", "dh", "t", "channel")}
    rows = len(channels)
    for i, t in enumerate(times):
        for r, channel in enumerate(channels):
            columns["image"].append(np.flipud(states[i, r]).astype(np.float32))  # Bokeh draws row 0 at the bottom
            columns["x"].append(float(t) - TILE / 2)
            columns["y"].append(float(rows - 1 - r) + 0.05)
            columns["dw"].append(TILE)
            columns["dh"].append(0.9)
            columns["t"].append(float(t))
            columns["channel"].append(int(channel))
    return columns


def symmetric_range(states: np.ndarray) -> float:
    return float(max(np.abs(states).max(), 1e-6))


def predictions_text(hidden: HiddenStates) -> str:
    return ", ".join(f"{MODEL_LABELS[key]} <b>{guess}</b>" for key, guess in hidden.predictions.items())


def _one_two_five_ticks(fig) -> None:
    """Log y ticks at 1, 2 and 5 times the powers of ten, as plain numbers: Bokeh's own log ticks
    crowd 50…90 at the top of a short decade and label nothing between the powers of a long range."""
    ticks = [round(m * 10.0**e, 6) for e in range(-5, 3) for m in (1, 2, 5)]
    fig.yaxis.ticker = FixedTicker(ticks=ticks, minor_ticks=[])
    fig.yaxis.formatter = NumeralTickFormatter(format="0.[00000]")


def _model_legend(fig, renderers: dict[str, list]) -> None:
    """One entry per model in a row above the frame, where no curve can hide behind it."""
    items = [LegendItem(label=MODEL_LABELS[key], renderers=renderers[key]) for key in MODELS]
    fig.add_layout(Legend(items=items, orientation="horizontal", click_policy="hide", label_text_font_size="11px",
                          padding=2, spacing=6, margin=2, glyph_width=16, border_line_alpha=0), "above")


# ---- the figures -----------------------------------------------------------------------------
class Table1Figures:
    """The table, learning curves, the memory sweep and the hidden-state strips; refilled in place."""

    def __init__(self) -> None:
        self.rows = ColumnDataSource({name: [] for name, *_ in TABLE_COLUMNS}, name="table1-rows")
        self.table = DataTable(
            source=self.rows, index_position=None, sortable=False, reorderable=False, height=150,
            sizing_mode="stretch_width",
            columns=[
                TableColumn(field=name, title=title, width=width,
                            formatter=StringFormatter(text_color="#868e96" if paper else "#111111",
                                                      font_style="italic" if paper else "normal"))
                for name, title, width, paper in TABLE_COLUMNS
            ],
        )
        self.losses = {key: figures.source("epoch", "loss", name=f"loss-{key}") for key in MODELS}
        self.epochs = Range1d(0, 1)  # shared by the loss and error plots; set to the epochs planned
        self.errors = {key: figures.source("epoch", "error", "drawn", name=f"error-{key}") for key in MODELS}
        self.memory = figures.source("depth", "resnet", "rknet", "odenet", name="memory-sweep")
        self.digit = figures.source("image", name="digit")
        self.tiles = {name: figures.source("image", "x", "y", "dw", "dh", "t", "channel", name=f"hidden-{name}")
                      for name in ("resnet", "ode")}
        # Blue below 0, white at 0, red above; one symmetric scale for both strips, set from the states
        # drawn, so a colour means the same value in the ResNet's blocks and the ODE-Net's times.
        self.hidden_colors = LinearColorMapper(palette=RdBu11, low=-1, high=1)
        self._shown_memory: MemorySweep | None = None
        self._shown_hidden: HiddenStates | None = None
        self.figures = {
            "loss": self._loss(), "error": self._error(), "memory": self._memory(),
        }
        self.hidden_figures = {"digit": self._digit(), "resnet": self._hidden("resnet"), "ode": self._hidden("ode")}

    def _loss(self):
        fig = figures.figure("Training loss", "epoch", "cross-entropy (per batch)", y_axis_type="log",
                             x_range=self.epochs)
        _one_two_five_ticks(fig)
        lines = {key: [fig.line("epoch", "loss", source=self.losses[key], color=MODEL_COLORS[key], alpha=0.8)]
                 for key in MODELS}
        figures.hover(fig, [line for group in lines.values() for line in group],
                      [("epoch", "@epoch{0.00}"), ("loss", "@loss{0.000}")])
        _model_legend(fig, lines)
        return fig

    def _error(self):
        fig = figures.figure("Test error after each epoch", "epoch", "test error (%)", y_axis_type="log",
                             x_range=self.epochs, y_range=Range1d(ERROR_FLOOR, 100))
        _one_two_five_ticks(fig)
        renderers = {key: [fig.line("epoch", "drawn", source=self.errors[key], color=MODEL_COLORS[key], line_width=2),
                           fig.scatter("epoch", "drawn", source=self.errors[key], color=MODEL_COLORS[key], size=6)]
                     for key in MODELS}
        figures.hover(fig, [group[1] for group in renderers.values()],
                      [("epoch", "@epoch"), ("test error", "@error{0.00} %")])
        _model_legend(fig, renderers)
        return fig

    def _memory(self):
        fig = figures.figure("Memory kept for the backward pass", "ResNet blocks L · RK4 steps L̃",
                             "activations per batch (MB)")
        series = (("resnet", "ResNet: O(L)", RESNET_COLOR), ("rknet", "RK-Net, through the solver: O(L̃)", "#2f9e44"),
                  ("odenet", "ODE-Net, adjoint: O(1)", ODE_COLOR))
        renderers = []
        for column, label, color in series:
            fig.line("depth", column, source=self.memory, color=color, line_width=2, legend_label=label)
            renderers.append(fig.scatter("depth", column, source=self.memory, color=color, size=6, legend_label=label))
        figures.hover(fig, renderers, [("L or L̃", "@depth"), ("ResNet", "@resnet{0.00} MB"),
                                       ("RK-Net", "@rknet{0.00} MB"), ("ODE-Net", "@odenet{0.00} MB")])
        figures.style_legend(fig, "top_left")
        return fig

    def _digit(self):
        fig = figures.figure("Test digit", "", "", x_range=Range1d(0, 1), y_range=Range1d(0, 1), tools="save",
                             sizing_mode="fixed", frame_width=4 * TILE_PX, frame_height=4 * TILE_PX)
        fig.image("image", x=0, y=0, dw=1, dh=1, source=self.digit, palette="Greys256")
        fig.axis.visible = False
        fig.grid.visible = False
        return fig

    def _hidden(self, name: str):
        title, x_label = {"resnet": ("ResNet: hidden state after each block", "depth k/L (after block k of L)"),
                          "ode": ("ODE-Net: hidden state h(t) through time", "time t")}[name]
        fig = figures.figure(title, x_label, "channel", x_range=Range1d(-0.05, 1.05),
                             y_range=Range1d(0, HIDDEN_CHANNELS), tools="hover,save")
        fig.image("image", x="x", y="y", dw="dw", dh="dh", source=self.tiles[name], color_mapper=self.hidden_colors)
        fig.hover.tooltips = [("channel", "@channel"), ("t", "@t{0.00}"), ("value", "@image{0.00}")]
        fig.yaxis.ticker = FixedTicker(ticks=[], minor_ticks=[])  # a tick per row, named in show_hidden
        fig.yaxis.major_tick_line_color = None
        if name == "ode":  # the one scale both strips share, at the right of the pair
            fig.add_layout(ColorBar(color_mapper=self.hidden_colors, width=10, title="value", title_text_font_size="11px",
                                    title_text_font_style="normal", padding=4), "right")
        fig.grid.visible = False
        return fig

    # ---- updates (on the session's event loop) --------------------------------------------
    def show(self, snapshot: Table1Snapshot) -> None:
        cells = table_columns(snapshot.rows)
        if cells != self.rows.data:
            # BokehJS 3.9's DataTable redraws replaced data only when the row count changes (measured
            # in Chromium): empty it first, in a message of its own, so every update is drawn.
            self.rows.data = {name: [] for name in cells}
            self.rows.data = cells
        # Only what changed is sent: snapshots come at 10 Hz, the errors once an epoch, the memory sweep
        # on a rebuild, the hidden states at most once a second (the same objects until then).
        shown = {row.key: row.test_errors for row in snapshot.rows}
        for key in MODELS:
            errors = shown.get(key, np.array([], dtype=float))
            if not np.array_equal(self.errors[key].data["error"], errors):
                self.errors[key].data = error_columns(errors)
        if snapshot.memory is not self._shown_memory:
            self._shown_memory = snapshot.memory
            self.memory.data = memory_columns(snapshot.memory)
            self.figures["memory"].title.text = f"Memory kept for backward, batch of {snapshot.memory.batch_size}"
        end = epoch_axis_end(snapshot.rows)
        if self.epochs.end != end:  # only when the epochs change: a user's zoom stays otherwise
            self.epochs.update(start=0, end=end)
        if snapshot.hidden is not self._shown_hidden:
            self._shown_hidden = snapshot.hidden
            self.show_hidden(snapshot.hidden)

    def show_hidden(self, hidden: HiddenStates) -> None:
        bound = max(symmetric_range(hidden.resnet_states), symmetric_range(hidden.ode_states))
        self.hidden_colors.update(low=-bound, high=bound)
        self.digit.data = {"image": [np.flipud(hidden.digit)]}
        self.hidden_figures["digit"].title.text = f"Test digit #{hidden.index}: a {hidden.label}"
        for name, times, states, channels in (
            ("resnet", hidden.resnet_depths, hidden.resnet_states, hidden.resnet_channels),
            ("ode", hidden.ode_times, hidden.ode_states, hidden.ode_channels),
        ):
            self.tiles[name].data = tile_columns(times, states, channels)
            fig = self.hidden_figures[name]
            fig.y_range.end = len(channels)  # fewer when the model has fewer channels
            fig.yaxis.ticker.ticks = [len(channels) - 0.5 - row for row in range(len(channels))]
            fig.yaxis.major_label_overrides = {len(channels) - 0.5 - row: f"#{channel}"
                                               for row, channel in enumerate(channels)}

    def append_history(self, columns: dict[str, np.ndarray]) -> None:
        for key, new in loss_columns(columns).items():
            self.losses[key].stream(new)

    def clear_history(self) -> None:
        for source in self.losses.values():
            source.data = {"epoch": np.array([], dtype=float), "loss": np.array([], dtype=float)}
