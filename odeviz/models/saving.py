"""Trained density models on disk: ``save_cnf(model, path)`` and ``odeviz.load(path)``.

A file holds the CNF's architecture, its weights (including the standardisation of the data) and a
little metadata, as plain tensors and numbers (loaded with ``weights_only=True``: no code runs on load).
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from .flows import CNF

FORMAT = "odeviz-cnf-1"
# A whole experiment's saved run (odeviz.experiments.saved): a CNF page's or ``odeviz train cnf --save``.
EXPERIMENT_FORMAT = "odeviz-experiment-1"
# Evaluation of a loaded model: float64 and a tight tolerance, so log_prob is the model's, not the solver's.
EVALUATION = dict(method="dopri5", rtol=1e-7, atol=1e-9)


def save_cnf(model: CNF, path, **metadata) -> Path:
    path = Path(path)
    dynamics = model.dynamics
    torch.save({
        "format": FORMAT,
        "config": {
            "dim": model.dim, "width": model.field.layers[0].linear.out_features, "depth": len(model.field.layers) - 1,
            "divergence": dynamics.divergence, "horizon": model.horizon,
        },
        "state_dict": model.state_dict(),
        "metadata": metadata,
    }, path)
    return path


class TrainedFlow:
    """A trained CNF for use from Python: ``log_prob(points)`` and ``sample(n)``, numpy in and out."""

    def __init__(self, model: CNF, metadata: dict | None = None) -> None:
        self.model = copy.deepcopy(model).double().eval()
        self.metadata = dict(metadata or {})

    def log_prob(self, points, **solver) -> np.ndarray:
        """log p(x) in the data's units for an (N, 2) array of points."""
        x = torch.as_tensor(np.asarray(points, dtype=np.float64))
        if x.ndim != 2 or x.shape[1] != self.model.dim:
            raise ValueError(f"points must be an (N, {self.model.dim}) array, got shape {tuple(x.shape)}")
        with torch.no_grad():
            return self.model.log_prob(x, **{**EVALUATION, **solver}).numpy()

    def sample(self, n: int, seed: int | None = None, **solver) -> np.ndarray:
        """n points drawn from the model, (n, 2); n = 0 gives an empty (0, 2) array."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"the number of samples must be a whole number ≥ 0, got {n!r}")
        if n == 0:
            return np.empty((0, self.model.dim))
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.no_grad():
            return self.model.sample(int(n), generator=generator, **{**EVALUATION, **solver}).numpy()

    def __repr__(self) -> str:
        return f"TrainedFlow({self.metadata.get('target', '?')}, {self.model.field.layers[0].linear.out_features} units)"


def load(path) -> TrainedFlow:
    """A model saved by ``odeviz train cnf --save PATH`` (or ``CNFExperiment.save``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {str(path)!r}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say so instead of unpickling errors
        raise ValueError(f"{str(path)!r} is not a model saved by odeviz ({error})") from None
    if not isinstance(saved, dict) or saved.get("format") not in (FORMAT, EXPERIMENT_FORMAT):
        raise ValueError(f"{str(path)!r} is not a model saved by odeviz")
    if saved["format"] == EXPERIMENT_FORMAT and saved.get("experiment") != "CNFExperiment":
        raise ValueError(f"{str(path)!r} holds no density model (odeviz.load reads CNFs; open it in its page)")
    try:
        config, weights, metadata = _cnf_of_experiment(saved) if saved["format"] == EXPERIMENT_FORMAT else (
            saved["config"], saved["state_dict"], saved.get("metadata"))
        model = CNF(**config)
        model.load_state_dict(weights)
    except (KeyError, TypeError, ValueError) as error:  # saved by another version, or edited
        raise ValueError(f"{str(path)!r} describes a model this version of odeviz does not know ({error})") from None
    except RuntimeError:
        raise ValueError(f"{str(path)!r} holds weights that do not fit the model it describes") from None
    return TrainedFlow(model, metadata)


def _cnf_of_experiment(saved: dict) -> tuple[dict, dict, dict]:
    """The CNF of a CNF experiment's saved run: its configuration, weights and metadata."""
    settings = saved["settings"]
    config = {"dim": 2, "width": settings["width"], "depth": settings["depth"], "divergence": settings["trace"]}
    weights = {key.removeprefix("cnf."): value for key, value in saved["weights"]["model"].items() if key.startswith("cnf.")}
    metadata = {"target": settings.get("target"), "source": settings.get("source_name"), "iterations": saved.get("iteration")}
    return config, weights, metadata
