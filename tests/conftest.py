"""Shared fixtures: single-threaded torch (the nets are tiny) and experiments that always close."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def make_experiment():
    """Build experiments (any Experiment class) that are closed when the test ends, pass or fail."""
    from odeviz.experiments import ContinuityExperiment

    made = []

    def make(cls=ContinuityExperiment, **params):
        experiment = cls(**params)
        made.append(experiment)
        return experiment

    yield make
    for experiment in made:
        experiment.close()
