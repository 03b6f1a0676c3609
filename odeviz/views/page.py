"""The frame every page shares, after Panel's data-store / view pattern: the experiment is the store
(a ``param.ClassSelector``), the page a thin ``Viewer`` over it.

:class:`ExperimentPage` owns the experiment, its :class:`SessionStream`, the figures, the training
controls, the header (title, what to look at, the status line) above the plots and the grey sidebar
of knobs on the left. A page declares ``experiment_class``, ``figures_class``, ``title`` and
``intro``, and writes only its settings (:meth:`settings`), its plots (:meth:`plots`) and its drawing
(:meth:`on_snapshot`). It appears at once, "preparing" until the first snapshot arrives through the
normal poll: no page waits on a trainer.
"""
from __future__ import annotations

import panel as pn
import param

from ..experiments import placement
from ..experiments import Experiment
from ..experiments.proxy import ExperimentProxy
from . import layout
from ..experiments.knobs import link_query
from ..runtime import in_served_session
from .controls import TrainingControls, knob_widget, log_slider
from .figures import present
from .live import FOLLOWING, ShareLive, follow_id, followed_experiment
from .export import ExportTools
from .sharing import Link, ModelFiles, copy_link_button, follow_in_url, page_url
from .streaming import SessionStream

SIDEBAR_WIDTH = 300
PREPARING = "<i class='odeviz-preparing'>preparing the models and the first picture…</i>"
UNTRAINED = "untrained: press <b>Train</b> or <b>Step</b>"


def solver_widgets(experiment: Experiment) -> list:
    """The ODE solver's knobs, for any experiment: method, fixed steps, tolerances, adjoint (and the
    adjoint's seminorm where the experiment has one)."""
    params, widget = experiment.param, pn.widgets
    widgets = [
        knob_widget(widget.Select, experiment, "method", label="Method"),
        knob_widget(widget.IntSlider, experiment, "fixed_steps", label="Steps of fixed-grid methods", end=128, throttled=True),
        log_slider(experiment, "rtol", -8, -1),
        log_slider(experiment, "atol", -8, -1),
        knob_widget(widget.Checkbox, experiment, "adjoint", label="Backprop by the adjoint method"),
    ]
    if "seminorm" in params:
        widgets.append(knob_widget(widget.Checkbox, experiment, "seminorm", label="Adjoint with seminorm (fewer backward steps)"))
    return widgets


def plot(figure, margin=(0, 4)) -> pn.pane.Bokeh:
    """A figure as a cell of the page's grid: it fills the cell."""
    return pn.pane.Bokeh(figure, margin=margin, sizing_mode="stretch_both")


class ExperimentPage(pn.viewable.Viewer):
    """One experiment trained live and drawn as it learns (subclass it: see the module's doc)."""

    experiment_class: type[Experiment] = Experiment
    figures_class: type = object
    title = ""
    summary = ""  # one line on what the page teaches, for the index
    intro = ""
    rows_period = 0.0  # > 0: history curves repaint at most this often (seconds)
    above_grid_px = 0  # what a page puts between its header and its grid of plots (rows share what is left)
    one_message_per_poll = True  # False: a poll's changes (picture, rows, status) go to the browser one by one

    experiment = param.ClassSelector(class_=(Experiment, ExperimentProxy), doc="the model layer this page shows "
                                     "(or its stand-in: in a Dask worker, or another session's, followed)")
    presenting = param.Boolean(default=False, doc="presenter mode: no sidebar or intro, larger type and lines")
    owns_url = param.Boolean(default=True, constant=True, doc="the tab's URL is this page's link: read when it "
                             "opens, kept up to date (not inside a lesson, whose URL names its step)")

    def __init__(self, **params) -> None:
        owns_url = params.get("owns_url", True)
        opened_with = Link.of_session(self.experiment_class) if owns_url else Link(self.experiment_class, {})
        self.trained = False  # on a shipped trained model: its link says so
        if params.get("experiment") is None:
            params["experiment"] = followed_experiment(follow_id()) or self._experiment_from_link(opened_with)
        shown = params["experiment"]
        if not issubclass(getattr(shown, "experiment_class", type(shown)), self.experiment_class):
            raise TypeError(f"{type(self).__name__} shows a {self.experiment_class.__name__}, "
                            f"not a {type(shown).__name__}")
        super().__init__(**params)
        self.following = getattr(self.experiment, "leader", None) is not None
        self.share = None if self.following else ShareLive(self.experiment)
        self.stream = SessionStream(self.experiment, rows_period=self.rows_period,
                                    one_message=self.one_message_per_poll,
                                    on_stop=self.share.close if self.share else None)
        self.figures = self.make_figures()
        self.controls = TrainingControls(experiment=self.experiment, describe=self._status)
        self.readout = pn.pane.HTML("", css_classes=["odeviz-readout"], sizing_mode="stretch_width")
        self.stream.on_snapshot(self.on_snapshot)
        self.stream.on_rows(self.on_rows)
        self.stream.on_clear(self.on_clear)
        self.stream.on_poll(self.on_poll)
        self.setup()
        self._build_frame()
        self._sidebar.append(ExportTools(self))  # last: it exports the figures of the layout just made
        self.controls.update()
        if in_served_session():
            pn.state.onload(lambda: self._once_shown(opened_with))
        self._update_url = follow_in_url(self.experiment, self.link) if owns_url else lambda: None

    # ---- the frame: header, sidebar, grid of plots, presenter mode, keyboard ------------------
    def _build_frame(self) -> None:
        self.presenter_toggle = pn.widgets.Toggle.from_param(
            self.param.presenting, name="Presenter mode", width=140, margin=(6, 5),
            css_classes=["odeviz-present"])
        self.keys = layout.KeyboardShortcuts()
        self.keys.param.watch(lambda _event: self._on_shortcut(self.keys.action), "presses")
        self._intro = layout.intro_box(self.intro)
        title = pn.Row(pn.pane.Markdown(f"## {self.title}", margin=(0, 10)), pn.HSpacer(), self.presenter_toggle,
                       layout.theme_link(), self.keys, sizing_mode="stretch_width", height=44)
        header = pn.Column(title, self._intro, layout.reserve_status(self.controls.status_line),
                           sizing_mode="stretch_width")
        self._sidebar = pn.Column(pn.pane.Markdown("### Training"), self.controls, *self._sharing_widgets(), *self.settings(),
                                  *([self.share] if self.share else []), width=SIDEBAR_WIDTH,
                                  stylesheets=[layout.SIDEBAR_CSS], margin=(5, 10))
        if self.following:  # a read-only view: the knobs show the leader's values, and take none
            for widget in self._sidebar.select(pn.widgets.Widget):
                widget.disabled = True
        # stretch_both: what Panel makes of containers of stretch_both plots anyway (with a warning if not said).
        self._main = pn.Column(header, *self.plots(), sizing_mode="stretch_both")
        self._layout = pn.Row(self._sidebar, self._main, sizing_mode="stretch_both")
        self._size_rows()
        self.presenting = self.presenting or layout.session_flag("present")

    def _size_rows(self) -> None:
        """The grid's rows share the window's height below the header and what sits above the grid."""
        header = layout.PRESENTING_HEADER_PX if self.presenting else layout.HEADER_PX
        self._main.styles = {**self._main.styles, "--odeviz-header": f"{header + self.above_grid_px}px"}

    @param.depends("presenting", watch=True, on_init=False)
    def _show_presenting(self) -> None:
        presenting = self.presenting
        self._sidebar.visible = self._intro.visible = not presenting
        self._size_rows()
        for pane in self._layout.select(pn.pane.Bokeh):
            present(pane.object, presenting)

    def _on_shortcut(self, action: str) -> None:
        """A key pressed in the page: the same as pressing the button it stands for."""
        {"train": self.controls.train_button, "step": self.controls.step_button,
         "reset": self.controls.reset_button}[action].clicks += 1

    # ---- what a page may override --------------------------------------------------------------
    def make_experiment(self, **params) -> Experiment | ExperimentProxy:
        """The experiment shown when none is given (with the link's knobs, or a saved ``state``): made
        at once, its models built where it trains (its own thread here, or a Dask worker when
        ``odeviz serve --workers`` runs)."""
        return placement.make_experiment(self.experiment_class, **params)

    def make_figures(self):
        return self.figures_class()

    def setup(self) -> None:
        """Make the page's own widgets and listeners (called before :meth:`settings` and :meth:`plots`)."""

    def settings(self) -> list:
        """The sidebar's knobs, below Train/Step/Reset."""
        return []

    def plots(self) -> list:
        """What goes below the header: by default every figure, in a grid whose first two rows fill
        the window (see :mod:`.layout`)."""
        return [layout.plot_grid(*(plot(figure) for figure in self.figures.figures.values()))]

    def on_snapshot(self, snapshot) -> None:
        """Draw a new snapshot (never None)."""

    def on_rows(self, rows) -> None:
        self.figures.append_history(rows)

    def on_clear(self) -> None:
        self.figures.clear_history()

    def on_poll(self) -> None:
        self.controls.update()

    def describe(self) -> str:
        """The page's part of the status line (HTML): by default the last losses and the NFE."""
        history = self.experiment.trainer.history
        last = history.last()
        if last is None:
            return UNTRAINED
        return (
            f"{self.describe_loss(last)} · training solve <b>NFE-F {last['nfe_forward']:.0f}</b> · "
            f"NFE-B {last['nfe_backward']:.0f} · "
            f"evaluations of f so far <b class='odeviz-total-nfe'>{history.total_nfe:,}</b>"
        )

    def describe_loss(self, last: dict) -> str:
        return f"loss {last['loss']:.2e}"

    # ---- links and model files -------------------------------------------------------------------
    @classmethod
    def slug(cls) -> str:
        from . import PAGES  # the table of pages imports every page

        slugs = {page: slug for slug, page in PAGES.items()}
        return next((slugs[base] for base in cls.__mro__ if base in slugs), cls.__name__.lower())

    def link(self) -> str:
        """The link to this page with its current knobs (and ``trained=1`` when it opened on a shipped model)."""
        return page_url(self.slug(), link_query(self.experiment), trained=self.trained)

    def _experiment_from_link(self, link: Link) -> Experiment:
        state = link.state(self.experiment_class)
        self.trained = state is not None
        return self.make_experiment(**link.settings, **({"state": state} if state else {}))

    def _sharing_widgets(self) -> list:
        self.files = ModelFiles(self.experiment, self.slug(), on_loaded=self._on_model_loaded)
        self.stream.on_poll(self.files.check)
        return [*self.files.widgets(), copy_link_button()]

    def _once_shown(self, opened_with: Link) -> None:
        # Once the browser shows the page, its URL and notifications are live.
        opened_with.report_refused(self.experiment)
        self._update_url()

    def _on_model_loaded(self) -> None:
        self.trained = True
        self._update_url()

    # ---- for scripts, tests and notebooks --------------------------------------------------------
    def ready(self, timeout: float = 120.0) -> ExperimentPage:
        """Wait for the experiment's pending work (the first build and snapshot) and show it. A
        served page never calls this: its poll shows the snapshot when it comes."""
        self.experiment.trainer.wait_idle(timeout)
        self.stream.poll()
        return self

    def _status(self) -> str:
        text = PREPARING if self.stream.snapshot is None else self.describe()
        if self.following:
            return f"{FOLLOWING} · {text}"
        return text + self.share.describe()

    def __panel__(self):
        self.stream.start()
        return self._layout
