"""The model layer: experiments as ``param.Parameterized`` objects that train in the background."""
from .base import Experiment
from .classifier import ClassifierExperiment, ClassifierSnapshot
from .cnf import CNFExperiment, CNFSnapshot
from .continuity import ContinuityExperiment, ContinuitySnapshot
from .figure3 import Figure3Experiment, Figure3Measurements
from .knobs import Knob, knobs
from .latent import LatentODEExperiment, LatentSnapshot
from .stream import History, Mailbox
from .table1 import Table1Experiment
from .table1_results import Table1Snapshot
from .trainer import Trainer, TrainingComplete, TrainingDiverged

__all__ = [
    "CNFExperiment", "CNFSnapshot", "ClassifierExperiment", "ClassifierSnapshot", "ContinuityExperiment",
    "ContinuitySnapshot", "Experiment", "Figure3Experiment", "Figure3Measurements", "History", "Knob",
    "LatentODEExperiment", "LatentSnapshot", "Mailbox", "Table1Experiment", "Table1Snapshot", "Trainer",
    "TrainingComplete", "TrainingDiverged", "knobs",
]
