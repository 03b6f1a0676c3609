"""An experiment's public knobs: which params a person may set from outside (the CLI's options, a
page's URL) and under which public name, declared once here; and param's refusals in the words of
the knob. No Panel and no argparse here, so every entry point can read the one table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import param

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


def experiment_class_of(experiment) -> type:
    """The experiment class of ``experiment``: a class or an instance, of an experiment or of a stand-in
    for one (a proxy to a worker's experiment, a follower)."""
    cls = experiment if isinstance(experiment, type) else type(experiment)
    return getattr(cls, "experiment_class", cls)


def _knobs(experiment, names) -> list[Knob]:
    cls = experiment_class_of(experiment)
    return [Knob(name, RENAMES.get(name, name)) for name in names if name in cls.param]


def own_knobs(experiment) -> list[Knob]:
    """The knobs particular to ``experiment`` (a class or an instance)."""
    cls = experiment_class_of(experiment)
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


# ---- knobs as text: a page's URL (``?target=reflection&depth=2&lr=0.003``) -----------------------
# A link must not make the server read a path of its choosing: paths are typed in the page only.
NOT_IN_LINKS = ("mnist_dir",)
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def link_knobs(experiment) -> list[Knob]:
    """The knobs a link may carry."""
    return [knob for knob in knobs(experiment) if knob.param not in NOT_IN_LINKS]


def knob_text(value) -> str:
    """A knob's value as a link writes it (floats exactly: repr round-trips)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def parse_knob(experiment_class, knob: Knob, text: str):
    """The value ``text`` stands for, checked against the param's bounds and choices; else a
    ValueError that :func:`refusal` reads ("depth", "must be a whole number, not 'two'")."""
    p = experiment_class.param[knob.param]
    if isinstance(p, param.Boolean):
        if text.lower() not in TRUE_WORDS + FALSE_WORDS:
            raise ValueError(f"{knob.param} must be true or false, not {text!r}")
        value = text.lower() in TRUE_WORDS
    elif isinstance(p, param.Selector):
        value = next((choice for choice in p.objects if str(choice) == text), None)
        if value is None:
            raise ValueError(f"{knob.param} must be one of {', '.join(map(str, p.objects))}, not {text!r}")
    elif isinstance(p, param.Integer):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{knob.param} must be a whole number, not {text!r}") from None
    elif isinstance(p, param.Number):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{knob.param} must be a number, not {text!r}") from None
    else:
        value = text
    p._validate(value)  # bounds, NaN: param's words, which refusal() turns into the knob's
    return value


def query_settings(experiment_class, query: dict[str, str]) -> tuple[dict, list[tuple[str, Exception]]]:
    """A link's query as params, and (public name, error) for each value that cannot be used.
    Keys that are not knobs are left to the caller (e.g. ``trained``)."""
    settings, refused = {}, []
    for knob in link_knobs(experiment_class):
        if knob.public in query:
            try:
                settings[knob.param] = parse_knob(experiment_class, knob, query[knob.public])
            except (ValueError, TypeError) as error:
                refused.append((knob.param, error))
    return settings, refused


def link_query(experiment) -> dict[str, str]:
    """The knobs of ``experiment`` that differ from their defaults, by public name, as text."""
    cls = experiment_class_of(experiment)
    return {knob.public: knob_text(getattr(experiment, knob.param)) for knob in link_knobs(experiment)
            if getattr(experiment, knob.param) != cls.param[knob.param].default}
