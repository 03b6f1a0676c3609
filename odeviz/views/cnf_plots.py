"""The CNF page's plots: pure functions from a snapshot to columns, and the figures they fill.

Every 2-D plot shows the same square of the data space and shares its x and y ranges, so panning or
zooming one moves them all. Densities are images (log p for the model, p for the transform frames,
whose colour scale follows each frame's peak so the spreading base stays visible).
"""
from __future__ import annotations

import numpy as np
from bokeh.models import Arrow, ColorBar, FixedTicker, LinearColorMapper, PointDrawTool, Range1d, VeeHead
from bokeh.palettes import Viridis256

from ..experiments.cnf import PLANAR_BANK, CNFSnapshot
from . import figures
from .figures import ODE_COLOR, RESNET_COLOR, TARGET_COLOR

SMALL = 84  # frame side of the small multiples, px
SMALL_FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
LOG_DENSITY_SPAN = 8.0  # nats below the peak that the log-density colour scale shows
PLANAR_COLORS = {2: "#ffc078", 8: "#f76707", 32: "#a33a00"}
DRAWN_COLOR = "#c2255c"
HISTORY_COLUMNS = ("iteration", "nll", *(f"nll_planar_{k}" for k in PLANAR_BANK), "nfe_forward", "nfe_backward")
X_LABEL, Y_LABEL = "x₁ (data units)", "x₂"


IMAGE_COLUMNS = ("image", "x", "y", "dw", "dh")


# ---- pure: snapshot -> columns ---------------------------------------------------------------
def image_columns(values: np.ndarray, extent) -> dict[str, list]:
    x0, x1, y0, y1 = extent
    return dict(zip(IMAGE_COLUMNS, ([values], [x0], [y0], [x1 - x0], [y1 - y0])))


def point_columns(points: np.ndarray) -> dict[str, np.ndarray]:
    return {"x": points[:, 0], "y": points[:, 1]}


def trajectory_columns(particles: np.ndarray, count: int) -> dict[str, list]:
    """The first ``count`` particles' paths through the plane, one line each."""
    return {"xs": [particles[:, i, 0] for i in range(count)], "ys": [particles[:, i, 1] for i in range(count)]}


def arrow_columns(points: np.ndarray, velocity: np.ndarray, spacing: float) -> dict[str, np.ndarray]:
    """Arrows of the field, the fastest one ``spacing`` long, the others in proportion."""
    speed = np.hypot(velocity[:, 0], velocity[:, 1])
    moving = speed > 1e-6 * max(speed.max(), 1e-12)  # an untrained (zero) field draws no arrows
    points, velocity, speed = points[moving], velocity[moving], speed[moving]
    scale = 0.9 * spacing / max(speed.max(initial=0.0), 1e-12)
    return {"x0": points[:, 0], "y0": points[:, 1], "x1": points[:, 0] + scale * velocity[:, 0],
            "y1": points[:, 1] + scale * velocity[:, 1], "speed": speed}


def capacity_columns(capacity: dict) -> dict[str, dict[str, np.ndarray]]:
    return {name: {"capacity": np.asarray(sizes, dtype=float), "nll": np.asarray(nll, dtype=float)}
            for name, (sizes, nll) in capacity.items()}


def frame_label(fraction: float) -> str:
    return f"t = {100 * fraction:.0f} %"


# ---- the figures -----------------------------------------------------------------------------
class CNFFigures:
    """The page's figures; :meth:`show` refills them from a snapshot and :meth:`show_frame` from the
    time slider."""

    def __init__(self) -> None:
        self.x_range, self.y_range = Range1d(-3.0, 3.0), Range1d(-3.0, 3.0)
        names = ("target", "log_density", "samples", "transform", "transform_particles", "paths", "path_particles",
                 "planar", "planar_samples", "capacity_planar", "capacity_cnf")
        self.sources = {name: figures.source(name=f"cnf-{name.replace('_', '-')}") for name in names}
        self.sources["drawn"] = figures.source("x", "y", name="cnf-drawn")
        self.arrows = figures.source("x0", "y0", "x1", "y1", "speed", name="cnf-arrows")
        self.small = [figures.source(name=f"cnf-small-{i}") for i in range(len(SMALL_FRACTIONS))]
        self.history = figures.source(*HISTORY_COLUMNS, name="cnf-history")
        self.mappers: dict[str, LinearColorMapper] = {}
        self.figures = {
            "target": self._target(), "log_density": self._log_density(), "samples": self._samples(),
            "transform": self._transform(), "paths": self._paths(), "planar": self._planar(),
            "nll": self._nll(), "nfe": figures.nfe_figure(self.history, "CNF cost per iteration"), "capacity": self._capacity(),
        }
        self.figures["nfe"].x_range = self.figures["nll"].x_range
        self.small_figures = [self._small(i) for i in range(len(SMALL_FRACTIONS))]

    # -- builders
    def _square(self, title: str, **kwargs):
        return figures.figure(title, X_LABEL, Y_LABEL, x_range=self.x_range, y_range=self.y_range, **kwargs)

    def _image(self, fig, name: str, source, colorbar_title: str | None = None, tip: str = "p(x)"):
        mapper = self.mappers[name] = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0)
        # The page is drawn before its first picture comes: BokehJS cannot build an image glyph whose
        # source lacks its columns, and the whole page would fail to render.
        source.data = {column: [] for column in IMAGE_COLUMNS}
        renderer = fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=source, color_mapper=mapper)
        figures.hover(fig, [renderer], [("x₁", "$x{0.00}"), ("x₂", "$y{0.00}"), (tip, "@image{0.000}")])
        if colorbar_title:
            fig.add_layout(ColorBar(color_mapper=mapper, title=colorbar_title, width=10, title_text_font_size="11px"),
                           "right")
        return renderer

    def _target(self):
        fig = self._square("Target samples")
        fig.scatter("x", "y", source=self.sources["target"], size=2.5, color=TARGET_COLOR, alpha=0.35,
                    legend_label="target samples")
        drawn = fig.scatter("x", "y", source=self.sources["drawn"], size=8, color=DRAWN_COLOR, line_color="white",
                            legend_label="your drawing (✚ tool)")
        self.draw_tool = PointDrawTool(renderers=[drawn], add=True, empty_value=0.0, description="Draw points")
        fig.add_tools(self.draw_tool)
        fig.toolbar.active_tap = self.draw_tool
        figures.hover(fig, [drawn], [("x₁", "@x{0.00}"), ("x₂", "@y{0.00}")])
        figures.style_legend(fig, "above")
        figures.always_in_legend(fig, drawn)
        return fig

    def _log_density(self):
        fig = self._square("Model log-density log p(x)")
        self._image(fig, "log_density", self.sources["log_density"], "log p (nats)", tip="log p(x)")
        return fig

    def _samples(self):
        fig = self._square("Samples from the model")
        fig.scatter("x", "y", source=self.sources["target"], size=2.5, color="#ced4da", legend_label="target")
        fig.scatter("x", "y", source=self.sources["samples"], size=2.5, color=ODE_COLOR, alpha=0.6,
                    legend_label="CNF samples")
        figures.style_legend(fig, "above")
        return fig

    def _transform(self):
        fig = self._square("Density transform")
        self._image(fig, "transform", self.sources["transform"], "p_t(x)", tip="p_t(x)")
        fig.scatter("x", "y", source=self.sources["transform_particles"], size=2, color="white", alpha=0.7,
                    legend_label="particles")
        figures.style_legend(fig, "above")
        return fig

    def _paths(self):
        fig = self._square("Particle paths and the field")
        fig.multi_line("xs", "ys", source=self.sources["paths"], color="#adb5bd", line_width=1,
                       legend_label="paths, base → data")
        fig.add_layout(Arrow(end=VeeHead(size=5, fill_color="#5c7cfa", line_color="#5c7cfa"), source=self.arrows,
                             x_start="x0", y_start="y0", x_end="x1", y_end="y1", line_color="#5c7cfa", line_width=1.2))
        tails = fig.scatter("x0", "y0", source=self.arrows, size=3, color="#5c7cfa", legend_label="field dx/dt")
        fig.scatter("x", "y", source=self.sources["path_particles"], size=5, color=ODE_COLOR, line_color="white",
                    legend_label="particles at t")
        figures.hover(fig, [tails], [("x₁", "@x0{0.00}"), ("x₂", "@y0{0.00}"), ("speed", "@speed{0.00}")])
        figures.style_legend(fig, "above")
        return fig

    def _planar(self):
        fig = self._square("Planar flow")
        self._image(fig, "planar", self.sources["planar"], tip="log p(x)")
        fig.scatter("x", "y", source=self.sources["planar_samples"], size=2, color="white", alpha=0.6,
                    legend_label="planar samples")
        figures.style_legend(fig, "above")
        return fig

    def _small(self, index: int):
        fig = figures.figure(frame_label(SMALL_FRACTIONS[index]), "", "", x_range=self.x_range, y_range=self.y_range,
                             tools="", sizing_mode="fixed", frame_width=SMALL, frame_height=SMALL,
                             width=SMALL + 10, height=SMALL + 30)  # Panel sizes the pane by these (Bokeh's default: 600)
        fig.toolbar_location = None
        fig.axis.visible = False
        fig.grid.visible = False
        self._image(fig, f"small-{index}", self.small[index], tip="p_t(x)")
        return fig

    def _nll(self):
        fig = figures.figure("Training NLL (planar: K layers)", "training iteration", "NLL (nats per point)")
        cnf = fig.line("iteration", "nll", source=self.history, color=ODE_COLOR, line_width=2, legend_label="CNF")
        lines = [cnf]
        for k in PLANAR_BANK:
            lines.append(fig.line("iteration", f"nll_planar_{k}", source=self.history, color=PLANAR_COLORS[k],
                                  legend_label=f"K = {k}"))
        figures.hover(fig, lines, [("iteration", "@iteration"), ("CNF", "@nll{0.000}")]
                      + [(f"planar {k}", f"@nll_planar_{k}{{0.000}}") for k in PLANAR_BANK])
        figures.style_legend(fig, "above", columns=len(lines))  # short labels: one row, off the curves
        return fig


    def _capacity(self):
        fig = figures.figure("Loss against capacity", "K planar layers · M hidden units", "NLL (running mean)",
                             x_axis_type="log")
        renderers = []
        for name, color, label in (("planar", RESNET_COLOR, "planar flow, K layers"),
                                   ("cnf", ODE_COLOR, "CNF, M hidden units")):
            source = self.sources[f"capacity_{name}"]
            fig.line("capacity", "nll", source=source, color=color, line_width=2, legend_label=label)
            renderers.append(fig.scatter("capacity", "nll", source=source, color=color, size=8, legend_label=label))
        figures.hover(fig, renderers, [("capacity", "@capacity"), ("NLL", "@nll{0.000}")])
        fig.x_range.range_padding = fig.y_range.range_padding = 0.25  # no point squeezed into a corner
        fig.xaxis.ticker = FixedTicker(ticks=[2**power for power in range(11)])  # K and M: powers of two, labels apart
        figures.style_legend(fig, "above")
        return fig

    # -- updates (on the session's event loop). Each sends only what changed: the browser redraws
    # whatever a source receives, and serialising it holds the GIL the training thread needs.
    def show(self, snapshot: CNFSnapshot, frame: int, previous: CNFSnapshot | None = None) -> None:
        """Refill the figures from ``snapshot``; parts equal to those of ``previous`` (the snapshot shown
        before, if any) are not sent again."""
        if previous is None or snapshot.target_points is not previous.target_points:
            x0, x1, y0, y1 = snapshot.extent
            if (self.x_range.start, self.x_range.end, self.y_range.start, self.y_range.end) != snapshot.extent:
                self.x_range.update(start=x0, end=x1)  # only on a new target: keep the user's zoom otherwise
                self.y_range.update(start=y0, end=y1)
            self.sources["target"].data = point_columns(snapshot.target_points)
            self.figures["target"].title.text = f"Target: {snapshot.target}"
        self.sources["samples"].data = point_columns(snapshot.particles[-1])
        self.sources["paths"].data = trajectory_columns(snapshot.particles, 48)
        for name, columns in capacity_columns(snapshot.capacity).items():
            self.sources[f"capacity_{name}"].data = columns
        if previous is None or snapshot.density_version != previous.density_version:
            self._show_densities(snapshot)
            self._show_frame_densities(snapshot, frame)
        self._show_frame_particles(snapshot, frame)

    def _show_densities(self, snapshot: CNFSnapshot) -> None:
        model = snapshot.log_density[-1]
        self.sources["log_density"].data = image_columns(model, snapshot.extent)
        self.mappers["log_density"].update(low=float(model.max()) - LOG_DENSITY_SPAN, high=float(model.max()))
        self.sources["planar"].data = image_columns(snapshot.planar_log_density, snapshot.extent)
        self.mappers["planar"].update(low=float(snapshot.planar_log_density.max()) - LOG_DENSITY_SPAN,
                                      high=float(snapshot.planar_log_density.max()))
        self.sources["planar_samples"].data = point_columns(snapshot.planar_samples)
        for index, fraction in enumerate(SMALL_FRACTIONS):
            density = np.exp(snapshot.log_density[int(np.argmin(np.abs(snapshot.fractions - fraction)))])
            self.small[index].data = image_columns(density, snapshot.extent)
            self.mappers[f"small-{index}"].update(low=0.0, high=float(density.max()))
        self.figures["log_density"].title.text = f"CNF log-density, held-out NLL {snapshot.held_out_nll:.3f}"
        self.figures["planar"].title.text = (f"Planar flow, K = {snapshot.planar_layers}: "
                                             f"held-out NLL {snapshot.planar_held_out_nll:.3f}")

    def show_frame(self, snapshot: CNFSnapshot, frame: int) -> None:
        """The transform and the paths plot at density frame ``frame`` (the time slider)."""
        self._show_frame_densities(snapshot, frame)
        self._show_frame_particles(snapshot, frame)

    @staticmethod
    def _clamp(snapshot: CNFSnapshot, frame: int) -> int:
        return min(max(int(frame), 0), len(snapshot.fractions) - 1)

    def _show_frame_densities(self, snapshot: CNFSnapshot, frame: int) -> None:
        frame = self._clamp(snapshot, frame)
        density = np.exp(snapshot.log_density[frame])
        self.sources["transform"].data = image_columns(density, snapshot.extent)
        self.mappers["transform"].update(low=0.0, high=float(density.max()))
        label = frame_label(snapshot.fractions[frame])
        self.figures["transform"].title.text = f"Density transform at {label}"
        self.figures["paths"].title.text = f"Particle paths and the field at {label}"

    def _show_frame_particles(self, snapshot: CNFSnapshot, frame: int) -> None:
        frame = self._clamp(snapshot, frame)
        particles = snapshot.particles[snapshot.frame_of_path[frame]]
        self.sources["transform_particles"].data = point_columns(particles[:400])
        self.sources["path_particles"].data = point_columns(particles[:48])
        spacing = (snapshot.extent[1] - snapshot.extent[0]) / (np.sqrt(len(snapshot.field_points)) + 1)
        self.arrows.data = arrow_columns(snapshot.field_points, snapshot.field_velocity[frame], spacing)

    def append_history(self, columns: dict[str, np.ndarray]) -> None:
        self.history.stream({name: columns.get(name, np.full(len(columns["iteration"]), np.nan))
                             for name in HISTORY_COLUMNS})

    def clear_history(self) -> None:
        self.history.data = {name: np.array([], dtype=float) for name in HISTORY_COLUMNS}

    def drawn_points(self) -> np.ndarray:
        data = self.sources["drawn"].data
        return np.stack([np.asarray(data["x"], dtype=float), np.asarray(data["y"], dtype=float)], 1)

    def clear_drawing(self) -> None:
        self.sources["drawn"].data = {"x": np.array([], dtype=float), "y": np.array([], dtype=float)}
