"""The 2-D ODE-Net classifier and the Figure 3 measurements as headless models: what they learn, what
they measure, what they refuse, and how they fail. No Panel anywhere."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from odeviz.experiments import ClassifierExperiment, ClassifierSnapshot, Figure3Experiment
from odeviz.experiments.classifier import MAP_RESOLUTION, MAP_RESOLUTION_TRAINING
from odeviz.numerics.measure import SWEEP_TOLERANCES, memory_by_steps, nfe_ratio


def _latest(experiment):
    assert experiment.trainer.wait_idle(120)
    return experiment.trainer.mailbox.latest()


def test_snapshot_holds_numpy_arrays_of_consistent_shapes(make_experiment):
    experiment = make_experiment(ClassifierExperiment, samples=64, augment=1, dataset="circles")
    experiment.add_probe(0.5, -0.25)
    experiment.add_probe(1.0, 1.0)
    experiment.step(3)
    snapshot = _latest(experiment)
    assert isinstance(snapshot, ClassifierSnapshot) and snapshot.iteration == 3
    for field in dataclasses.fields(snapshot):
        value = getattr(snapshot, field.name)
        assert not isinstance(value, torch.Tensor), field.name
        if isinstance(value, np.ndarray):
            assert np.isfinite(value).all(), field.name
    T, K, n = len(snapshot.times), len(snapshot.field_times), 64
    assert snapshot.inputs.shape == (n, 2) and snapshot.labels.shape == snapshot.probability.shape == (n,)
    assert set(np.unique(snapshot.labels)) == {0, 1} and snapshot.augment == 1
    assert snapshot.states.shape == (T, n, 2)
    np.testing.assert_allclose(snapshot.states[0], snapshot.inputs, atol=1e-6)  # h(0) = x
    np.testing.assert_array_equal(snapshot.times[snapshot.field_index], snapshot.field_times)
    assert snapshot.field_u.shape == snapshot.field_v.shape == (K, len(snapshot.field_x))
    low, high = snapshot.box  # every trajectory and every arrow inside the drawn box
    assert low <= snapshot.states.min() and snapshot.states.max() <= high
    assert low < snapshot.field_x.min() and snapshot.field_y.max() < high
    assert snapshot.decision_map.shape[0] == snapshot.decision_map.shape[1]
    assert ((snapshot.decision_map >= 0) & (snapshot.decision_map <= 1)).all()
    np.testing.assert_allclose(snapshot.probe_inputs, [[0.5, -0.25], [1.0, 1.0]])
    assert snapshot.probe_states.shape == (T, 2, 2) and snapshot.probe_probability.shape == (2,)
    np.testing.assert_allclose(snapshot.probe_states[0], snapshot.probe_inputs, atol=1e-6)
    assert snapshot.nfe_forward == len(snapshot.eval_times) > 0
    experiment.clear_probes()
    assert _latest(experiment).probe_states.shape == (T, 0, 2)
    with pytest.raises(ValueError, match="finite"):
        experiment.add_probe(float("nan"), 0.0)


class SlowPictureClassifier(ClassifierExperiment):
    """A classifier whose pictures cost at least 60 ms more (a slow machine, or a tight tolerance)."""

    def picture(self, *args, **kwargs):
        time.sleep(0.06)
        return super().picture(*args, **kwargs)


def test_pictures_while_training_keep_to_their_share_and_are_coarser(make_experiment):
    experiment = make_experiment(SlowPictureClassifier, samples=64)
    _latest(experiment)
    published = []
    original_put = experiment.trainer.mailbox.put
    experiment.trainer.mailbox.put = lambda snapshot, *asked: (published.append(snapshot), original_put(snapshot, *asked))
    experiment.start()
    time.sleep(1.5)
    experiment.pause()
    paused = _latest(experiment)
    training = published[:-1]  # the last one is the picture on pausing
    # Each picture costs ≥ 60 ms, so at most 15 % of the time means ≥ 0.34 s from one to the next
    # (at the plain 0.1 s interval there would be ~9 in 1.5 s).
    assert 1 <= len(training) <= 1.5 / 0.34 + 1, len(training)
    assert {snapshot.decision_map.shape for snapshot in training} == {(MAP_RESOLUTION_TRAINING,) * 2}
    assert paused.decision_map.shape == (MAP_RESOLUTION, MAP_RESOLUTION)  # full resolution when paused


def test_learns_the_moons_above_95_percent(make_experiment):
    experiment = make_experiment(ClassifierExperiment, dataset="moons", noise=0.1, samples=256)
    experiment.trainer.snapshot_interval = float("inf")  # only the final picture
    experiment.step(120)
    snapshot = _latest(experiment)
    assert experiment.trainer.message == "" and snapshot.iteration == 120
    assert snapshot.accuracy > 0.95, snapshot.accuracy
    # The flow has moved the data: the classes end up on either side of the read-out's line.
    assert np.abs(snapshot.states[-1] - snapshot.states[0]).max() > 0.5
    _, history = experiment.trainer.history.since(0)
    assert history["loss"][-10:].mean() < history["loss"][:10].mean() / 3
    assert (history["nfe_backward"] > 0).all()  # adjoint by default


def test_regularised_training_records_its_integrals(make_experiment):
    experiment = make_experiment(ClassifierExperiment, samples=64, regularization=0.1, adjoint=False)
    experiment.step(2)
    _latest(experiment)
    last = experiment.trainer.history.last()
    assert last["kinetic"] > 0 and last["jacobian"] > 0
    assert last["loss"] == pytest.approx(last["cross_entropy"] + 0.1 * (last["kinetic"] + last["jacobian"]), rel=1e-5)
    assert last["nfe_backward"] == 0  # direct backprop: no adjoint solve


@pytest.mark.parametrize(
    "name, value, message",
    [("noise", 0.9, "noise"), ("noise", -0.1, "noise"), ("samples", 5, "samples"), ("samples", 10**6, "samples"),
     ("augment", 4, "augment"), ("rtol", 0.0, "rtol"), ("dataset", "smiley", "dataset")],
)
def test_out_of_range_values_are_refused_with_a_message(make_experiment, name, value, message):
    experiment = make_experiment(ClassifierExperiment, samples=32)
    before = getattr(experiment, name)
    with pytest.raises(ValueError, match=message):
        setattr(experiment, name, value)
    assert getattr(experiment, name) == before


def test_a_tolerance_below_float32_resolution_is_stopped_by_the_evaluation_cap(make_experiment):
    experiment = make_experiment(ClassifierExperiment, samples=64, rtol=1e-12, atol=1e-12)
    experiment.step(1)
    _latest(experiment)
    trainer = experiment.trainer
    assert trainer.state == "paused" and trainer.iteration == 0
    assert "more than 2000 evaluations" in trainer.message and "loosen rtol/atol" in trainer.message
    experiment.param.update(rtol=1e-3, atol=1e-4)  # a sane tolerance: training goes on
    experiment.step(2)
    _latest(experiment)
    assert trainer.iteration == 2 and trainer.message == ""


def test_a_huge_learning_rate_pauses_and_keeps_the_last_good_weights(make_experiment):
    experiment = make_experiment(ClassifierExperiment, samples=128, learning_rate=10.0)
    experiment.trainer.snapshot_interval = float("inf")
    experiment.step(40)
    _latest(experiment)
    trainer = experiment.trainer
    assert trainer.state == "paused" and trainer.iteration < 40
    assert trainer.message.startswith(f"Paused at iteration {trainer.iteration + 1}")
    assert "Kept the last good weights" in trainer.message
    good_weights = experiment.checkpoints.restored.weights
    for name, weight in experiment.model.state_dict().items():
        assert torch.equal(weight, good_weights[name]), name
    experiment.learning_rate = 1e-2
    experiment.step(3)
    _latest(experiment)
    assert trainer.message == "" and np.isfinite(trainer.history.last()["loss"])


def test_memory_through_the_solver_grows_linearly_and_the_adjoint_stays_flat(make_experiment):
    experiment = make_experiment(ClassifierExperiment, samples=32, augment=1)
    _latest(experiment)  # the model belongs to its training thread: let it finish the first picture
    memory = memory_by_steps(experiment.model["field"], experiment.lift(experiment.train_x), steps=(8, 16, 32, 64))
    np.testing.assert_array_equal(memory.steps, [8, 16, 32, 64])
    # Direct backprop keeps every stage of every step: exactly proportional to the number of steps.
    np.testing.assert_allclose(memory.direct_bytes / memory.steps, memory.direct_bytes[0] / 8, rtol=1e-3)
    assert len(set(memory.adjoint_bytes)) == 1  # O(1): the same at every length
    assert memory.adjoint_bytes[0] < memory.direct_bytes[0] / 50


def test_figure3_measurements_follow_training_and_the_sliders(make_experiment):
    experiment = make_experiment(Figure3Experiment, samples=128, sweep_points=128)
    experiment.trainer.snapshot_interval = float("inf")
    experiment.step(60)
    _latest(experiment)
    measured = experiment.measurements.latest()
    assert measured.activity == "" and measured.iteration == 60  # swept once training stopped
    sweep = measured.sweep
    np.testing.assert_allclose(sweep.tolerances, SWEEP_TOLERANCES)
    assert np.isfinite(sweep.nfe_forward).all() and sweep.failures == ("",) * len(SWEEP_TOLERANCES)
    # Tighter tolerance: more evaluations and a smaller error (Figure 3a), more time (3b).
    assert sweep.nfe_forward[-1] > 2 * sweep.nfe_forward[0]
    assert np.all(np.diff(sweep.nfe_forward) >= 0)
    assert sweep.error[-1] < sweep.error[0] / 1e3
    assert sweep.wall_time[-1] > sweep.wall_time[0]
    memory = measured.memory
    np.testing.assert_array_equal(memory.steps, [8, 16, 32, 64, 128, 256, 512])
    assert memory.direct_bytes[-1] == pytest.approx(64 * memory.direct_bytes[0], rel=1e-3)
    assert len(set(memory.adjoint_bytes)) == 1
    # The marker at the current setting: rtol = atol = 1e-3 is the sweep's 1e-3 row, measured again.
    experiment.param.update(rtol=1e-3, atol=1e-3)
    _latest(experiment)
    current = experiment.measurements.latest().current
    row = list(SWEEP_TOLERANCES).index(1e-3)
    assert (current.solver.rtol, current.solver.atol) == (1e-3, 1e-3)
    assert current.nfe_forward == sweep.nfe_forward[row] and current.error == pytest.approx(sweep.error[row])
    ratio = experiment.nfe_ratio()
    _, history = experiment.trainer.history.since(0)
    assert ratio == pytest.approx(np.mean(history["nfe_backward"] / history["nfe_forward"])) and ratio > 0


def test_nfe_ratio_ignores_iterations_without_the_adjoint():
    assert nfe_ratio(np.array([20.0, 26.0, 14.0]), np.array([10.0, 13.0, 0.0])) == 0.5
    assert np.isnan(nfe_ratio(np.array([20.0]), np.array([0.0])))
