"""What a page exports, and the buttons for it in the page's sidebar.

- **PNG** of every plot on the page, composed in the browser (see :func:`png_script`): the browser
  has already drawn the figures, so the picture is exactly what is on screen, and the server needs no
  webdriver or headless browser (Bokeh's ``export_png`` would need selenium and chromedriver).
- **Standalone HTML** of the same figures (Bokeh's ``file_html`` with inline resources): interactive,
  offline, no server.
- **GIF** of the flow over time, rasterised on the server from the snapshot (:mod:`.animation`).
- **CSV** of the page's table (Table 1).

The CLI's ``--export DIR`` builds the page's view over its trained experiment, headless, and calls
:func:`write_exports`: the same files as the buttons, but the PNG (which needs a browser).
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import panel as pn
from bokeh.core.templates import get_env
from bokeh.models import Plot
from bokeh.resources import Resources

from ..experiments.table1_results import Table1Snapshot
from .animation import animation_for, frame_count, gif_bytes
from .controls import notify_error
from .text import escape_html

HTML_TEMPLATE = get_env().from_string("""{% extends "file.html.jinja" %}
{% block contents %}
<header style="font-family: system-ui, sans-serif; padding: 8px 16px"><h2 style="margin: 4px 0">{{ heading }}</h2>
<div style="color: #555">{{ note }}</div></header>
<div class="odeviz-export" style="display: flex; flex-wrap: wrap; gap: 8px; padding: 8px 16px">{{ super() }}</div>
{% endblock %}""")
TABLE_FIELDS = ("model", "status", "epochs_done", "epochs", "test_error_percent", "params", "activation_bytes",
                "seconds_per_epoch", "nfe_forward", "nfe_backward", "paper_test_error_percent", "paper_params",
                "paper_memory", "paper_time")


class BokehInline(Resources):
    """Bokeh's own JavaScript and CSS inline, and nothing else. Plain ``Resources`` also lists the
    external scripts of every model class loaded, used or not: Panel's module shim, at a URL relative
    to a server, which a file opened offline cannot load."""

    def __init__(self, components=None) -> None:
        super().__init__(mode="inline", components=components)

    def clone(self, *, components=None) -> BokehInline:  # file_html clones it with the components used
        return BokehInline(components if components is not None else list(self.components))

    def _collect_external_resources(self, resource_attr) -> list[str]:
        return []


# ---- the files --------------------------------------------------------------------------------
def page_slug(page) -> str:
    from . import PAGES  # the page modules import this one

    return next((slug for slug, page_class in PAGES.items() if type(page) is page_class), "page")


def shown_models(page) -> list:
    """The Bokeh models (figures, tables) the page shows, in the order they appear."""
    return [pane.object for pane in page._layout.select(pn.pane.Bokeh) if pane.object is not None and pane.visible]


def _note(page) -> str:
    snapshot = page.stream.snapshot
    return (f"exported from odeviz at iteration {snapshot.iteration}" if snapshot is not None and hasattr(snapshot, "iteration")
            else "exported from odeviz")


def standalone_html(page) -> str:
    """The page's figures as one HTML file that works offline: Bokeh's JavaScript inline, no server."""
    from bokeh.embed import file_html

    # Figures of a live document: file_html re-homes them in a temporary document while it writes.
    return file_html(shown_models(page), BokehInline(), title=f"odeviz · {page.title}", template=HTML_TEMPLATE,
                     template_variables={"heading": escape_html(page.title), "note": escape_html(_note(page))},
                     suppress_callback_warning=True)


def _table1_rows(snapshot: Table1Snapshot) -> list[dict]:
    return [{
        "model": row.label, "status": row.status, "epochs_done": row.epochs_done, "epochs": row.epochs,
        "test_error_percent": row.test_error, "params": row.params, "activation_bytes": row.activation_bytes,
        "seconds_per_epoch": row.seconds_per_epoch, "nfe_forward": row.nfe_forward, "nfe_backward": row.nfe_backward,
        "paper_test_error_percent": row.paper.test_error, "paper_params": row.paper.params,
        "paper_memory": row.paper.memory, "paper_time": row.paper.time,
    } for row in snapshot.rows]


# Snapshots that hold a table: (file stem, columns, rows of the snapshot). Table 2 goes here too.
TABLES = {Table1Snapshot: ("table1", TABLE_FIELDS, _table1_rows)}


def table_csv(snapshot) -> tuple[str, str] | None:
    """(file name, CSV text) of the snapshot's table; None for a snapshot without one. Empty cells
    where nothing was measured yet."""
    entry = next((entry for kind, entry in TABLES.items() if isinstance(snapshot, kind)), None)
    if entry is None:
        return None
    stem, fields, rows_of = entry
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows_of(snapshot):
        writer.writerow({name: "" if isinstance(value, float) and value != value else value for name, value in row.items()})
    return f"{stem}.csv", text.getvalue()


def animation_gif(snapshot) -> tuple[str, bytes] | None:
    """(file name, GIF) of the snapshot's flow over time; None for a snapshot without one."""
    entry = animation_for(snapshot)
    if entry is None:
        return None
    stem, frames_of = entry
    return f"{stem}.gif", gif_bytes(list(frames_of(snapshot)))


def write_exports(page, folder: Path) -> list[Path]:
    """Write the page's HTML, and its table's CSV and flow's GIF where it has them, into ``folder``
    (made if missing); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {f"odeviz-{page_slug(page)}.html": standalone_html(page).encode("utf-8")}
    snapshot = page.stream.snapshot
    if snapshot is not None:
        for made in (table_csv(snapshot), animation_gif(snapshot)):
            if made is not None:
                name, content = made
                files[name] = content.encode("utf-8") if isinstance(content, str) else content
    written = []
    for name, content in files.items():
        (folder / name).write_bytes(content)
        written.append(folder / name)
    return written


def png_script(figure_ids: list[str], filename: str) -> str:
    """JavaScript that draws every plot of ``figure_ids`` where it is on screen into one canvas and
    downloads it as ``filename``: one PNG of the page's figure grid, at the screen's pixel ratio."""
    return f"""
const views = {json.dumps(figure_ids)}.map((id) => Bokeh.index.find_one_by_id(id))
  .filter((view) => view != null && view.el.isConnected && view.el.getBoundingClientRect().width > 0);
if (views.length == 0) return;
const boxes = views.map((view) => view.el.getBoundingClientRect());
const left = Math.min(...boxes.map((b) => b.left)), top = Math.min(...boxes.map((b) => b.top));
const right = Math.max(...boxes.map((b) => b.right)), bottom = Math.max(...boxes.map((b) => b.bottom));
const layers = views.map((view) => view.export("png", true));
const ratio = layers[0].pixel_ratio;
const canvas = document.createElement("canvas");
canvas.width = Math.round((right - left) * ratio);
canvas.height = Math.round((bottom - top) * ratio);
const context = canvas.getContext("2d");
context.fillStyle = "white";
context.fillRect(0, 0, canvas.width, canvas.height);
layers.forEach((layer, i) => context.drawImage(layer.canvas, Math.round((boxes[i].left - left) * ratio),
                                                Math.round((boxes[i].top - top) * ratio)));
canvas.toBlob((blob) => {{
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = {json.dumps(filename)};
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}}, "image/png");
"""


# ---- the buttons --------------------------------------------------------------------------------
class ExportTools(pn.viewable.Viewer):
    """The sidebar's export buttons for one page: PNG and HTML always, CSV and GIF where the page's
    snapshots have a table or a flow over time."""

    def __init__(self, page, **params) -> None:
        super().__init__(**params)
        self.page = page
        slug = page_slug(page)
        small = dict(sizing_mode="stretch_width", variant="outline", margin=(3, 10))
        self.png = pn.widgets.Button(label="Figures as PNG", css_classes=["odeviz-export-png"], **small)
        plots = [model.id for model in shown_models(page) if isinstance(model, Plot)]
        self.png.js_on_click(code=png_script(plots, f"odeviz-{slug}.png"))
        self.html = pn.widgets.FileDownload(callback=self._html, filename=f"odeviz-{slug}.html",
                                            label="Interactive HTML (offline)", css_classes=["odeviz-export-html"], **small)
        self.csv = pn.widgets.FileDownload(callback=self._csv, filename=f"{slug}.csv", label="Table as CSV",
                                           css_classes=["odeviz-export-csv"], visible=False, **small)
        self.render = pn.widgets.Button(label="Render the flow as GIF", css_classes=["odeviz-export-render"],
                                        visible=False, **small)
        self.render.on_click(self._render_animation)
        self.progress = pn.indicators.Progress(value=0, max=1, visible=False, sizing_mode="stretch_width", margin=(3, 10),
                                               css_classes=["odeviz-export-progress"])
        self.gif = pn.widgets.FileDownload(label="Download the GIF", disabled=True, visible=False,
                                           css_classes=["odeviz-export-gif"], **small)
        page.stream.on_snapshot(self._offer)
        self._layout = pn.Column(pn.pane.Markdown("### Export"), self.png, self.html, self.csv, self.render,
                                 self.progress, self.gif, sizing_mode="stretch_width")

    def _offer(self, snapshot) -> None:
        """Show the buttons for what this kind of snapshot holds (known once the first one arrives)."""
        self.csv.visible = isinstance(snapshot, tuple(TABLES))
        self.render.visible = self.gif.visible = animation_for(snapshot) is not None

    def _html(self):
        return io.StringIO(standalone_html(self.page))

    def _csv(self):
        made = table_csv(self.page.stream.snapshot) if self.page.stream.snapshot is not None else None
        return io.StringIO(made[1] if made else "")

    async def _render_animation(self, _event) -> None:
        snapshot = self.page.stream.snapshot
        entry = animation_for(snapshot) if snapshot is not None else None
        if entry is None:
            notify_error("There is no flow to animate yet: wait for the first picture.")
            return
        stem, frames_of = entry
        self.render.disabled, self.gif.disabled = True, True
        self.progress.param.update(value=0, max=frame_count(snapshot), visible=True)
        try:
            frames, pending = [], frames_of(snapshot)
            # Each frame on a worker thread: the session's event loop keeps serving, the bar moves.
            while (frame := await asyncio.to_thread(next, pending, None)) is not None:
                frames.append(frame)
                self.progress.value = len(frames)
            data = await asyncio.to_thread(gif_bytes, frames)
        except (OSError, ValueError, MemoryError) as error:
            notify_error(f"Could not render the GIF: {error}")
            return
        finally:
            self.render.disabled = False
        self.gif.param.update(file=io.BytesIO(data), filename=f"{stem}.gif", label=f"Download {stem}.gif", disabled=False)

    def __panel__(self):
        return self._layout
