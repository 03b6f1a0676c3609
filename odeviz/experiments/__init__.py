"""The model layer: experiments as ``param.Parameterized`` objects that train in the background."""
from .base import Experiment
from .continuity import ContinuityExperiment, ContinuitySnapshot
from .stream import History, Mailbox
from .supervised import Table1Experiment, Table1Snapshot
from .trainer import Trainer, TrainingComplete, TrainingDiverged

__all__ = [
    "ContinuityExperiment", "ContinuitySnapshot", "Experiment", "History", "Mailbox", "Table1Experiment",
    "Table1Snapshot", "Trainer", "TrainingComplete", "TrainingDiverged",
]
