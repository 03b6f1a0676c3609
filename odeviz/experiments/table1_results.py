"""What a Table 1 snapshot reports: the paper's rows, one row per model as it trains, one test digit's
hidden states, and the snapshot that carries them with the memory sweep. Plain data (numpy), for the
views and the JSON of the CLI."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .table1_memory import MemorySweep


@dataclass(frozen=True)
class PaperRow:
    """The paper's Table 1 (MNIST): test error %, parameters, memory and time in the depth L / steps L̃."""

    test_error: float
    params: str
    memory: str
    time: str


PAPER_TABLE1 = {
    "mlp": PaperRow(1.60, "0.24 M", "–", "–"),
    "resnet": PaperRow(0.41, "0.60 M", "O(L)", "O(L)"),
    "rknet": PaperRow(0.47, "0.22 M", "O(L̃)", "O(L̃)"),
    "odenet": PaperRow(0.42, "0.22 M", "O(1)", "O(L̃)"),
}


@dataclass(frozen=True)
class ModelRow:
    """One line of the table; NaN where there is nothing (yet) to report."""

    key: str
    label: str
    status: str  # waiting | training | done
    epochs_done: int
    epochs: int
    test_error: float  # % after the last epoch
    params: int
    activation_bytes: int
    seconds_per_epoch: float  # mean over the epochs done
    nfe_forward: float
    nfe_backward: float  # NaN where backprop goes through the solver (no adjoint solve)
    test_errors: np.ndarray  # (epochs_done,) % of the first seed
    train_losses: np.ndarray
    paper: PaperRow
    seed_errors: np.ndarray = field(default_factory=lambda: np.array([]))  # % after the last epoch, per finished seed
    seeds: int = 1

    @property
    def test_error_std(self) -> float:
        """Standard deviation over the finished seeds (NaN for fewer than two)."""
        return float(np.std(self.seed_errors, ddof=1)) if len(self.seed_errors) > 1 else math.nan


@dataclass(frozen=True)
class HiddenStates:
    """One test digit and the most changing channels of its hidden state through depth and time."""

    index: int
    digit: np.ndarray  # (side, side) the input image
    label: int
    predictions: dict[str, int]  # by each selected model
    resnet_depths: np.ndarray  # (L+1,) k/L
    resnet_channels: np.ndarray  # (K,)
    resnet_states: np.ndarray  # (L+1, K, s, s)
    ode_times: np.ndarray  # (T,)
    ode_channels: np.ndarray
    ode_states: np.ndarray  # (T, K, s, s)


@dataclass(frozen=True)
class Table1Snapshot:
    iteration: int
    dataset: str
    train_size: int
    test_size: int
    current: str | None  # the model training now, or None
    rows: tuple[ModelRow, ...]
    memory: MemorySweep
    hidden: HiddenStates
