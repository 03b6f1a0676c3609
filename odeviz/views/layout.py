"""How a page sits on a screen: plots in a grid sized to the window, a header of fixed height,
presenter mode, a light/dark choice and the keyboard (Space = Train/Pause, S = Step, R = Reset).

Nothing here moves when training starts: the grid's rows are sized from the window's height, not
from what the plots hold, and every line that fills in later (the status line) has its height
reserved from the start. So at 1280×720 the first two rows of plots are above the fold.
"""
from __future__ import annotations

import panel as pn
import param

HEADER_PX = 168  # title, intro and status line: the plots' rows share the rest of the window's height
PRESENTING_HEADER_PX = 76  # presenting: no intro
FOLD_ROWS = 2  # rows of plots above the fold
MIN_ROW_PX = 210  # below this the plots stop shrinking and the page scrolls
INTRO_LINES = 4  # the intro box's height; a longer intro scrolls inside it
STATUS_PX = 26

GRID_CSS = f"""
:host {{
  display: grid !important;
  grid-template-columns: repeat(var(--odeviz-columns, 3), minmax(0, 1fr));
  grid-auto-rows: max({MIN_ROW_PX}px, calc((100vh - var(--odeviz-header, {HEADER_PX}px)) / {FOLD_ROWS}));
  gap: 4px 8px;
  width: 100%;
}}
:host > *, .bk-Figure, .bk-panel-models-layout-Column {{ width: 100% !important; height: 100% !important; min-width: 0; }}
"""
INTRO_CSS = f"""
:host {{ height: calc({INTRO_LINES} * 1.45em + 4px); overflow-y: auto; font-size: 13px; line-height: 1.45;
         color: var(--panel-on-background-color, #444); opacity: 0.85; }}
:host p {{ margin: 0; }}
"""
STATUS_CSS = f"""
:host {{ height: {STATUS_PX}px; overflow: hidden; }}
:host .bk-panel-models-markup-HTML, :host div {{ white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
"""
SIDEBAR_CSS = """
:host { background: var(--panel-surface-color, #f6f7f9); border-radius: 6px;
        /* Its own scroll, the window's height: knobs and readouts that grow while training move nothing else. */
        position: sticky; top: 5px; max-height: calc(100vh - 10px); overflow-y: auto; }
"""


def plot_grid(*cells, columns: int = 3, span: dict[int, int] | None = None, tall: dict[int, int] | None = None) -> pn.Column:
    """``cells`` (plots, or columns holding a plot) in a grid of ``columns`` equal columns whose rows
    share the window's height; ``span`` maps a cell's index to the number of columns it takes, ``tall``
    to the number of rows."""
    for index, columns_taken in (span or {}).items():
        cells[index].styles = {**cells[index].styles, "grid-column": f"span {columns_taken}"}
    for index, rows_taken in (tall or {}).items():
        cells[index].styles = {**cells[index].styles, "grid-row": f"span {rows_taken}"}
    # stretch_both, as Panel makes any container of stretch_both plots (saying so in a warning otherwise).
    return pn.Column(*cells, sizing_mode="stretch_both", stylesheets=[GRID_CSS],
                     styles={"--odeviz-columns": str(columns)}, css_classes=["odeviz-grid"])


def fill_cell(*objects) -> pn.Column:
    """A grid cell holding a widget row above a plot: the plot takes the height the widgets leave."""
    return pn.Column(*objects, sizing_mode="stretch_both", margin=0)


def intro_box(text: str) -> pn.pane.Markdown:
    return pn.pane.Markdown(text, margin=(0, 10), sizing_mode="stretch_width", stylesheets=[INTRO_CSS],
                            css_classes=["odeviz-intro"])


def reserve_status(status_line: pn.Row) -> pn.Row:
    """The status line keeps one line's height whatever it says, so nothing below it moves."""
    status_line.stylesheets = [*status_line.stylesheets, STATUS_CSS]
    status_line.height = STATUS_PX
    return status_line


def session_flag(name: str) -> bool:
    """A flag of the page's URL (``?present=1``), false outside a served session."""
    args = pn.state.session_args if isinstance(pn.state.session_args, dict) else {}
    value = (args.get(name) or [b""])[0]
    return value.decode(errors="replace").lower() in ("1", "true", "yes", "on")


# ---- light / dark: Panel's own theme, chosen by the URL (?theme=dark), for widgets and figures alike
THEME_LINK = """<a class="odeviz-theme" href="#" title="Switch between a light and a dark page (reloads it)"
 style="color: inherit; font-size: 13px; text-decoration: none; border: 1px solid currentColor; opacity: 0.7;
        border-radius: 4px; padding: 3px 8px;"
 onclick="const url = new URL(window.location.href);
          url.searchParams.set('theme', url.searchParams.get('theme') === 'dark' ? 'default' : 'dark');
          window.location.href = url.toString(); return false;">{label}</a>"""


def theme_link() -> pn.pane.HTML:
    label = "☀ Light" if pn.config.theme == "dark" else "☾ Dark"
    return pn.pane.HTML(THEME_LINK.format(label=label), margin=(6, 10))


# ---- the keyboard ------------------------------------------------------------------------------
KEYS_JS = """
const typing = (event) => event.composedPath().some((el) => el.tagName !== undefined &&
  (/^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) || el.isContentEditable));
const actions = {" ": "train", "s": "step", "S": "step", "r": "reset", "R": "reset"};
state.keydown = (event) => {
  const action = actions[event.key];
  if (action === undefined || event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
  event.preventDefault();  // no page scroll on Space, no second click of a focused button
  event.stopPropagation();
  if (event.repeat) return;
  data.action = action;
  data.presses = data.presses + 1;
};
state.keyup = (event) => { if (event.key === " " && !typing(event)) event.preventDefault(); };
window.addEventListener("keydown", state.keydown, true);
window.addEventListener("keyup", state.keyup, true);
"""


class KeyboardShortcuts(pn.reactive.ReactiveHTML):
    """Space = Train/Pause, S = Step, R = Reset, unless the focus is in a text box or a list. Each
    press reaches the server as (``action``, ``presses``); the page does what the button does."""

    action = param.String(default="", doc="the last shortcut pressed: train, step or reset")
    presses = param.Integer(default=0, doc="counts presses, so pressing the same key again is news")

    _template = '<div id="keys" class="odeviz-keys"></div>'
    _scripts = {
        "render": KEYS_JS,
        "remove": 'window.removeEventListener("keydown", state.keydown, true);'
                  'window.removeEventListener("keyup", state.keyup, true);',
    }

    def __init__(self, **params) -> None:
        super().__init__(width=0, height=0, margin=0, **params)
