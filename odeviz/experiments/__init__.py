"""The model layer: experiments as ``param.Parameterized`` objects that train in the background."""
from .base import Experiment
from .classifier import ClassifierExperiment, ClassifierSnapshot
from .continuity import ContinuityExperiment, ContinuitySnapshot
from .figure3 import Figure3Experiment, Figure3Measurements
from .stream import History, Mailbox
from .trainer import Trainer, TrainingDiverged

__all__ = ["ContinuityExperiment", "ContinuitySnapshot", "Experiment", "History", "Mailbox", "Trainer", "TrainingDiverged"]
__all__ += ["ClassifierExperiment", "ClassifierSnapshot", "Figure3Experiment", "Figure3Measurements"]
