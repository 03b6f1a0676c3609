"""The model layer: experiments as ``param.Parameterized`` objects that train in the background."""
from .base import Experiment
from .cnf import CNFExperiment, CNFSnapshot
from .continuity import ContinuityExperiment, ContinuitySnapshot
from .stream import History, Mailbox
from .trainer import Trainer, TrainingDiverged

__all__ = [
    "CNFExperiment", "CNFSnapshot", "ContinuityExperiment", "ContinuitySnapshot", "Experiment", "History", "Mailbox", "Trainer", "TrainingDiverged"]
