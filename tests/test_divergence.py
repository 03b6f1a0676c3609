"""Every experiment catches a loss that blows up (a spike, not only NaN), goes back to weights from
before it, pauses saying why, and learns again once the learning rate is lowered. Real training, headless."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from odeviz.experiments import (
    ClassifierExperiment,
    CNFExperiment,
    ContinuityExperiment,
    Figure3Experiment,
    Table1Experiment,
)
from odeviz.experiments.checkpoints import CheckpointRing, LossWatch

# (class, params, a normal learning rate); small sizes, and full batches where the loss allows it so
# that losses before and after the blow-up can be compared without minibatch noise.
EXPERIMENTS = {
    "continuity": (ContinuityExperiment, {}, 1e-2),
    "classifier": (ClassifierExperiment, dict(samples=128, batch_size=128), 1e-2),
    "figure3": (Figure3Experiment, dict(samples=128, batch_size=128, sweep_every=0), 1e-2),
    "cnf": (CNFExperiment, dict(batch_size=2048, width=16, compare_planar=False, decay_iterations=0), 3e-2),
    "table1": (Table1Experiment, dict(models=["mlp"], epochs=40, batch_size=512), 1e-2),
}


def _losses(trainer, since: int = 0) -> np.ndarray:
    return trainer.history.since(0)[1]["loss"][since:]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_learning_rate_10_rolls_back_and_training_can_continue(make_experiment, name):
    cls, params, learning_rate = EXPERIMENTS[name]
    experiment = make_experiment(cls, learning_rate=learning_rate, **params)
    trainer = experiment.trainer
    trainer.snapshot_interval = math.inf  # pictures are not what is tested
    experiment.step(25)
    assert trainer.wait_idle(120) and trainer.message == "" and trainer.iteration == 25
    level = float(np.median(_losses(trainer)[-5:]))
    worst = float(np.max(_losses(trainer)[-10:]))  # a minibatch's loss varies about the level

    experiment.learning_rate = 10.0  # the top of its bounds
    experiment.step(100)
    assert trainer.wait_idle(120)
    assert trainer.state == "paused" and 25 < trainer.iteration < 125, (trainer.state, trainer.iteration)
    assert trainer.message.startswith(f"Paused at iteration {trainer.iteration + 1}: the loss jumped to")
    assert "lower the learning rate" in trainer.message
    assert all(torch.isfinite(value).all() for value in experiment.model.state_dict().values())

    experiment.learning_rate = learning_rate / 3
    count = len(trainer.history)
    experiment.step(30)
    assert trainer.wait_idle(120) and trainer.message == "" and trainer.iteration == count + 30
    after = _losses(trainer, count)
    assert after[0] < 1.5 * abs(worst) + 0.05, (after[0], level, worst)  # the weights from before the spike
    assert np.mean(after[-5:]) < after[0]  # and they learn again


def test_the_ring_goes_back_past_a_loss_that_crept_up():
    model = torch.nn.Linear(1, 1, bias=False)
    optimizer = torch.optim.Adam(model.parameters())
    ring, watch = CheckpointRing(size=4, every=5), LossWatch()
    step, loss = 0, 1.0
    while watch.trouble(loss) is None:  # a steady loss, then one that doubles at every step
        with torch.no_grad():
            model.weight.fill_(step)
        ring.keep(loss, model, optimizer)
        watch.add(loss)
        step += 1
        loss = 1.0 if step < 20 else 2.0 ** (step - 19)
    assert step > 22 and watch.trouble(loss).startswith(f"the loss jumped to {loss:.3g}")
    assert ring.restore(model, optimizer, below=watch.top(2.0))
    # Not the newest weights (their loss had reached 8): the newest near the steady level.
    assert ring.restored.loss <= 2.0 and model.weight.item() <= 21


def test_a_small_wobble_of_a_tiny_loss_is_not_a_blow_up():
    watch = LossWatch()
    for _ in range(20):
        watch.add(1e-4)
    assert watch.trouble(0.01) is None  # 100× but far below any loss that means trouble
    assert watch.trouble(float("nan")) == "the loss became nan"
