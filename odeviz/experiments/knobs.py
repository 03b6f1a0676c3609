"""An experiment's public knobs: which params a person may set from outside (the CLI's options, a
page's URL) and under which public name, declared once here; and param's refusals in the words of
the knob. No Panel and no argparse here, so every entry point can read the one table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .base import Experiment
from .classifier import ClassifierExperiment
from .cnf import CNFExperiment
from .continuity import ContinuityExperiment
from .latent import LatentODEExperiment
from .table1 import Table1Experiment

# The knobs particular to each experiment (a subclass, like Figure 3's, inherits its base's).
OWN_KNOBS: dict[type[Experiment], tuple[str, ...]] = {
    ContinuityExperiment: ("target", "augment", "depth"),
    ClassifierExperiment: ("dataset", "noise", "samples", "augment", "width", "batch_size", "regularization", "max_nfe"),
    CNFExperiment: ("width", "depth", "trace", "batch_size", "regularization", "decay_iterations", "compare_planar"),
    Table1Experiment: ("epochs", "seeds", "batch_size", "channels", "rk_steps", "mnist_dir"),
    LatentODEExperiment: ("observations", "latent_dim", "hidden", "encoder_hidden", "batch_size", "horizon", "decay_iterations",
                          "kl_warmup"),
}
# The knobs every experiment shares, where it has them: the optimiser's, then the ODE solver's.
TRAINING_KNOBS = ("learning_rate", "seed")
SOLVER_KNOBS = ("method", "fixed_steps", "rtol", "atol", "adjoint", "seminorm", "adjoint_rtol", "adjoint_atol")
# Public names that are not the param's own.
RENAMES = {"learning_rate": "lr", "dataset": "data", "decay_iterations": "lr_decay", "observations": "obs"}


@dataclass(frozen=True)
class Knob:
    param: str  # the experiment's param
    public: str  # its name outside: the CLI's --kebab-case option, the URL's key


def _knobs(experiment, names) -> list[Knob]:
    cls = experiment if isinstance(experiment, type) else type(experiment)
    return [Knob(name, RENAMES.get(name, name)) for name in names if name in cls.param]


def own_knobs(experiment) -> list[Knob]:
    """The knobs particular to ``experiment`` (a class or an instance)."""
    cls = experiment if isinstance(experiment, type) else type(experiment)
    return _knobs(cls, next(OWN_KNOBS[base] for base in cls.__mro__ if base in OWN_KNOBS))


def solver_knobs(experiment) -> list[Knob]:
    """The optimiser's and the solver's knobs that ``experiment`` has."""
    return _knobs(experiment, TRAINING_KNOBS + SOLVER_KNOBS)


def knobs(experiment) -> list[Knob]:
    """Every public knob of ``experiment``: its own, then the optimiser's and the solver's."""
    return own_knobs(experiment) + solver_knobs(experiment)


# param's own refusals, and Real's ("rtol must be a number, not nan").
_PARAM_ERROR = re.compile(r"^(?:\w* ?parameter '(?:\w+\.)?(\w+)'|(\w+)(?= must be)) (.*?)\.?$", flags=re.DOTALL)
_TYPE_NAMES = {"NoneType": "empty", "str": "text", "float": "a fraction", "int": "an integer", "bool": "a yes/no value"}


def refusal(error: Exception) -> tuple[str | None, str]:
    """param's "Integer parameter 'Table1Experiment.epochs' must be at least 1, not -3." as
    ("epochs", "must be at least 1, not -3"); (None, the message) for any other error."""
    match = _PARAM_ERROR.match(str(error))
    if not match:
        return None, str(error)
    quoted, bare, rest = match.groups()
    name = quoted or bare
    rest = re.sub(r"<class '(\w+)'>", lambda m: _TYPE_NAMES.get(m.group(1), f"a {m.group(1)}"), rest)
    return name, rest
