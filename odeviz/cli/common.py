"""What every ``odeviz`` command shares: one-line usage errors, number parsing, a training run with
a progress bar on stderr, and the NFE summary of a run."""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_STOPPED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
POLL_SECONDS = 0.05  # how often the progress bar reads the trainer's history


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (``odeviz: error: …``) instead of usage + message."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")

    def add_argument(self, *args, **kwargs):
        # Helps quote params' docs, which may say "5%": argparse would take it for a format directive.
        if kwargs.get("help") and "%(" not in kwargs["help"]:
            kwargs["help"] = kwargs["help"].replace("%", "%%")
        return super().add_argument(*args, **kwargs)


def finite_float(text: str) -> float:
    """argparse type: a float that is neither NaN nor infinite (bounds are the experiment's job)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


class UsageError(Exception):
    """A bad value from the command line, reported as one line and exit code 2."""


class RunFailed(Exception):
    """A run that could not finish what was asked (e.g. saving its result), reported as one line and exit code 1."""


def json_text(report) -> str:
    """``report`` as strict JSON: NaN and infinities (nothing measured) become null."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(report), allow_nan=False)


def writable_file(option: str, path: Path) -> Path:
    """``path`` if a file can be written there (checked before a long run, not after), else UsageError."""
    if str(path) in ("", "."):
        raise UsageError(f"{option} needs a file name")
    if path.is_dir():
        raise UsageError(f"{option}: {str(path)!r} is a folder; give a file name in it")
    if not path.parent.is_dir():
        raise UsageError(f"{option}: the folder {str(path.parent)!r} does not exist")
    existed = path.exists()
    try:
        with open(path, "ab"):  # what saving will do; os.access says yes to root even where writing fails
            pass
    except OSError as error:
        raise UsageError(f"{option}: cannot write to {str(path)!r} ({error.strerror or error})") from None
    if not existed:
        os.unlink(path)
    return path


def run_training(experiment, iterations: int, max_seconds: float | None = None) -> dict:
    """Run ``iterations`` steps on the experiment's trainer with a progress bar on stderr, stopping
    early (not an error) once ``max_seconds`` have passed."""
    from tqdm import tqdm

    trainer = experiment.trainer
    trainer.wait_idle()  # the first picture, drawn at construction, is not training time
    start = time.perf_counter()
    experiment.step(iterations)
    with tqdm(total=iterations, desc="training", unit="it", file=sys.stderr, dynamic_ncols=True) as bar:
        done = False
        while not done:
            done = trainer.wait_idle(timeout=POLL_SECONDS)
            if not done and max_seconds is not None and time.perf_counter() - start > max_seconds:
                experiment.pause()  # the iteration in flight is discarded
                done = trainer.wait_idle()
            count = len(trainer.history)
            if count > bar.n:
                last = trainer.history.last() or {}
                bar.set_postfix(loss=f"{last.get('loss', math.nan):.3g}", nfe=int(last.get("nfe_forward", 0)), refresh=False)
                bar.update(count - bar.n)
    wall = time.perf_counter() - start
    _, columns = trainer.history.since(0)
    count = len(trainer.history)
    last = trainer.history.last() or {}
    report = {
        "iterations": count,
        **{f"final_{name}": value for name, value in last.items() if name not in ("iteration", "nfe_forward", "nfe_backward", "seconds")},
        "iterations_per_second": count / wall if wall > 0 else 0.0,
        "wall_time_seconds": wall,
        "nfe_forward": nfe_stats(columns.get("nfe_forward")),
        "nfe_backward": nfe_stats(columns.get("nfe_backward")),
    }
    if trainer.message:
        report.update(stopped_early=True, message=trainer.message)
    return report


def nfe_stats(values) -> dict:
    if values is None or len(values) == 0:
        return {"mean": None, "max": None, "last": None}
    return {"mean": float(values.mean()), "max": int(values.max()), "last": int(values[-1])}


def param_values(experiment) -> dict:
    return {name: value for name, value in experiment.param.values().items() if name != "name"}


# ---- odeviz serve ---------------------------------------------------------------------------
def param_error(error: ValueError, option_of_param: dict[str, str]) -> str:
    """param's "Number parameter 'Experiment.rtol' must be …" as "--rtol must be …"."""
    text = str(error)
    match = re.search(r"parameter '(?:\w+\.)?(\w+)' (.*)", text, flags=re.DOTALL)
    if not match:
        return text
    name, rest = match.groups()
    option = option_of_param.get(name)
    return f"{'--' + option if option else name} {rest.rstrip('.')}"


def add_solver_options(parser: argparse.ArgumentParser, params) -> None:
    """--method, --rtol, --atol, --lr, --seed and --adjoint/--no-adjoint, documented by the experiment's params."""
    parser.add_argument("--method", choices=params.method.objects, default=None, metavar="METHOD",
                        help=f"{params.method.doc}: {', '.join(params.method.objects)} (default: {params.method.default})")
    parser.add_argument("--rtol", type=finite_float, default=None, help=f"{params.rtol.doc} (default: {params.rtol.default:g})")
    parser.add_argument("--atol", type=finite_float, default=None, help=f"{params.atol.doc} (default: {params.atol.default:g})")
    parser.add_argument("--lr", type=finite_float, default=None,
                        help=f"{params.learning_rate.doc} (default: {params.learning_rate.default:g})")
    parser.add_argument("--seed", type=int, default=None, help=f"{params.seed.doc} (default: {params.seed.default})")
    parser.add_argument("--adjoint", action=argparse.BooleanOptionalAction, default=None,
                        help=f"{params.adjoint.doc} (default: {'on' if params.adjoint.default else 'off'})")
