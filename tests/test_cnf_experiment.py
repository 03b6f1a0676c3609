"""The CNF experiment without Panel: training beats a Gaussian, densities integrate to one, snapshots,
refused input (files, drawings, width), save and load."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from harness import wait_until

import odeviz
from odeviz.data.densities import PointSource, parse_points, read_points
from odeviz.data.files import MAX_FILE_BYTES
from odeviz.experiments import CNFExperiment, CNFSnapshot
from odeviz.experiments.cnf import DISPLAY_SHARE, FRACTIONS, GRID_FIRST, GRID_IDLE, HEAVY_PERIOD, PLANAR_BANK


@pytest.fixture(scope="module")
def trained():
    """A CNF trained briefly on two moons (pictures only at the end, to save time)."""
    experiment = CNFExperiment(target="moons", seed=0, compare_planar=True)
    experiment.trainer.snapshot_interval = math.inf
    experiment.step(100)
    assert experiment.trainer.wait_idle(600)  # generous: the machine may be shared
    yield experiment
    experiment.close()


def gaussian_nll(train: np.ndarray, test: np.ndarray) -> float:
    mean, cov = train.mean(0), np.cov(train.T)
    diff = test - mean
    mahalanobis = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    return float(np.mean(0.5 * mahalanobis + 0.5 * np.log(np.linalg.det(cov)) + math.log(2 * math.pi)))


def test_trained_cnf_beats_a_fitted_gaussian_on_held_out_moons(trained):
    nll = trained.held_out_nll()
    baseline = gaussian_nll(trained.source.pool, trained.source.held_out())
    assert nll["cnf"] < baseline - 0.5, (nll, baseline)  # ≈ 1.7 against 2.6 nats
    assert set(nll) == {"cnf", *(f"planar_{k}" for k in PLANAR_BANK)}
    assert all(math.isfinite(value) for value in nll.values())


def test_model_density_integrates_to_one(trained):
    flow = trained.trained_flow()
    xs = np.linspace(-6.0, 6.0, 81)  # the model's mass lies well inside ±6 (data standardised to std 1)
    gx, gy = np.meshgrid(xs, xs)
    density = np.exp(flow.log_prob(np.stack([gx.ravel(), gy.ravel()], 1), rtol=1e-5, atol=1e-7))
    assert abs(density.sum() * (xs[1] - xs[0]) ** 2 - 1.0) < 0.02


def test_snapshot_holds_every_picture(trained):
    snapshot = trained.trainer.mailbox.latest()
    assert isinstance(snapshot, CNFSnapshot) and snapshot.iteration == 100
    frames = len(FRACTIONS)
    assert snapshot.log_density.shape == (frames, GRID_IDLE, GRID_IDLE)
    assert np.isfinite(snapshot.log_density).all()
    # Frame 0 is the base N(0, I) (the flow has not started): its density is the standard normal's.
    x0, x1, y0, y1 = snapshot.extent
    xs = x0 + (np.arange(GRID_IDLE) + 0.5) * (x1 - x0) / GRID_IDLE
    ys = y0 + (np.arange(GRID_IDLE) + 0.5) * (y1 - y0) / GRID_IDLE
    gx, gy = np.meshgrid(xs, ys)
    assert np.allclose(snapshot.log_density[0], -0.5 * (gx**2 + gy**2) - math.log(2 * math.pi), atol=1e-4)
    cell = (x1 - x0) * (y1 - y0) / GRID_IDLE**2
    masses = np.exp(snapshot.log_density).sum((1, 2)) * cell
    assert np.all(np.abs(masses - 1.0) < 0.03), masses  # every frame is a density
    assert snapshot.particles.shape[1:] == (1000, 2) and snapshot.particles.shape[0] == len(snapshot.path_fractions)
    assert np.allclose(snapshot.particles[snapshot.frame_of_path], snapshot.particles[::4])
    assert snapshot.field_velocity.shape == (frames, len(snapshot.field_points), 2)
    assert snapshot.planar_samples.shape == (1000, 2) and np.isfinite(snapshot.planar_log_density).all()
    planar_sizes, planar_nll = snapshot.capacity["planar"]
    assert list(planar_sizes) == list(PLANAR_BANK) and np.isfinite(planar_nll).all()
    assert list(snapshot.capacity["cnf"][0]) == [trained.width]


def test_save_and_load_give_the_same_model(trained, tmp_path):
    path = trained.save(tmp_path / "moons.pt")
    loaded = odeviz.load(path)
    points = trained.source.held_out()[:50]
    assert np.allclose(loaded.log_prob(points), trained.trained_flow().log_prob(points))
    samples = loaded.sample(300, seed=1)
    assert samples.shape == (300, 2) and np.isfinite(samples).all()
    assert np.abs(samples.mean(0)).max() < 0.3  # moons are standardised: samples centred too
    with pytest.raises(ValueError, match="points must be an"):
        loaded.log_prob(np.zeros(3))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a model saved by odeviz"):
        odeviz.load(tmp_path / "junk.pt")


# ---- refused input ---------------------------------------------------------------------------
def write(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", "", "is empty"),
        ("empty.npy", np.zeros((0, 2)), "is empty"),
        ("line.npy", np.arange(20.0), "N×2 array of points .* 1-D array of shape \\(20,\\)"),
        ("column.csv", "\n".join(str(v) for v in range(20)), "N×2 .* 1-D"),
        ("cube.npy", np.zeros((5, 4, 2)), "3-D array of shape \\(5, 4, 2\\)"),
        ("three.csv", "\n".join("1,2,3" for _ in range(20)), "shape \\(20, 3\\)"),
        ("nan.csv", "\n".join(f"{i},{'nan' if i == 7 else i}" for i in range(20)), "NaN or infinite values in 1 of 20 rows"),
        ("words.csv", "x,y\n1,2\nthree,4\n", "non-numeric"),
        ("strings.npy", np.array([["a", "b"]] * 20), "must be numbers"),
        ("few.csv", "1,2\n3,4\n", "has 2 points; a density needs at least 10"),
        ("points.txt", "1,2\n", "must be a .npy or .csv file"),
    ],
)
def test_bad_files_are_refused_with_a_clear_message(tmp_path, name, content, message):
    with pytest.raises(ValueError, match=message):
        read_points(write(tmp_path, name, content))


def test_a_file_over_100_mb_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:  # sparse: no disk or memory is used
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ValueError, match="the limit is 100 MB"):
        read_points(path)
    with pytest.raises(ValueError, match="does not exist"):
        read_points(tmp_path / "missing.npy")


def test_good_files_with_and_without_header(tmp_path):
    rows = "\n".join(f"{i},{i * i % 7}" for i in range(30))
    assert read_points(write(tmp_path, "plain.csv", rows)).shape == (30, 2)
    assert read_points(write(tmp_path, "header.csv", "x,y\n" + rows)).shape == (30, 2)
    path = write(tmp_path, "a.npy", np.arange(24.0).reshape(12, 2))
    assert parse_points(open(path, "rb").read(), "a.npy").shape == (12, 2)  # bytes, as the page's upload gives them


def test_experiment_learns_a_file_and_a_drawing_and_refuses_bad_ones(make_experiment, tmp_path):
    experiment = make_experiment(CNFExperiment, target="moons")
    rng = np.random.default_rng(0)
    ring = np.c_[np.cos(np.linspace(0, 6.28, 200)), np.sin(np.linspace(0, 6.28, 200))] * 50 + 100
    experiment.load_file(write(tmp_path, "ring.npy", ring + rng.normal(0, 1, ring.shape)))
    experiment.step(2)
    experiment.trainer.wait_idle()
    assert experiment.target == "file" and experiment.trainer.iteration == 2 and not experiment.trainer.message
    snapshot = experiment.trainer.mailbox.latest()
    assert snapshot.target == "ring.npy"
    assert snapshot.extent[0] < 50 < 150 < snapshot.extent[1]  # shown in the file's own units
    assert np.isfinite(snapshot.held_out_nll)

    with pytest.raises(ValueError, match="has 3 points; a density needs at least 10"):
        experiment.use_points(rng.normal(size=(3, 2)))
    with pytest.raises(ValueError, match="width' must be at least 1, not 0"):
        experiment.width = 0
    assert experiment.target == "file" and experiment.width == 64

    smiley = rng.normal(size=(25, 2))
    experiment.use_points(smiley)
    experiment.step(1)
    experiment.trainer.wait_idle()
    assert experiment.target == "drawn" and experiment.trainer.iteration == 1
    assert np.array_equal(experiment.points, smiley)


def test_choosing_drawn_before_drawing_is_refused_and_keeps_the_target(make_experiment):
    experiment = make_experiment(CNFExperiment, target="circles")
    with pytest.raises(ValueError, match="nothing drawn yet"):
        experiment.target = "drawn"
    assert experiment.target == "circles"
    experiment.step(1)
    experiment.trainer.wait_idle()
    assert experiment.trainer.iteration == 1 and not experiment.trainer.message


def test_point_sources_hold_out_points_they_never_train_on():
    source = PointSource("moons", seed=3)
    held = {tuple(p) for p in source.held_out()[:200]}
    assert not held & {tuple(p) for p in source.batch(5000)}
    drawn = PointSource("drawn", np.random.default_rng(0).normal(size=(12, 2)))
    assert drawn.batch(100).shape == (100, 2) and len(np.unique(drawn.batch(100), axis=0)) == 100  # jittered


def test_learning_rate_falls_along_a_cosine_then_stays(make_experiment):
    experiment = make_experiment(CNFExperiment, learning_rate=0.04, decay_iterations=10, compare_planar=False)
    experiment.trainer.snapshot_interval = math.inf
    rates, schedule = [], experiment._learning_rate
    experiment._learning_rate = lambda: rates.append(schedule()) or rates[-1]
    experiment.step(12)
    assert experiment.trainer.wait_idle(60) and experiment.trainer.iteration == 12
    assert rates[0] == pytest.approx(0.04)
    assert rates[5] == pytest.approx(0.04 * (0.05 + 0.95 * 0.5))  # half way down the cosine
    assert rates[10] == rates[11] == pytest.approx(0.04 * 0.05)
    assert all(a > b for a, b in zip(rates[:10], rates[1:11]))
    assert experiment.optimizer.param_groups[0]["lr"] == pytest.approx(0.04 * 0.05)  # what Adam used


def test_while_training_pictures_take_a_bounded_share_of_the_time(make_experiment):
    experiment = make_experiment(CNFExperiment, target="circles", compare_planar=False)
    trainer = experiment.trainer
    assert trainer.wait_idle(600)  # generous: the machine may be shared
    drawing_seconds, snapshot, first_grids = [], experiment.snapshot, []

    def timed_snapshot(token, iteration):
        start = time.perf_counter()
        try:
            return snapshot(token, iteration)
        finally:
            if trainer.running:  # not the picture drawn once training pauses
                drawing_seconds.append(time.perf_counter() - start)
                if experiment._density_version > versions_before and not first_grids:
                    first_grids.append((time.perf_counter() - pressed, drawing_seconds[-1]))

    experiment.snapshot = timed_snapshot
    versions_before = experiment._density_version
    pressed = time.perf_counter()
    experiment.start()
    while time.perf_counter() - pressed < 8:  # a page watching: it reads the pictures ten times a second
        trainer.mailbox.latest()
        time.sleep(0.1)
    experiment.pause()
    assert trainer.wait_idle(60)
    _, history = trainer.history.since(0)
    training_seconds = float(history["seconds"].sum())
    assert len(drawing_seconds) >= 3  # the page still moves (10 a second at most; a loaded machine draws fewer)
    # Within the share, but for the first grids after Train, which come early on purpose (see _density_frames).
    spaced = sum(drawing_seconds) - max(drawing_seconds)
    assert spaced <= 2 * DISPLAY_SHARE * training_seconds + 0.5, (drawing_seconds, training_seconds)
    assert experiment._density_version - versions_before <= 2 + 8 / HEAVY_PERIOD  # grids at most every few seconds
    # The density moves soon after Train: not only once the paused grids' cost allows (20 s and more here).
    assert first_grids, "no density grids while training"
    seconds, cost = first_grids[0]
    assert seconds <= HEAVY_PERIOD + 3 * cost + 2.0, first_grids


def test_a_tolerance_change_on_a_paused_model_shows_light_pictures_first_then_the_grids(make_experiment):
    experiment = make_experiment(CNFExperiment, target="circles")
    trainer = experiment.trainer
    experiment.step(2)
    assert trainer.wait_idle(600)
    published, snapshot = [], experiment.snapshot
    experiment.snapshot = lambda token, iteration: published.append(snapshot(token, iteration)) or published[-1]
    experiment.rtol = 3e-4
    assert trainer.wait_idle(600)
    first, last = published[0], published[-1]
    assert first.solver.rtol == 3e-4 and first.density_solver.rtol == 1e-3  # re-solved samples at once, old grids
    assert last.solver.rtol == last.density_solver.rtol == 3e-4 and last.density_version > first.density_version
    assert len(published) == 2


def test_a_tolerance_change_while_training_shows_light_pictures_first_then_the_grids(make_experiment):
    experiment = make_experiment(CNFExperiment, target="circles")
    trainer = experiment.trainer
    assert trainer.wait_idle(600)
    published, snapshot = [], experiment.snapshot
    experiment.snapshot = lambda token, iteration: published.append(snapshot(token, iteration)) or published[-1]
    experiment.start()
    wait_until(lambda: trainer.iteration >= 3, timeout=120)
    told = []
    trainer.mailbox.listen(lambda asked: told.append((asked, trainer.mailbox.latest())))
    experiment.rtol = 3e-4
    wait_until(lambda: any(s.density_solver.rtol == 3e-4 for s in published), timeout=120)
    experiment.pause()
    assert trainer.wait_idle(600)
    asked = next(s for a, s in told if a)  # the knob's picture: re-solved samples, the grids as they were
    assert asked.solver.rtol == 3e-4 and asked.density_solver.rtol == 1e-3
    assert published[-1].density_solver.rtol == 3e-4


def test_a_new_model_shows_coarse_grids_at_once_then_the_full_ones(make_experiment):
    """The first picture of a page (or after Reset) does not wait seconds for the paused grids: it comes
    with GRID_FIRST cells a side, and the full grids follow in the next picture, unasked."""
    experiment = make_experiment(CNFExperiment, target="circles")
    trainer = experiment.trainer
    for _ in range(2):  # (the new page's own first picture came the same way: its latest one is full-size)
        assert trainer.wait_idle(600)
        latest = trainer.mailbox.latest()
        assert latest.log_density.shape[1:] == (GRID_IDLE, GRID_IDLE)
        published, snapshot = [], experiment.snapshot
        experiment.snapshot = lambda token, iteration: published.append(snapshot(token, iteration)) or published[-1]
        experiment.reset()
        assert trainer.wait_idle(600)
        del experiment.snapshot
        assert [p.log_density.shape[1] for p in published] == [GRID_FIRST, GRID_IDLE]
        assert published[1].density_version > published[0].density_version
