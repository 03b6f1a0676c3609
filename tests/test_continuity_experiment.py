"""The continuity experiment (the paper's Figure 1) as a headless model: what it shows, what it
learns, which knob values it refuses, and what changing the depth does. No Panel anywhere."""
from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from odeviz.experiments import ContinuitySnapshot
from odeviz.models.fields import FieldResNet


def test_model_layer_imports_no_view_libraries():
    code = (
        "import odeviz.experiments, sys; "
        "assert 'panel' not in sys.modules and 'holoviews' not in sys.modules and 'bokeh' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _latest(experiment) -> ContinuitySnapshot:
    assert experiment.trainer.wait_idle()
    return experiment.trainer.mailbox.latest()


def test_snapshot_arrays_are_numpy_with_consistent_shapes(make_experiment):
    experiment = make_experiment(depth=6, trajectories=11)
    experiment.step(5)
    snapshot = _latest(experiment)
    assert isinstance(snapshot, ContinuitySnapshot) and snapshot.iteration == 5
    n, depth = 11, 6
    for field in dataclasses.fields(snapshot):
        value = getattr(snapshot, field.name)
        assert not isinstance(value, torch.Tensor), field.name
        if isinstance(value, np.ndarray):
            assert np.isfinite(value).all(), field.name
    assert snapshot.inputs.shape == (n,)
    np.testing.assert_allclose(snapshot.inputs, np.linspace(-1, 1, n), atol=1e-15)
    assert snapshot.resnet_states.shape == (depth + 1, n)
    assert snapshot.resnet_depth.shape == (depth + 1,)
    assert snapshot.euler_states.shape == (depth + 1, n) and snapshot.euler_times.shape == (depth + 1,)
    T = len(snapshot.ode_times)
    assert snapshot.ode_states.shape == (T, n) and snapshot.ode_times[0] == 0.0 and snapshot.ode_times[-1] == 1.0
    E = snapshot.nfe_forward
    assert snapshot.eval_times.shape == (E,) and snapshot.eval_states.shape == (E, n)
    assert snapshot.eval_times[0] == 0.0
    # Every trajectory starts at its input: the ODE-Net, the Euler rollout and the ResNet alike.
    for states in (snapshot.ode_states, snapshot.euler_states, snapshot.resnet_states):
        np.testing.assert_array_equal(states[0], snapshot.inputs)
    assert snapshot.train_x.shape == snapshot.train_y.shape == (experiment.samples,)
    assert snapshot.field_t.shape == snapshot.field_h.shape == snapshot.field_dh.shape
    assert snapshot.resnet_outputs.shape == snapshot.ode_outputs.shape == snapshot.targets.shape == (n,)
    assert snapshot.depth == depth and snapshot.target == "cubic" and snapshot.solver.method == "dopri5"
    low, high = snapshot.h_range
    assert low < -1.0 and high > 1.5  # the cubic maps 1 to 1.5
    assert snapshot.reference_error >= 0 and snapshot.euler_deviation >= 0 and snapshot.solve_seconds > 0


def test_snapshot_is_frozen(make_experiment):
    snapshot = _latest(make_experiment())
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.iteration = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.ode_states = np.zeros(1)


def test_augmented_snapshot_shows_the_first_coordinate(make_experiment):
    experiment = make_experiment(augment=True, depth=4, trajectories=5)
    snapshot = _latest(experiment)
    assert snapshot.ode_states.shape == (len(snapshot.ode_times), 5)
    assert snapshot.resnet_states.shape == snapshot.euler_states.shape == (5, 5)
    np.testing.assert_array_equal(snapshot.ode_states[0], snapshot.inputs)


def test_learns_the_cubic(make_experiment):
    # Measured with the defaults (dopri5, adjoint, lr 1e-2, seed 0): after 300 iterations the
    # ODE-Net's loss is ~3e-5 and the ResNet's ~2e-5; the largest of the last ten is < 1e-3.
    experiment = make_experiment(target="cubic")
    experiment.step(300)
    assert experiment.trainer.wait_idle(timeout=120)
    trainer = experiment.trainer
    assert trainer.iteration == 300 and trainer.message == ""
    _, columns = trainer.history.since(0)
    assert columns["loss_ode"][-1] < 1e-3 and columns["loss_resnet"][-1] < 1e-3, trainer.history.last()
    assert columns["loss_ode"][0] > 10 * columns["loss_ode"][-1]
    snapshot = trainer.mailbox.latest()
    assert np.abs(snapshot.ode_outputs - snapshot.targets).max() < 0.1
    assert np.abs(snapshot.resnet_outputs - snapshot.targets).max() < 0.1


def test_reflection_needs_augmentation(make_experiment):
    # A 1-D flow is monotone, so its best fit of x -> -x is a constant: MSE >= Var(-x) ~ 1/3 on
    # uniform inputs (measured 0.347 from iteration ~25 on). Augmented with a zero dimension the
    # trajectories can pass each other: measured loss_ode 0.03 at iteration 25, 0.003 at 50.
    plain = make_experiment(target="reflection", augment=False)
    augmented = make_experiment(target="reflection", augment=True)
    plain.step(25)
    augmented.step(50)
    assert plain.trainer.wait_idle(timeout=120) and augmented.trainer.wait_idle(timeout=120)
    assert plain.trainer.message == "" and augmented.trainer.message == ""
    plain_loss = plain.trainer.history.last()["loss_ode"]
    augmented_loss = augmented.trainer.history.last()["loss_ode"]
    assert plain_loss > 0.2, plain_loss
    assert augmented_loss < 0.05, augmented_loss
    snapshot = plain.trainer.mailbox.latest()
    order = np.argsort(snapshot.inputs)
    assert (np.diff(snapshot.ode_outputs[order]) >= -1e-6).all()  # the 1-D flow kept the order


@pytest.mark.parametrize(
    "name, value",
    [
        ("rtol", 0), ("rtol", float("nan")), ("rtol", -1e-3), ("rtol", float("inf")), ("rtol", True),
        ("atol", -1), ("atol", float("nan")),
        ("depth", 0), ("depth", 65),
        ("method", "nope"),
        ("learning_rate", 0), ("learning_rate", float("nan")), ("learning_rate", True),
        ("target", "spiral"),
    ],
    ids=repr,
)
def test_bad_values_are_refused_and_training_goes_on(make_experiment, name, value):
    experiment = make_experiment(depth=4)
    experiment.trainer.wait_idle()
    before = getattr(experiment, name)
    with pytest.raises(ValueError, match=name):
        setattr(experiment, name, value)
    assert getattr(experiment, name) == before
    with pytest.raises(ValueError, match=name):
        make_experiment(**{name: value})
    experiment.step(2)
    assert experiment.trainer.wait_idle()
    assert experiment.trainer.iteration == 2 and experiment.trainer.message == ""


def test_depth_change_keeps_ode_net_and_rebuilds_resnet(make_experiment):
    experiment = make_experiment(depth=8)
    experiment.step(100)
    experiment.trainer.wait_idle(timeout=120)
    ode_weights = copy.deepcopy(experiment.model["ode"].state_dict())
    deviations = []
    for depth in (1, 4, 16, 64):
        old_resnet = experiment.model["resnet"]
        experiment.depth = depth
        snapshot = _latest(experiment)
        resnet = experiment.model["resnet"]
        assert isinstance(resnet, FieldResNet) and resnet is not old_resnet and resnet.depth == depth
        assert resnet.w_in.shape[0] == depth
        optimised = {id(p) for group in experiment.optimizer.param_groups for p in group["params"]}
        assert {id(p) for p in experiment.model.parameters()} == optimised
        for key, value in experiment.model["ode"].state_dict().items():
            assert torch.equal(value, ode_weights[key]), key
        assert snapshot.depth == depth and snapshot.resnet_states.shape[0] == depth + 1
        assert snapshot.euler_states.shape[0] == depth + 1 and snapshot.iteration == 100
        deviations.append(snapshot.euler_deviation)
    # Euler in L steps converges to the ODE-Net's exact flow as L grows (first order: ~1/L).
    assert all(a > b for a, b in zip(deviations, deviations[1:])), deviations
    assert deviations[-1] < deviations[0] / 20, deviations

    # Training goes on with the new ResNet; the ODE-Net keeps its Adam state.
    ode_param = next(experiment.model["ode"].parameters())
    step_before = int(experiment.optimizer.state[ode_param]["step"])
    experiment.step(2)
    assert experiment.trainer.wait_idle()
    assert experiment.trainer.iteration == 102 and experiment.trainer.message == ""
    assert int(experiment.optimizer.state[ode_param]["step"]) == step_before + 2


def test_structural_changes_while_training_never_break_it(make_experiment):
    """Depth, augment, target, tolerance and method changed mid-training, as a restless user would."""
    experiment = make_experiment()
    experiment.start()
    changes = [("depth", 3), ("augment", True), ("target", "reflection"), ("depth", 40), ("method", "rk4"),
               ("augment", False), ("rtol", 1e-5), ("method", "bosh3"), ("depth", 1), ("target", "cubic")]
    for name, value in changes:
        setattr(experiment, name, value)
        time.sleep(0.05)
    time.sleep(0.5)
    assert experiment.trainer.running and experiment.trainer.message == ""
    experiment.pause()
    experiment.trainer.wait_idle()
    snapshot = experiment.trainer.mailbox.latest()
    assert snapshot.depth == 1 and snapshot.resnet_states.shape == (2, len(snapshot.inputs))
    assert snapshot.target == "cubic" and not snapshot.augmented and snapshot.solver.method == "bosh3"
