"""An experiment on disk: its kind, every setting, its weights and optimiser state, its iteration and
history, as plain tensors, numbers and strings (``torch.load(weights_only=True)``: no code runs on load).

:meth:`Experiment.state_dict` makes one, :meth:`Experiment.load_state` takes one back; this module
writes and reads the files and says, in a user's words, why a file does not fit an experiment.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import param
import torch

from ..models.saving import EXPERIMENT_FORMAT as FORMAT


class SavedStateError(ValueError):
    """A saved experiment that cannot be used here; the message says why, for the person who chose it."""


def kind(experiment) -> str:
    """An experiment's word in messages (a class or its name): ContinuityExperiment → "continuity"."""
    name = experiment if isinstance(experiment, str) else getattr(experiment, "__name__", "")
    return name.removesuffix("Experiment").lower() or "different"


def plain(value):
    """``value`` with numpy numbers as Python numbers and arrays as tensors, in nested dicts and
    lists: what ``weights_only`` loading accepts."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(item) for item in value)
    return value


def settings_of(experiment) -> dict:
    """Every param's value (arrays as tensors, which ``weights_only`` loading accepts)."""
    return plain({name: value for name, value in experiment.param.values().items() if name != "name"})


def check_state(state, experiment_class, what: str = "the file") -> dict:
    """The settings of ``state`` as param values for ``experiment_class``, or SavedStateError naming
    what does not fit: not an odeviz experiment, another page's, or a setting the page refuses."""
    from .knobs import refusal  # knobs imports the experiments, which import this module

    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("settings"), dict):
        raise SavedStateError(f"{what} is not a model saved by odeviz")
    saved_kind, own = state.get("experiment"), experiment_class.__name__
    if saved_kind != own:
        raise SavedStateError(f"{what} holds a {kind(str(saved_kind or ''))} model, not a {kind(experiment_class)} model")
    settings = {}
    for name, value in state["settings"].items():
        if name not in experiment_class.param:
            raise SavedStateError(f"{what} has a setting this version of odeviz does not know: {name}")
        p = experiment_class.param[name]
        if isinstance(value, torch.Tensor) and isinstance(p, param.Array):
            value = value.numpy()
        try:
            p._validate(value)
        except (ValueError, TypeError) as error:
            knob, rest = refusal(error)
            raise SavedStateError(f"{what} has a setting this page refuses: {p.label if knob else ''} {rest}".replace("  ", " ")) from None
        settings[name] = value
    if not isinstance(state.get("weights"), dict) or not isinstance(state.get("history", []), list):
        raise SavedStateError(f"{what} is not a model saved by odeviz (it has no weights)")
    return settings


def write_state(state: dict, path) -> Path:
    path = Path(path)
    torch.save(state, path)
    return path


def state_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def read_state(source, what: str | None = None) -> dict:
    """A saved experiment from a path or the bytes of an uploaded file (SavedStateError if it is not one)."""
    if isinstance(source, (bytes, bytearray)):
        what, stream = what or "the file", io.BytesIO(source)
        if not source:
            raise SavedStateError(f"{what} is empty: a model saved by odeviz is a .pt file of its weights")
    else:
        path = Path(source)
        what = what or repr(str(path))
        if not path.is_file():
            raise SavedStateError(f"there is no file {what}")
        stream = path
    try:
        state = torch.load(stream, map_location="cpu", weights_only=True)
    except Exception:  # truncated, not a torch file, or holding code: never unpickle it
        raise SavedStateError(f"{what} is not a model saved by odeviz (it could not be read)") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SavedStateError(f"{what} is not a model saved by odeviz")
    return state
