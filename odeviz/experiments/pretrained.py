"""Trained models shipped with odeviz, so a page can open on a trained picture at once.

Each :class:`Preset` is a few settings of one experiment and how long to train them; its checkpoint is
``odeviz/experiments/trained/<name>.pt`` (a file of :meth:`Experiment.save`). They are made by

    python -m odeviz.experiments.pretrained            # every preset (minutes)
    python -m odeviz.experiments.pretrained continuity-reflection   # some

and a new page adds its presets here, one line each.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .base import Experiment
from .classifier import ClassifierExperiment
from .cnf import CNFExperiment
from .continuity import ContinuityExperiment
from .figure3 import Figure3Experiment
from .saved import read_state, write_state
from .table1 import Table1Experiment

FOLDER = Path(__file__).parent / "trained"


@dataclass(frozen=True)
class Preset:
    name: str
    experiment_class: type[Experiment]
    settings: dict = field(default_factory=dict)
    iterations: int = 300  # Table 1 trains until its table is full instead
    note: str = ""

    @property
    def path(self) -> Path:
        return FOLDER / f"{self.name}.pt"


# The first preset of an experiment is the one its page opens on when no setting says otherwise.
PRESETS = (
    Preset("continuity", ContinuityExperiment, {}, 200),
    Preset("continuity-reflection", ContinuityExperiment, {"target": "reflection", "depth": 2}, 300,
           "the reflection: the ODE-Net cannot learn it, a 2-block ResNet can"),
    Preset("continuity-reflection-augment", ContinuityExperiment, {"target": "reflection", "augment": True}, 100,
           "the reflection with one extra dimension: the ODE-Net learns it"),
    Preset("classifier", ClassifierExperiment, {}, 200),
    Preset("figure3", Figure3Experiment, {}, 200),
    Preset("table1", Table1Experiment, {}),
    Preset("cnf", CNFExperiment, {"decay_iterations": 300}, 300),
)


def presets_for(experiment_class) -> list[Preset]:
    return [preset for preset in PRESETS if preset.experiment_class is experiment_class]


def nearest_preset(experiment_class, settings: dict) -> Preset | None:
    """The preset of ``experiment_class`` that agrees with most of the ``settings`` that are not
    defaults (the first preset on a tie: the experiment's defaults)."""
    defaults = {name: experiment_class.param[name].default for name in settings if name in experiment_class.param}
    chosen = {name: value for name, value in settings.items() if name in defaults and value != defaults[name]}

    def agreement(preset: Preset) -> int:
        return sum(preset.settings.get(name, defaults[name]) == value for name, value in chosen.items())

    presets = presets_for(experiment_class)
    return max(presets, key=agreement) if presets else None


def trained_state(experiment_class, settings: dict | None = None) -> dict | None:
    """The shipped checkpoint nearest ``settings``, read (None if the experiment has none)."""
    preset = nearest_preset(experiment_class, settings or {})
    return read_state(preset.path, what=f"the shipped model {preset.name!r}") if preset else None


def make(preset: Preset) -> Path:
    """Train ``preset`` from its seed and save it where the package ships it."""
    experiment = preset.experiment_class(**preset.settings)
    try:
        experiment.trainer.snapshot_interval = math.inf  # nobody looks at pictures here
        if isinstance(experiment, Table1Experiment):
            experiment.start()  # until every model has trained its epochs
        else:
            experiment.step(preset.iterations)
        experiment.trainer.wait_idle(timeout=3600)
        if experiment.trainer.message:
            raise RuntimeError(f"{preset.name}: {experiment.trainer.message}")
        FOLDER.mkdir(exist_ok=True)
        return write_state(experiment.state_dict(with_optimizer=False), preset.path)
    finally:
        experiment.close()


def main(names: list[str]) -> int:
    from ..numerics.device import configure_torch

    configure_torch()
    unknown = set(names) - {preset.name for preset in PRESETS}
    if unknown:
        print(f"unknown presets: {', '.join(sorted(unknown))}; known: {', '.join(p.name for p in PRESETS)}", file=sys.stderr)
        return 2
    for preset in PRESETS:
        if not names or preset.name in names:
            start = time.perf_counter()
            path = make(preset)
            print(f"{preset.name}: {path.stat().st_size / 1024:.0f} KB in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
