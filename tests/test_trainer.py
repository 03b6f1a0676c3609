"""The background trainer driving a real ContinuityExperiment: snapshots, history, pause, knobs
changed mid-training, reset, recovery from a blow-up, and shutdown. Real threads, no Panel."""
from __future__ import annotations

import copy
import math
import subprocess
import sys
import time

import numpy as np
import torch
from harness import wait_until
from torch import nn

from odeviz.experiments import ContinuityExperiment, ContinuitySnapshot
from odeviz.experiments.trainer import Trainer

HISTORY_KEYS = {"iteration", "loss", "loss_ode", "loss_resnet", "nfe_forward", "nfe_backward", "seconds"}
BLOW_UP_WORDS = ("NaN", "nan", "infinite", "evaluations", "underflow", "loss")


def assert_same_weights(state: dict, expected: dict) -> None:
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


class SlowField(nn.Module):
    """The experiment's own vector field, sleeping and counting at every evaluation while training
    (snapshots evaluate it in eval mode, which neither sleeps nor counts)."""

    def __init__(self, inner: nn.Module, delay: float) -> None:
        super().__init__()
        self.inner = inner
        self.delay = delay
        self.training_calls = 0

    def forward(self, t, h):
        if self.training:
            self.training_calls += 1
            time.sleep(self.delay)
        return self.inner(t, h)


class SlowContinuityExperiment(ContinuityExperiment):
    """A ContinuityExperiment whose ODE-Net takes 2 ms per evaluation of f while training."""

    def _build(self) -> None:
        super()._build()
        self.model["ode"] = SlowField(self.model["ode"], delay=0.002)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate)


def test_initial_snapshot_is_published(make_experiment):
    experiment = make_experiment()
    assert experiment.trainer.wait_idle()
    snapshot = experiment.trainer.mailbox.latest()
    assert isinstance(snapshot, ContinuitySnapshot)
    assert snapshot.iteration == 0 and experiment.trainer.iteration == 0
    assert experiment.trainer.state == "idle" and not experiment.trainer.running
    assert len(experiment.trainer.history) == 0 and experiment.trainer.message == ""


def test_the_first_picture_makes_no_optimizer_and_a_step_makes_adam(make_experiment):
    """The first optimizer a process makes has torch import its compiler (~1.8 s here): a page's first
    picture must not wait for it. Adam comes with the first step, and afresh after a reset."""
    experiment = make_experiment()
    assert experiment.trainer.wait_idle() and experiment.trainer.mailbox.latest() is not None
    assert experiment._optimizer is None
    experiment.step(2)
    assert experiment.trainer.wait_idle()
    adam = experiment.optimizer
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["lr"] == experiment.learning_rate
    assert {id(p) for group in adam.param_groups for p in group["params"]} == {id(p) for p in experiment.model.parameters()}
    assert all(int(state["step"]) == 2 for state in adam.state.values())
    experiment.reset()
    assert experiment.trainer.wait_idle() and experiment._optimizer is None


def test_a_pages_experiment_has_torch_import_its_compiler_before_the_first_train():
    """In a fresh process (``panel serve apps/…``, a notebook): the first picture comes without the
    compiler import (~1.8 s here), which follows in the background, so the first Train does not wait."""
    script = (
        "import sys, time\n"
        "from odeviz.experiments import ContinuityExperiment\n"
        "e = ContinuityExperiment(build_later=True)\n"
        "assert e.trainer.wait_idle(60) and e.trainer.mailbox.latest() is not None\n"
        "deadline = time.monotonic() + 60\n"
        "while 'torch._dynamo' not in sys.modules or not hasattr(sys.modules['torch._dynamo'], 'disable'):\n"
        "    assert time.monotonic() < deadline, 'torch._dynamo never imported'\n"
        "    time.sleep(0.05)\n"
        "time.sleep(0.5)\n"
        "import threading\n"
        "assert not any(t.name == 'odeviz-import-torch-compiler' and t.is_alive() for t in threading.enumerate())\n"
        "e.close()\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stderr[-2000:]


def test_step_records_history_and_publishes_snapshot(make_experiment):
    experiment = make_experiment()
    experiment.trainer.wait_idle()
    version = experiment.trainer.mailbox.newer_than(0)[0]
    experiment.step(5)
    assert experiment.trainer.wait_idle()
    trainer = experiment.trainer
    assert trainer.iteration == 5 and len(trainer.history) == 5 and trainer.message == ""
    generation, columns = trainer.history.since(0)
    assert generation == 0 and set(columns) == HISTORY_KEYS
    np.testing.assert_array_equal(columns["iteration"], [1, 2, 3, 4, 5])
    for key in HISTORY_KEYS:
        assert columns[key].shape == (5,) and np.isfinite(columns[key]).all(), key
    np.testing.assert_allclose(columns["loss"], columns["loss_ode"] + columns["loss_resnet"], rtol=1e-12)
    assert (columns["nfe_forward"] > 0).all() and (columns["nfe_backward"] > 0).all()  # adjoint by default
    assert (columns["seconds"] > 0).all()
    assert set(trainer.history.last()) == HISTORY_KEYS and trainer.history.last()["iteration"] == 5
    assert trainer.history.since(3)[1]["iteration"].tolist() == [4, 5]
    newer = trainer.mailbox.newer_than(version)
    assert newer is not None and newer[1].iteration == 5


def test_a_run_nobody_watches_draws_no_pictures_until_it_stops(make_experiment):
    experiment = make_experiment()
    trainer = experiment.trainer
    assert trainer.wait_idle()
    drawn = []
    snapshot = experiment.snapshot
    experiment.snapshot = lambda token, iteration: drawn.append(iteration) or snapshot(token, iteration)
    trainer.start()
    deadline = time.monotonic() + 60
    while trainer.iteration < 10 and time.monotonic() < deadline:  # watched, a picture would come every 0.1 s
        time.sleep(0.1)
    assert trainer.iteration >= 10 and drawn == []  # the first picture was never read: none drawn since
    trainer.mailbox.latest()  # a page reads it: pictures come again while training runs
    while len(drawn) < 2 and time.monotonic() < deadline:
        trainer.mailbox.latest()
        time.sleep(0.05)
    assert len(drawn) >= 2 and trainer.running
    trainer.pause()
    assert trainer.wait_idle()
    assert trainer.mailbox.latest().iteration == trainer.iteration  # stopped: the last picture is drawn


def test_pictures_are_spaced_by_what_showing_them_costs_too(make_experiment):
    """A served page's event loop shares the GIL with training: what it reports each frame costs counts
    against the pictures' share (15 % for this experiment) like the drawing itself does."""
    def pictures_in(seconds: float, display_cost: float) -> int:
        experiment = make_experiment()
        trainer, versions = experiment.trainer, set()
        assert trainer.wait_idle()
        trainer.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:  # a page reading at 50 Hz and saying what each picture cost it
            news = trainer.mailbox.newer_than(max(versions, default=0))
            if news is not None:
                versions.add(news[0])
                trainer.note_display_cost(display_cost)
            time.sleep(0.02)
        experiment.close()
        return len(versions)

    cheap, costly = pictures_in(2.0, 0.0), pictures_in(2.0, 0.06)
    # 60 ms a picture at most 15 % of the time: ≥ 0.34 s apart, ≤ 6 in 2 s (besides the one before
    # Train and the first iteration's, shown at once); cheap ones every 0.1 s.
    assert costly <= 2.0 / 0.34 + 2 < cheap, (costly, cheap)


def test_the_first_iteration_after_train_is_shown_at_once_and_pushed(make_experiment):
    """Whoever pressed Train watches for the first change: its picture is not held back by the spacing
    of pictures while training (here 10 s apart), and it is marked as answering a person, so a served
    page pushes it on its next tick instead of at its next poll."""
    experiment = make_experiment()
    trainer = experiment.trainer
    trainer.snapshot_interval = 10.0
    assert trainer.wait_idle()
    trainer.mailbox.latest()
    told: list[tuple[bool, int]] = []
    trainer.mailbox.listen(lambda asked: told.append((asked, trainer.mailbox.latest().iteration)))
    for _ in range(2):  # Train, Pause, Train again: each Train's first iteration is shown
        told.clear()
        experiment.start()
        wait_until(lambda: trainer.iteration >= 3 and told)
        experiment.pause()
        assert trainer.wait_idle()
        assert told[0][0] and told[0][1] >= 1, told
        assert not any(asked for asked, _ in told[1:-1]), told  # the rest paced as usual, the last one on Pause

class SlowPausedPictures(ContinuityExperiment):
    """Paused-quality pictures take 3 s here (a CNF's full density grids take ~1 s), checked for
    cancellation as a solve is."""

    def snapshot(self, token, iteration):
        if not self.trainer.running:
            for _ in range(3000):
                token.checkpoint()
                time.sleep(0.001)
        return super().snapshot(token, iteration)


def test_train_does_not_wait_for_a_paused_picture_being_drawn(make_experiment):
    experiment = make_experiment(SlowPausedPictures)
    trainer = experiment.trainer
    assert trainer.wait_idle()
    trainer.mailbox.latest()
    trainer.refresh()  # e.g. the full grids after a first coarse picture
    time.sleep(0.2)
    pressed = time.perf_counter()
    experiment.start()
    wait_until(lambda: trainer.mailbox.latest().iteration >= 1, timeout=10)
    assert time.perf_counter() - pressed < 2.0, "Train waited for the paused picture"
    experiment.pause()
    assert trainer.wait_idle()
    assert trainer.mailbox.latest().iteration == trainer.iteration  # the paused picture, drawn on Pause


def test_pause_stops_within_one_evaluation(make_experiment):
    experiment = make_experiment(SlowContinuityExperiment)
    field = experiment.model["ode"]
    trainer = experiment.trainer
    trainer.wait_idle()
    experiment.start()
    assert trainer.running and trainer.state == "running"
    wait_until(lambda: len(trainer.history) >= 2)  # past the first iteration, so pausing means "paused"
    calls = field.training_calls
    wait_until(lambda: field.training_calls > calls + 3)  # now in the middle of a solve
    iteration = trainer.iteration
    experiment.pause()
    calls_at_pause = field.training_calls
    assert not trainer.running
    time.sleep(0.3)  # an unstopped iteration would evaluate f dozens of times in this while
    assert field.training_calls - calls_at_pause <= 1
    assert trainer.wait_idle()
    assert field.training_calls - calls_at_pause <= 1
    assert not trainer.running and trainer.state == "paused"
    assert trainer.iteration <= iteration + 1  # the interrupted iteration is discarded
    assert len(trainer.history) == trainer.iteration
    assert trainer.mailbox.latest().iteration == trainer.iteration  # a fresh picture after pausing
    assert trainer.message == ""

    # Resuming trains on from where it stopped.
    experiment.start()
    wait_until(lambda: trainer.iteration >= iteration + 2)
    experiment.pause()
    trainer.wait_idle()
    assert trainer.state == "paused"


def test_tolerance_and_learning_rate_apply_at_the_next_iteration(make_experiment):
    experiment = make_experiment(rtol=1e-3, atol=1e-6)
    trainer = experiment.trainer
    trainer.wait_idle()
    experiment.start()
    wait_until(lambda: len(trainer.history) >= 3)
    experiment.rtol = 1e-8
    changed_at = len(trainer.history)  # the iteration under way may still use the old value
    wait_until(lambda: len(trainer.history) >= changed_at + 4)
    experiment.learning_rate = 3e-3
    lr_changed_at = len(trainer.history)
    wait_until(lambda: len(trainer.history) >= lr_changed_at + 2)
    assert experiment.optimizer.param_groups[0]["lr"] == 3e-3
    experiment.pause()
    trainer.wait_idle()
    _, columns = trainer.history.since(0)
    before, after = columns["nfe_forward"][:changed_at], columns["nfe_forward"][changed_at + 1 :]
    assert len(after) >= 3
    assert after.min() > before.max(), (before, after)  # before vs after, printed on failure
    assert trainer.mailbox.latest().solver.rtol == 1e-8
    assert experiment.optimizer.param_groups[0]["lr"] == 3e-3


def test_tolerance_change_while_paused_redraws_at_once(make_experiment):
    experiment = make_experiment(rtol=1e-2, atol=1e-2)
    experiment.step(2)
    experiment.trainer.wait_idle()
    loose = experiment.trainer.mailbox.latest()
    experiment.param.update(rtol=1e-9, atol=1e-9)
    experiment.trainer.wait_idle()
    tight = experiment.trainer.mailbox.latest()
    assert (tight.solver.rtol, tight.solver.atol) == (1e-9, 1e-9) and tight.iteration == loose.iteration == 2
    assert tight.nfe_forward > loose.nfe_forward
    assert tight.reference_error < loose.reference_error


def test_reset_starts_over_with_seeded_weights(make_experiment):
    experiment = make_experiment(seed=7)
    trainer = experiment.trainer
    experiment.step(4)
    trainer.wait_idle()
    generation = trainer.history.generation
    trained = copy.deepcopy(experiment.model.state_dict())
    experiment.reset()
    assert trainer.wait_idle()
    assert trainer.iteration == 0 and len(trainer.history) == 0
    assert trainer.history.generation == generation + 1
    assert trainer.history.since(0) == (generation + 1, {})
    assert trainer.mailbox.latest().iteration == 0
    assert trainer.state == "idle" and trainer.message == ""
    assert experiment.optimizer.state == {} or all(not s for s in experiment.optimizer.state.values())
    fresh = make_experiment(seed=7)
    fresh.trainer.wait_idle()
    assert_same_weights(experiment.model.state_dict(), fresh.model.state_dict())
    assert not all(torch.equal(trained[k], v) for k, v in fresh.model.state_dict().items())
    # It trains again from the start, exactly like the fresh experiment.
    experiment.step(2)
    fresh.step(2)
    experiment.trainer.wait_idle()
    fresh.trainer.wait_idle()
    assert experiment.trainer.history.last()["loss"] == fresh.trainer.history.last()["loss"]


def test_reset_while_running_stops_and_starts_over(make_experiment):
    experiment = make_experiment(SlowContinuityExperiment)
    trainer = experiment.trainer
    experiment.start()
    wait_until(lambda: len(trainer.history) >= 1)
    experiment.reset()
    assert trainer.wait_idle(timeout=10)
    assert not trainer.running and trainer.iteration == 0 and len(trainer.history) == 0


def test_blow_up_pauses_and_keeps_last_good_weights(make_experiment):
    # Deterministic (seed 0, float64, one thread): with Adam at learning rate 10, iteration 2 still
    # has a finite loss (~4.7e3) but its update makes f so stiff that iteration 3's forward solve
    # needs more than max_nfe evaluations. The weights that produced the last finite loss are
    # therefore the ones after iteration 1.
    experiment = make_experiment(
        learning_rate=10.0, max_nfe=2000, method="dopri5", rtol=1e-3, atol=1e-6, adjoint=True, seed=0
    )
    trainer = experiment.trainer
    experiment.step(1)
    trainer.wait_idle()
    last_good = copy.deepcopy(experiment.model.state_dict())
    experiment.step(20)
    assert trainer.wait_idle()
    assert trainer.iteration == 2 and len(trainer.history) == 2
    assert math.isfinite(trainer.history.last()["loss"])
    assert not trainer.running and trainer.state == "paused"
    assert "Paused" in trainer.message and any(word in trainer.message for word in BLOW_UP_WORDS), trainer.message
    assert "2000" in trainer.message
    for value in experiment.model.state_dict().values():
        assert torch.isfinite(value).all()
    assert_same_weights(experiment.model.state_dict(), last_good)

    # The session keeps working: a sane learning rate, reset, and training goes on.
    experiment.learning_rate = 1e-2
    experiment.reset()
    trainer.wait_idle()
    experiment.step(3)
    assert trainer.wait_idle()
    assert trainer.iteration == 3 and trainer.message == "" and trainer.state != "running"
    assert np.isfinite(trainer.history.since(0)[1]["loss"]).all()


def test_nan_weights_pause_and_restore_last_good(make_experiment):
    experiment = make_experiment()
    trainer = experiment.trainer
    experiment.step(1)
    trainer.wait_idle()
    last_good = copy.deepcopy(experiment.model.state_dict())  # what iteration 2 computes its loss with
    experiment.step(1)
    trainer.wait_idle()

    def poison():
        with torch.no_grad():
            experiment.model["ode"].net[0].weight[0, 0] = float("nan")

    trainer.submit(poison)
    experiment.step(1)
    assert trainer.wait_idle()
    assert trainer.iteration == 2 and not trainer.running and trainer.state == "paused"
    assert "Paused at iteration 3" in trainer.message
    assert any(word in trainer.message for word in BLOW_UP_WORDS), trainer.message
    assert_same_weights(experiment.model.state_dict(), last_good)
    experiment.step(2)
    trainer.wait_idle()
    assert trainer.iteration == 4 and trainer.message == ""


def test_pause_reason_survives_a_failing_redraw(make_experiment):
    # Poisoned before any good iteration: there are no good weights to restore, so the redraw after
    # the pause fails too; the message must still say why training paused, not just that drawing failed.
    experiment = make_experiment()
    trainer = experiment.trainer
    trainer.wait_idle()

    def poison():
        with torch.no_grad():
            experiment.model["ode"].net[0].weight[0, 0] = float("nan")

    trainer.submit(poison)
    trainer.wait_idle()
    assert "Could not draw" in trainer.message  # the redraw right after the command fails
    experiment.step(1)
    assert trainer.wait_idle()
    assert trainer.iteration == 0 and trainer.state == "paused" and not trainer.running
    assert trainer.message.startswith("Paused at iteration 1") and "underflow" in trainer.message
    experiment.reset()
    trainer.wait_idle()
    assert all(torch.isfinite(v).all() for v in experiment.model.state_dict().values())
    experiment.step(2)
    trainer.wait_idle()
    assert trainer.iteration == 2 and trainer.message == ""


def test_close_ends_the_thread_mid_solve(make_experiment):
    experiment = make_experiment(SlowContinuityExperiment)
    field = experiment.model["ode"]
    experiment.start()
    wait_until(lambda: field.training_calls > 5)
    started = time.perf_counter()
    experiment.close()
    assert not experiment.trainer._thread.is_alive()
    assert time.perf_counter() - started < 2.0
    calls = field.training_calls
    time.sleep(0.05)
    assert field.training_calls == calls
    # Controls after close are harmless no-ops.
    experiment.step(1)
    experiment.start()
    assert experiment.trainer.wait_idle(timeout=1)


def test_close_idle_experiment(make_experiment):
    experiment = make_experiment()
    experiment.trainer.wait_idle()
    experiment.close()
    assert not experiment.trainer._thread.is_alive()


def test_a_failed_drawing_is_reported_and_cleared_once_drawing_works(make_experiment):
    experiment = make_experiment(max_nfe=10)
    experiment.rtol = 1e-9  # the display solve needs far more than 10 evaluations
    experiment.trainer.wait_idle()
    assert experiment.trainer.message.startswith("Could not draw the model")
    experiment.max_nfe = 100_000
    experiment.rtol = 1e-3
    experiment.trainer.wait_idle()
    assert experiment.trainer.message == ""


def test_pause_before_the_first_iteration_finishes_is_a_pause(make_experiment):
    experiment = make_experiment()
    experiment.trainer.wait_idle()
    experiment.start()
    experiment.pause()  # at once, before any iteration can have finished
    experiment.trainer.wait_idle()
    assert experiment.trainer.state == "paused" and not experiment.trainer.running
    idle = make_experiment()
    idle.pause()  # nothing was running: nothing to pause
    assert idle.trainer.state == "idle"


def test_resume_continues_where_pause_stopped(make_experiment):
    experiment = make_experiment()
    experiment.step(3)
    experiment.trainer.wait_idle()
    experiment.trainer.resume()
    assert experiment.trainer.running and experiment.trainer.state == "running"
    experiment.pause()
    experiment.trainer.wait_idle()
    assert experiment.trainer.iteration >= 3 and len(experiment.trainer.history) == experiment.trainer.iteration


def test_a_declared_restart_param_rebuilds_and_the_learning_rate_does_not(make_experiment):
    experiment = make_experiment()
    trainer = experiment.trainer
    experiment.step(3)
    trainer.wait_idle()
    weights = copy.deepcopy(experiment.model.state_dict())
    experiment.learning_rate = 5e-3  # not in restart_on: read at the next iteration, nothing rebuilt
    trainer.wait_idle()
    assert trainer.iteration == 3 and len(trainer.history) == 3
    assert_same_weights(experiment.model.state_dict(), weights)
    assert "width" in ContinuityExperiment.restart_on
    experiment.width = 16  # a new architecture: training starts over
    trainer.wait_idle()
    assert trainer.iteration == 0 and len(trainer.history) == 0 and trainer.state == "idle"
    assert experiment.model["ode"].net[0].out_features == 16


def test_every_declared_restart_is_a_param():
    from odeviz.experiments import CNFExperiment, ClassifierExperiment, Figure3Experiment, Table1Experiment

    for cls in (ContinuityExperiment, ClassifierExperiment, Figure3Experiment, CNFExperiment, Table1Experiment):
        assert "seed" in cls.restart_on and set(cls.restart_on) <= set(cls.param), cls.__name__


def test_state_is_an_enum_and_a_stop_has_a_reason(make_experiment):
    from odeviz.experiments.trainer import StopReason, TrainerState

    experiment = make_experiment()
    trainer = experiment.trainer
    trainer.wait_idle()
    assert trainer.state is TrainerState.IDLE and trainer.state == "idle" and f"{trainer.state}" == "idle"
    assert trainer.stop_reason is None
    experiment.rtol = 1e-9
    experiment.max_nfe = 10  # the display solve cannot finish: a message, but training did not stop
    trainer.wait_idle()
    assert trainer.stop_reason is None and trainer.message.startswith("Could not draw the model")
    experiment.step(1)  # nor can training's solve: it stops, and says why
    trainer.wait_idle()
    assert trainer.state is TrainerState.PAUSED and trainer.stop_reason is StopReason.FAILED
    assert trainer.message.startswith("Paused at iteration 1") and "evaluations" in trainer.message
    experiment.param.update(rtol=1e-3, max_nfe=10_000)
    experiment.step(1)
    trainer.wait_idle()
    assert trainer.stop_reason is None and trainer.message == "" and trainer.iteration == 1


def test_a_failure_gives_its_advice_once():
    """The evaluation cap's message says what to do; the trainer does not say it again."""
    from odeviz.numerics.solve import EvaluationLimitExceeded

    class Capped:
        def train_step(self, token):
            raise EvaluationLimitExceeded("the forward solve needed more than 10 evaluations of f; the dynamics "
                                          "are too stiff for this tolerance (loosen rtol/atol or lower the learning rate)")

        def snapshot(self, token, iteration):
            return iteration

        def rebuild(self):
            pass

        def restore_last_good(self):
            pass

    trainer = Trainer(Capped())
    try:
        trainer.step(1)
        assert trainer.wait_idle(10)
        message = trainer.message
        assert "more than 10 evaluations" in message and "Kept the last good weights" in message
        assert message.count("learning rate") == 1 and message.count("loosen") == 1, message
    finally:
        trainer.close()
