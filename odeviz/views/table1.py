"""The Table 1 page: MLP, ResNet, RK-Net and ODE-Net learn digits in front of you (the paper's Table 1)."""
from __future__ import annotations

import panel as pn

from ..data.digits import MnistError, mnist_dir_from_environment
from ..experiments import Table1Experiment
from ..experiments.table1 import MODEL_LABELS, MODELS
from ..runtime import data_root, resolve_in_root
from .catalog import title_and_summary
from .controls import linked_input, log_slider, notify_error
from .help import explained
from .layout import plot_grid
from .page import ExperimentPage, plot, solver_widgets
from .table1_plots import Table1Figures, predictions_text
from .text import escape_html

INTRO = """
The paper's **Table 1**: on MNIST an **ODE-Net** (one continuous block, dopri5, trained by the adjoint
method) matches a **ResNet** (6 residual blocks) at about a third of the parameters, and its memory does
not grow with the number of solver steps L̃: the adjoint re-solves the ODE backwards instead of storing
every step. The **RK-Net** has the ODE-Net's architecture but backpropagates through fixed RK4 steps, so
its memory grows with L̃. Press **Train**: the four models train one after another and fill the table in.
Below, one test digit's hidden state moves through the ResNet's discrete blocks and the ODE-Net's
continuous time.
"""


def _default_experiment(**params) -> tuple[Table1Experiment, str]:
    """MNIST when ODEVIZ_MNIST_DIR names a usable directory (and no saved run is taken back);
    otherwise the 8×8 digits and why."""
    directory = None if "state" in params else mnist_dir_from_environment()
    if directory:
        try:
            return Table1Experiment(mnist_dir=directory, build_later=True, **params), ""
        except MnistError as error:
            return Table1Experiment(build_later=True, **params), f"{error}; using the bundled 8×8 digits instead"
    return Table1Experiment(build_later=True, **params), ""


NO_DATA_ROOT = "start odeviz serve --data-root DIR to offer MNIST"


def _mnist_path(text: str) -> str | None:
    """A directory typed in the page: only inside the data folder the person serving offers."""
    root = data_root()
    if not text.strip():
        return None
    if root is None:  # the box is disabled then, but a page's messages can be forged
        raise ValueError(f"this server offers no data folder: {NO_DATA_ROOT}")
    return str(resolve_in_root(root, text))


class Table1Page(ExperimentPage):
    """The table filling in live, learning curves, memory against depth, hidden states as images."""

    experiment_class, figures_class = Table1Experiment, Table1Figures
    title, summary = title_and_summary("table1")
    intro = INTRO
    # The table is emptied before it is refilled, so that BokehJS's DataTable redraws rows whose count
    # did not change: that takes two messages (in one, the browser does not redraw it).
    one_message_per_poll = False

    def make_experiment(self, **params) -> Table1Experiment:
        experiment, self._problem = _default_experiment(**params)
        return experiment

    def setup(self) -> None:
        self.predictions = pn.pane.HTML("", css_classes=["odeviz-predictions"], width=200)
        self.data_note = pn.pane.HTML("", css_classes=["odeviz-data"], sizing_mode="stretch_width")
        problem = getattr(self, "_problem", "")
        if problem:
            self.data_note.object = f"<span style='color:#c92a2a'>{escape_html(problem)}</span>"
            notify_error(problem)

    def plots(self) -> list:
        hidden = self.figures.hidden_figures
        # Its cell's height, whatever the predictions below the digit say: the grid must not grow on Train.
        digit = pn.Column(pn.pane.Bokeh(hidden["digit"]), self.predictions, width=200, sizing_mode="stretch_height",
                          styles={"overflow": "hidden"})
        # The two strips side by side, equal in size, on one colour scale: the same digit through
        # discrete blocks and through continuous time.
        strips = pn.Row(digit, plot(hidden["resnet"]), plot(hidden["ode"]), sizing_mode="stretch_both")
        return [
            pn.pane.Bokeh(self.figures.table, margin=(0, 10), sizing_mode="stretch_width"),
            plot_grid(*(plot(figure) for figure in self.figures.figures.values()), strips, span={3: 3}),
        ]

    def settings(self) -> list:
        experiment, widget = self.experiment, pn.widgets
        labels = {MODEL_LABELS[key]: key for key in MODELS}
        self.digit_slider = linked_input(
            experiment, "digit", widget.IntSlider(label="Test digit shown", start=0, end=1, value=experiment.digit)
        )
        return [
            explained(linked_input(experiment, "models", widget.CheckBoxGroup(
                label="Models", options=labels, value=experiment.models, inline=True)), experiment, "models"),
            linked_input(experiment, "epochs", label="Epochs per model"),
            linked_input(experiment, "seeds", label="Seeds per model (mean ± std)"),
            linked_input(experiment, "batch_size", label="Batch size"),
            linked_input(experiment, "channels", label="Channels of the conv nets (paper: 64)"),
            log_slider(experiment, "learning_rate", -4, -1),
            pn.pane.Markdown("### Solvers"),
            linked_input(experiment, "rk_steps", label="RK-Net: RK4 steps L̃"),
            *solver_widgets(experiment),
            pn.pane.Markdown("### Data"),
            linked_input(
                experiment, "mnist_dir",
                widget.TextInput(label="MNIST directory (IDX files, raw or .gz)", value=experiment.mnist_dir or "",
                                 placeholder="empty: scikit-learn's 8×8 digits" if data_root() else NO_DATA_ROOT,
                                 disabled=data_root() is None, css_classes=["odeviz-mnist-dir"]),
                convert=_mnist_path, shown=lambda value: value or "",
            ),
            self.data_note,
            explained(self.digit_slider, experiment, "digit"),
        ]

    # ---- updates --------------------------------------------------------------------------
    def describe(self) -> str:
        snapshot, trainer = self.stream.snapshot, self.experiment.trainer
        if snapshot is None:
            return ""
        data = f"{snapshot.dataset}: {snapshot.train_size:,} training / {snapshot.test_size:,} test images"
        if trainer.state == "done":
            return f"<b>Table complete</b> · raise the epochs to train on, or Reset · {data}"
        training = next((row for row in snapshot.rows if row.key == snapshot.current), None)
        if training is not None and trainer.running:
            return f"training <b>{training.label}</b>, epoch {training.epochs_done + 1} of {training.epochs} · {data}"
        return f"press <b>Train</b> to fill the table in · {data}"

    def on_snapshot(self, snapshot) -> None:
        self.figures.show(snapshot)
        hidden = snapshot.hidden
        self.predictions.object = f"<div style='font-size:12px'>predicted: {predictions_text(hidden)}</div>"
        self.digit_slider.end = snapshot.test_size - 1
        if not self.data_note.object.startswith("<span"):
            self.data_note.object = f"<small>{snapshot.dataset}: {snapshot.train_size:,} train / {snapshot.test_size:,} test</small>"
