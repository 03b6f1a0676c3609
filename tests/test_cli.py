"""The ``odeviz`` command, run as a user runs it: in a subprocess, reading its exit code and output."""
from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from html import escape
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def odeviz(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "odeviz", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_train_continuity_json():
    result = odeviz("train", "continuity", "--iters", "30", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {
        "experiment", "iterations", "final_loss", "final_loss_ode", "final_loss_resnet", "iterations_per_second",
        "wall_time_seconds", "nfe_forward", "nfe_backward", "params",
    }
    assert report["experiment"] == "continuity"
    assert report["iterations"] == 30
    assert math.isfinite(report["final_loss"]) and report["final_loss"] >= 0
    assert report["iterations_per_second"] > 0 and report["wall_time_seconds"] > 0
    for nfe in (report["nfe_forward"], report["nfe_backward"]):
        assert set(nfe) == {"mean", "max", "last"} and nfe["max"] >= nfe["mean"] > 0
    assert report["params"]["depth"] == 8 and report["params"]["method"] == "dopri5"
    assert "stopped_early" not in report
    assert "30/30" in result.stderr  # tqdm's progress bar, on stderr
    assert "Traceback" not in result.stderr


def test_train_continuity_summary_and_options():
    result = odeviz(
        "train", "continuity", "--iters", "5", "--depth", "4", "--method", "rk4", "--no-adjoint", "--target",
        "reflection", "--augment", "--lr", "0.003", "--seed", "3",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("continuity: 5 iterations")
    assert "target reflection (augmented), ResNet depth 4, rk4" in result.stdout
    assert "adjoint off, lr=0.003, seed 3" in result.stdout


@pytest.mark.parametrize(
    "args, named",
    [
        (["--rtol", "0"], "--rtol"),
        (["--rtol", "nan"], "--rtol"),
        (["--atol", "inf"], "--atol"),
        (["--depth", "0"], "--depth"),
        (["--method", "nope"], "--method"),
        (["--iters", "0"], "--iters"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(args, named):
    result = odeviz("train", "continuity", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "error" in lines[0] and named in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_diverging_run_pauses_and_exits_1():
    # lr = 10 blows the vector field up within a few iterations: the forward solve then runs out of
    # evaluations (or the loss turns NaN), so the trainer pauses with the last good weights.
    result = odeviz("train", "continuity", "--iters", "50", "--lr", "10", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["stopped_early"] is True and report["message"].startswith("Paused")
    assert report["iterations"] < 50
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f"odeviz: {report['message']}"
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode("utf-8", "replace")


def test_serve_listens_before_it_imports_a_page_or_torch():
    """The index answers ~1 s after launch: what ``odeviz serve`` needs before it listens (the
    catalog of pages, the lesson's title) imports no page, experiment or torch; the pages come later."""
    probe = textwrap.dedent("""
        import sys
        from odeviz.cli import build_parser
        from odeviz.cli.serve import _catalog_page
        from odeviz.views.catalog import CATALOG
        from odeviz.views.lesson_file import lesson_title
        build_parser(only="serve")
        factories = [_catalog_page(slug) for slug in CATALOG]
        print(lesson_title(), "|", sorted(name for name in sys.modules if name.split(".")[0] == "torch"
                                           or name.startswith(("odeviz.experiments", "odeviz.views.page"))))
    """)
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    title, imported = result.stdout.strip().split(" | ")
    assert title == "Neural ODEs, the paper's story in nine steps" and imported == "[]"


def test_serve_answers_index_and_pages():
    from odeviz.views import PAGES

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "odeviz", "serve", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, so the whole group can be ended
    )
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"odeviz serve exited early:\n{server.stdout.read()}"
            try:
                status, index = _get(base + "/")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, "odeviz serve did not answer within 60 s"
                time.sleep(0.25)
        assert status == 200
        for slug in PAGES:
            # The index lists every page by title and summary.
            assert f"/{slug}" in index and PAGES[slug].title in index and escape(PAGES[slug].summary) in index
            status, page = _get(f"{base}/{slug}")
            assert status == 200
            assert "<title>odeviz" in page
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        server.stdout.close()
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)  # nothing of the group is left


def test_every_command_has_a_help_page():
    """--help of every command and experiment prints and exits 0 (helps quote params' docs)."""
    import argparse

    from odeviz.cli import build_parser

    def commands(parser, prefix=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield (*prefix, name)
                    yield from commands(sub, (*prefix, name))

    paths = list(commands(build_parser()))
    assert ("train", "cnf") in paths and ("table1",) in paths
    for path in paths:
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*path, "--help"])
        assert exit_info.value.code == 0, path


def test_options_come_from_the_experiments_knobs():
    """One table (odeviz.experiments.knobs) names every command's options: --kebab-case, renames, flags."""
    from odeviz.cli import build_parser
    from odeviz.experiments import CNFExperiment, ClassifierExperiment, Table1Experiment, knobs

    args = build_parser().parse_args(["train", "cnf", "--data", "moons", "--lr", "0.1", "--no-adjoint", "--batch-size",
                                      "64", "--lr-decay", "50", "--fixed-steps", "8"])
    assert (args.learning_rate, args.adjoint, args.batch_size, args.decay_iterations, args.fixed_steps) == (0.1, False, 64, 50, 8)
    args = build_parser().parse_args(["fig3", "--data", "circles", "--seminorm", "--max-nfe", "500"])
    assert (args.dataset, args.seminorm, args.max_nfe, args.rtol) == ("circles", True, 500, None)  # None: the default
    assert "seminorm" in {k.param for k in knobs(ClassifierExperiment)}
    assert "seminorm" not in {k.param for k in knobs(Table1Experiment)}  # only where the experiment has it
    assert {k.public for k in knobs(CNFExperiment)} >= {"lr", "lr_decay", "method", "rtol", "atol", "adjoint", "seed"}
    args = build_parser().parse_args(["table1", "--method", "rk4", "--mnist-dir", "/data"])
    assert (args.method, args.mnist_dir) == ("rk4", "/data")  # every training command has the solver's options


def test_cnf_progress_bar_shows_the_cnf_nll_not_the_sum_with_planar_flows():
    result = odeviz("train", "cnf", "--data", "moons", "--iters", "3", "--compare-planar", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    shown = float(result.stderr.rsplit("loss=", 1)[1].split(",")[0])  # the bar's last postfix
    assert shown == pytest.approx(report["final_nll"], rel=2e-3)
    assert report["final_loss"] > report["final_nll"] + 1.0  # CNF + three planar NLLs: what it must not show
    assert set(report["held_out_nll_planar"]) == {"2", "8", "32"}


def test_cnf_defaults_train_the_cnf_alone_and_decay_over_the_time_budget():
    result = odeviz("train", "cnf", "--data", "moons", "--iters", "100000", "--max-seconds", "4", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["held_out_nll_planar"] == {} and "final_nll_planar_8" not in report
    params = report["params"]
    assert (params["method"], params["fixed_steps"], params["compare_planar"]) == ("rk4", 4, False)
    assert report["nfe_forward"]["max"] == 16  # 4 RK4 steps of 4 evaluations
    assert report["wall_time_seconds"] < 4.5  # training stops at the budget (the last picture is not training)
    # By the end of the budget the rate has come down its cosine, though 100 000 iterations were asked for.
    assert report["final_learning_rate"] < 0.2 * params["learning_rate"]
