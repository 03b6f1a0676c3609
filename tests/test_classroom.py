"""A class on one server: experiments in Dask workers behind the page's stand-in (trained, paused and
reset like a thread in this process), redraws that do not wait for the running iteration, training
slots taken in turns and freed by a closed session, and read-only followers. A real LocalCluster
(one worker process), real training; no Panel."""
from __future__ import annotations

import functools
import threading
import time
from collections import Counter

import pytest

import harness
from odeviz.experiments import placement
from odeviz.experiments import ClassifierExperiment, ContinuityExperiment
from odeviz.experiments.knobs import knobs, link_query
from odeviz.experiments.proxy import READ_ONLY, proxy_class
from odeviz.experiments.registry import LIVE
from odeviz.experiments.remote import RemoteExperiment
from odeviz.numerics.solve import CancelToken, solve

wait_until = functools.partial(harness.wait_until, timeout=60.0, interval=0.05)  # workers start slowly

SLOTS = 1


@pytest.fixture(scope="module")
def client():
    client = placement.use_workers(workers=1, slots_per_worker=SLOTS)
    yield client
    placement.stop_workers()


@pytest.fixture(params=["thread", "actor"])
def placed(request):
    """Make experiments where the page would: a thread here, or a Dask actor (one worker, one slot)."""
    made = []

    def make(cls=ContinuityExperiment, **params):
        if request.param == "thread":
            experiment = cls(build_later=True, **params)
        else:
            experiment = proxy_class(RemoteExperiment, cls)(request.getfixturevalue("client"), SLOTS, **params)
        made.append(experiment)
        return experiment

    yield make
    for experiment in made:
        experiment.close()


def fresh(trainer, version: int = 0):
    """The next snapshot newer than ``version`` (waiting for it), as (version, snapshot)."""
    news = []
    wait_until(lambda: news.append(trainer.mailbox.newer_than(version)) or news[-1] is not None)
    return news[-1]


def test_trains_pauses_and_resets_alike_on_a_thread_and_in_a_worker(placed):
    experiment = placed(ContinuityExperiment, seed=3)
    trainer = experiment.trainer
    assert trainer.wait_idle(120)
    version, first = fresh(trainer)
    assert first.iteration == 0
    experiment.start()
    assert trainer.running  # the button turns to Pause at once, wherever training runs
    # A page's poll reads the mailbox first (for a stand-in, the read is what asks the worker for news).
    wait_until(lambda: trainer.mailbox.newer_than(version) is not None and len(trainer.history) >= 3)
    experiment.pause()
    assert not trainer.running
    assert trainer.wait_idle(60)
    stopped = trainer.iteration
    time.sleep(0.5)
    trainer.wait_idle(5)
    assert trainer.iteration == stopped >= 3 and str(trainer.state) == "paused"
    _, columns = trainer.history.since(0)
    assert list(columns["iteration"]) == list(range(1, stopped + 1))
    assert columns["loss"][-1] < columns["loss"][0]
    experiment.learning_rate = 2e-3  # a knob mid-session reaches the experiment, wherever it is
    experiment.rtol = 1e-5
    _, redrawn = fresh(trainer, trainer.mailbox.newer_than(0)[0])
    wait_until(lambda: fresh(trainer)[1].solver.rtol == 1e-5)
    experiment.reset()
    wait_until(lambda: trainer.wait_idle(1) and trainer.iteration == 0 and len(trainer.history) == 0)
    assert str(trainer.state) == "idle"


def test_a_bad_value_is_refused_in_words_before_it_leaves_the_page(client):
    experiment = proxy_class(RemoteExperiment, ClassifierExperiment)(client, SLOTS, samples=64)
    try:
        with pytest.raises(ValueError, match="rtol must be a number"):
            experiment.rtol = float("nan")
        experiment.add_probe(float("inf"), 0.0)  # refused in the worker: its words come back as the message
        wait_until(lambda: "finite coordinates" in experiment.trainer.message)
    finally:
        experiment.close()


def test_a_stand_in_has_the_knobs_and_link_of_its_experiment(client):
    experiment = proxy_class(RemoteExperiment, ClassifierExperiment)(client, SLOTS, samples=64, rtol=1e-4)
    try:
        assert knobs(experiment) == knobs(ClassifierExperiment)  # the page reads its URL and CLI by these
        assert link_query(experiment) == {"samples": "64", "rtol": "0.0001"}
    finally:
        experiment.close()


def test_work_slipped_between_evaluations_runs_inside_the_solve():
    import torch

    token, seen = CancelToken(), []
    calls = []

    def field(t, y):
        calls.append(len(calls))
        if len(calls) == 3:
            token.between(lambda: seen.append(len(calls)))
        return -y

    solve(field, torch.ones(2), [0.0, 1.0], method="rk4", options={"step_size": 0.25}, token=token)
    assert seen == [3]  # run once, at the evaluation after the one that asked, mid-solve


def test_a_tolerance_change_redraws_without_waiting_for_the_running_iteration(make_experiment):
    # Iterations of ~a second (4096 points, a wide field, a tight tolerance), pictures of a few points.
    experiment = make_experiment(ClassifierExperiment, samples=4096, batch_size=4096, width=256, rtol=1e-6,
                                 atol=1e-7)
    trainer = experiment.trainer
    experiment.start()
    wait_until(lambda: len(trainer.history) >= 1)
    wait_until(lambda: trainer._iterating)
    rows, version = len(trainer.history), trainer.mailbox.newer_than(0)[0]
    experiment.rtol = 1e-3
    _, snapshot = fresh(trainer, version)
    assert snapshot.solver.rtol == 1e-3
    assert len(trainer.history) == rows  # drawn before the running iteration ended
    experiment.pause()


class _Hosted:
    """What the training slots know of a session: its trainer (and when its page last asked)."""

    def __init__(self, experiment) -> None:
        self.trainer, self.lease_ends = experiment.trainer, float("inf")


def _take_turns(experiments, slots, iterations: int) -> list[int]:
    """Train ``experiments`` sharing ``slots`` until they ran ``iterations`` in all, while a reader
    takes every picture (as their pages would); returns how many pictures each drew while training."""
    for experiment in experiments:
        slots.add(_Hosted(experiment))
        experiment.step()  # built, and its optimizer made: what is measured is training alone
    for experiment in experiments:
        assert experiment.trainer.wait_idle(30)
    drawn = [experiment.trainer.mailbox.newer_than(0)[0] for experiment in experiments]
    reading = threading.Event()

    def read() -> None:
        while not reading.is_set():
            for experiment in experiments:
                experiment.trainer.mailbox.latest()
            time.sleep(0.02)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for experiment in experiments:
        experiment.start()
    wait_until(lambda: sum(experiment.trainer.iteration for experiment in experiments) >= iterations, timeout=120)
    for experiment in experiments:
        experiment.pause()
    for experiment in experiments:
        assert experiment.trainer.wait_idle(30)
    reading.set()
    reader.join()
    for experiment in experiments:  # no iteration thrown away at a change of hands: rows 1, 2, 3, …
        iterations = experiment.trainer.history.since(0)[1]["iteration"]
        assert list(iterations) == list(range(1, experiment.trainer.iteration + 1))
    assert slots.training == 0
    # (the pause's own picture is not one drawn while training)
    return [experiment.trainer.mailbox.newer_than(0)[0] - 1 - before for experiment, before in zip(experiments, drawn)]


def test_turns_share_training_evenly_in_iterations_and_change_hands_between_them(make_experiment, monkeypatch):
    """Three models, one far costlier per iteration (a wider field), share one slot:
    they train the same number of iterations, and each draws only the last iteration of its turns
    (plus the first after Train, which someone watches)."""
    from odeviz.experiments import host

    monkeypatch.setattr(host, "TURN_SECONDS", 30.0)  # (the time bound has its own test)
    monkeypatch.setattr(host, "TURN_ITERATIONS", 3)  # turns of several iterations: only their last is drawn
    slots = host.TrainingSlots(cap=1)
    experiments = [make_experiment(ContinuityExperiment, seed=seed, width=128 if seed == 0 else 32) for seed in range(3)]
    pictures = _take_turns(experiments, slots, iterations=45)
    iterations = [experiment.trainer.iteration for experiment in experiments]
    cost = [experiment.trainer.history.since(1)[1]["seconds"].mean() for experiment in experiments]
    assert cost[0] >= 1.5 * max(cost[1:]), cost  # the costlier model is costlier …
    assert max(iterations) <= 1.25 * min(iterations) and min(iterations) >= 10, iterations  # … and keeps up
    for count, drawn in zip(iterations, pictures):
        assert 1 <= drawn <= count / host.TURN_ITERATIONS + 2, (iterations, pictures)


def test_turns_are_bounded_in_time(make_experiment, monkeypatch):
    """A model whose iterations all take long ends its turn by the clock: the slot's time is shared."""
    from odeviz.experiments import host

    monkeypatch.setattr(host, "TURN_ITERATIONS", 10**6)
    monkeypatch.setattr(host, "TURN_SECONDS", 0.1)
    slots = host.TrainingSlots(cap=1)
    experiments = [make_experiment(ContinuityExperiment, seed=seed) for seed in range(3)]
    _take_turns(experiments, slots, iterations=150)
    seconds = [experiment.trainer.history.since(1)[1]["seconds"].sum() for experiment in experiments]
    assert max(seconds) <= 1.25 * min(seconds), seconds  # even shares of the one slot's time


def test_a_knob_on_a_session_waiting_its_turn_is_redrawn_at_once(make_experiment, monkeypatch):
    from odeviz.experiments import host

    monkeypatch.setattr(host, "TURN_SECONDS", 3600.0)  # the first keeps its turn for the whole test
    monkeypatch.setattr(host, "TURN_ITERATIONS", 10**6)
    slots = host.TrainingSlots(cap=1)
    first, second = make_experiment(ContinuityExperiment, seed=1), make_experiment(ContinuityExperiment, seed=2)
    for experiment in (first, second):
        slots.add(_Hosted(experiment))
    first.start()
    wait_until(lambda: first.trainer.iteration >= 1)
    second.step(3)
    wait_until(lambda: second.trainer.queue_position == 1)
    version = second.trainer.mailbox.newer_than(0)[0]
    second.rtol = 1e-5
    _, snapshot = fresh(second.trainer, version)
    assert snapshot.solver.rtol == 1e-5 and second.trainer.iteration == 0  # redrawn, still waiting
    first.pause()  # its slot goes to the one waiting, which takes its three steps, no fewer
    wait_until(lambda: second.trainer.iteration >= 1)
    assert second.trainer.wait_idle(30) and second.trainer.iteration == 3
    assert second.trainer.queue_position is None


def test_a_worker_host_waits_for_its_pages_first_question_and_a_lapsed_one_says_so(monkeypatch):
    """A loaded server took over 10 s to send a new host its first question (Train): the host had
    been closed as abandoned by then, and the page showed "Pause" over a model that never trained."""
    from odeviz.experiments import host

    monkeypatch.setattr(host, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(host, "FIRST_LEASE_SECONDS", 8.0)
    hosted = host.ExperimentHost("odeviz.experiments:ContinuityExperiment", {"seed": 1}, 1)
    seen = dict(version=0, rows_seen=0, generation=-1)
    try:
        time.sleep(3.0)  # longer than a lease; its page has not asked yet
        news = hosted.exchange([("start", (), {})], **seen)
        assert news["running"] and not hosted.closed
        wait_until(lambda: hosted.trainer.iteration >= 1)
        wait_until(lambda: hosted.closed, timeout=10)  # then asked no more: closed once its lease ran out
        news = hosted.exchange([("start", (), {})], **seen)
        assert not news["running"] and news["message"] == host.CLOSED
        assert not hosted.trainer.running
    finally:
        hosted.close()


def test_a_stand_in_asks_for_news_at_the_pages_rate_only_while_news_comes_or_a_knob_was_turned():
    from odeviz.experiments.remote import IDLE_FETCH_SECONDS, QUIET_FETCH_SECONDS, fetch_gap

    assert fetch_gap(idle=False, quiet=False, eager=False) == 0.0  # training's pictures and rows coming
    assert fetch_gap(idle=False, quiet=True, eager=False) == QUIET_FETCH_SECONDS > 0.2  # nothing came: ask less
    assert fetch_gap(idle=False, quiet=True, eager=True) == 0.0  # a knob's picture is on its way
    assert fetch_gap(idle=True, quiet=True, eager=True) == IDLE_FETCH_SECONDS


def _set_turns_on_workers(iterations: int, seconds: float) -> tuple[int, float]:
    from odeviz.experiments import host

    before = host.TURN_ITERATIONS, host.TURN_SECONDS
    host.TURN_ITERATIONS, host.TURN_SECONDS = iterations, seconds
    return before


def test_sessions_take_turns_and_a_closed_one_frees_its_slot_at_once(client):
    remote = proxy_class(RemoteExperiment, ContinuityExperiment)
    first, second = remote(client, SLOTS, seed=1), remote(client, SLOTS, seed=2)
    before = next(iter(client.run(_set_turns_on_workers, 10**6, 3600.0).values()))  # the first keeps its turn
    try:
        for experiment in (first, second):
            assert experiment.trainer.wait_idle(120)
        first.start()
        wait_until(lambda: (first.trainer.wait_idle(0.2) or True) and first.trainer.iteration >= 1)
        second.start()
        wait_until(lambda: (second.trainer.wait_idle(0.2) or True) and second.trainer.queue_position == 1)
        assert second.trainer.running and second.trainer.iteration == 0  # it wants to train; it waits
        first.close()
        closed = time.monotonic()
        wait_until(lambda: (second.trainer.wait_idle(0.1) or True) and second.trainer.iteration >= 1, timeout=10)
        assert second.trainer.queue_position is None
        assert time.monotonic() - closed < 2.0 + 1.5  # the slot within 2 s, plus one iteration on a loaded machine
    finally:
        client.run(_set_turns_on_workers, *before)
        first.close()
        second.close()


def test_a_follower_sees_the_leaders_snapshots_and_changes_nothing(make_experiment):
    leader = make_experiment(ContinuityExperiment, seed=4)
    live_id = LIVE.register(leader)
    follower = LIVE.follow(live_id)
    try:
        assert LIVE.followers(live_id) == 1
        leader.step(2)
        leader.trainer.wait_idle(60)
        version, snapshot = follower.trainer.mailbox.newer_than(0)
        assert snapshot.iteration == 2 and snapshot is leader.trainer.mailbox.latest()
        leader.rtol = 1e-5
        assert follower.rtol == 1e-5  # its knobs show the leader's
        for action in (follower.start, follower.reset, lambda: follower.step(1)):
            with pytest.raises(ValueError, match="follows another session"):
                action()
        follower.learning_rate = 0.5  # a widget that slipped past its disabled state changes nothing
        assert leader.learning_rate == 1e-2 and follower.learning_rate == 1e-2
        assert READ_ONLY.startswith("This page follows")
    finally:
        follower.close()
        LIVE.unregister(live_id)
    assert LIVE.followers(live_id) == 0
    with pytest.raises(ValueError, match="no live session"):
        LIVE.follow(live_id)


def test_sessions_arriving_one_by_one_spread_over_the_workers():
    # Dask's scheduler sees a made actor as done: left to it, students arriving a moment apart pile up
    # on one worker (4 and 2 of 6 here) while the other idles.
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as own_client:
        remote = proxy_class(RemoteExperiment, ContinuityExperiment)
        experiments = []
        try:
            for seed in range(6):
                experiments.append(remote(own_client, SLOTS, seed=seed))
                time.sleep(1)  # a moment apart: each actor made before the next arrives
            assert all(e.trainer.wait_idle(120) for e in experiments)
            homes = Counter(own_client.who_has(e._future)[e._future.key][0] for e in experiments)
            assert sorted(homes.values()) == [3, 3], homes
        finally:
            for experiment in experiments:
                experiment.close()


def test_a_session_opened_while_no_worker_is_up_trains_on_the_first_that_comes():
    """Workers restarting (or a cluster given by address whose workers have not joined yet): the page
    must still open, and its model train once a worker is there. (Dask refused the placement.)"""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as own_client:
        experiment = proxy_class(RemoteExperiment, ContinuityExperiment)(own_client, SLOTS, seed=3)
        try:
            experiment.step(2)
            cluster.scale(1)
            wait_until(lambda: (experiment.trainer.wait_idle(0.5) or True) and experiment.trainer.iteration == 2,
                       timeout=120)
        finally:
            experiment.close()
